#!/bin/bash
# Build the guest test kernels (tests/guests/kernels/*.c + tests/guests/lib).
#
# Usage: tests/guests/lib/build.sh OUTDIR [KERNEL...]
#   writes OUTDIR/<kernel>.bin (flat multiboot v1 image, a.out kludge, loaded at 2 MiB) and
#   OUTDIR/<kernel>.elf (symbols) for every kernel, or only the KERNELs named (e.g. smp nmi).
#   Objects go to OUTDIR/obj/. Needs gcc and binutils.
set -euo pipefail

case "${1:-}" in
    -h|--help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
    "") sed -n '2,8s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
shift
exec make --no-print-directory -C "$here" OUT="$out" -j"$(nproc 2>/dev/null || echo 2)" "$@"
