#!/bin/bash
# build.sh OUTDIR - the Linux guest disk for tests/runner/linux.py: Debian's 6.1 kernel (from the
# linux-image-6.1.0-<abi>-amd64 package, downloaded with apt-get and cached in OUTDIR, never
# installed), a busybox-static initramfs whose /init is tests/linux/init, and a GRUB disk booting them:
#   OUTDIR/linux-image-*.deb   the cached package (delete it to move to a newer ABI)
#   OUTDIR/vmlinuz             the kernel (bzImage) extracted from it
#   OUTDIR/initrd.img          uncompressed newc cpio, fixed owners, modes and mtimes
#   OUTDIR/grub.cfg            the guest disk's GRUB configuration
#   OUTDIR/linux-disk.img      tools/mkgrubdisk.sh image with /boot/vmlinuz and /boot/initrd.img
#   OUTDIR/kvm-modules/        irqbypass.ko, kvm.ko, kvm-intel.ko from the package
#   OUTDIR/kvmtest             tests/linux/kvmtest.c, static
#   OUTDIR/initrd-kvm.img      initrd.img plus the modules and kvmtest, /init = tests/linux/init-kvm
#   OUTDIR/grub-kvm.cfg, OUTDIR/linux-kvm-disk.img   the same for the KVM variant (tests linux-kvm-*)
#   OUTDIR/initrd-qemu.img     initrd.img plus the modules, QEMU with its libraries and firmware,
#                              /init = tests/linux/init-qemu (no disk: tests/runner/linux_kvm_l2.py
#                              makes its own, with a second initramfs holding the job)
#   OUTDIR/initrd-l2.img       busybox with /init = tests/linux/init-l2, the Linux L2's initramfs
# The same inputs give byte-identical files (benchmarks need a fixed disk). Quick when up to date.
# Environment: LINUX_ABI=56 (say) picks the package; default: what linux-image-amd64 depends on.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $prog OUTDIR"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)

# Kernel command line. quiet keeps the serial log short (and the boot faster: every byte costs
# emulated UART time); nokaslr and clearcpuid=rdrand,rdseed make the boot deterministic in Bochs
# (tick counts repeat); reboot=t turns a panic (panic=-1) into a triple fault, which ends a Bochs
# run started with --stop-on-triple-fault and stops XMHF, instead of rebooting into GRUB forever.
CMDLINE=${LINUX_CMDLINE:-"console=ttyS0,115200 panic=-1 reboot=t nokaslr clearcpuid=rdrand,rdseed quiet"}

# --- the kernel package ------------------------------------------------------------------
deb=$(ls "$out"/linux-image-6.1.0-*-amd64_*.deb 2>/dev/null | LC_ALL=C sort | tail -n1 || true)
if [ -n "${LINUX_ABI:-}" ]; then
    pkg=linux-image-6.1.0-$LINUX_ABI-amd64
    case ${deb##*/} in "${pkg}_"*) ;; *) deb= ;; esac
fi
if [ -z "$deb" ]; then
    if [ -z "${pkg:-}" ]; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
              sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1)
        [ -n "$pkg" ] || die "cannot find the kernel package linux-image-amd64 depends on (apt-get update?)"
    fi
    echo "$prog: downloading $pkg" >&2
    dl=$(mktemp -d "$out/download.XXXXXX")
    chmod 0777 "$dl"   # apt's _apt user writes there when run as root
    (cd "$dl" && apt-get -q download "$pkg") >&2 || { rm -rf "$dl"; die "apt-get download $pkg failed"; }
    mv "$dl"/*.deb "$out"/
    rm -rf "$dl"
    deb=$(ls "$out/${pkg}"_*.deb | LC_ALL=C sort | tail -n1)
fi

if [ ! -s "$out/vmlinuz" ] || [ "$deb" -nt "$out/vmlinuz" ]; then
    x=$(mktemp -d "$out/extract.XXXXXX")
    # Only /boot is needed: the kernel is self-contained (ACPI, 8250 console, devtmpfs built in).
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x" --wildcards './boot/vmlinuz-*'
    k=$(ls "$x"/boot/vmlinuz-* | head -n1)
    [ -s "$k" ] || { rm -rf "$x"; die "no /boot/vmlinuz-* in $deb"; }
    echo "${k##*/vmlinuz-}" >"$out/release"
    mv -f "$k" "$out/vmlinuz"
    touch "$out/vmlinuz"   # newer than the package: not extracted again
    rm -rf "$x"
fi

# --- the initramfs -------------------------------------------------------------------
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static)"
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
    ldd "$busybox" 2>&1 | grep -q 'not a dynamic executable' || die "$busybox is not statically linked (want busybox-static)"
# newer_than TARGET FILE...: true when TARGET is missing or empty or a FILE is newer (a rebuild is due).
newer_than() {
    local t=$1 f
    shift
    [ -s "$t" ] || return 0
    for f in "$@"; do [ "$f" -nt "$t" ] && return 0; done
    return 1
}

# mkinitramfs OUT INIT [SRC:DEST:MODE]...: busybox with its applet links, INIT as /init and the extra
# files, packed as a newc cpio with fixed owners, modes and mtimes. Without extras it gives exactly the
# initrd.img it always gave (the benchmarks' disk must stay byte-identical).
mkinitramfs() {
    local o=$1 init=$2 s a e src dest mode
    shift 2
    s=$(mktemp -d "$out/initramfs.XXXXXX")
    mkdir -p "$s"/{bin,sbin,dev,proc,sys,tmp,root,etc}
    cp "$busybox" "$s/bin/busybox"
    for a in $("$busybox" --list | LC_ALL=C sort); do
        [ "$a" = busybox ] || ln -s busybox "$s/bin/$a"
    done
    cp "$init" "$s/init"
    for e in "$@"; do
        IFS=: read -r src dest mode <<<"$e"
        mkdir -p "$s$(dirname "$dest")"
        cp "$src" "$s$dest"
        chmod "$mode" "$s$dest"
    done
    find "$s" -type d -exec chmod 0755 {} +
    chmod 0755 "$s/init" "$s/bin/busybox"
    chmod 1777 "$s/tmp"
    find "$s" -exec touch -h -d @0 {} +
    (cd "$s" && find . -mindepth 1 | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0 --reproducible) >"$o.tmp"
    mv -f "$o.tmp" "$o"
    rm -rf "$s"
}

# mkdisk IMG CFG INITRD: the GRUB disk with /boot/vmlinuz and INITRD as /boot/initrd.img, booting
# them with $CMDLINE (CFG is written only when its text changes, so an unchanged disk is not rebuilt).
mkdisk() {
    local img=$1 cfg=$2 initrd=$3 ksize
    cat >"$cfg.tmp" <<EOC
set timeout=0
set default=0
menuentry "Debian $(cat "$out/release")" {
	linux /boot/vmlinuz $CMDLINE
	initrd /boot/initrd.img
}
EOC
    if cmp -s "$cfg.tmp" "$cfg"; then rm -f "$cfg.tmp"; else mv -f "$cfg.tmp" "$cfg"; fi
    if newer_than "$img" "$out/vmlinuz" "$initrd" "$cfg" "$root/tools/mkgrubdisk.sh"; then
        ksize=$(( ($(stat -c %s "$out/vmlinuz") + $(stat -c %s "$initrd")) / 1048576 + 4 ))
        "$root/tools/mkgrubdisk.sh" -o "$img" -c "$cfg" -s "$ksize" \
            -f "$out/vmlinuz:/boot/vmlinuz" -f "$initrd:/boot/initrd.img" >&2
    fi
}

if newer_than "$out/initrd.img" "$here/init" "$busybox" "$0"; then
    mkinitramfs "$out/initrd.img" "$here/init"
fi

# --- the KVM variant: the same plus KVM's modules and tests/linux/kvmtest.c -------------------
# (tests linux-kvm-*: Linux runs KVM as L1 of Bochs or of XMHF; init-kvm loads the modules, runs
# kvmtest, then execs the ordinary init as /init.base.)
rel=$(cat "$out/release")
kmods="kernel/virt/lib/irqbypass.ko kernel/arch/x86/kvm/kvm.ko kernel/arch/x86/kvm/kvm-intel.ko"
if newer_than "$out/kvm-modules/kvm-intel.ko" "$deb"; then
    x=$(mktemp -d "$out/extract.XXXXXX")
    # shellcheck disable=SC2046  # one path per module
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x" $(for k in $kmods; do echo "./lib/modules/$rel/$k"; done) ||
        { rm -rf "$x"; die "KVM modules not found in $deb"; }
    mkdir -p "$out/kvm-modules"
    for k in $kmods; do mv -f "$x/lib/modules/$rel/$k" "$out/kvm-modules/"; done
    touch "$out"/kvm-modules/*.ko   # newer than the package: not extracted again
    rm -rf "$x"
fi
if newer_than "$out/kvmtest" "$here/kvmtest.c"; then
    command -v gcc >/dev/null || die "gcc not found (apt-get install gcc libc6-dev)"
    # Static: the initramfs has no C library. The same source and compiler give the same binary.
    gcc -static -O2 -Wall -Wextra -Werror -o "$out/kvmtest.tmp" "$here/kvmtest.c" ||
        die "building kvmtest failed (a static build needs libc6-dev's libc.a)"
    mv -f "$out/kvmtest.tmp" "$out/kvmtest"
fi
if newer_than "$out/initrd-kvm.img" "$here/init" "$here/init-kvm" "$busybox" "$0" "$out/kvmtest" \
        "$out"/kvm-modules/*.ko; then
    mkinitramfs "$out/initrd-kvm.img" "$here/init-kvm" "$here/init:/init.base:0755" \
        "$out/kvmtest:/bin/kvmtest:0755" "$out/kvm-modules/irqbypass.ko:/lib/modules/kvm/irqbypass.ko:0644" \
        "$out/kvm-modules/kvm.ko:/lib/modules/kvm/kvm.ko:0644" \
        "$out/kvm-modules/kvm-intel.ko:/lib/modules/kvm/kvm-intel.ko:0644"
fi

# --- the QEMU variant: the KVM one plus QEMU, its libraries and the firmware for -kernel ------------
# (tests/runner/linux_kvm_l2.py: Linux/KVM on Bochs or XMHF runs QEMU -enable-kvm; init-qemu loads KVM
# with nested=1 and runs /job/run, a script the runner adds as a second initramfs on the GRUB line,
# before the ordinary init. Only what `-kernel` boots with -nodefaults needs: SeaBIOS, the Linux and
# multiboot loader option ROMs, kvmvapic.bin (KVM's TPR patching ROM); the binaries are stripped.)
qemu=${QEMU:-/usr/bin/qemu-system-x86_64}
[ -x "$qemu" ] || die "$qemu not found (apt-get install qemu-system-x86)"
# qemu_files: SRC:DEST:MODE for QEMU, the dynamic loader and each library ldd names, and the firmware
# (found in QEMU's firmware path: /usr/share/qemu, /usr/share/seabios).
qemu_files() {
    local l f d
    echo "$qemu:/usr/bin/qemu-system-x86_64:0755"
    ldd "$qemu" | sed -n 's/^[[:space:]]*\(\/[^ ]*\) (0x.*$/\1/p; s/^.* => \(\/[^ ]*\) (0x.*$/\1/p' |
        LC_ALL=C sort -u | while read -r l; do
            case $l in
                */ld-linux-x86-64.so.2) echo "$l:/lib64/ld-linux-x86-64.so.2:0755" ;;
                *) echo "$l:/lib/x86_64-linux-gnu/${l##*/}:0644" ;;
            esac
        done
    for f in bios-256k.bin linuxboot_dma.bin multiboot_dma.bin kvmvapic.bin; do
        for d in /usr/share/qemu /usr/share/seabios; do
            [ -e "$d/$f" ] && { echo "$d/$f:/usr/share/qemu/$f:0644"; continue 2; }
        done
        die "QEMU firmware $f not found"
    done
}
qfiles=$(qemu_files)
qsrcs=$(echo "$qfiles" | cut -d: -f1)
# shellcheck disable=SC2086  # one path per line
if newer_than "$out/initrd-qemu.img" "$here/init" "$here/init-qemu" "$busybox" "$0" "$out"/kvm-modules/*.ko \
        $qsrcs; then
    st=$(mktemp -d "$out/qemu-files.XXXXXX")
    extra=()
    while IFS=: read -r src dest mode; do
        f=$st$dest
        mkdir -p "$(dirname "$f")"
        cp -L "$src" "$f"
        case $dest in *.bin) ;; *) strip --strip-unneeded "$f" 2>/dev/null || true ;; esac
        extra+=("$f:$dest:$mode")
    done <<<"$qfiles"
    mkinitramfs "$out/initrd-qemu.img" "$here/init-qemu" "$here/init:/init.base:0755" \
        "$out/kvm-modules/irqbypass.ko:/lib/modules/kvm/irqbypass.ko:0644" \
        "$out/kvm-modules/kvm.ko:/lib/modules/kvm/kvm.ko:0644" \
        "$out/kvm-modules/kvm-intel.ko:/lib/modules/kvm/kvm-intel.ko:0644" "${extra[@]}"
    rm -rf "$st"
fi

# --- the Linux L2's initramfs: busybox and tests/linux/init-l2 (its kernel: build-l2-kernel.sh) -----
if newer_than "$out/initrd-l2.img" "$here/init-l2" "$busybox" "$0"; then
    mkinitramfs "$out/initrd-l2.img" "$here/init-l2"
fi

# --- the GRUB disks -------------------------------------------------------------------
mkdisk "$out/linux-disk.img" "$out/grub.cfg" "$out/initrd.img"
mkdisk "$out/linux-kvm-disk.img" "$out/grub-kvm.cfg" "$out/initrd-kvm.img"
echo "$out/linux-disk.img"
echo "$out/linux-kvm-disk.img"
