"""The cost of a guest's xAPIC EOI write (apicstore eoibench=N, 1 CPU): bare, under XMHF (L1) and under
XMHF in XMHF (L2), each XMHF with apic=trap (every xAPIC write exits and is emulated: the design before
apic=init-exit) and with its default (apic=auto: no AP to start, so no trap at all). Ticks per EOI from the
kernel's TSC (Bochs's instruction count), and L0's VM exits per EOI from the event-logger build (its exits
in a run with N EOIs minus one with 1). Figures only: printed, never asserted (docs/decisions.md)."""

import os
import re

from core import BUILD, Result, run_emulator
from guest import HV_CMDLINE, build_kernels, build_variant, kernel_disk
from boot import grub_disk
from profile import parse_rows

N = 1000
MODULES1 = ["/boot/hypervisor-x86-amd64.bin.gz", "--nounzip (hd1)+1"]
MODULES2 = ["/boot/hypervisor-x86-amd64.bin.gz", "--nounzip (hd2)+1"]
INNER = HV_CMDLINE.replace("boot_drive=0x81", "boot_drive=0x82")


def _disks(d, levels, apic, count, build_dir, log):
    disk = kernel_disk(d, "apicstore", "eoibench=%d" % count, log)
    if levels == 0:
        return [disk]
    words = " nested=1" + (" apic=%s" % apic if apic else "")
    if levels == 1:
        return [grub_disk(d, HV_CMDLINE + words, MODULES1, log, build_dir), disk]
    outer, inner = os.path.join(d, "outer"), os.path.join(d, "inner")
    os.makedirs(outer, exist_ok=True)
    os.makedirs(inner, exist_ok=True)
    return [grub_disk(outer, HV_CMDLINE + words, MODULES1, log, build_dir),
            grub_disk(inner, INNER + (" apic=%s" % apic if apic else ""), MODULES2, log), disk]


def apic_bench(log_root=None):
    log_root = log_root or os.path.join(BUILD, "apic-bench")
    os.makedirs(log_root, exist_ok=True)
    log = os.path.join(log_root, "build.log")
    build_kernels(log)
    el = build_variant("event-logger", log)
    runs = [("bare", 0, None)]
    for levels, what in ((1, "l1"), (2, "l2")):
        for apic in ("trap", None):
            runs.append(("%s-%s" % (what, apic or "auto"), levels, apic))
    texts = {}

    def go(name, levels, apic, build_dir, count, key):
        d = os.path.join(log_root, key)
        os.makedirs(d, exist_ok=True)
        disks = _disks(d, levels, apic, count, build_dir, log)
        text, _, _ = run_emulator("bochs", disks, os.path.join(d, "serial.log"), d, smp=1, timeout=600,
                                  end=r"^TESTS DONE:|^XMHF: CPU halted", grace=2.0)
        texts[key] = text

    # One Bochs at a time: the machine is shared.
    for name, levels, apic in runs:
        go(name, levels, apic, ".", N, name)
        if levels:
            go(name, levels, apic, el, N, name + "-el")
            go(name, levels, apic, el, 1, name + "-el1")
    results = []
    for name, levels, apic in runs:
        m = re.search(r"^INFO bench: (\d+) EOI writes, (\d+) ticks, (\d+) ticks each", texts.get(name, ""), re.M)
        line = "apic bench: %-8s %s ticks per EOI" % (name, m.group(3) if m else "?")
        if levels:
            e = [sum(parse_rows(texts.get(name + k, ""), "exits").values()) +
                 sum(parse_rows(texts.get(name + k, ""), "L2 exits").values()) for k in ("-el", "-el1")]
            if e[0] and e[1]:
                line += ", %.2f L0 VM exits per EOI" % ((e[0] - e[1]) / (N - 1))
        print(line)
        results.append(Result("apic-bench-" + name, bool(m), "" if m else "no bench line", 0))
    return results
