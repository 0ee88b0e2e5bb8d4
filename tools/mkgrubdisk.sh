#!/bin/bash
# mkgrubdisk.sh - build a BIOS-bootable GRUB 2 (i386-pc) hard-disk image, no root needed.
#
# Usage: tools/mkgrubdisk.sh -o OUT.img -c grub.cfg [-f SRC:DEST]... [-s SIZE_MiB]
#                            [-m MODULE]... [-S] [-h]
#   -o OUT.img     image to write (replaced atomically)
#   -c grub.cfg    GRUB configuration, installed as /boot/grub/grub.cfg
#   -f SRC:DEST    copy file SRC to the absolute path DEST inside the file
#                  system, e.g. -f build/init-x86-amd64.bin:/boot/init-x86-amd64.bin
#                  (repeatable; DEST may use [A-Za-z0-9._+/-] only)
#   -s SIZE_MiB    approximate disk size (default 16), rounded up to whole
#                  cylinders of 16 heads x 63 sectors so Bochs guesses the geometry
#   -m MODULE      extra GRUB module to build into core.img (repeatable)
#   -S             also send GRUB's own console to COM1 (115200 8N1) from the
#                  start (embedded early config), so GRUB errors show up on
#                  serial; without it GRUB talks to VGA only unless grub.cfg
#                  says otherwise
#   -h             this help
#
# Layout: LBA 0 = MBR (boot.img code, one active type-0x83 partition),
# LBA 1.. = core.img (diskboot.img + kernel + modules, must end before LBA
# 2048), LBA 2048.. = ext2 file system (mkfs.ext2 -d) with /boot/grub/grub.cfg.
# All modules are inside core.img (none are installed in the file system),
# so `insmod` of anything else fails: add it with -m.
# The prefix is (,msdos1)/boot/grub, i.e. partition 1 of the BIOS boot drive.
#
# Deterministic: fixed UUID and hash seed, all inode and superblock times set
# to SOURCE_DATE_EPOCH (default 0), uid/gid 0, modes 0755/0644; the same
# inputs give a byte-identical image.
#
# Requires: grub-pc-bin (grub-mkimage, /usr/lib/grub/i386-pc), e2fsprogs
# (mkfs.ext2, debugfs, dumpe2fs), coreutils.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; }

GRUB_DIR=${GRUB_DIR:-/usr/lib/grub/i386-pc}
FS_UUID=5a1e0000-0b0e-4d15-8000-000000000001   # fixed: determinism
HASH_SEED=5a1e0000-0b0e-4d15-8000-000000000002
DISK_SIG=0x584d4858                            # "XHMX", MBR disk signature
EPOCH=${SOURCE_DATE_EPOCH:-0}

# Modules for multiboot(+module), multiboot2, linux/initrd, chainloader,
# serial console and the usual scripting commands.
MODULES=(biosdisk part_msdos ext2 normal configfile
         multiboot multiboot2 linux chain boot
         serial terminal echo test sleep halt reboot gzio
         minicmd cat ls search)

# e2fsprogs installs mkfs.ext2/debugfs/dumpe2fs in /sbin, which is not on a
# normal user's PATH on Debian.
PATH=$PATH:/usr/sbin:/sbin

out='' cfg='' size_mib=16 serial_console=0
files=()
while getopts ":o:c:f:s:m:Sh" opt; do
    case $opt in
        o) out=$OPTARG ;;
        c) cfg=$OPTARG ;;
        f) files+=("$OPTARG") ;;
        s) size_mib=$OPTARG ;;
        m) MODULES+=("$OPTARG") ;;
        S) serial_console=1 ;;
        h) usage; exit 0 ;;
        :) die "option -$OPTARG needs an argument (see -h)" ;;
        *) die "unknown option -$OPTARG (see -h)" ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || die "unexpected argument: $1 (see -h)"
[ -n "$out" ] || die "missing -o OUT.img (see -h)"
[ -n "$cfg" ] || die "missing -c grub.cfg (see -h)"
[ -f "$cfg" ] || die "grub.cfg not found: $cfg"
[[ $size_mib =~ ^[1-9][0-9]*$ ]] || die "-s wants a positive whole number of MiB, got '$size_mib'"
[[ $EPOCH =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be a number of seconds, got '$EPOCH'"
for tool in grub-mkimage mkfs.ext2 debugfs dumpe2fs od truncate; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (install grub-pc-bin / e2fsprogs)"
done

if [ ! -f "$GRUB_DIR/boot.img" ] || [ ! -f "$GRUB_DIR/diskboot.img" ]; then
    die "$GRUB_DIR/boot.img not found (install grub-pc-bin)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mkgrubdisk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- staging tree ----------------------------------------------------------
stage=$tmp/stage
mkdir -p "$stage/boot/grub"
cp "$cfg" "$stage/boot/grub/grub.cfg"
for spec in ${files[@]+"${files[@]}"}; do
    [[ $spec == *:* ]] || die "-f wants SRC:DEST, got '$spec'"
    src=${spec%:*} dest=${spec##*:}
    [ -f "$src" ] || die "-f $spec: source file not found: $src"
    [[ $dest =~ ^/[A-Za-z0-9._+/-]+$ && $dest != */ && $dest != *//* && $dest != */../* && $dest != */.. ]] ||
        die "-f $spec: DEST must be an absolute path of [A-Za-z0-9._+/-] characters"
    [ "$dest" != /boot/grub/grub.cfg ] || die "-f $spec: use -c for grub.cfg"
    [ ! -e "$stage$dest" ] || die "-f $spec: $dest given twice or clashes with a directory"
    mkdir -p "$(dirname "$stage$dest")"
    cp "$src" "$stage$dest"
done
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod 0644 {} +
find "$stage" -exec touch -h -d "@$EPOCH" {} +

# --- geometry ------------------------------------------------------------------
cyl=$((16 * 63))
total=$(( (size_mib * 2048 + cyl - 1) / cyl * cyl ))
part_start=2048
part_sectors=$((total - part_start))
[ "$part_sectors" -ge 4096 ] || die "-s $size_mib is too small (need at least 3 MiB)"

# --- ext2 file system ----------------------------------------------------------
fs=$tmp/fs.img
# 1 KiB blocks, 128-byte inodes: explicit so /etc/mke2fs.conf does not matter.
# (mke2fs warns that 128-byte inodes stop in 2038; irrelevant for a boot disk.)
if ! mkfs.ext2 -q -F -t ext2 -b 1024 -I 128 -m 0 -L grubdisk \
        -O ^metadata_csum,^64bit,^has_journal \
        -U "$FS_UUID" -E "hash_seed=$HASH_SEED" \
        -d "$stage" "$fs" "$((part_sectors / 2))" >"$tmp/mkfs.log" 2>&1; then
    cat "$tmp/mkfs.log" >&2
    die "mkfs.ext2 failed (files too big for -s $size_mib?)"
fi

# mke2fs 1.47.0 ignores SOURCE_DATE_EPOCH and copies ctime/uid/gid from the
# staging files: normalise every inode with debugfs (paths are validated above
# to need no quoting beyond "").
{
    echo "set_current_time @$EPOCH"
    while IFS= read -r p; do
        for f in atime mtime ctime; do echo "sif \"$p\" $f @$EPOCH"; done
        echo "sif \"$p\" uid 0"
        echo "sif \"$p\" gid 0"
    done < <(cd "$stage" && find . | LC_ALL=C sort | sed 's|^\.||; s|^$|/|')
    for ino in '<1>' '<7>' /lost+found; do     # bad-blocks, resize inode, lost+found
        for f in atime mtime ctime; do echo "sif $ino $f @$EPOCH"; done
    done
} >"$tmp/debugfs.cmds"
debugfs -w -f "$tmp/debugfs.cmds" "$fs" >"$tmp/debugfs.out" 2>"$tmp/debugfs.err" ||
    { cat "$tmp/debugfs.err" >&2; die "debugfs failed"; }
if grep -v -e '^debugfs [0-9]' "$tmp/debugfs.err" | grep -q .; then
    cat "$tmp/debugfs.err" >&2
    die "debugfs reported errors while normalising timestamps"
fi

le() {  # le VALUE NBYTES -> printf escape string, little endian
    local v=$1 n=$2 s='' i
    for ((i = 0; i < n; i++)); do s+=$(printf '\\x%02x' $(( (v >> (8 * i)) & 255 ))); done
    printf '%s' "$s"
}
poke() {  # poke FILE OFFSET ESCAPES
    # shellcheck disable=SC2059
    printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# Superblock times (s_mtime 0x2c, s_wtime 0x30, s_lastcheck 0x40,
# s_mkfs_time 0x108) in the primary and every backup; ext2 has no checksum.
bs=$(dumpe2fs -h "$fs" 2>/dev/null | sed -n 's/^Block size: *//p')
[[ $bs =~ ^[0-9]+$ ]] || die "cannot read the block size back from dumpe2fs"
ts=$(le "$EPOCH" 4)
for blk in $(dumpe2fs "$fs" 2>/dev/null | sed -n 's/.*[Ss]uperblock at \([0-9]*\).*/\1/p'); do
    if [ "$blk" -le 1 ]; then sb=1024; else sb=$((blk * bs)); fi
    for off in 0x2c 0x30 0x40 0x108; do poke "$fs" $((sb + off)) "$ts"; done
done

# --- core.img --------------------------------------------------------------------
mkimage_args=(-O i386-pc -d "$GRUB_DIR" -o "$tmp/core.img" -p '(,msdos1)/boot/grub')
if [ "$serial_console" = 1 ]; then
    cat >"$tmp/early.cfg" <<'EOS'
serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input serial console
terminal_output serial console
EOS
    mkimage_args+=(-c "$tmp/early.cfg")
fi
grub-mkimage "${mkimage_args[@]}" "${MODULES[@]}" 2>"$tmp/mkimage.err" ||
    { cat "$tmp/mkimage.err" >&2; die "grub-mkimage failed"; }
core_bytes=$(stat -c %s "$tmp/core.img")
core_sectors=$(( (core_bytes + 511) / 512 ))
[ $((1 + core_sectors)) -le "$part_start" ] ||
    die "core.img is $core_bytes bytes and does not fit between LBA 1 and $part_start"
# grub-mkimage's diskboot.img blocklist assumes the rest of core.img follows
# contiguously from LBA 2; check it rather than trust it.
bl=$(od -An -tu4 -j $((512 - 12)) -N 8 "$tmp/core.img" | tr -s ' ')
read -r bl_start bl_hi <<<"$bl"
bl_len=$(od -An -tu2 -j $((512 - 4)) -N 2 "$tmp/core.img" | tr -d ' ')
if [ "$bl_start" != 2 ] || [ "$bl_hi" != 0 ] || [ "$bl_len" != $((core_sectors - 1)) ]; then
    die "unexpected diskboot blocklist in core.img (start=$bl_start/$bl_hi len=$bl_len, want 2/0 len $((core_sectors - 1)))"
fi

# --- assemble the disk -------------------------------------------------------------
img="$out.tmp.$$"
trap 'rm -rf "$tmp"; rm -f "$img"' EXIT
rm -f "$img"
truncate -s $((total * 512)) "$img"

# MBR boot code: boot.img bytes 0..439. Its defaults already fit this layout:
# kernel sector (0x5c, 8 bytes) = 1, boot drive (0x64) = 0xff = use DL.
dd if="$GRUB_DIR/boot.img" of="$img" bs=440 count=1 conv=notrunc status=none
poke "$img" $((0x5c)) "$(le 1 8)"
poke "$img" $((0x64)) '\xff'
# As grub-bios-setup does for hard disks: nop out the "trust DL only if it
# looks like a hard disk" jump at 0x66 so a BIOS passing DL=0/1 still works.
poke "$img" $((0x66)) '\x90\x90'

chs() {  # chs LBA -> 3 escaped bytes (head, sector|cyl_hi, cyl_lo), 16x63 geometry
    local lba=$1 c h s
    c=$((lba / cyl)); h=$(( (lba / 63) % 16 )); s=$(( lba % 63 + 1 ))
    if [ "$c" -gt 1023 ]; then c=1023 h=15 s=63; fi
    printf '\\x%02x\\x%02x\\x%02x' "$h" $(( s | ((c >> 8) << 6) )) $(( c & 255 ))
}
entry="\\x80$(chs $part_start)\\x83$(chs $((total - 1)))$(le $part_start 4)$(le $part_sectors 4)"
poke "$img" $((0x1b8)) "$(le $DISK_SIG 4)\\x00\\x00"
poke "$img" $((0x1be)) "$entry"
poke "$img" $((0x1fe)) '\x55\xaa'

dd if="$tmp/core.img" of="$img" bs=512 seek=1 conv=notrunc status=none
dd if="$fs" of="$img" bs=512 seek=$part_start conv=notrunc status=none

mv -f "$img" "$out"
echo "$prog: wrote $out ($total sectors = $((total / cyl)) cylinders x 16 x 63;" \
     "core.img $core_sectors sectors; ext2 at LBA $part_start, $part_sectors sectors)"
