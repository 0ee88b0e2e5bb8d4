#!/usr/bin/env python3
"""The differential VMX fuzzer (tests/guests/kernels/vmxfuzz.c): one seed boots the kernel bare on
Bochs and under XMHF (nested=1); the per-block hashes of the operations' outcome lines must match.
Under XMHF a stop (FATAL/SECURITY/panic dump), a hang (timeout) or a difference is a failure. On a
difference both runs are booted again printing the lines of the first differing block, and the first
differing operation is reported (bare and XMHF lines) with the command that reproduces it.

As a test (tests/run): FuzzTest(seed, ops, smp), named fuzz-vmx-seed<S>-smp<N>.
As a campaign (make fuzz SEEDS=1-20 OPS=5000 [SMP=1,2] [J=1]):
    tests/runner/fuzz.py --seeds 1-20 --ops 5000 --smp 1,2 [-j 1]
prints one line per run and a summary (seeds, ops, stops, hangs, differences); logs go to
build/fuzz/seed<S>-smp<N>/{bare,hv}/serial.log.
"""

import argparse
import concurrent.futures
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from core import BUILD, ROOT, Result, Test, run_emulator  # noqa: E402
from boot import grub_disk  # noqa: E402
import guest  # noqa: E402

HV_CMDLINE = guest.HV_CMDLINE + " nested=1"
BLOCK = 100

# Outcome differences that are documented Bochs deviations (docs/known-bugs.md), as (regex on the bare
# line, regex on the XMHF line) -> reason. The fuzzer already leaves out what cannot be compared (see
# the kernel's header); each entry here must say why the difference is not an XMHF bug.
ALLOWED = []


def parse(text):
    """{cpu: [block hashes]}, {cpu: ops}, caps line."""
    blocks, ops = {}, {}
    for m in re.finditer(r"^FUZZ cpu=(\d+) block=(\d+) hash=([0-9a-f]+)$", text, re.M):
        blocks.setdefault(int(m.group(1)), []).append(m.group(3))
    for m in re.finditer(r"^FUZZ cpu=(\d+) ops=(\d+) total=", text, re.M):
        ops[int(m.group(1))] = int(m.group(2))
    caps = re.search(r"^FUZZ caps .*$", text, re.M)
    return blocks, ops, caps.group(0) if caps else None


def op_lines(text):
    """{(cpu, n): line} of the OP lines (show=A-B)."""
    return {(int(m.group(1)), int(m.group(2))): m.group(3)
            for m in re.finditer(r"^OP c(\d+) n(\d+) (.*)$", text, re.M)}


def stop_line(text):
    m = re.search(r"^XMHF: (FATAL|SECURITY|PANIC|panic|stopping).*$", text, re.M | re.I)
    return m.group(0) if m else ""


class FuzzRun:
    """One seed, bare and under XMHF; the result fields say what happened."""

    def __init__(self, seed, ops, smp, log_dir, timeout=None):
        self.seed, self.ops, self.smp, self.log_dir = seed, ops, smp, log_dir
        # Bochs under XMHF does some 40-80 ops per second with 1 CPU; leave room for a loaded machine
        self.timeout = timeout or int(120 + ops * smp * 0.12)

    def args(self, show=None):
        a = "seed=%d ops=%d block=%d" % (self.seed, self.ops, BLOCK)
        if show:
            a += " show=%d-%d" % show
        return a

    def boot(self, hv, show=None, tag=""):
        d = os.path.join(self.log_dir, ("hv" if hv else "bare") + tag)
        os.makedirs(d, exist_ok=True)
        log = os.path.join(self.log_dir, "build.log")
        disk = guest.kernel_disk(d, "vmxfuzz", self.args(show), log)
        disks = [disk]
        if hv:
            disks = [grub_disk(d, HV_CMDLINE, ["/boot/hypervisor-x86-amd64.bin.gz", "--nounzip (hd1)+1"], log),
                     disk]
        serial = os.path.join(d, "serial.log")
        return run_emulator("bochs", disks, serial, d, smp=self.smp, mem=256, timeout=self.timeout,
                            end=r"^TESTS DONE:|^XMHF: CPU halted|^XMHF: powering off", grace=1.0)

    def run(self):
        """Returns (kind, detail, seconds): kind is ok, stop, hang, diff, bare-failed."""
        os.makedirs(self.log_dir, exist_ok=True)
        guest.build_kernels(os.path.join(self.log_dir, "build.log"))
        t0 = time.time()
        bare, _, e1 = self.boot(False)
        hv, _, e2 = self.boot(True)
        secs = time.time() - t0
        where = "seed %d smp %d (%s)" % (self.seed, self.smp, self.log_dir)
        if not re.search(r"^TESTS DONE: \d+ passed, 0 failed", bare, re.M):
            return "bare-failed", "bare run did not finish (%s): %s" % (e1, where), secs
        stop = stop_line(hv)
        if stop:
            return "stop", "%s: %s" % (where, stop), secs
        if not re.search(r"^TESTS DONE:", hv, re.M):
            return "hang", "run under XMHF did not finish (%s): %s" % (e2, where), secs
        bb, ob, cb = parse(bare)
        bh, oh, ch = parse(hv)
        if cb != ch:
            return "diff", "%s: capabilities differ: bare '%s', XMHF '%s'" % (where, cb, ch), secs
        for cpu in sorted(set(bb) | set(bh)):
            xb, xh = bb.get(cpu, []), bh.get(cpu, [])
            if ob.get(cpu) != oh.get(cpu):
                return "diff", "%s: CPU %d did %s ops bare, %s under XMHF" % (where, cpu, ob.get(cpu),
                                                                             oh.get(cpu)), secs
            for i in range(max(len(xb), len(xh))):
                if i >= len(xb) or i >= len(xh) or xb[i] != xh[i]:
                    return "diff", self.first_difference(cpu, i, where), time.time() - t0
        return "ok", "", secs

    def first_difference(self, cpu, blk, where):
        """Boots both again printing the lines of block blk; names the first differing op."""
        show = (blk * BLOCK, (blk + 1) * BLOCK)
        bare, _, _ = self.boot(False, show, "-show")
        hv, _, _ = self.boot(True, show, "-show")
        lb, lh = op_lines(bare), op_lines(hv)
        for n in range(show[0], show[1]):
            b, h = lb.get((cpu, n)), lh.get((cpu, n))
            if b is None and h is None:
                continue
            if b != h and not allowed(b, h) and not (b or "").startswith("X "):
                return ("%s: CPU %d op %d differs:\n  bare: %s\n  XMHF: %s\n  reproduce: tests/guests/lib/run-kernel.sh "
                        "build/guests/vmxfuzz.bin %s (and under XMHF, see %s)" %
                        (where, cpu, n, b, h, self.args(show), self.log_dir))
        return "%s: CPU %d block %d hashes differ; no single differing line found (see %s)" % (
            where, cpu, blk, self.log_dir)


# Open XMHF bugs the fuzzer keeps finding (docs/known-bugs.md, "Open, found by the fuzzer"): a
# difference whose first differing line matches is still a failure, but the campaign summary counts it
# apart, so that a new bug stands out. (regex on the bare line, regex on the XMHF line) -> name.
KNOWN_OPEN = []


def known_open(detail):
    m = re.search(r"^  bare: (.*)\n  XMHF: (.*)$", detail, re.M)
    if not m:
        return None
    for (rb, rh), name in KNOWN_OPEN:
        if re.search(rb, m.group(1)) and re.search(rh, m.group(2)):
            return name
    return None


def allowed(b, h):
    for (rb, rh), why in ALLOWED:
        if b and h and re.search(rb, b) and re.search(rh, h):
            return why
    return None


class FuzzTest(Test):
    platform = "bochs"

    def __init__(self, seed, ops, smp):
        super().__init__("fuzz-vmx-seed%d-smp%d" % (seed, smp))
        self.seed, self.ops, self.smp = seed, ops, smp

    def run(self, log_dir):
        kind, detail, secs = FuzzRun(self.seed, self.ops, self.smp, log_dir).run()
        return Result(self.name, kind == "ok", detail, secs)


# make test's slice: fixed seeds, a few thousand operations in all, 1 and 2 CPUs; seed 12 reaches an
# entry after an NMI injection at op 15 (Bochs 2.7's stale NMI blocking, the kernel's nmi_scrub()),
# seed 8 with 2 CPUs a single-stepped L2 after an EPT02 miss at CPU 1's op 371 (nested/exit.c)
TEST_SLICE = [(1, 1000, 1), (2, 1000, 1), (3, 600, 2), (12, 300, 1), (8, 400, 2)]


def tests():
    # Under XMHF only: bare Bochs 2.7 panics on this entry instead of refusing it (docs/known-bugs.md).
    pg0 = guest.HvTest("fuzz-vmx-ia32e-pg0-refused", "vmxfuzz", "case=ia32e-pg0", 1,
                       [r"^TEST ia32e-pg0: PASS$", r"^TESTS DONE: 1 passed, 0 failed"],
                       forbid=[r"FATAL", r"SECURITY"], extra_hv=" nested=1")
    return [FuzzTest(s, n, c) for s, n, c in TEST_SLICE] + [pg0]


def parse_range(text):
    out = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="1-5")
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--smp", default="1,2")
    ap.add_argument("-j", "--jobs", type=int, default=1)
    args = ap.parse_args()
    seeds, smps = parse_range(args.seeds), parse_range(args.smp)
    root = os.path.join(ROOT, "build", "fuzz")
    runs = [(s, c) for s in seeds for c in smps]
    counts = {"ok": 0, "stop": 0, "hang": 0, "diff": 0, "bare-failed": 0}
    t0 = time.time()

    def one(sc):
        s, c = sc
        d = os.path.join(root, "seed%d-smp%d" % (s, c))
        return s, c, FuzzRun(s, args.ops, c, d).run()

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for s, c, (kind, detail, secs) in pool.map(one, runs):
            counts[kind] += 1
            known = known_open(detail) if kind == "diff" else None
            if known:
                counts["known"] = counts.get("known", 0) + 1
            print("seed %d smp %d: %s (%.0f s)%s%s" % (s, c, kind.upper(), secs, " [known open: %s]" % known if known
                                                     else "", "\n  " + detail if detail else ""), flush=True)
    total_ops = sum(args.ops * c for s, c in runs)
    print("fuzz campaign: seeds %s, smp %s, %d runs, %d VMX operations (%d per CPU per run), %.0f s" %
          (args.seeds, args.smp, len(runs), total_ops, args.ops, time.time() - t0))
    print("  stops %d, hangs %d, differences %d (%d of them a known open bug), bare failures %d, clean %d" %
          (counts["stop"], counts["hang"], counts["diff"], counts.get("known", 0), counts["bare-failed"], counts["ok"]))
    print("  (a run stops comparing at its first difference: its later operations still ran, under XMHF too)")
    return 0 if counts["ok"] == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
