#!/bin/bash
# Build the 512-byte test boot sector (tests/guests/bootsector/bootsector.S).
#
# Usage: tests/guests/bootsector/build.sh OUTDIR
#   writes OUTDIR/bootsector.bin (512 bytes, ends in 0x55 0xAA).
# Needs GNU as and ld (binutils) only.
set -euo pipefail

usage() {
    sed -n '2,6s/^# \{0,1\}//p' "$0"
}

case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    "") usage >&2; exit 2 ;;
esac
[ $# -eq 1 ] || { usage >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
outdir=$1
mkdir -p "$outdir"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bootsector.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

as --32 -o "$tmp/bootsector.o" "$here/bootsector.S"
ld -m elf_i386 -Ttext 0x7c00 -e _start --oformat binary -o "$tmp/bootsector.bin" "$tmp/bootsector.o"

size=$(stat -c %s "$tmp/bootsector.bin")
if [ "$size" -ne 512 ]; then
    echo "build.sh: bootsector.bin is $size bytes, expected 512" >&2
    exit 1
fi
sig=$(od -An -tx1 -j510 -N2 "$tmp/bootsector.bin" | tr -d ' \n')
if [ "$sig" != "55aa" ]; then
    echo "build.sh: bootsector.bin lacks the 0x55AA signature (got $sig)" >&2
    exit 1
fi
chmod 644 "$tmp/bootsector.bin"
mv "$tmp/bootsector.bin" "$outdir/bootsector.bin"
echo "built $outdir/bootsector.bin"
