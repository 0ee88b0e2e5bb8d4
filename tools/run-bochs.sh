#!/usr/bin/env bash
# `make run`: boots the freshly built hypervisor in Bochs with the serial console (XMHF's lines, then
# the guest's) on this terminal. Disk 0: a GRUB disk with XMHF's menu entry; disk 1: the guest's disk.
# Environment:
#   GUEST=linux (default: Debian's kernel with a busybox initramfs, tests/linux/build.sh)
#        |bootsector (the test boot sector: prints a line and powers off)
#   SMP (CPUs, default 2), MEM (MiB, default 256), TIMEOUT (s, default 900),
#   ON_READY (guest|halt|poweroff, default guest), PLATFORM (bochs|qemu, default bochs),
#   CMDLINE_EXTRA (more words for XMHF's command line, e.g. nested=0; apic=trap for a guest that
#   re-INITs its APs after boot, which Bochs 2.7 cannot run with the default: docs/decisions.md)
set -euo pipefail
cd "$(dirname "$0")/.."

GUEST=${GUEST:-linux} SMP=${SMP:-2} MEM=${MEM:-256} TIMEOUT=${TIMEOUT:-900} ON_READY=${ON_READY:-guest}
PLATFORM=${PLATFORM:-bochs} CMDLINE_EXTRA=${CMDLINE_EXTRA:-}
out=build/run
mkdir -p "$out" build/guests

extra=()
case "$GUEST" in
linux)
	echo "run: preparing the Linux guest disk (first time: downloads Debian's kernel package)" >&2
	tests/linux/build.sh build/linux >/dev/null
	guest_disk=build/linux/linux-disk.img
	# Bochs's CPU model lacks MSRs Linux reads without a fallback (tests/linux/msrs.def).
	[ "$PLATFORM" = bochs ] && extra=(--bochsrc-extra "cpu: msrs=\"$PWD/tests/linux/msrs.def\"" --snapshot)
	;;
bootsector)
	tests/guests/bootsector/build.sh build/guests >/dev/null
	tools/mkrawdisk.sh -o "$out/guest.img" -b build/guests/bootsector.bin >/dev/null
	guest_disk=$out/guest.img
	;;
*)
	echo "run: unknown GUEST '$GUEST' (linux or bootsector)" >&2
	exit 2
	;;
esac

cat > "$out/grub.cfg" <<CFG
set timeout=0
set default=0
menuentry "XMHF" {
	multiboot /boot/init-x86-amd64.bin serial=115200,8n1,0x3f8 boot_drive=0x81 on_ready=$ON_READY on_stop=poweroff $CMDLINE_EXTRA
	module /boot/hypervisor-x86-amd64.bin.gz
	module --nounzip (hd1)+1
}
CFG
tools/mkgrubdisk.sh -o "$out/disk0.img" -c "$out/grub.cfg" \
	-f init-x86-amd64.bin:/boot/init-x86-amd64.bin \
	-f hypervisor-x86-amd64.bin.gz:/boot/hypervisor-x86-amd64.bin.gz >/dev/null

echo "run: booting XMHF and the $GUEST guest in $PLATFORM with $SMP CPUs and $MEM MiB (logs in $out/)" >&2
if [ "$PLATFORM" = bochs ]; then
	exec tools/bios-bochs.sh -smp "$SMP" -m "$MEM" --timeout "$TIMEOUT" -d "$out/disk0.img" -d "$guest_disk" \
		--log "$out/bochs.log" "${extra[@]}"
fi
exec tools/bios-qemu.sh -smp "$SMP" -m "$MEM" --timeout "$TIMEOUT" -d "$out/disk0.img" -d "$guest_disk" "${extra[@]}"
