#!/bin/bash
# mkespdisk.sh - build a UEFI-bootable disk image holding GRUB EFI (x86_64-efi), no root needed.
#
# Usage: tools/mkespdisk.sh -o OUT.img -c grub.cfg [-f SRC:DEST]... [-s SIZE_MiB] [-h]
#   -o OUT.img     image to write (replaced atomically)
#   -c grub.cfg    GRUB configuration, installed as /EFI/BOOT/grub.cfg
#   -f SRC:DEST    copy file SRC to the absolute path DEST inside the ESP, e.g.
#                  -f init-x86-amd64.efi:/EFI/xmhf/init-x86-amd64.efi (repeatable;
#                  DEST may use [A-Za-z0-9._+/-] only)
#   -s SIZE_MiB    size of the EFI system partition (default 32)
#   -h             this help
#
# Layout: LBA 0 = MBR with one partition of type 0xEF (EFI system partition) from
# LBA 2048, holding a FAT16 file system (mtools) with GRUB at the removable-media
# path /EFI/BOOT/BOOTX64.EFI, which firmware boots without a Boot#### variable.
# GRUB is built by grub-mkimage with its modules inside, prefix /EFI/BOOT on the
# partition it was loaded from.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; }

out='' cfg='' size=32 files=()
while getopts "o:c:f:s:h" opt; do
    case $opt in
        o) out=$OPTARG ;;
        c) cfg=$OPTARG ;;
        f) files+=("$OPTARG") ;;
        s) size=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
if [ -z "$out" ] || [ -z "$cfg" ]; then usage >&2; exit 2; fi
[ -f "$cfg" ] || die "no grub.cfg: $cfg"
if ! [[ $size =~ ^[1-9][0-9]*$ ]] || [ "$size" -lt 16 ]; then die "-s wants whole MiB, at least 16"; fi
for t in grub-mkimage mformat mcopy mmd; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install grub-common mtools)"
done
[ -d /usr/lib/grub/x86_64-efi ] || die "no /usr/lib/grub/x86_64-efi (apt-get install grub-efi-amd64-bin)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

grub-mkimage -O x86_64-efi -p /EFI/BOOT -o "$tmp/BOOTX64.EFI" \
    part_msdos part_gpt fat normal chain boot echo configfile test sleep halt reboot search \
    multiboot multiboot2 gzio

fat=$tmp/fat.img
sectors=$((size * 2048))
truncate -s "${size}M" "$fat"
mformat -i "$fat" -T "$sectors" -h 64 -s 32 -v ESP ::
mmd -i "$fat" ::/EFI ::/EFI/BOOT
mcopy -i "$fat" "$tmp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$fat" "$cfg" ::/EFI/BOOT/grub.cfg
for f in ${files[@]+"${files[@]}"}; do
    src=${f%%:*} dest=${f#*:}
    [ -f "$src" ] || die "no such file: $src"
    [[ $dest =~ ^/[A-Za-z0-9._+/-]+$ ]] || die "bad destination path: $dest"
    dir=${dest%/*}
    path=''
    IFS=/ read -ra parts <<<"${dir#/}"
    for p in "${parts[@]}"; do
        path+=/$p
        mmd -i "$fat" "::$path" 2>/dev/null || true
    done
    mcopy -o -i "$fat" "$src" "::$dest"
done

# MBR: one partition, type 0xEF, LBA 2048.., no boot code (UEFI ignores it).
python3 - "$tmp/disk.img" "$fat" "$sectors" <<'PY'
import struct, sys
disk, fat, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
mbr = bytearray(512)
mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", 0xEF, b"\xfe\xff\xff", 2048, n)
mbr[440:444] = struct.pack("<I", 0x58484d46)  # disk signature "FMHX"
mbr[510:512] = b"\x55\xaa"
with open(disk, "wb") as o:
    o.write(mbr)
    o.write(bytes(2047 * 512))
    with open(fat, "rb") as f:
        o.write(f.read())
PY
mv "$tmp/disk.img" "$out"
