"""Linux guest tests: Debian's 6.1 kernel with a busybox initramfs (tests/linux/build.sh) boots from its
own GRUB disk (a) bare on Bochs and (b) as the guest of the hypervisor (disk 0: XMHF's GRUB disk; disk 1:
the Linux disk, chain-loaded with DL = 0x81). tests/linux/init prints `LINUX: ...` lines and powers
off through ACPI S5; each test checks the CPU count, MemTotal and, under XMHF, that the memory map
Linux got from the firmware keeps the hypervisor region out of its RAM.

Figures: `ticks` (Bochs instructions, deterministic for a fixed disk: the kernel runs with nokaslr
and without RDRAND/RDSEED) and, with the event-logger build, VM exits by reason. bench() compares a
bare and an XMHF boot with one CPU, bench(smp=2) with two.

The linux-kvm-* tests boot the KVM variant of the disk (linux-kvm-disk.img: tests/linux/init-kvm loads
Debian's kvm modules and runs tests/linux/kvmtest.c before the ordinary init): Linux/KVM as L1, bare and
under XMHF with nested=1, must print the same KVMTEST lines (KVMTEST_EXPECT).

Linux as L2 under XMHF as L1 (XMHF in XMHF, the same disk as the third one): linux_l2.py.

Bochs needs tests/linux/msrs.def: its CPU model lacks MSRs Linux reads without a fallback (see there).
"""

import os
import re
import threading

from core import BUILD, ROOT, Result, Test, build_once, check_patterns, read, run_emulator, sh
from boot import grub_disk
from guest import HV_CMDLINE, build_variant
from profile import EXIT_REASONS, print_profile, profile, write_svg

LINUX_OUT = os.path.join(ROOT, "build", "linux")
LINUX_DISK = os.path.join(LINUX_OUT, "linux-disk.img")
LINUX_KVM_DISK = os.path.join(LINUX_OUT, "linux-kvm-disk.img")  # the same plus KVM and kvmtest (LinuxKvmTest)
MSRS = os.path.join(ROOT, "tests", "linux", "msrs.def")
# Bochs's corei7_skylake_x is Skylake-SP stepping 4 with microcode revision 0, which has Intel's
# TSC-deadline erratum: Linux (and XMHF for its guest, lib/cpu-errata.c) then keep the local APIC
# timer in one-shot mode. The *-tscdeadline-* tests give the CPU the first fixed revision, 0x2000014
# (IA32_BIOS_SIGN_ID, MSR 8BH, its high half read-only), so the timer runs in TSC-deadline mode, as
# on most CPUs users have.
UCODE_FIXED = "  0x8b      0    02000014   00000000    00000000   00000000   ffffffff   00000000\n"


def msrs_file(fixed_ucode):
    """The Bochs msrs= file: tests/linux/msrs.def, plus the fixed microcode revision when asked."""
    if not fixed_ucode:
        return MSRS
    path = os.path.join(BUILD, "linux-msrs-fixed-ucode.def")
    with open(MSRS) as f:
        text = f.read() + "# IA32_BIOS_SIGN_ID: microcode revision 0x2000014 (no TSC-deadline erratum)\n" + UCODE_FIXED
    tmp = "%s.%d.tmp" % (path, threading.get_ident())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)  # tests running side by side write the same bytes
    return path
HV_MODULES = ["/boot/hypervisor-x86-amd64.bin.gz", "--nounzip (hd1)+1"]
# Failures that leave Bochs running: the emulator is stopped a few seconds after one of these.
# (A panic reboots through a triple fault, reboot=t, which ends bare Bochs and stops XMHF.)
END = r"^LINUX: poweroff failed|Kernel panic - not syncing|^XMHF: CPU halted"

def build_linux(log):
    """The Linux guest disk, built (or checked up to date) once per run."""
    build_once("tests/linux/build.sh", LINUX_OUT, log)
    return LINUX_DISK


def parse_ticks(log_dir):
    """Bochs's instruction count at the end: tools/bios-bochs.sh's `bochs: N ticks` line, or (when the
    runner killed Bochs) the tick stamp of the last bochs.log line."""
    m = re.findall(r"^bochs: (\d+) ticks", read(os.path.join(log_dir, "emulator.out")), re.M)
    if m:
        return int(m[-1])
    m = re.findall(r"^(\d{11,})[a-z]\[", read(os.path.join(log_dir, "bochs.log")), re.M)
    return int(m[-1]) if m else None


def parse_exits(text):
    """The last `XMHF: exits CPU n: rR=N ...` block of the event logger: {cpu: {reason: count}}."""
    out = {}
    for cpu, rest in re.findall(r"^XMHF: exits CPU (\d+):((?: r\d+=\d+)+)\s*$", text, re.M):
        out[int(cpu)] = {int(r): int(n) for r, n in re.findall(r"r(\d+)=(\d+)", rest)}
    return out


def exit_lines(text):
    """The event logger's lines of its last print-out (one per CPU plus per-leaf/MSR lines)."""
    lines = re.findall(r"^XMHF: exits CPU .*$", text, re.M)
    starts = [i for i, l in enumerate(lines) if re.match(r"XMHF: exits CPU 0:( r\d+=\d+)+\s*$", l)]
    return lines[starts[-1]:] if starts else lines


def check_region_hidden(text):
    """No "System RAM" entry of Linux's firmware map overlaps a hypervisor region (each XMHF's, when XMHF
    runs XMHF), and each region lies inside a "Reserved" entry (both ends inclusive, as XMHF and
    /sys/firmware/memmap print them)."""
    regions = re.findall(r"^XMHF: hypervisor region 0x([0-9a-f]+)-0x([0-9a-f]+)", text, re.M)
    if not regions:
        return "no 'XMHF: hypervisor region' line"
    entries = [(int(a, 16), int(b, 16), t.strip())
               for a, b, t in re.findall(r"^LINUX: e820 0x([0-9a-f]+)-0x([0-9a-f]+) (.*)$", text, re.M)]
    if not entries:
        return "Linux printed no firmware memory map"
    for lo, hi in ((int(a, 16), int(b, 16)) for a, b in regions):
        for a, b, t in entries:
            if t == "System RAM" and a <= hi and lo <= b:
                return "Linux's firmware map has System RAM 0x%x-0x%x over the hypervisor region 0x%x-0x%x" % (
                    a, b, lo, hi)
        if not any(a <= lo and hi <= b and t == "Reserved" for a, b, t in entries):
            return "the hypervisor region 0x%x-0x%x is not inside one Reserved entry of Linux's map" % (lo, hi)
    return ""


class LinuxTest(Test):
    platform = "bochs"

    def __init__(self, name, smp, hv, mem=256, timeout=400, variant=None, hv_extra="", fixed_ucode=False):
        super().__init__(name)
        self.smp, self.hv, self.mem, self.timeout, self.variant = smp, hv, mem, timeout, variant
        self.hv_extra = hv_extra  # more words for XMHF's command line (nested=1)
        self.fixed_ucode = fixed_ucode  # no TSC-deadline erratum (UCODE_FIXED)

    def disk(self, log):
        build_linux(log)
        return LINUX_DISK

    def boot_disks(self, log_dir, log):
        """Bochs's disks in order: XMHF's GRUB disk (under XMHF), then the Linux disk."""
        disk = self.disk(log)
        if not self.hv:
            return [disk]
        build_dir = build_variant(self.variant, log) if self.variant else "."
        return [grub_disk(log_dir, HV_CMDLINE + self.hv_extra, HV_MODULES, log, build_dir), disk]

    def run(self, log_dir):
        log = os.path.join(log_dir, "build.log")
        disks = self.boot_disks(log_dir, log)
        serial = os.path.join(log_dir, "serial.log")
        text, secs, ended = run_emulator("bochs", disks, serial, log_dir, smp=self.smp, mem=self.mem,
                                         timeout=self.timeout, end=END, grace=3.0,
                                         extra=["--bochsrc-extra", 'cpu: msrs="%s"' % msrs_file(self.fixed_ucode)])
        figures = {}
        ticks = parse_ticks(log_dir)
        if ticks:
            figures["ticks"] = ticks
        exits = parse_exits(text)
        if exits:
            figures["exits"] = sum(sum(c.values()) for c in exits.values())
            for reason in sorted({r for c in exits.values() for r in c}):
                figures["exits_r%d" % reason] = sum(c.get(reason, 0) for c in exits.values())
        err = self.check(text, ended)
        if err:
            why = re.search(r"^(XMHF: (FATAL|SECURITY).*|.*Kernel panic - not syncing.*)$", text, re.M)
            if why and why.group(0) not in err:
                err += " [%s]" % why.group(0).strip()
            err += " (see %s)" % serial
        return Result(self.name, not err, err, secs, figures)

    def check(self, text, ended):
        if not re.search(r"^LINUX: done$", text, re.M):
            return "Linux did not reach 'LINUX: done' (%s)" % ended
        expect = [r"^LINUX: init started$", r"^LINUX: cpus \d+$", r"^LINUX: memtotal \d+$", r"^LINUX: e820 ",
                  r"^LINUX: done$"]
        forbid = [r"Kernel panic", r"^LINUX: poweroff failed", r"^XMHF: (FATAL|SECURITY)", r"triple-faulted"]
        if self.hv:
            expect = [r"^XMHF: hypervisor region 0x", r"^XMHF: CPU 0: starting the guest at 0000:7c00 with DL=0x81"
                      ] + expect
        err = check_patterns(text, expect, forbid)
        if err:
            return err
        cpus = int(re.search(r"^LINUX: cpus (\d+)$", text, re.M).group(1))
        if cpus != self.smp:
            return "Linux sees %d CPUs, want %d" % (cpus, self.smp)
        kb = int(re.search(r"^LINUX: memtotal (\d+)$", text, re.M).group(1))
        # MemTotal is RAM less the kernel's own reservations: well above half of what Bochs has.
        if not self.mem * 1024 // 2 < kb < self.mem * 1024:
            return "MemTotal %d kB is implausible for %d MiB" % (kb, self.mem)
        # Bochs has VMX, and XMHF offers it unless told nested=0.
        want_vmx = "nested=0" not in self.hv_extra
        if not re.search(r"^LINUX: cpu flag %s$" % ("vmx" if want_vmx else "no-vmx"), text, re.M):
            return "Linux should%s see the vmx CPU flag" % ("" if want_vmx else " not")
        # TSC-deadline mode exactly where the microcode has no erratum, bare and under XMHF.
        flag = "tsc_deadline_timer" if self.fixed_ucode else "no-tsc_deadline_timer"
        if not re.search(r"^LINUX: cpu flag %s$" % flag, text, re.M):
            return "Linux should%s see the tsc_deadline_timer CPU flag" % ("" if self.fixed_ucode else " not")
        if self.hv:
            return check_region_hidden(text)
        return ""


# kvm_intel's module parameters on bare Bochs 2.7 (corei7_skylake_x), which KVM as L1 must also find
# under XMHF: the VMX features it uses are offered to it as the bare CPU offers them.
KVM_PARAMS_EXPECT = [("ept", "Y"), ("unrestricted_guest", "Y"), ("vpid", "Y"), ("enable_apicv", "N"),
                     ("eptad", "Y"), ("pml", "Y"), ("enable_shadow_vmcs", "Y"), ("nested", "Y")]

# What tests/linux/kvmtest.c prints when both of its KVM guests behave architecturally, line for line.
# Bare Bochs (Linux/KVM as L1 of Bochs's VMX) and XMHF with nested=1 (Linux/KVM as XMHF's L1) must both
# print exactly this, so they also agree with each other. See kvmtest.c for what each value is.
KVMTEST_EXPECT = """\
api version 0xc
real out8 0x11
real out16 sum 0x13ba
real in+1 0x5b
real cpuid0 ebx 0x756e6547
real cpuid0 edx 0x49656e69
real cpuid0 ecx 0x6c65746e
real mmio write 0xa5
real exits 10
real rax 0x3c
real rbx 0x12345678
real rcx 0x6c65746e
real rip 0x104c
real ds 0x0
real cr0.pe 0x0
real ram 0x13ba
long out32 0x89abcdef
long mmio write 0x123456789abcdef
long exits 3
long rbx 0x123456789abcdef0
long rcx 0xffffffffffffffff
long rip 0x102a
long efer.lma 0x1
long ram 0x123456789abcdef0
ok""".split("\n")


class LinuxKvmTest(LinuxTest):
    """Linux runs KVM (Debian's kvm.ko, kvm-intel.ko) as an L1 hypervisor and tests/linux/kvmtest.c runs
    two tiny L2 guests through /dev/kvm (tests/linux/init-kvm, then the ordinary init's checks). Bare:
    KVM on Bochs's VMX, the reference. Under XMHF with nested=1: a real L1 on the nested VMX emulation."""

    def disk(self, log):
        build_linux(log)
        return LINUX_KVM_DISK

    def check(self, text, ended):
        err = check_patterns(text, [r"^LINUX: kvm init started$", r"^LINUX: kvm insmod irqbypass ok$",
                                    r"^LINUX: kvm insmod kvm ok$", r"^LINUX: kvm insmod kvm-intel ok$",
                                    r"^KVMTEST: api version ", r"^LINUX: kvmtest exit 0$", r"^LINUX: kvm done$"],
                             # A KVM warning or oops (init-kvm prints dmesg's kvm/vmx lines): KVM saw
                             # something a CPU would not do, even if the guests still ran.
                             [r"^KVMTEST: FAIL", r"^LINUX: dmesg .*(WARNING|BUG|Oops|Call Trace)"])
        if err:
            fail = re.search(r"^(KVMTEST: FAIL.*|LINUX: kvm insmod \S+ failed|LINUX: kvm no /dev/kvm)$", text, re.M)
            return err + (" [%s]" % fail.group(0) if fail else "")
        # What kvm_intel made of the VMX features it was offered: bare Bochs's, and under XMHF the
        # same (issue 8: EPT A/D, PML, VMCS shadowing offered to L1; APICv needs posted interrupts,
        # which Bochs 2.7 lacks, so it is off on both).
        for name, want in KVM_PARAMS_EXPECT:
            m = re.search(r"^LINUX: kvm_intel %s (\S+)$" % name, text, re.M)
            if not m or m.group(1) != want:
                return "kvm_intel %s is %s, want %s (as on bare Bochs)" % (name, m.group(1) if m else "missing", want)
        got = re.findall(r"^KVMTEST: (.*)$", text, re.M)
        for i, want in enumerate(KVMTEST_EXPECT):
            if i >= len(got) or got[i] != want:
                return "KVMTEST line %d is %r, want %r" % (i + 1, got[i] if i < len(got) else None, want)
        if len(got) != len(KVMTEST_EXPECT):
            return "KVMTEST printed %d lines, want %d" % (len(got), len(KVMTEST_EXPECT))
        if self.variant == "event-logger":
            # Proof that the L2 guests ran through XMHF's nested VMX, not beside it: L1 (KVM) executed
            # VMXON, one VMLAUNCH per vCPU (two VMs) and a VMRESUME per later KVM_RUN (kvmtest returns to
            # user space 10 + 3 times, each a VM exit of L2 reflected to L1 and an entry back into L2).
            exits = parse_exits(text)
            if not exits:
                return "no 'XMHF: exits CPU' lines from the event-logger build"
            count = lambda r: sum(c.get(r, 0) for c in exits.values())
            for reason, least in ((27, 1), (20, 2), (24, 11)):
                if count(reason) < least:
                    return "XMHF saw %d %s exits of L1, want at least %d" % (count(reason), EXIT_REASONS[reason], least)
        # Then everything the ordinary Linux test checks (CPUs, memory, region hidden, vmx flag).
        return super().check(text, ended)


def tests():
    # Wall time on 2 host cores, two runs at a time: about 115 s with 1 CPU (bare or XMHF), 195 s bare
    # and 280 s under XMHF with 2 (an idle Bochs CPU costs host time while the other decompresses).
    out = [LinuxTest("linux-%s-smp%d" % ("xmhf" if hv else "bare", smp), smp, hv, timeout=400 if smp == 1 else 600)
           for hv in (False, True) for smp in (1, 2)]
    # The local APIC timer in TSC-deadline mode, as on CPUs without the erratum (UCODE_FIXED).
    out += [LinuxTest("linux-%s-tscdeadline-smp2" % ("xmhf" if hv else "bare"), 2, hv, timeout=600,
                      fixed_ucode=True) for hv in (False, True)]
    # Linux runs KVM and a KVM guest: bare (the reference) and as XMHF's L1 (nested=1).
    out.append(LinuxKvmTest("linux-kvm-bare-smp1", 1, False, timeout=600))
    # The event-logger build: its exit counts show L1's VMLAUNCH/VMRESUMEs (and are the run's figures).
    out.append(LinuxKvmTest("linux-kvm-xmhf-nested-smp1", 1, True, timeout=600, variant="event-logger",
                            hv_extra=" nested=1"))
    return out


def exit_count_variant(what, log):
    """The event-logger build for a bench's exit counts: its variant name, or None (with a line saying
    so) when it cannot be built, and the bench runs the default build without exit counts."""
    try:
        build_variant("event-logger", log)
        return "event-logger"
    except RuntimeError as e:
        print("%s: event-logger build failed (%s); using the default build, no exit counts" % (what, e))
        return None


def bench(log_root=None, smp=1):
    """Boots Linux with smp CPUs bare and under XMHF (the event-logger build when it can be built, for exit
    counts), in parallel, and prints ticks, their ratio and the VM exits by reason and CPU. Returns the
    Results."""
    log_root = log_root or os.path.join(BUILD, "linux-bench")
    os.makedirs(log_root, exist_ok=True)
    log = os.path.join(log_root, "build.log")
    variant = exit_count_variant("linux bench", log)
    runs = [LinuxTest("linux-bare-smp%d" % smp, smp, False),
            LinuxTest("linux-xmhf-smp%d" % smp, smp, True, variant=variant)]
    results = [None, None]

    def go(i):
        d = os.path.join(log_root, runs[i].name)
        os.makedirs(d, exist_ok=True)
        try:
            results[i] = runs[i].run(d)
        except Exception as e:  # a broken set-up is a failed run, not a crash of the runner
            results[i] = Result(runs[i].name, False, "%s: %s" % (type(e).__name__, e))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bare, hv = results
    for r in results:
        print("linux bench: %s %s (%.1f s wall)%s" % (r.name, "PASS" if r.ok else "FAIL", r.seconds,
                                                     ": " + r.detail if r.detail else ""))
    tb, th = bare.figures.get("ticks"), hv.figures.get("ticks")
    print("linux bench: ticks bare %s" % (tb if tb else "(unknown)"))
    print("linux bench: ticks under XMHF %s%s" % (th if th else "(unknown)", " (%s build)" % variant if variant else ""))
    if tb and th:
        print("linux bench: ratio %.3f (XMHF / bare), overhead %d ticks" % (th / tb, th - tb))
    text = read(os.path.join(log_root, hv.name, "serial.log"))
    lines = exit_lines(text)
    for l in lines:
        print(l)
    exits = parse_exits(text)
    if exits:
        total = {}
        for c in exits.values():
            for r, n in c.items():
                total[r] = total.get(r, 0) + n
        n = sum(total.values())
        print("linux bench: VM exits %d in all%s" % (n, ", at most %.0f ticks of overhead per exit (the overhead also "
                                                       "holds XMHF's GRUB stage and boot)" % ((th - tb) / n)
                                                       if tb and th and n else ""))
        rows = profile(text)
        print_profile("linux bench:", rows)
        svg = write_svg(os.path.join(BUILD, "bench", "linux-exits%s.svg" % ("" if smp == 1 else "-smp%d" % smp)),
                        "Linux boot to userspace under XMHF, %d CPU%s: VM exits and L0 ticks per exit" % (
                            smp, "" if smp == 1 else "s"), rows)
        if svg:
            print("linux bench: exit profile drawn in %s" % os.path.relpath(svg, ROOT))
    elif variant:
        print("linux bench: no exit counts in %s" % os.path.join(log_root, hv.name, "serial.log"))
    return results
