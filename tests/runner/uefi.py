"""UEFI boot tests: OVMF in QEMU (TCG, so no VMX) boots GRUB EFI from an ESP disk
(tools/mkespdisk.sh), whose menu entry chain-loads XMHF's EFI loader and then, once the loader has
returned, the next EFI program: xmhf-memcheck.efi, which checks with the firmware's own services that
the hypervisor region is reserved and the APs still serve the firmware (its "TEST name: PASS" lines).

What TCG cannot show: the VM entry into the firmware (no VMX). uefi-qemu-tcg-vmx-check runs the path
up to the VMX check; the dry runs (dryrun=1) do everything but VMX and hand the CPU back."""

import os
import threading

import linux
from boot import check_region_hidden
from core import Result, Test, check_patterns, run_emulator, sh

TESTAPP_DIR = os.path.join("build", "uefi-tests")
_build_lock = threading.Lock()
_built = [False]

ENTRY = """\
set timeout=0
set default=0
menuentry "XMHF" {{
	chainloader /EFI/xmhf/init-x86-amd64.efi {cmdline}
	boot
	echo "grub: XMHF's EFI loader returned"
	{after}
}}
"""
NEXT = "chainloader /EFI/tests/xmhf-memcheck.efi"
HALT = "halt"
SERIAL = "serial=115200,8n1,0x3f8"
MEMCHECK = ["uefi-region-table", "uefi-region-reserved", "uefi-region-e820-reserved", "uefi-region-not-allocatable"]


def build_testapps(log):
    with _build_lock:
        if not _built[0]:
            sh(["make", "-s", "uefi-testapp"], log)
            _built[0] = True


# The BIOS files on a UEFI machine: GRUB EFI's multiboot loads init, which must refuse.
BIOS_INIT_ENTRY = """\
set timeout=0
set default=0
menuentry "XMHF BIOS init" {
	multiboot /EFI/xmhf/init-x86-amd64.bin serial=115200,8n1,0x3f8
	module /EFI/xmhf/hypervisor-x86-amd64.bin.gz
	module --nounzip (hd0)+1
}
"""


def esp_disk(log_dir, cfg_text, log, loader="init-x86-amd64.efi", extra_files=()):
    cfg = os.path.join(log_dir, "grub.cfg")
    with open(cfg, "w") as f:
        f.write(cfg_text)
    img = os.path.join(log_dir, "esp.img")
    sh(["tools/mkespdisk.sh", "-o", img, "-c", cfg,
        "-f", "%s:/EFI/xmhf/init-x86-amd64.efi" % loader,
        "-f", "init-x86-amd64.bin:/EFI/xmhf/init-x86-amd64.bin",
        "-f", "hypervisor-x86-amd64.bin.gz:/EFI/xmhf/hypervisor-x86-amd64.bin.gz",
        "-f", "%s/xmhf-memcheck.efi:/EFI/tests/xmhf-memcheck.efi" % TESTAPP_DIR]
       + [a for f in extra_files for a in ("-f", f)], log)
    return img


class UefiTest(Test):
    platform = "qemu"

    def __init__(self, name, smp=2, mem=512, cmdline=SERIAL, after=NEXT, expect=(), forbid=(), end=None,
                 timeout=100, check=None, loader="init-x86-amd64.efi", grub_cfg=None, with_linux=False):
        super().__init__(name)
        self.smp = smp
        self.mem = mem
        self.expect = expect
        self.forbid = forbid
        self.end = end
        self.timeout = timeout
        self.check = check
        self.loader = loader
        self.grub_cfg = grub_cfg or ENTRY.format(cmdline=cmdline, after=after)
        self.with_linux = with_linux

    def run(self, log_dir):
        log = os.path.join(log_dir, "build.log")
        build_testapps(log)
        extra = []
        if self.with_linux:
            linux.build_linux(log)
            extra = ["%s/vmlinuz:/EFI/tests/vmlinuz" % linux.LINUX_OUT, "%s/initrd.img:/EFI/tests/initrd.img" % linux.LINUX_OUT]
        disk = esp_disk(log_dir, self.grub_cfg, log, self.loader, extra)
        serial = os.path.join(log_dir, "serial.log")
        text, secs, ended = run_emulator("qemu", [disk], serial, log_dir, smp=self.smp, mem=self.mem,
                                         timeout=self.timeout, end=self.end, extra=["--uefi"])
        if ended == "timeout":
            return Result(self.name, False, "timed out after %d s (see %s)" % (self.timeout, serial), secs)
        err = check_patterns(text, self.expect, self.forbid)
        if not err and self.check:
            err = self.check(text)
        return Result(self.name, not err, err or "", secs)


def dryrun(smp):
    """Everything but VMX, back to the firmware, and the next EFI program finds the region reserved."""
    checks = MEMCHECK + (["uefi-aps-run-firmware-code"] if smp > 1 else [])
    expect = [r"^XMHF \S+ \(amd64\): EFI loader", r"^XMHF: hypervisor region 0x[0-9a-f]+-0x[0-9a-f]+ \(\d+ MiB\), "
              r"EfiReservedMemoryType$", r"^XMHF: entering the runtime at 0x[0-9a-f]+; .*dry run"]
    expect += [r"^XMHF: CPU %d \(APIC id \d+\) online$" % i for i in range(smp)]
    expect += [r"^XMHF: runtime ready \(%d CPUs\)$" % smp,
               r"^XMHF: UEFI guest state: 64-bit at RIP 0x[0-9a-f]+ RSP 0x[0-9a-f]+; CR0 0x[0-9a-f]*8[0-9a-f]{7} ",
               r"^XMHF: UEFI guest segments: CS 0x[0-9a-f]+/0xa09b ",
               r"^XMHF: dry run: no VMX; %d APs? back in wait-for-SIPI; returning to the firmware" % (smp - 1),
               r"^XMHF: dry run: back in the firmware \(outcome 1\)", r"grub: XMHF's EFI loader returned",
               r"^xmhf-memcheck: the next EFI program"]
    expect += [r"^TEST %s: PASS$" % c for c in checks]
    expect += [r"^xmhf-memcheck: %d passed, 0 failed" % len(checks)]
    return UefiTest("uefi-qemu-tcg-dryrun-smp%d" % smp, smp=smp, cmdline=SERIAL + " dryrun=1", expect=expect,
                    forbid=[r"FATAL", r"TEST \S+: FAIL", r"warning"], check=check_region_hidden, timeout=100)


def dryrun_linux(smp):
    """The next boot entry is Linux (EFI stub, tests/linux's busybox initramfs): it boots on every CPU
    and its firmware memory map (the E820 table its EFI stub built from the UEFI map) has the region
    inside a Reserved entry and no System RAM in it."""
    after = ("linux /EFI/tests/vmlinuz console=ttyS0,115200 panic=-1 nokaslr quiet\n"
             "\tinitrd /EFI/tests/initrd.img")
    expect = [r"^XMHF: hypervisor region 0x", r"^XMHF: runtime ready \(%d CPUs\)$" % smp,
              r"^XMHF: dry run: back in the firmware \(outcome 1\)", r"grub: XMHF's EFI loader returned",
              r"^LINUX: init started$", r"^LINUX: cpus %d$" % smp, r"^LINUX: e820 ", r"^LINUX: done$"]
    return UefiTest("uefi-qemu-tcg-dryrun-linux-smp%d" % smp, smp=smp, cmdline=SERIAL + " dryrun=1", after=after,
                    expect=expect, forbid=[r"FATAL", r"Kernel panic"], check=linux.check_region_hidden,
                    end=r"^LINUX: done$", timeout=110, with_linux=True)


def bad(name, expect, **kw):
    """The loader refuses with one FATAL line, frees what it took and returns; GRUB goes on."""
    kw.setdefault("after", HALT)
    return UefiTest("uefi-qemu-tcg-bad-" + name, smp=1,
                    expect=[r"^XMHF: FATAL: " + expect, r"^XMHF: the EFI loader gives up; the firmware boots on "
                            r"without XMHF\.$", r"grub: XMHF's EFI loader returned"],
                    forbid=[r"entering the runtime", r"runtime ready"], timeout=80, **kw)


def tests():
    return [
        dryrun(1),
        dryrun(2),
        dryrun(4),
        dryrun_linux(2),
        # Without dryrun=1 the runtime goes on to VMX, which TCG lacks: the path up to that check.
        UefiTest("uefi-qemu-tcg-vmx-check", smp=2, cmdline=SERIAL,
                 expect=[r"^XMHF: entering the runtime at 0x[0-9a-f]+; the firmware continues as its guest$",
                         r"^XMHF: runtime ready \(2 CPUs\)$", r"^XMHF: UEFI guest state: 64-bit",
                         r"^XMHF: FATAL: this CPU cannot run the hypervisor: no VMX",
                         r"^XMHF: the guest was not started\.$"],
                 forbid=[r"dry run", r"back in the firmware", r"grub: XMHF"], end=r"the guest was not started",
                 timeout=80),
        bad("cmdline", r"bad command line 'serial=garbage': serial", cmdline="serial=garbage"),
        # 56 MiB: OVMF (Debian 2022.11) leaves about 7 MiB free, in pieces; the region needs 6 MiB in one.
        bad("no-room", r"not enough memory: the hypervisor needs a free \d+ MiB range", mem=56),
        # The loader's own objects behind an entry that calls it with no system table, then with
        # BootServices = NULL (as after ExitBootServices).
        UefiTest("uefi-qemu-tcg-bad-boot-services-gone", smp=1, after=HALT,
                 loader=os.path.join(TESTAPP_DIR, "xmhf-bsgone.efi"),
                 expect=[r"^XMHF: FATAL: not started by UEFI firmware \(no EFI system table\)",
                         r"^TEST uefi-loader-no-system-table: PASS$",
                         r"^XMHF: FATAL: UEFI boot services have already exited \(ExitBootServices ran\)",
                         r"^TEST uefi-loader-boot-services-gone: PASS$", r"grub: XMHF's EFI loader returned"],
                 forbid=[r"entering the runtime", r"TEST \S+: FAIL"], timeout=80),
        UefiTest("uefi-qemu-tcg-bad-bios-init", smp=1, grub_cfg=BIOS_INIT_ENTRY,
                 expect=[r"^XMHF \S+ \(amd64\): init,", r"^XMHF: FATAL: no PC BIOS \(the INT 13h vector is "
                         r"0000:0000\), as on a UEFI machine; there, boot init-x86-amd64.efi",
                         r"^XMHF: init halted\.$"],
                 forbid=[r"entering the runtime"], end=r"^XMHF: init halted\.$", timeout=80),
    ]
