#!/bin/bash
# bios-bochs.sh - boot BIOS disk images in Bochs 2.7, unattended.
#
# Usage: tools/bios-bochs.sh -d IMG [-d IMG]... [options]
#   -d IMG                 disk image (repeatable, up to 4): first = ata0-master,
#                          second = ata0-slave, third/fourth = ata1-master/slave.
#                          Bochs boots from the first. Flat raw images; a size of
#                          whole 16x63-sector cylinders lets Bochs guess the CHS
#                          geometry. A name ending in .iso is attached as a CD-ROM.
#   -smp N                 number of CPUs (default 1)
#   -m MEM                 guest RAM in MiB (default 256; above 2048 Bochs is given
#                          "memory: guest=MEM, host=2048")
#   --cpu MODEL            Bochs CPU model (default corei7_skylake_x, which has VMX)
#   --timeout S            kill Bochs (SIGKILL) after S seconds of wall time (default 120)
#   --ips N                emulated instructions per emulated second (default 4000000;
#                          low values make BIOS/GRUB timed waits cheap)
#   --serial FILE          write COM1 to FILE; default: COM1 is streamed to stdout
#   --serial2 FILE         enable COM2 (0x2f8) and write it to FILE
#   --e9 FILE              write the bytes of the port 0xE9 hack to FILE (Bochs prints
#                          them on its stdout; the script strips its banner and
#                          debugger lines from that copy)
#   --log FILE             bochs.log location (default: next to --serial FILE as
#                          FILE.bochs.log, else in the temporary directory); Bochs's
#                          own stdout/stderr and the VGA screen go next to it
#                          (NAME.stdout, NAME.stderr, NAME.vga for bochs.log = NAME.log)
#   --stop-on-triple-fault reset_on_triple_fault=0: a triple fault ends Bochs with a
#                          PANIC; the register dump from bochs.log goes to stderr
#   --bochsrc-extra LINE   append LINE to the generated bochsrc (repeatable)
#   --snapshot             run on copies of the disk images (in the temporary
#                          directory): the originals stay untouched and several
#                          runs may share one image
#   --keep                 keep the temporary directory (bochsrc, cmds, logs)
#   --debugger-cmds FILE   Bochs debugger commands to run instead of `c` (e.g. a
#                          time breakpoint and a trace: tools/nested-profile.py)
#   -h, --help             this help
#
# Exit status: 0 when Bochs ends by itself (guest power-off through port 0x8900,
# a PANIC such as a triple fault, or any other exit after the guest started;
# the reason is printed on stderr as "bochs: ended: ..."), 124 on timeout,
# 2 on usage errors, 1 on other errors (including Bochs refusing its
# configuration or an image before executing the first instruction).
# Judge a test by its serial output, not by this status alone.
# On stderr at the end: "bochs: N ticks" (instructions executed, from bochs.log).
#
# Guest power-off: write the bytes of "Shutdown" to I/O port 0x8900.
#
# Notes:
#  * Debian's Bochs has the internal debugger compiled in; it is run with
#    `-q -f bochsrc -rc cmds </dev/null` where cmds holds `c`.
#  * The term display (package bochs-term) draws the VGA text screen with curses
#    on a pseudo-terminal it opens itself ("Bochs connected to screen
#    /dev/pts/N"); nothing reads that pty, so the script drains it into
#    NAME.vga next to the log (otherwise a guest that draws a lot on VGA would
#    fill the pty's buffer, about 64 KiB, and Bochs would block forever). TERM is forced to vt100 for Bochs because
#    curses refuses to start without a usable TERM.
#  * Bochs ignores SIGTERM; only the Bochs started here is ever killed (SIGKILL
#    via timeout(1)).
#  * Bochs 2.7 creates IMG.lock next to each flat disk image and refuses an
#    image whose lock exists. A killed Bochs leaves its locks behind: the script
#    removes the locks of its own run after a timeout, and refuses to start when
#    a lock already exists (another Bochs is using the image; use --snapshot for
#    parallel runs, or delete a stale lock).
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
usage_error() { echo "$prog: $* (see -h)" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; }

BOCHS=${BOCHS:-bochs}
BXSHARE=${BXSHARE:-/usr/share/bochs}

smp=1 mem=256 cpu=corei7_skylake_x timeout_s=120 ips=4000000
serial='' serial2='' e9='' log='' stop_tf=0 keep=0 snapshot=0 dbg_cmds=''
disks=() extra=() locks=()

need_arg() { [ $# -ge 2 ] || usage_error "option $1 needs an argument"; }
while [ $# -gt 0 ]; do
    case $1 in
        -smp|--smp) need_arg "$@"; smp=$2; shift 2 ;;
        -m) need_arg "$@"; mem=$2; shift 2 ;;
        -d) need_arg "$@"; disks+=("$2"); shift 2 ;;
        --cpu) need_arg "$@"; cpu=$2; shift 2 ;;
        --timeout) need_arg "$@"; timeout_s=$2; shift 2 ;;
        --ips) need_arg "$@"; ips=$2; shift 2 ;;
        --serial) need_arg "$@"; serial=$2; shift 2 ;;
        --serial2) need_arg "$@"; serial2=$2; shift 2 ;;
        --e9) need_arg "$@"; e9=$2; shift 2 ;;
        --log) need_arg "$@"; log=$2; shift 2 ;;
        --stop-on-triple-fault) stop_tf=1; shift ;;
        --bochsrc-extra) need_arg "$@"; extra+=("$2"); shift 2 ;;
        --keep) keep=1; shift ;;
        --debugger-cmds) need_arg "$@"; dbg_cmds=$2; shift 2 ;;
        --snapshot) snapshot=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage_error "unknown argument '$1'" ;;
    esac
done

[[ $smp =~ ^[1-9][0-9]*$ ]] || usage_error "-smp wants a positive number, got '$smp'"
[[ $mem =~ ^[1-9][0-9]*$ ]] || usage_error "-m wants MiB as a positive number, got '$mem'"
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout wants whole seconds, got '$timeout_s'"
[[ $ips =~ ^[1-9][0-9]*$ ]] || usage_error "--ips wants a positive number, got '$ips'"
[[ $cpu =~ ^[A-Za-z0-9_]+$ ]] || usage_error "--cpu wants a Bochs model name, got '$cpu'"
[ ${#disks[@]} -ge 1 ] || usage_error "at least one -d IMG is needed"
[ ${#disks[@]} -le 4 ] || usage_error "at most four -d IMG (ata0/ata1 master/slave)"
command -v "$BOCHS" >/dev/null 2>&1 || die "$BOCHS not found (apt-get install bochs bochs-term bochsbios vgabios)"
[ -f /usr/lib/x86_64-linux-gnu/bochs/plugins/libbx_term_gui.so ] ||
    [ -n "${LTDL_LIBRARY_PATH:-}" ] || echo "$prog: warning: Bochs term display plugin not found (apt-get install bochs-term)" >&2
for f in "$BXSHARE/BIOS-bochs-latest" "$BXSHARE/VGABIOS-lgpl-latest"; do
    [ -f "$f" ] || die "$f not found (apt-get install bochsbios vgabios)"
done

abspath() { local d; d=$(cd "$(dirname "$1")" && pwd) || return 1; echo "$d/${1##*/}"; }
quote_ok() { [[ $1 != *'"'* && $1 != *$'\n'* ]] || die "unsupported character in path: $1"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bios-bochs.XXXXXX")
tpid='' wpid=''
# shellcheck disable=SC2317  # invoked through trap
cleanup() {
    local rc=$?
    if [ -n "$tpid" ] && kill -0 "$tpid" 2>/dev/null; then
        # Interrupted while Bochs runs: timeout(1) forwards TERM to Bochs
        # (which ignores it) and, thanks to -k 1, KILLs it a second later.
        kill -TERM "$tpid" 2>/dev/null || true
        wait "$wpid" 2>/dev/null || true
        for l in ${locks[@]+"${locks[@]}"}; do rm -f "$l"; done
    fi
    jobs -p | while read -r p; do kill "$p" 2>/dev/null || true; done
    if [ "$keep" = 1 ]; then
        echo "$prog: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- files -------------------------------------------------------------------
stream_serial=0
if [ -z "$serial" ]; then
    serial=$tmp/serial.out
    stream_serial=1
fi
serial=$(abspath "$serial") || die "bad --serial path"
if [ -z "$log" ]; then
    if [ "$stream_serial" = 1 ]; then log=$tmp/bochs.log; else log=$serial.bochs.log; fi
fi
log=$(abspath "$log") || die "bad --log path"
base=${log%.log}
stdout_file=$base.stdout stderr_file=$base.stderr vga_file=$base.vga
quote_ok "$serial"; quote_ok "$log"
: >"$serial" || die "cannot write $serial"
: >"$log" || die "cannot write $log"
if [ -n "$serial2" ]; then
    serial2=$(abspath "$serial2") || die "bad --serial2 path"
    quote_ok "$serial2"
    : >"$serial2" || die "cannot write $serial2"
fi
if [ -n "$e9" ]; then
    e9=$(abspath "$e9") || die "bad --e9 path"
    : >"$e9" || die "cannot write $e9"
fi

# --- bochsrc -----------------------------------------------------------------------
rc=$tmp/bochsrc
slots=(ata0-master ata0-slave ata1-master ata1-slave)
if [ "$mem" -gt 2048 ]; then host_mem=2048; else host_mem=$mem; fi
if [ "$stop_tf" = 1 ]; then rtf=0; else rtf=1; fi
{
    echo "# generated by $prog"
    echo "memory: guest=$mem, host=$host_mem"
    # ignore_bad_msrs=0: an access to a missing MSR raises #GP as on hardware (Bochs defaults to ignoring it)
    echo "cpu: model=$cpu, count=$smp, ips=$ips, reset_on_triple_fault=$rtf, ignore_bad_msrs=0"
    echo "clock: sync=none, time0=946684800"
    echo "romimage: file=\"$BXSHARE/BIOS-bochs-latest\""
    echo "vgaromimage: file=\"$BXSHARE/VGABIOS-lgpl-latest\""
    echo "ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14"
    echo "ata1: enabled=1, ioaddr1=0x170, ioaddr2=0x370, irq=15"
    boot=disk
    for i in "${!disks[@]}"; do
        d=${disks[$i]}
        [ -f "$d" ] || die "disk image not found: $d"
        if [ "$snapshot" = 1 ]; then
            mkdir -p "$tmp/disks/$i"
            cp "$d" "$tmp/disks/$i/" || die "cannot copy $d for --snapshot"
            d=$tmp/disks/$i/${d##*/}
        fi
        if [ ! -r "$d" ] || [ ! -w "$d" ]; then die "disk image must be readable and writable: $d"; fi
        d=$(abspath "$d"); quote_ok "$d"
        case $d in
            *.iso|*.ISO)
                echo "${slots[$i]}: type=cdrom, path=\"$d\", status=inserted"
                [ "$i" = 0 ] && boot=cdrom ;;
            *)
                size=$(stat -L -c %s "$d")
                [ $((size % 516096)) = 0 ] ||
                    echo "$prog: warning: $d is not a whole number of 16x63-sector cylinders; Bochs may misjudge its geometry" >&2
                [ ! -e "$d.lock" ] ||
                    die "$d.lock exists: another Bochs is using $d, or a killed Bochs left a stale lock (delete it), or use --snapshot"
                locks+=("$d.lock")
                echo "${slots[$i]}: type=disk, path=\"$d\", mode=flat" ;;
        esac
    done
    echo "boot: $boot"
    echo "display_library: term"
    echo "log: \"$log\""
    echo "logprefix: %t%e%d"
    echo "panic: action=fatal"
    echo "error: action=report"
    echo "info: action=report"
    echo "debug: action=ignore"
    echo "com1: enabled=1, mode=file, dev=\"$serial\""
    if [ -n "$serial2" ]; then echo "com2: enabled=1, mode=file, dev=\"$serial2\""; fi
    echo "port_e9_hack: enabled=1"
    echo "speaker: enabled=0"
    echo "sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy"
    echo "mouse: enabled=0"
    echo "private_colormap: enabled=0"
    for l in ${extra[@]+"${extra[@]}"}; do echo "$l"; done
} >"$rc"
if [ -n "$dbg_cmds" ]; then cp "$dbg_cmds" "$tmp/cmds" || die "cannot read $dbg_cmds"; else echo c >"$tmp/cmds"; fi

# --- run -----------------------------------------------------------------------
: >"$stdout_file"
: >"$stderr_file"
start_ns=$(date +%s%N)
# stdin is /dev/null so Bochs's debugger never waits for input. timeout(1)
# puts itself and Bochs in a new process group and, on expiry, SIGKILLs that
# group (so its status is 137). The wrapper subshell only keeps bash's
# "Killed" job notice off our stderr.
(
    TERM=vt100 timeout -k 1 -s KILL "$timeout_s" \
        "$BOCHS" -q -f "$rc" -rc "$tmp/cmds" </dev/null >"$stdout_file" 2>"$stderr_file" &
    echo $! >"$tmp/timeout.pid"
    wait $!
) 2>/dev/null &
wpid=$!
for _ in $(seq 1 100); do [ -s "$tmp/timeout.pid" ] && break; sleep 0.01; done
tpid=$(cat "$tmp/timeout.pid" 2>/dev/null || true)
[ -n "$tpid" ] || die "could not start Bochs"

# Drain the curses pty (see the header).
(
    pts=
    for _ in $(seq 1 100); do
        pts=$(sed -n 's/^Bochs connected to screen "\(.*\)"$/\1/p' "$stderr_file" 2>/dev/null | head -n1)
        [ -n "$pts" ] && break
        kill -0 "$tpid" 2>/dev/null || exit 0
        sleep 0.05
    done
    # Open it only while our Bochs still runs (its pty number is not reused then).
    [ -n "$pts" ] && [ -c "$pts" ] && [ -O "$pts" ] && kill -0 "$tpid" 2>/dev/null &&
        exec cat "$pts" >"$vga_file" 2>/dev/null
    exit 0
) </dev/null &
drain_pid=$!

tail_pid=
if [ "$stream_serial" = 1 ]; then
    tail -s 0.1 -n +1 --pid="$tpid" -f "$serial" &
    tail_pid=$!
fi

set +e
wait "$wpid"
status=$?
set -e
tpid=
end_ns=$(date +%s%N)
[ -z "$tail_pid" ] || wait "$tail_pid" 2>/dev/null || true
# cat on the pty slave ends with EIO when Bochs closes the master.
kill "$drain_pid" 2>/dev/null || true
wait "$drain_pid" 2>/dev/null || true

secs=$(( (end_ns - start_ns) / 1000000 ))
secs=$(printf '%d.%03d' $((secs / 1000)) $((secs % 1000)))

if [ -n "$e9" ]; then
    # Bochs's stdout: banner, debugger chatter at start and stop, e9 bytes.
    # Keep what lies between the debugger's first instruction line and its
    # final "(N).[tick] [0x...] seg:off ..." stop line.
    awk '
        # Skip the banner, "Next at t=0" and the "(N) [0x...]" line per CPU.
        state == 0 { if ($0 ~ /^\([0-9]+\) \[0x[0-9a-f]+\] /) state = 1; next }
        state == 1 && /^\([0-9]+\) \[0x[0-9a-f]+\] / { next }
        { state = 2; lines[n++] = $0 }
        END {
            stop = "\\([0-9]+\\)\\.\\[[0-9]+\\] \\[0x[0-9a-f]+\\] [0-9a-f]+:[0-9a-f]+ "
            # Drop the final "(N).[tick] [0x...] seg:off insn" line of each CPU;
            # the first may be glued to an unterminated e9 line.
            while (n > 0 && lines[n-1] ~ ("^" stop)) n--
            if (n > 0 && match(lines[n-1], stop ".*$")) {
                lines[n-1] = substr(lines[n-1], 1, RSTART - 1)
                if (lines[n-1] == "") n--
                else partial = 1
            }
            for (i = 0; i < n; i++) printf "%s%s", lines[i], (i < n - 1 || !partial) ? "\n" : ""
        }' "$stdout_file" >"$e9" || true
fi

ticks=$(tail -n 50 "$log" | sed -n 's/^\([0-9]\{11,\}\)[a-z]\[.*/\1/p' | tail -n1)
[ -z "$ticks" ] || ticks=$((10#$ticks))

# timeout(1) reports 137 (128+SIGKILL), not 124, when it had to use KILL.
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    echo "bochs: timeout after ${timeout_s}s, killed" >&2
    for l in ${locks[@]+"${locks[@]}"}; do rm -f "$l"; done
    result=124
else
    if grep -q 'Shutdown port: shutdown requested' "$log"; then
        reason="guest power-off (port 0x8900)"
    elif grep -q '>>PANIC<<' "$log"; then
        panic=$(grep -m1 '>>PANIC<<' "$log")
        reason="PANIC: ${panic#*>>PANIC<< }"
    elif grep -q '^Bochs is exiting with the following message' "$stderr_file"; then
        reason=$(grep -A1 '^Bochs is exiting with the following message' "$stderr_file" | tail -n1)
    else
        reason="bochs exit status $status"
        if [ "$status" != 0 ] && [ "$status" != 1 ]; then
            echo "$prog: Bochs failed to run; its output:" >&2
            tail -n 20 "$stderr_file" >&2
            result=1
        fi
    fi
    echo "bochs: ended: $reason" >&2
    if [ "${ticks:-0}" = 0 ]; then
        echo "$prog: Bochs stopped before running the guest (configuration or image problem); its stderr ends with:" >&2
        grep -v -e '^[0-9]\{11\}i\[' -e '^ALSA lib' -e '^$' "$stderr_file" | tail -n 8 >&2 || true
        result=1
    fi
    if [ "$stop_tf" = 1 ] && grep -q '>>PANIC<<' "$log"; then
        echo "bochs: register dump from $log:" >&2
        # Everything from the PANIC on: the CPU state Bochs logs when it quits.
        sed -n '/>>PANIC<</,$p' "$log" | grep -e '>>PANIC<<' -e '^[0-9]*[a-z]\[CPU' |
            sed 's/^[0-9]*[a-z]\[[A-Z0-9 ]*\] //' >&2
    fi
    result=${result:-0}
fi
if [ -n "$ticks" ]; then
    if [ "$result" = 124 ]; then
        echo "bochs: $ticks ticks (at the last bochs.log line before the kill)" >&2
    else
        echo "bochs: $ticks ticks" >&2
    fi
fi
echo "bochs: ${secs}s wall" >&2
if [ "$keep" = 1 ] || [ "$log" != "$tmp/bochs.log" ]; then
    echo "bochs: log $log (and ${base##*/}.stdout/.stderr/.vga)" >&2
fi
exit "$result"
