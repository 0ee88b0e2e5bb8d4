#!/bin/bash
# build.sh OUTDIR - the Linux guest disk for tests/runner/linux.py: Debian's 6.1 kernel (from the
# linux-image-6.1.0-<abi>-amd64 package, downloaded with apt-get and cached in OUTDIR, never
# installed), a busybox-static initramfs whose /init is tests/linux/init, and a GRUB disk booting them:
#   OUTDIR/linux-image-*.deb   the cached package (delete it to move to a newer ABI)
#   OUTDIR/vmlinuz             the kernel (bzImage) extracted from it
#   OUTDIR/initrd.img          uncompressed newc cpio, fixed owners, modes and mtimes
#   OUTDIR/grub.cfg            the guest disk's GRUB configuration
#   OUTDIR/linux-disk.img      tools/mkgrubdisk.sh image with /boot/vmlinuz and /boot/initrd.img
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
if [ ! -s "$out/initrd.img" ] || [ "$here/init" -nt "$out/initrd.img" ] || [ "$busybox" -nt "$out/initrd.img" ] ||
   [ "$0" -nt "$out/initrd.img" ]; then
    s=$(mktemp -d "$out/initramfs.XXXXXX")
    mkdir -p "$s"/{bin,sbin,dev,proc,sys,tmp,root,etc}
    cp "$busybox" "$s/bin/busybox"
    for a in $("$busybox" --list | LC_ALL=C sort); do
        [ "$a" = busybox ] || ln -s busybox "$s/bin/$a"
    done
    cp "$here/init" "$s/init"
    find "$s" -type d -exec chmod 0755 {} +
    chmod 0755 "$s/init" "$s/bin/busybox"
    chmod 1777 "$s/tmp"
    find "$s" -exec touch -h -d @0 {} +
    (cd "$s" && find . -mindepth 1 | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0 --reproducible) >"$out/initrd.img.tmp"
    mv -f "$out/initrd.img.tmp" "$out/initrd.img"
    rm -rf "$s"
fi

# --- the GRUB disk --------------------------------------------------------------------
cat >"$out/grub.cfg.tmp" <<EOC
set timeout=0
set default=0
menuentry "Debian $(cat "$out/release")" {
	linux /boot/vmlinuz $CMDLINE
	initrd /boot/initrd.img
}
EOC
if cmp -s "$out/grub.cfg.tmp" "$out/grub.cfg"; then rm -f "$out/grub.cfg.tmp"; else mv -f "$out/grub.cfg.tmp" "$out/grub.cfg"; fi
img=$out/linux-disk.img
if [ ! -s "$img" ] || [ "$out/vmlinuz" -nt "$img" ] || [ "$out/initrd.img" -nt "$img" ] ||
   [ "$out/grub.cfg" -nt "$img" ] || [ "$root/tools/mkgrubdisk.sh" -nt "$img" ]; then
    ksize=$(( ($(stat -c %s "$out/vmlinuz") + $(stat -c %s "$out/initrd.img")) / 1048576 + 4 ))
    "$root/tools/mkgrubdisk.sh" -o "$img" -c "$out/grub.cfg" -s "$ksize" \
        -f "$out/vmlinuz:/boot/vmlinuz" -f "$out/initrd.img:/boot/initrd.img" >&2
fi
echo "$img"
