#!/bin/bash
# build.sh OUTDIR [--domu] - the Xen guest disk for tests/runner/xen.py: Debian's Xen 4.17 hypervisor (from the
# xen-hypervisor-4.17-amd64 package, downloaded with apt-get and cached in OUTDIR, never installed),
# Debian's 6.1 kernel as a PVH dom0 (taken from tests/linux/build.sh's output), a busybox-static
# initramfs whose /init is tests/xen/init, and GRUB disks booting them with multiboot2:
#   OUTDIR/xen-hypervisor-*.deb  the cached package (delete it to move to a newer version)
#   OUTDIR/xen.gz                Xen (GRUB's gzio unpacks it)
#   OUTDIR/dom0.lz4              the dom0 kernel: the bzImage's ELF, LZ4-compressed (see below)
#   OUTDIR/initrd.img            uncompressed newc cpio, fixed owners, modes and mtimes
#   OUTDIR/grub.cfg              the disk's GRUB configuration (Xen's and dom0's command lines)
#   OUTDIR/xen-disk.img          tools/mkgrubdisk.sh image with /boot/xen.gz, dom0.lz4, initrd.img
# and, with --domu, the domU variant (tests xen-domu-*: dom0 starts a PVH domU with `xl create`; its
# kernel build costs about 550 s of CPU, so the other Xen tests do not wait for it):
#   OUTDIR/tools/*.deb           the cached tool stack packages (TOOL_PKGS), unpacked in OUTDIR/tools/root
#   OUTDIR/xen-modules/          dom0's Xen device modules from the kernel package (XEN_MODS)
#   OUTDIR/domu-kernel/bzImage   the domU kernel (tests/xen/domu.config; its source tree beside it)
#   OUTDIR/initrd-domu.img       the domU's initramfs, busybox with /init = tests/xen/init-domu
#   OUTDIR/initrd-xl.img         dom0's: busybox, /init = tests/xen/init-xl, /init.base = tests/xen/init,
#                                the modules, xl, xenstored, xenconsoled, their libraries, the domU's
#                                kernel, initramfs and tests/xen/domu.cfg
#   OUTDIR/grub-domu.cfg, OUTDIR/xen-domu-disk.img   the GRUB configuration and disk booting them
# The same inputs give byte-identical files (benchmarks need a fixed disk). Quick when up to date.
# Environment: LINUX_OUT (default build/linux) is where tests/linux/build.sh puts the kernel.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || { [ $# -eq 2 ] && [ "$2" = --domu ]; } || die "usage: $prog OUTDIR [--domu]"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
linux_out=${LINUX_OUT:-$root/build/linux}

# Xen's command line (see ../shared/reference/bochs.md): the console on COM1 at the speed XMHF uses,
# a PVH dom0 without an IOMMU (Bochs has none) and 256 MiB, every log line (the VMX feature list is
# among them), no reboot on a crash (a stopped Bochs tells more than a reboot loop), no scrubbing of
# free memory at boot (seconds of emulated time for nothing), and console output written synchronously
# (nothing is lost when Bochs stops at power-off), and apicv=0: with Xen's APIC virtualization dom0
# hangs on bare Bochs 2.7 (../shared/reference/bochs.md; tried again here: after "xen_mcelog" dom0's
# clock stops, bochs.log floods with "Clear Virtual Interrupt Vector 0x0" and the tick count stalls),
# so only apicv=0 has a bare reference. console_timestamps=raw starts each of Xen's lines with
# the TSC, which in Bochs counts instructions like bochs.log's tick stamps: the line Xen prints last
# before it starts dom0 tells the benchmark where Xen's phase ends. x2apic-mode=physical: in Xen's
# default mixed mode, its first cluster-mode IPI with 2 CPUs on bare Bochs 2.7 hits "Xen BUG at
# arch/x86/genapic/x2apic.c:163" (no logical ID for the other CPU). dom0_max_vcpus=1: with 2 vCPUs
# dom0 hangs on bare Bochs 2.7 right after its second vCPU comes up ("d0v1: upcall vector f3", then
# nothing), so Xen runs on every CPU and dom0 on one.
XEN_CMDLINE="console=com1 com1=115200,8n1 console_timestamps=raw x2apic-mode=physical no-real-mode dom0=pvh dom0-iommu=none dom0_mem=256M dom0_max_vcpus=1 loglvl=all guest_loglvl=all noreboot bootscrub=0 sync_console apicv=0"
# dom0's: the Linux tests' (quiet keeps the log short; nokaslr and clearcpuid make ticks repeat),
# with Xen's console (hvc0) as the console.
DOM0_CMDLINE="console=hvc0 earlyprintk=xen panic=-1 reboot=t nokaslr clearcpuid=rdrand,rdseed quiet"

# newer_than TARGET FILE...: true when TARGET is missing or empty or a FILE is newer (a rebuild is due).
newer_than() {
    local t=$1 f
    shift
    [ -s "$t" ] || return 0
    for f in "$@"; do [ "$f" -nt "$t" ] && return 0; done
    return 1
}

# --- the Xen package -------------------------------------------------------------------------
pkg=xen-hypervisor-4.17-amd64
deb=$(ls "$out/${pkg}"_*.deb 2>/dev/null | LC_ALL=C sort | tail -n1 || true)
if [ -z "$deb" ]; then
    echo "$prog: downloading $pkg" >&2
    dl=$(mktemp -d "$out/download.XXXXXX")
    chmod 0777 "$dl"   # apt's _apt user writes there when run as root
    (cd "$dl" && apt-get -q download "$pkg") >&2 || { rm -rf "$dl"; die "apt-get download $pkg failed (apt-get update?)"; }
    mv "$dl"/*.deb "$out"/
    rm -rf "$dl"
    deb=$(ls "$out/${pkg}"_*.deb | LC_ALL=C sort | tail -n1)
fi
if newer_than "$out/xen.gz" "$deb"; then
    dpkg-deb --fsys-tarfile "$deb" | tar -xO ./boot/xen-4.17-amd64.gz >"$out/xen.gz.tmp" ||
        die "no /boot/xen-4.17-amd64.gz in $deb"
    mv -f "$out/xen.gz.tmp" "$out/xen.gz"
fi

# --- the dom0 kernel -------------------------------------------------------------------------
# Debian's bzImage carries its ELF XZ-compressed; Xen unpacks it while building dom0, which costs
# billions of emulated instructions in Bochs. Xen also takes a kernel that is any compressed stream of
# the ELF with its length appended (xen/arch/x86/bzimage.c), so the same ELF is repacked as legacy LZ4
# (what the kernel's own build makes, with the same 4-byte length trailer), which unpacks far faster.
"$root/tests/linux/build.sh" "$linux_out" >&2
if newer_than "$out/dom0.lz4" "$linux_out/vmlinuz" "$0"; then
    command -v lz4 >/dev/null || die "lz4 not found (apt-get install lz4)"
    command -v xz >/dev/null || die "xz not found (apt-get install xz-utils)"
    python3 - "$linux_out/vmlinuz" "$out/vmlinux.tmp" <<'EOPY'
import struct, subprocess, sys
d = open(sys.argv[1], "rb").read()
# The boot protocol's setup header: setup_sects at 0x1f1, payload_offset/length at 0x248 (2.08+).
if d[0x202:0x206] != b"HdrS" or struct.unpack_from("<H", d, 0x206)[0] < 0x208:
    sys.exit("not a bzImage with a payload field")
off, n = struct.unpack_from("<II", d, 0x248)
p = d[(d[0x1f1] + 1) * 512 + off:][:n]
if p[:6] != b"\xfd7zXZ\x00":
    sys.exit("the payload is not XZ")
elf = subprocess.run(["xz", "-dc", "--single-stream"], input=p, stdout=subprocess.PIPE, check=True).stdout
if elf[:4] != b"\x7fELF" or len(elf) != struct.unpack("<I", p[-4:])[0]:
    sys.exit("the payload is not the ELF of its stated length")
open(sys.argv[2], "wb").write(elf)
EOPY
    lz4 -q -l -9 -c "$out/vmlinux.tmp" >"$out/dom0.lz4.tmp"
    python3 -c 'import os, struct, sys; sys.stdout.buffer.write(struct.pack("<I", os.path.getsize(sys.argv[1])))' \
        "$out/vmlinux.tmp" >>"$out/dom0.lz4.tmp"
    rm -f "$out/vmlinux.tmp"
    mv -f "$out/dom0.lz4.tmp" "$out/dom0.lz4"
fi

# --- the initramfs ---------------------------------------------------------------------------
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static)"
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
    ldd "$busybox" 2>&1 | grep -q 'not a dynamic executable' || die "$busybox is not statically linked (want busybox-static)"
# mkinitramfs OUT INIT [SRC:DEST:MODE]...: busybox with its applet links, INIT as /init and the extra
# files (a SRC ending in / is a directory made empty), packed as a newc cpio with fixed owners, modes
# and mtimes. Without extras it gives exactly the initrd.img it always gave (benchmarks need a fixed disk).
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
    find "$s" -type d -exec chmod 0755 {} +
    for e in "$@"; do
        IFS=: read -r src dest mode <<<"$e"
        if [ "$src" = / ]; then
            mkdir -p "$s$dest"
        else
            mkdir -p "$s$(dirname "$dest")"
            cp -L "$src" "$s$dest"
        fi
        chmod "$mode" "$s$dest"
    done
    find "$s" -type d ! -perm -0001 -exec chmod 0755 {} +
    chmod 0755 "$s/init" "$s/bin/busybox"
    chmod 1777 "$s/tmp"
    find "$s" -exec touch -h -d @0 {} +
    (cd "$s" && find . -mindepth 1 | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0 --reproducible) >"$o.tmp"
    mv -f "$o.tmp" "$o"
    rm -rf "$s"
}
if newer_than "$out/initrd.img" "$here/init" "$busybox" "$0"; then
    mkinitramfs "$out/initrd.img" "$here/init"
fi

# --- the GRUB disks --------------------------------------------------------------------------
# mkdisk IMG CFG INITRD TITLE: the GRUB disk with Xen, dom0.lz4 and INITRD as /boot/initrd.img (CFG is
# written only when its text changes, so an unchanged disk is not rebuilt).
mkdisk() {
    local img=$1 cfg=$2 initrd=$3 title=$4 size
    cat >"$cfg.tmp" <<EOC
set timeout=0
set default=0
menuentry "$title" {
	multiboot2 /boot/xen.gz $XEN_CMDLINE
	module2 /boot/dom0.lz4 $DOM0_CMDLINE
	module2 /boot/initrd.img
}
EOC
    if cmp -s "$cfg.tmp" "$cfg"; then rm -f "$cfg.tmp"; else mv -f "$cfg.tmp" "$cfg"; fi
    if newer_than "$img" "$out/xen.gz" "$out/dom0.lz4" "$initrd" "$cfg" "$root/tools/mkgrubdisk.sh"; then
        size=$(( ($(stat -c %s "$out/xen.gz") + $(stat -c %s "$out/dom0.lz4") + $(stat -c %s "$initrd")) / 1048576 + 4 ))
        "$root/tools/mkgrubdisk.sh" -o "$img" -c "$cfg" -s "$size" -f "$out/xen.gz:/boot/xen.gz" \
            -f "$out/dom0.lz4:/boot/dom0.lz4" -f "$initrd:/boot/initrd.img" >&2
    fi
}
mkdisk "$out/xen-disk.img" "$out/grub.cfg" "$out/initrd.img" "Xen 4.17 with a PVH dom0"
echo "$out/xen-disk.img"
[ "${2:-}" = --domu ] || exit 0

# --- the domU variant ------------------------------------------------------------------------
# dom0 runs Xen's tool stack (Debian's packages, downloaded and unpacked here, never installed): the
# C xenstored, xenconsoled (it logs the domU's console to a file dom0 prints), xen-init-dom0 and xl,
# with the libraries they need (the Xen ones from the packages, the C library and the compression ones
# from this Debian 12 host, the release the packages are built for). The kernel's Xen devices
# /dev/xen/{evtchn,gntdev,gntalloc,privcmd} and xenfs are modules in Debian's 6.1 (CONFIG_XEN_DEV_EVTCHN,
# CONFIG_XEN_GNTDEV, CONFIG_XEN_GRANT_DEV_ALLOC, CONFIG_XEN_PRIVCMD, CONFIG_XENFS =m; xenbus_backend,
# which xenstored opens, is built in), so the initramfs carries them and init-xl loads them.
TOOL_PKGS="xen-utils-4.17 xenstore-utils libxenmisc4.17 libxencall1 libxenevtchn1 libxenforeignmemory1
 libxengnttab1 libxenstore4 libxentoollog1 libxendevicemodel1 libxenhypfs1 libxentoolcore1 libyajl2"
XEN_MODS="xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs"
tools=$out/tools
mkdir -p "$tools"
missing=
for p in $TOOL_PKGS; do
    ls "$tools/${p}"_*.deb >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "$prog: downloading$missing" >&2
    dl=$(mktemp -d "$out/download.XXXXXX")
    chmod 0777 "$dl"
    # shellcheck disable=SC2086  # a list of package names
    (cd "$dl" && apt-get -q download $missing) >&2 || { rm -rf "$dl"; die "apt-get download$missing failed (apt-get update?)"; }
    mv "$dl"/*.deb "$tools"/
    rm -rf "$dl"
fi
debs=$(for p in $TOOL_PKGS; do ls "$tools/${p}"_*.deb | LC_ALL=C sort | tail -n1; done)
# shellcheck disable=SC2086  # one path per line
if newer_than "$tools/root/.stamp" $debs "$0"; then
    rm -rf "$tools/root"
    mkdir -p "$tools/root"
    for d in $debs; do dpkg-deb -x "$d" "$tools/root"; done
    touch "$tools/root/.stamp"
fi
kdeb=$(ls "$linux_out"/linux-image-6.1.0-*-amd64_*.deb | LC_ALL=C sort | tail -n1)
rel=$(cat "$linux_out/release")
if newer_than "$out/xen-modules/xenfs.ko" "$kdeb"; then
    x=$(mktemp -d "$out/extract.XXXXXX")
    dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$x" "./lib/modules/$rel/kernel/drivers/xen" ||
        { rm -rf "$x"; die "no drivers/xen modules in $kdeb"; }
    mkdir -p "$out/xen-modules"
    for m in $XEN_MODS; do
        f=$(find "$x" -name "$m.ko")
        [ -n "$f" ] || { rm -rf "$x"; die "$m.ko not in $kdeb"; }
        mv -f "$f" "$out/xen-modules/"
    done
    touch "$out"/xen-modules/*.ko
    rm -rf "$x"
fi
# The domU kernel: a small PVH kernel of its own (tests/xen/domu.config, built by
# tests/linux/build-l2-kernel.sh from linux-source-6.1, an LZ4 bzImage: xl's domain builder unpacks
# it in dom0's user space, and the Debian kernel's 60 MB ELF took billions of emulated instructions
# to unpack, load and boot there).
"$root/tests/linux/build-l2-kernel.sh" "$out" domu-kernel "$here/domu.config" >&2
if newer_than "$out/initrd-domu.img" "$here/init-domu" "$busybox" "$0"; then
    mkinitramfs "$out/initrd-domu.img" "$here/init-domu"
fi
# xl_files: SRC:DEST:MODE for the tool stack's programs, the libraries ldd names for them (looked up in
# the packages first), the modules and the domU's files, and the runtime directories (SRC /).
xl_bins="usr/lib/xen-4.17/bin/xl usr/lib/xen-4.17/bin/xenstored usr/lib/xen-4.17/bin/xenconsoled
 usr/lib/xen-4.17/bin/xen-init-dom0 usr/bin/xenstore"
xl_files() {
    local b l m
    for b in $xl_bins; do echo "$tools/root/$b:/$b:0755"; done
    # shellcheck disable=SC2086  # one path per word
    (cd "$tools/root" && LD_LIBRARY_PATH=$tools/root/usr/lib/x86_64-linux-gnu ldd $xl_bins) |
        sed -n 's/^[[:space:]]*\(\/[^ ]*\) (0x.*$/\1/p; s/^.* => \(\/[^ ]*\) (0x.*$/\1/p' |
        LC_ALL=C sort -u | while read -r l; do
            case $l in
                */ld-linux-x86-64.so.2) echo "$l:/lib64/ld-linux-x86-64.so.2:0755" ;;
                *) echo "$l:/lib/x86_64-linux-gnu/${l##*/}:0644" ;;
            esac
        done
    # glibc loads libgcc_s with dlopen for pthread_cancel, which xl uses.
    l=$(ldconfig -p | sed -n 's/^[[:space:]]*libgcc_s.so.1 (libc6,x86-64) => //p' | head -n1)
    echo "$l:/lib/x86_64-linux-gnu/libgcc_s.so.1:0644"
    for m in $XEN_MODS; do echo "$out/xen-modules/$m.ko:/lib/modules/xen/$m.ko:0644"; done
    echo "$here/init:/init.base:0755"
    echo "$here/domu.cfg:/etc/xen/domu.cfg:0644"
    echo "$out/domu-kernel/bzImage:/boot/domu.bzimage:0644"
    echo "$out/initrd-domu.img:/boot/initrd-domu.img:0644"
    for m in /var/run/xen /var/run/xenstored /var/lib/xen /var/lib/xenstored /var/log/xen/console /var/lock; do
        echo "/:$m:0755"
    done
}
# shellcheck disable=SC2086  # one path per word
nf=$(cd "$tools/root" && LD_LIBRARY_PATH=$tools/root/usr/lib/x86_64-linux-gnu ldd $xl_bins | grep 'not found' || true)
[ -z "$nf" ] || die "libraries of the tool stack not found (on the host or in the packages): $nf"
xfiles=$(xl_files)
xsrcs=$(echo "$xfiles" | cut -d: -f1 | grep -vx /)
# shellcheck disable=SC2086  # one path per line
if newer_than "$out/initrd-xl.img" "$here/init-xl" $xsrcs "$busybox" "$0"; then
    mapfile -t extra <<<"$xfiles"
    mkinitramfs "$out/initrd-xl.img" "$here/init-xl" "${extra[@]}"
fi

mkdisk "$out/xen-domu-disk.img" "$out/grub-domu.cfg" "$out/initrd-xl.img" "Xen 4.17 with a PVH dom0 starting a PVH domU"
echo "$out/xen-domu-disk.img"
