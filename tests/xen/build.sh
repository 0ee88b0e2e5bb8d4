#!/bin/bash
# build.sh OUTDIR - the Xen guest disk for tests/runner/xen.py: Debian's Xen 4.17 hypervisor (from the
# xen-hypervisor-4.17-amd64 package, downloaded with apt-get and cached in OUTDIR, never installed),
# Debian's 6.1 kernel as a PVH dom0 (taken from tests/linux/build.sh's output), a busybox-static
# initramfs whose /init is tests/xen/init, and GRUB disks booting them with multiboot2:
#   OUTDIR/xen-hypervisor-*.deb  the cached package (delete it to move to a newer version)
#   OUTDIR/xen.gz                Xen (GRUB's gzio unpacks it)
#   OUTDIR/dom0.lz4              the dom0 kernel: the bzImage's ELF, LZ4-compressed (see below)
#   OUTDIR/initrd.img            uncompressed newc cpio, fixed owners, modes and mtimes
#   OUTDIR/grub.cfg              the disk's GRUB configuration (Xen's and dom0's command lines)
#   OUTDIR/xen-disk.img          tools/mkgrubdisk.sh image with /boot/xen.gz, dom0.lz4, initrd.img
# The same inputs give byte-identical files (benchmarks need a fixed disk). Quick when up to date.
# Environment: LINUX_OUT (default build/linux) is where tests/linux/build.sh puts the kernel.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $prog OUTDIR"
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
if newer_than "$out/initrd.img" "$here/init" "$busybox" "$0"; then
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

# --- the GRUB disk ---------------------------------------------------------------------------
# grub.cfg is written only when its text changes, so an unchanged disk is not rebuilt.
cat >"$out/grub.cfg.tmp" <<EOC
set timeout=0
set default=0
menuentry "Xen 4.17 with a PVH dom0" {
	multiboot2 /boot/xen.gz $XEN_CMDLINE
	module2 /boot/dom0.lz4 $DOM0_CMDLINE
	module2 /boot/initrd.img
}
EOC
if cmp -s "$out/grub.cfg.tmp" "$out/grub.cfg"; then rm -f "$out/grub.cfg.tmp"; else mv -f "$out/grub.cfg.tmp" "$out/grub.cfg"; fi
img=$out/xen-disk.img
if newer_than "$img" "$out/xen.gz" "$out/dom0.lz4" "$out/initrd.img" "$out/grub.cfg" "$root/tools/mkgrubdisk.sh"; then
    size=$(( ($(stat -c %s "$out/xen.gz") + $(stat -c %s "$out/dom0.lz4") + $(stat -c %s "$out/initrd.img")) / 1048576 + 4 ))
    "$root/tools/mkgrubdisk.sh" -o "$img" -c "$out/grub.cfg" -s "$size" -f "$out/xen.gz:/boot/xen.gz" \
        -f "$out/dom0.lz4:/boot/dom0.lz4" -f "$out/initrd.img:/boot/initrd.img" >&2
fi
echo "$img"
