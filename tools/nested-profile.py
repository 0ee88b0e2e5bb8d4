#!/usr/bin/env python3
"""Where L0's instructions go, exactly: re-runs a finished Bochs test run (its run directory, as the
test runner leaves it: emulator.out with the bios-bochs.sh command line and the run's tick count,
serial.log with XMHF's "entering the runtime at" line), stops it at a tick with Bochs's debugger,
traces the next instructions, and counts them by the hypervisor function each belongs to (the
runtime ELF's symbols, relocated to where XMHF loaded it); the guests' instructions (L1, L2) are
counted by code segment. Bochs counts ticks as instructions, so the counts are the run's own cost
figures, with no probe changing them.

  tools/nested-profile.py RUN_DIR [--at TICK | --before-end N] [--count N] [--per K] [--elf ELF]

--before-end N (default 1,500,000) stops N ticks before the run's end: inside a benchmark that
ends the run (lhv2 bench=1000: `INFO bench` is among its last lines). --per K divides the counts by
K (the round trips the window holds: count / ticks per round trip). --runs N prints the first N
runs of consecutive instructions in one function, the call sequence of a round trip. --function F
prints F's disassembly with the times each instruction ran."""

import argparse
import bisect
import collections
import os
import re
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACE_LINE = re.compile(r"^\(\d+\)(?:\.\[\d+\])? \[0x[0-9a-f]+\] ([0-9a-f]{4}):([0-9a-f]+) ")


def symbols(elf):
    out = subprocess.run(["nm", "-n", elf], capture_output=True, text=True, check=True).stdout
    syms = [(int(a, 16), n) for a, t, n in (l.split() for l in out.splitlines() if len(l.split()) == 3)
            if t in "tTwW"]
    entry = int(re.search(r"Entry point address:\s+0x([0-9a-f]+)",
                          subprocess.run(["readelf", "-h", elf], capture_output=True, text=True).stdout).group(1), 16)
    end = max(a for a, _ in syms) + 0x10000
    return syms, entry, end


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--at", type=int, help="the tick to start tracing at")
    ap.add_argument("--before-end", type=int, default=1500000)
    ap.add_argument("--count", type=int, default=10000, help="instructions to trace")
    ap.add_argument("--per", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--function")
    ap.add_argument("--elf", default=os.path.join(ROOT, "hypervisor-x86-amd64.elf"))
    a = ap.parse_args()

    emu = open(os.path.join(a.run_dir, "emulator.out")).read()
    cmd = shlex.split(re.search(r"^\$ (.*)$", emu, re.M).group(1))
    # Older runs wrote the command unquoted: a --bochsrc-extra line then spans several words.
    joined = []
    for w in cmd:
        if joined and len(joined) > 1 and joined[-2] == "--bochsrc-extra" and not w.startswith("-"):
            joined[-1] += " " + w
        else:
            joined.append(w)
    cmd = joined
    at = a.at if a.at is not None else int(re.search(r"^bochs: (\d+) ticks", emu, re.M).group(1)) - a.before_end
    serial = open(os.path.join(a.run_dir, "serial.log"), errors="replace").read()
    m = re.search(r"entering the runtime at 0x([0-9a-f]+)", serial)
    syms, entry, end = symbols(a.elf)
    base = int(m.group(1), 16) - entry if m else -(1 << 62)  # a bare run: every instruction a guest's
    addrs = [s for s, _ in syms]

    with tempfile.TemporaryDirectory() as tmp:
        dbg = os.path.join(tmp, "cmds")
        with open(dbg, "w") as f:
            f.write("sb %d\nc\ntrace on\ns %d\nquit\n" % (at, a.count))
        # The same run, on copies of its disks, with its output kept apart from the test's.
        args, i = [], 1
        while i < len(cmd):
            if cmd[i] in ("--serial", "--log", "--serial2", "--e9"):
                args += [cmd[i], os.path.join(tmp, os.path.basename(cmd[i + 1]))]
                i += 2
            else:
                args.append(cmd[i])
                i += 1
        args = [x for x in args if x != "--snapshot"] + ["--snapshot", "--debugger-cmds", dbg]
        if "--log" not in args:
            args += ["--log", os.path.join(tmp, "bochs.log")]
        subprocess.run([cmd[0]] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log = args[args.index("--log") + 1]
        trace = os.path.join(os.path.dirname(log), "bochs.stdout")
        seq, at_off = [], collections.Counter()
        for line in open(trace, errors="replace"):
            m = TRACE_LINE.match(line)
            if not m:
                continue
            off = int(m.group(2), 16) - base
            at_off[off] += 1
            if 0 <= off < end:
                seq.append(syms[bisect.bisect_right(addrs, off) - 1][1])
            else:
                seq.append("[guest, CS %s]" % m.group(1))
    if len(seq) < a.count // 2:
        sys.exit("nested-profile: only %d instructions traced (is tick %d inside the run?)" % (len(seq), at))
    counts = collections.Counter(seq)
    l0 = sum(n for k, n in counts.items() if not k.startswith("["))
    print("%d instructions from tick %d: L0 %d, guests %d (per %.2f: L0 %.0f, guests %.0f)" %
          (len(seq), at, l0, len(seq) - l0, a.per, l0 / a.per, (len(seq) - l0) / a.per))
    for k, n in counts.most_common():
        print("%9.1f %5.1f%%  %s" % (n / a.per, 100.0 * n / len(seq), k))
    runs = []
    for s in seq[:]:
        if runs and runs[-1][0] == s:
            runs[-1][1] += 1
        else:
            runs.append([s, 1])
    for s, n in runs[:a.runs]:
        print("  %-44s %d" % (s, n))
    if a.function:
        dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "--disassemble=" + a.function, a.elf],
                             capture_output=True, text=True).stdout
        for line in dis.splitlines():
            m = re.match(r"^\s+([0-9a-f]+):\s+(.*)", line)
            if m:
                print("%9.1f  %s" % (at_off[int(m.group(1), 16)] / a.per, line.strip()))


if __name__ == "__main__":
    main()
