"""Linux as L2 under XMHF as L1 (XMHF in XMHF): disk 0 is the outer XMHF's GRUB disk (L0, nested=1),
chain-loading disk 1 (DL = 0x81), the inner XMHF's GRUB disk (L1), whose XMHF boots disk 2 (boot_drive=0x82):
the Linux disk of linux.py. Linux runs to userspace and powers off; the checks are linux.py's (CPU count,
MemTotal, the vmx flag the inner XMHF offers, both hypervisor regions out of Linux's RAM) plus that both
XMHFs started their guest from the right disk. The figures to compare are linux-xmhf-smpN's (Linux one level
under XMHF) and linux-bare-smpN's.

bench_l2() boots the 1-CPU stack with the event-logger build as L0: ticks and L0's VM exits by reason (the
inner XMHF is the default build, so every logged exit is L0's).
"""

import os

from core import BUILD, Result, read
from boot import grub_disk
from guest import HV_CMDLINE, build_variant
from linux import HV_MODULES, LinuxTest
from profile import parse_rows

INNER_CMDLINE = HV_CMDLINE.replace("boot_drive=0x81", "boot_drive=0x82")
INNER_MODULES = ["/boot/hypervisor-x86-amd64.bin.gz", "--nounzip (hd2)+1"]


class LinuxL2XmhfTest(LinuxTest):
    """Linux as L2: bare Bochs runs XMHF (L0), which runs XMHF (L1), which runs Linux."""
    long = True

    def boot_disks(self, log_dir, log):
        disk = self.disk(log)
        outer, inner = os.path.join(log_dir, "outer"), os.path.join(log_dir, "inner")
        os.makedirs(outer, exist_ok=True)
        os.makedirs(inner, exist_ok=True)
        build_dir = build_variant(self.variant, log) if self.variant else "."
        return [grub_disk(outer, HV_CMDLINE + " nested=1" + self.hv_extra, HV_MODULES, log, build_dir),
                grub_disk(inner, INNER_CMDLINE, INNER_MODULES, log), disk]

    def check(self, text, ended):
        err = super().check(text, ended)
        if err:
            return err
        # Both XMHFs started their guest: the outer one from disk 1, the inner one from disk 2.
        for dl in ("0x81", "0x82"):
            if "XMHF: CPU 0: starting the guest at 0000:7c00 with DL=%s" % dl not in text:
                return "no XMHF started its guest with DL=%s" % dl
        return ""


def tests():
    # Long tests (make test-long): Linux reaches userspace with 1 and 2 CPUs (6.75 G and 6.83 G ticks).
    # With 2 CPUs the inner XMHF traps every L2 xAPIC write until Linux's AP is up (docs/decisions.md).
    # The tscdeadline variant runs the L2's local APIC timer in TSC-deadline mode, through both XMHFs
    # (linux.UCODE_FIXED: Bochs's CPU without its TSC-deadline erratum).
    return [LinuxL2XmhfTest("linux-l2-xmhf-in-xmhf-smp1", 1, True, timeout=900),
            LinuxL2XmhfTest("linux-l2-xmhf-in-xmhf-smp2", 2, True, timeout=1500),
            LinuxL2XmhfTest("linux-l2-xmhf-in-xmhf-tscdeadline-smp2", 2, True, timeout=1500, fixed_ucode=True)]


def bench_l2(log_root=None, one_level=None):
    """Boots Linux as L2 under XMHF-in-XMHF with one CPU, the event-logger build as L0, and prints its ticks
    (with the ratio to one_level's, a linux.bench() Result, when given) and L0's VM exits by reason."""
    log_root = log_root or os.path.join(BUILD, "linux-l2-bench")
    d = os.path.join(log_root, "linux-l2-xmhf-in-xmhf-smp1")
    os.makedirs(d, exist_ok=True)
    t = LinuxL2XmhfTest("linux-l2-xmhf-in-xmhf-smp1", 1, True, timeout=900, variant="event-logger")
    try:
        r = t.run(d)
    except Exception as e:  # a broken set-up is a failed run, not a crash of the runner
        r = Result(t.name, False, "%s: %s" % (type(e).__name__, e))
    print("linux-l2 bench: %s %s (%.1f s wall)%s" % (r.name, "PASS" if r.ok else "FAIL", r.seconds,
                                                    ": " + r.detail if r.detail else ""))
    ticks = r.figures.get("ticks")
    base = one_level.figures.get("ticks") if one_level else None
    print("linux-l2 bench: ticks Linux as L2 under XMHF in XMHF %s%s" % (
        ticks if ticks else "(unknown)",
        " (%.3f x Linux under one XMHF)" % (ticks / base) if ticks and base else ""))
    text = read(os.path.join(d, "serial.log"))
    # L0's exits while L1 (the inner XMHF) runs and while L2 (Linux) runs, by reason.
    for what, who in (("exits", "L1"), ("L2 exits", "L2")):
        rows = parse_rows(text, what)
        if rows:
            print("linux-l2 bench: L0 VM exits from %s: %d in all: %s" % (
                who, sum(rows.values()), " ".join("r%d=%d" % (k, rows[k]) for k in sorted(rows))))
    return [r]
