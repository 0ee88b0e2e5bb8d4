#!/bin/bash
# mkrawdisk.sh - make a raw hard-disk image whose sector 0 is a given boot sector.
#
# Usage: tools/mkrawdisk.sh -o OUT.img -b BOOTSECTOR.bin [-s SIZE_MiB]
#   -o OUT.img         image to write (replaced atomically)
#   -b BOOTSECTOR.bin  boot code written from LBA 0; must carry 0x55 0xAA at
#                      offset 510. Files longer than 512 bytes are written to
#                      the following sectors too (multi-sector guests).
#   -s SIZE_MiB        approximate size (default 4); rounded up to whole
#                      cylinders of 16 heads x 63 sectors (516096 bytes) so
#                      Bochs guesses the CHS geometry from the file size.
#   -h                 this help
# The rest of the disk is zero; no partition table is written. The output is
# a pure function of the inputs (byte-identical on every run).
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; }

out='' boot='' size_mib=4
while getopts ":o:b:s:h" opt; do
    case $opt in
        o) out=$OPTARG ;;
        b) boot=$OPTARG ;;
        s) size_mib=$OPTARG ;;
        h) usage; exit 0 ;;
        :) die "option -$OPTARG needs an argument (see -h)" ;;
        *) die "unknown option -$OPTARG (see -h)" ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || die "unexpected argument: $1 (see -h)"
[ -n "$out" ] || die "missing -o OUT.img (see -h)"
[ -n "$boot" ] || die "missing -b BOOTSECTOR.bin (see -h)"
[ -f "$boot" ] || die "boot sector not found: $boot"
[[ $size_mib =~ ^[1-9][0-9]*$ ]] || die "-s wants a positive whole number of MiB, got '$size_mib'"

bsize=$(stat -L -c %s "$boot")
[ "$bsize" -ge 512 ] || die "$boot is $bsize bytes; a boot sector needs 512"
sig=$(od -An -tx1 -j510 -N2 "$boot" | tr -d ' \n')
[ "$sig" = 55aa ] || die "$boot has no 0x55AA signature at offset 510 (found '$sig')"

cyl=$((16 * 63))                                  # sectors per cylinder
sectors=$(( (size_mib * 2048 + cyl - 1) / cyl * cyl ))
[ "$bsize" -le $((sectors * 512)) ] || die "$boot ($bsize bytes) does not fit in a $size_mib MiB disk"

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
rm -f "$tmp"
truncate -s $((sectors * 512)) "$tmp"
dd if="$boot" of="$tmp" conv=notrunc status=none
mv -f "$tmp" "$out"
trap - EXIT
echo "$prog: wrote $out ($sectors sectors = $((sectors / cyl)) cylinders x 16 heads x 63 sectors)"
