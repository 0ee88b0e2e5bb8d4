#!/bin/bash
# Boot one guest test kernel bare on Bochs (default) or QEMU through a throwaway GRUB disk.
#
# Usage: tests/guests/lib/run-kernel.sh [options] KERNEL.bin [KERNEL-ARGS...]
#   --qemu           QEMU TCG (tools/bios-qemu.sh --no-kvm) instead of Bochs
#   -smp N           CPUs (default 1)
#   -m MiB           guest RAM (default 256)
#   --timeout S      wall-clock limit (default 120)
#   --serial FILE    keep COM1 output in FILE (default: a temporary file)
#   --keep-disk FILE keep the GRUB disk image as FILE
# KERNEL-ARGS go on the multiboot command line (e.g. x2apic=1 hidden=0x1000000-0x1ffffff
# skip=NAME,...). Bochs runs with "cpu: ignore_bad_msrs=0" so unknown MSRs raise #GP as on
# hardware. Prints the serial output; exit status 0 when it ends with "TESTS DONE: n passed,
# 0 failed", 1 otherwise. Needs tools/mkgrubdisk.sh, tools/bios-bochs.sh / tools/bios-qemu.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../../.." && pwd)
usage() { sed -n '2,14s/^# \{0,1\}//p' "$0"; }

emu=bochs smp=1 mem=256 timeout_s=120 serial= keep_disk=
while [ $# -gt 0 ]; do
    case $1 in
        --qemu) emu=qemu; shift ;;
        -smp|--smp) smp=$2; shift 2 ;;
        -m) mem=$2; shift 2 ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --serial) serial=$2; shift 2 ;;
        --keep-disk) keep_disk=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "run-kernel.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
kernel=$1
shift
[ -f "$kernel" ] || { echo "run-kernel.sh: $kernel not found" >&2; exit 2; }
name=$(basename "$kernel")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-kernel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
[ -n "$serial" ] || serial=$tmp/serial.out
printf 'set timeout=0\nmenuentry "t" {\n\tmultiboot /boot/%s %s\n\tboot\n}\n' "$name" "$*" >"$tmp/grub.cfg"
disk=${keep_disk:-$tmp/disk.img}
"$top/tools/mkgrubdisk.sh" -o "$disk" -c "$tmp/grub.cfg" -f "$kernel:/boot/$name" >/dev/null

set +e
if [ "$emu" = qemu ]; then
    "$top/tools/bios-qemu.sh" --no-kvm -smp "$smp" -m "$mem" -d "$disk" --timeout "$timeout_s" \
        --serial "$serial"
else
    "$top/tools/bios-bochs.sh" -smp "$smp" -m "$mem" -d "$disk" --timeout "$timeout_s" \
        --serial "$serial" --bochsrc-extra "cpu: ignore_bad_msrs=0"
fi
set -e
cat "$serial"
tr -d '\r' <"$serial" | grep -qx 'TESTS DONE: [0-9]* passed, 0 failed'
