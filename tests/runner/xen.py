"""Xen tests: Debian's Xen 4.17 with a PVH dom0 (Debian's 6.1 kernel and a busybox initramfs,
tests/xen/build.sh) boots from its own GRUB disk (multiboot2) (a) bare on Bochs, Xen on Bochs's VMX,
and (b) as the guest of XMHF with nested=1: Xen is a real L1 and dom0, running in VMX non-root for its
whole life, an L2. tests/xen/init prints `XEN-DOM0: ...` lines and powers off through Xen.

Checks: dom0 reached userspace on Xen (PVH, /sys/hypervisor/type, the CPUID hypervisor bit) with one
vCPU per CPU and its 256 MiB, and the VMX features Xen lists ("VMX: Supported advanced features") are
bare Bochs's, under XMHF too (XEN_VMX_FEATURES).

Bochs settings (../shared/reference/bochs.md): ips=100000000 (at 4 MHz Xen and dom0 calibrate a clock
too slow for their watchdogs), `vga: extension=none` (GRUB's VBE mode for Xen panics Bochs) and
tests/xen/msrs.def (MSRs Xen and Linux read that the CPU model lacks).
"""

import os
import re
import threading

from core import BUILD, ROOT, Result, Test, check_patterns, read, run_emulator, sh
from boot import grub_disk
from guest import HV_CMDLINE, build_variant
from linux import HV_MODULES, parse_exits, parse_ticks
from profile import print_profile, profile, write_svg

XEN_OUT = os.path.join(ROOT, "build", "xen")
MSRS = os.path.join(ROOT, "tests", "xen", "msrs.def")
IPS = 100000000
MEM = 512
# Failures that leave Bochs running: the emulator is stopped a few seconds after one of these.
END = (r"^XEN-DOM0: poweroff failed|Kernel panic - not syncing|^XMHF: CPU halted|^\(XEN\) .*\*\*\*\* Panic|"
       r"^\(XEN\) .*Hardware Dom0 (crashed|halted)")

_build_lock = threading.Lock()
_built = [False]


def build_xen(log):
    """The Xen disks, built (or checked up to date) once per run."""
    with _build_lock:
        if not _built[0]:
            sh(["tests/xen/build.sh", XEN_OUT], log)
            _built[0] = True


def disk_path(apicv):
    return os.path.join(XEN_OUT, "xen-%s-disk.img" % ("apicv" if apicv else "apicv0"))


# Xen's log lines: "(XEN) " and, with console_timestamps=raw, "[TSC in 16 hex digits] " before the text.
XEN_LINE = r"^\(XEN\) (?:\[([0-9a-f]{16})\] )?"


def xen_lines(text):
    """[(tsc or None, text)] of Xen's own log lines, in order."""
    return [(int(t, 16) if t else None, l) for t, l in re.findall(XEN_LINE + r"(.*)$", text, re.M)]


def vmx_features(text):
    """The lines Xen lists under "VMX: Supported advanced features:" (without their "  - "), or None."""
    lines = [l for _, l in xen_lines(text)]
    if "VMX: Supported advanced features:" not in lines:
        return None
    out = []
    for l in lines[lines.index("VMX: Supported advanced features:") + 1:]:
        if not l.startswith(" - "):
            break
        out.append(l[3:])
    return out


class XenTest(Test):
    platform = "bochs"
    long = True

    def __init__(self, name, smp, hv, apicv=False, timeout=900, variant=None, hv_extra=" nested=1"):
        super().__init__(name)
        self.smp, self.hv, self.apicv, self.timeout, self.variant = smp, hv, apicv, timeout, variant
        self.hv_extra = hv_extra

    def run(self, log_dir):
        log = os.path.join(log_dir, "build.log")
        build_xen(log)
        disks = [disk_path(self.apicv)]
        if self.hv:
            build_dir = build_variant(self.variant, log) if self.variant else "."
            disks = [grub_disk(log_dir, HV_CMDLINE + self.hv_extra, HV_MODULES, log, build_dir)] + disks
        serial = os.path.join(log_dir, "serial.log")
        text, secs, ended = run_emulator("bochs", disks, serial, log_dir, smp=self.smp, mem=MEM,
                                         timeout=self.timeout, end=END, grace=3.0,
                                         extra=["--ips", str(IPS), "--bochsrc-extra", 'cpu: msrs="%s"' % MSRS,
                                                "--bochsrc-extra", "vga: extension=none"])
        figures = {}
        ticks = parse_ticks(log_dir)
        if ticks:
            figures["ticks"] = ticks
        exits = parse_exits(text)
        if exits:
            figures["exits"] = sum(sum(c.values()) for c in exits.values())
        err = self.check(text, ended)
        if err:
            why = re.search(r"^(XMHF: (FATAL|SECURITY).*|.*Kernel panic - not syncing.*|\(XEN\) .*\*\*\*\* Panic.*)$",
                            text, re.M)
            if why and why.group(0) not in err:
                err += " [%s]" % why.group(0).strip()
            err += " (see %s)" % serial
        return Result(self.name, not err, err, secs, figures)

    def check(self, text, ended):
        if not re.search(r"^XEN-DOM0: done$", text, re.M):
            return "dom0 did not reach 'XEN-DOM0: done' (%s)" % ended
        expect = [XEN_LINE + r"Xen version 4\.17", XEN_LINE + r"HVM: VMX enabled", XEN_LINE + r"\*\*\* Building a PVH Dom0 \*\*\*",
                  r"^XEN-DOM0: init started$", r"^XEN-DOM0: done$"]
        forbid = [r"Kernel panic", r"^XEN-DOM0: poweroff failed", r"^XMHF: (FATAL|SECURITY)", r"triple-faulted",
                  XEN_LINE + r"\*\*\*\* Panic"]
        if self.hv:
            expect = [r"^XMHF: CPU 0: starting the guest at 0000:7c00 with DL=0x81"] + expect
        err = check_patterns(text, expect, forbid)
        if err:
            return err
        for what, want in (("hypervisor type", "xen"), ("cpu flag hypervisor", "yes"), ("pvh", "yes")):
            m = re.search(r"^XEN-DOM0: %s (.*)$" % what, text, re.M)
            if not m or m.group(1) != want:
                return "dom0's %s is %s, want %s" % (what, m.group(1) if m else "missing", want)
        cpus = int(re.search(r"^XEN-DOM0: cpus (\d+)$", text, re.M).group(1))
        if cpus != self.smp:
            return "dom0 sees %d CPUs, want %d" % (cpus, self.smp)
        kb = int(re.search(r"^XEN-DOM0: memtotal (\d+)$", text, re.M).group(1))
        # dom0_mem=256M: MemTotal is that less the kernel's own reservations.
        if not 128 * 1024 < kb <= 256 * 1024:
            return "dom0's MemTotal %d kB is implausible for dom0_mem=256M" % kb
        got = vmx_features(text)
        if got != XEN_VMX_FEATURES:
            return "Xen's VMX features differ from bare Bochs's: got %s; bare %s" % (got, XEN_VMX_FEATURES)
        return ""


# What Xen 4.17 lists under "VMX: Supported advanced features" on bare Bochs 2.7 (corei7_skylake_x),
# in its order: under XMHF with nested=1 it must list the same.
XEN_VMX_FEATURES = [
    "APIC MMIO access virtualisation", "APIC TPR shadow", "Extended Page Tables (EPT)",
    "Virtual-Processor Identifiers (VPID)", "Virtual NMI", "MSR direct-access bitmap", "Unrestricted Guest",
    "VMCS shadowing", "VM Functions", "Virtualisation Exceptions", "Page Modification Logging", "TSC Scaling"]


def tests():
    return [XenTest("xen-%s-smp%d" % ("xmhf" if hv else "bare", smp), smp, hv) for hv in (False, True) for smp in (1, 2)] + [
        XenTest("xen-bare-apicv-smp1", 1, False, apicv=True, timeout=300)]
