#!/usr/bin/env bash
# `make run`: boots the freshly built hypervisor in Bochs with its serial console on this terminal.
# Disk 0: a GRUB disk with XMHF's menu entry; disk 1: the guest disk (the test boot sector).
# Environment: SMP (CPUs, default 2), MEM (MiB, default 256), TIMEOUT (s, default 300),
#              ON_READY (poweroff|halt, default poweroff), PLATFORM (bochs|qemu, default bochs).
set -euo pipefail
cd "$(dirname "$0")/.."

SMP=${SMP:-2} MEM=${MEM:-256} TIMEOUT=${TIMEOUT:-300} ON_READY=${ON_READY:-poweroff} PLATFORM=${PLATFORM:-bochs}
out=build/run
mkdir -p "$out" build/guests

tests/guests/bootsector/build.sh build/guests >/dev/null
tools/mkrawdisk.sh -o "$out/guest.img" -b build/guests/bootsector.bin >/dev/null
cat > "$out/grub.cfg" <<CFG
set timeout=0
set default=0
menuentry "XMHF" {
	multiboot /boot/init-x86-amd64.bin serial=115200,8n1,0x3f8 boot_drive=0x81 on_ready=$ON_READY
	module /boot/hypervisor-x86-amd64.bin.gz
	module --nounzip (hd1)+1
}
CFG
tools/mkgrubdisk.sh -o "$out/disk0.img" -c "$out/grub.cfg" \
	-f init-x86-amd64.bin:/boot/init-x86-amd64.bin \
	-f hypervisor-x86-amd64.bin.gz:/boot/hypervisor-x86-amd64.bin.gz >/dev/null

echo "run: booting XMHF in $PLATFORM with $SMP CPUs and $MEM MiB (serial below; logs in $out/)" >&2
exec "tools/bios-$PLATFORM.sh" -smp "$SMP" -m "$MEM" --timeout "$TIMEOUT" -d "$out/disk0.img" -d "$out/guest.img" \
	$([ "$PLATFORM" = bochs ] && echo --log "$out/bochs.log")
