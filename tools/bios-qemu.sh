#!/bin/bash
# bios-qemu.sh - boot BIOS disk images in QEMU (i440fx "pc" machine, SeaBIOS; OVMF with --uefi), unattended.
#
# Usage: tools/bios-qemu.sh -d IMG [-d IMG]... [options]
#   -d IMG                 raw disk image (repeatable, up to 4): IDE disks in
#                          order ide0-master, ide0-slave, ide1-master, ide1-slave
#                          (BIOS drives 0x80, 0x81, ...); the first is booted. A
#                          name ending in .iso is attached as a CD-ROM instead.
#   -smp N                 number of CPUs (default 1)
#   -m MEM                 guest RAM in MiB (default 256)
#   --cpu MODEL            QEMU CPU model (default: host with KVM, max without)
#   --kvm | --no-kvm       force KVM / TCG. Default: KVM when /dev/kvm is usable
#                          and the host CPU has vmx, else TCG with a warning
#                          (TCG has no VMX: only boot-path checks work there)
#   --timeout S            stop QEMU after S seconds of wall time (default 120)
#   --serial FILE          write COM1 to FILE (default: COM1 on stdout)
#   --serial2 FILE         write COM2 (0x2f8) to FILE
#   --e9 FILE              write bytes sent to I/O port 0xE9 (isa-debugcon) to FILE
#   --log FILE             QEMU's -D log (default: in the temporary directory)
#   --stop-on-triple-fault do not reboot on a guest reset/triple fault: QEMU runs
#                          with -no-reboot -no-shutdown -d cpu_reset -D LOG, the
#                          script sees the machine stop, prints `info registers
#                          -a` (state at the fault, also under KVM) on stderr
#                          and ends QEMU
#   --gdb PORT             gdb stub on 127.0.0.1:PORT (loopback only), CPU halted
#                          at reset (-S) until gdb continues; mind --timeout
#   --snapshot             do not write to the disk images (QEMU -snapshot)
#   --uefi                 boot UEFI firmware (OVMF, Debian package ovmf) instead of
#                          SeaBIOS: OVMF_CODE_4M.fd read-only and a private copy of
#                          OVMF_VARS_4M.fd as pflash (override with OVMF_CODE and
#                          OVMF_VARS in the environment); the first disk should be
#                          an ESP disk (tools/mkespdisk.sh). The XMHF EFI loader
#                          starts the hypervisor only with VMX, i.e. under --kvm on
#                          an Intel VMX host; under TCG only dryrun=1 runs through
#   --qemu-extra ARG       append ARG to QEMU's command line (repeatable)
#   --keep                 keep the temporary directory
#   -h, --help             this help
#
# Guest power-off: write the byte 0x31 to I/O port 0xF4. QEMU runs with
# `-device isa-debug-exit,iobase=0xf4,iosize=0x04`, which makes QEMU exit with
# status (value << 1) | 1, i.e. 99 for 0x31; the script turns 99 into 0.
#
# Exit status: 0 = guest powered off (0x31 to port 0xF4), or QEMU ended by
# itself with status 0 (e.g. ACPI power-off, or the stop after a triple fault
# with --stop-on-triple-fault); 124 = timeout; 2 = usage error; any other
# status is QEMU's own: an odd one from a different port 0xF4 value V is
# (V << 1) | 1 (reported on stderr), 1 is also QEMU's generic error.
# A line "qemu: ended: ..." on stderr gives the reason, "qemu: N.NNNs wall" the time.
#
# Other fixed settings: -machine pc (i440fx, SeaBIOS or with --uefi OVMF), -display none,
# -monitor none (or a private pipe for --stop-on-triple-fault), -nic none.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
warn() { echo "$prog: warning: $*" >&2; }
usage_error() { echo "$prog: $* (see -h)" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; }

QEMU=${QEMU:-qemu-system-x86_64}

smp=1 mem=256 cpu='' kvm=auto timeout_s=120
serial='' serial2='' e9='' log='' stop_tf=0 gdb='' snapshot=0 keep=0 uefi=0
disks=() extra=()

need_arg() { [ $# -ge 2 ] || usage_error "option $1 needs an argument"; }
while [ $# -gt 0 ]; do
    case $1 in
        -smp|--smp) need_arg "$@"; smp=$2; shift 2 ;;
        -m) need_arg "$@"; mem=$2; shift 2 ;;
        -d) need_arg "$@"; disks+=("$2"); shift 2 ;;
        --cpu) need_arg "$@"; cpu=$2; shift 2 ;;
        --kvm) kvm=yes; shift ;;
        --no-kvm) kvm=no; shift ;;
        --timeout) need_arg "$@"; timeout_s=$2; shift 2 ;;
        --serial) need_arg "$@"; serial=$2; shift 2 ;;
        --serial2) need_arg "$@"; serial2=$2; shift 2 ;;
        --e9) need_arg "$@"; e9=$2; shift 2 ;;
        --log) need_arg "$@"; log=$2; shift 2 ;;
        --stop-on-triple-fault) stop_tf=1; shift ;;
        --gdb) need_arg "$@"; gdb=$2; shift 2 ;;
        --snapshot) snapshot=1; shift ;;
        --uefi) uefi=1; shift ;;
        --qemu-extra) need_arg "$@"; extra+=("$2"); shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage_error "unknown argument '$1'" ;;
    esac
done

[[ $smp =~ ^[1-9][0-9]*$ ]] || usage_error "-smp wants a positive number, got '$smp'"
[[ $mem =~ ^[1-9][0-9]*$ ]] || usage_error "-m wants MiB as a positive number, got '$mem'"
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout wants whole seconds, got '$timeout_s'"
[ -z "$gdb" ] || { [[ $gdb =~ ^[1-9][0-9]*$ ]] && [ "$gdb" -le 65535 ]; } ||
    usage_error "--gdb wants a TCP port number, got '$gdb'"
[ ${#disks[@]} -ge 1 ] || usage_error "at least one -d IMG is needed"
[ ${#disks[@]} -le 4 ] || usage_error "at most four -d IMG (two IDE channels)"
command -v "$QEMU" >/dev/null 2>&1 || die "$QEMU not found (apt-get install qemu-system-x86)"

# --- accelerator -------------------------------------------------------------
kvm_usable() { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }
host_vmx() { grep -qw vmx /proc/cpuinfo 2>/dev/null; }
case $kvm in
    auto)
        if kvm_usable && host_vmx; then kvm=yes; else kvm=no
            if [ -e /dev/kvm ] && ! kvm_usable; then
                why="no read/write access to /dev/kvm (join group kvm)"
            elif [ -e /dev/kvm ]; then
                why="the host CPU has no vmx"
            else
                why="no /dev/kvm"
            fi
            warn "using TCG ($why): TCG emulates no VMX, so only boot-path checks work"
        fi ;;
    yes)
        kvm_usable || die "--kvm: /dev/kvm is missing or not readable and writable"
        host_vmx || warn "the host CPU has no vmx: the guest will not see VMX" ;;
    no)
        warn "TCG: no VMX in the guest, only boot-path checks work" ;;
esac
if [ "$kvm" = yes ]; then
    accel=kvm; : "${cpu:=host}"
    nested=$(cat /sys/module/kvm_intel/parameters/nested 2>/dev/null || echo "?")
    case $nested in Y|y|1) ;; *) warn "kvm_intel nested=$nested: the guest may not see VMX" ;; esac
else
    accel=tcg; : "${cpu:=max}"
fi

# --- temporary directory and cleanup -------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bios-qemu.XXXXXX")
qpid=''
# shellcheck disable=SC2317  # invoked through trap
cleanup() {
    local rc=$?
    if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
        # qpid is timeout(1): it passes TERM on to QEMU and KILLs it 2 s later.
        kill -TERM "$qpid" 2>/dev/null || true
        wait "$qpid" 2>/dev/null || true
    fi
    exec 7>&- 8>&- 2>/dev/null || true
    if [ "$keep" = 1 ]; then echo "$prog: kept $tmp" >&2; else rm -rf "$tmp"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

abspath() { local d; d=$(cd "$(dirname "$1")" && pwd) || return 1; echo "$d/${1##*/}"; }
# QEMU option values use ',' as separator (escaped as ',,').
qesc() { printf '%s' "${1//,/,,}"; }

# --- command line ----------------------------------------------------------------------
# shellcheck disable=SC2054  # the commas belong to QEMU option values
args=(-machine pc -accel "$accel" -cpu "$cpu" -smp "$smp" -m "$mem"
      -display none -nic none
      -device isa-debug-exit,iobase=0xf4,iosize=0x04)
[ -n "$log" ] || log=$tmp/qemu.log
log=$(abspath "$log") || die "bad --log path"
: >"$log" || die "cannot write $log"

if [ -n "$serial" ]; then
    serial=$(abspath "$serial") || die "bad --serial path"
    : >"$serial" || die "cannot write $serial"
    args+=(-serial "file:$serial")
else
    args+=(-serial stdio)
fi
if [ -n "$serial2" ]; then
    serial2=$(abspath "$serial2") || die "bad --serial2 path"
    : >"$serial2" || die "cannot write $serial2"
    args+=(-serial "file:$serial2")
fi
if [ -n "$e9" ]; then
    e9=$(abspath "$e9") || die "bad --e9 path"
    : >"$e9" || die "cannot write $e9"
    # shellcheck disable=SC2054
    args+=(-chardev "file,id=e9,path=$(qesc "$e9")" -device isa-debugcon,iobase=0xe9,chardev=e9)
fi

if [ "$uefi" = 1 ]; then
    ovmf_code=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
    ovmf_vars=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
    if [ ! -f "$ovmf_code" ] || [ ! -f "$ovmf_vars" ]; then
        die "no OVMF firmware at $ovmf_code / $ovmf_vars (apt-get install ovmf)"
    fi
    cp "$ovmf_vars" "$tmp/OVMF_VARS.fd"
    # shellcheck disable=SC2054
    args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$(qesc "$ovmf_code")"
           -drive "if=pflash,format=raw,unit=1,file=$(qesc "$tmp/OVMF_VARS.fd")")
fi

boot=c
for i in "${!disks[@]}"; do
    d=${disks[$i]}
    [ -f "$d" ] || die "disk image not found: $d"
    d=$(abspath "$d")
    case $d in
        *.iso|*.ISO)
            args+=(-drive "file=$(qesc "$d"),format=raw,if=ide,index=$i,media=cdrom")
            [ "$i" = 0 ] && boot=d ;;
        *)
            [ "$snapshot" = 1 ] || [ -w "$d" ] || die "disk image not writable (use --snapshot): $d"
            args+=(-drive "file=$(qesc "$d"),format=raw,if=ide,index=$i,media=disk") ;;
    esac
done
args+=(-boot "order=$boot")
[ "$snapshot" = 1 ] && args+=(-snapshot)

if [ "$stop_tf" = 1 ]; then
    mkfifo "$tmp/mon.in" "$tmp/mon.out"
    args+=(-no-reboot -no-shutdown -d cpu_reset -D "$log" -monitor "pipe:$tmp/mon")
else
    args+=(-monitor none)
fi
if [ -n "$gdb" ]; then
    args+=(-gdb "tcp:127.0.0.1:$gdb" -S)
    echo "$prog: CPU halted; gdb: target remote 127.0.0.1:$gdb" >&2
fi
args+=(${extra[@]+"${extra[@]}"})

# --- run -----------------------------------------------------------------------------------
if [ "$stop_tf" = 1 ]; then
    # Read-write opens of the FIFOs never block; QEMU opens them the same way.
    exec 7<>"$tmp/mon.in" 8<>"$tmp/mon.out"
fi
start_ns=$(date +%s%N)
timeout --foreground -k 2 "$timeout_s" "$QEMU" "${args[@]}" </dev/null &
qpid=$!

stopped=0
if [ "$stop_tf" = 1 ]; then
    # Poll the monitor: with -no-reboot -no-shutdown a reset or shutdown
    # request leaves the machine "paused (shutdown)".
    while kill -0 "$qpid" 2>/dev/null; do
        sleep 0.2
        echo "info status" >&7 2>/dev/null || break
        out=
        while IFS= read -r -t 0.2 -u 8 line; do out+=$line$'\n'; done
        if [[ $out == *"paused (shutdown)"* ]]; then
            stopped=1
            echo "info registers -a" >&7
            regs=
            while IFS= read -r -t 0.5 -u 8 line; do regs+=$line$'\n'; done
            echo quit >&7
            break
        fi
    done
fi

set +e
wait "$qpid"
status=$?
set -e
qpid=
end_ns=$(date +%s%N)
ms=$(( (end_ns - start_ns) / 1000000 ))
secs=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))

result=$status
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    echo "qemu: ended: timeout after ${timeout_s}s" >&2
    result=124
elif [ "$stopped" = 1 ]; then
    if grep -q '^Triple fault' "$log"; then what="triple fault"; else what="guest reset or shutdown request"; fi
    echo "qemu: ended: $what, machine stopped (-no-reboot -no-shutdown)" >&2
    echo "qemu: register dump (info registers -a):" >&2
    printf '%s' "$regs" | tr -d '\r' | sed -n '/^CPU#[0-9]/,$p' | grep -v '^(qemu)' >&2 || true
    result=0
elif [ "$status" = 99 ]; then
    echo "qemu: ended: guest power-off (0x31 to port 0xf4)" >&2
    result=0
elif [ "$status" = 0 ]; then
    if [ "$stop_tf" = 1 ] && grep -q '^Triple fault' "$log"; then
        echo "qemu: ended: triple fault" >&2
    else
        echo "qemu: ended: QEMU exited by itself (status 0)" >&2
    fi
elif [ $((status % 2)) = 1 ] && [ "$status" -lt 128 ] && [ "$status" != 1 ]; then
    printf 'qemu: ended: guest wrote 0x%02x to port 0xf4 (QEMU status %d)\n' $((status >> 1)) "$status" >&2
else
    echo "qemu: ended: QEMU status $status" >&2
fi
echo "qemu: ${secs}s wall" >&2
exit "$result"
