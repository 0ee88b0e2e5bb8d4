"""Boot tests: GRUB loads init + runtime + the guest's boot sector, on Bochs or QEMU, with good and bad
inputs. Each checks the serial lines users and later tests rely on."""

import os
import re
import shutil
import threading

from core import BUILD, ROOT, Result, Test, check_patterns, run_emulator, sh

GUEST_DISK = os.path.join(BUILD, "guest-bootsector.img")
_guest_lock = threading.Lock()

XMHF_ENTRY = """\
menuentry "XMHF" {{
	multiboot /boot/init-x86-amd64.bin {cmdline}
{modules}
}}
"""
GOOD_CMDLINE = "serial=115200,8n1,0x3f8 boot_drive=0x81 on_ready=poweroff"
GOOD_MODULES = ["/boot/hypervisor-x86-amd64.bin.gz", "--nounzip (hd1)+1"]


def guest_disk(log):
    """The second disk: a raw disk whose boot sector is tests/guests/bootsector (built once)."""
    with _guest_lock:
        if not os.path.exists(GUEST_DISK):
            out = os.path.join(ROOT, "build", "guests")
            sh(["tests/guests/bootsector/build.sh", out], log)
            sh(["tools/mkrawdisk.sh", "-o", GUEST_DISK + ".tmp", "-b", os.path.join(out, "bootsector.bin")], log)
            os.rename(GUEST_DISK + ".tmp", GUEST_DISK)
    return GUEST_DISK


def grub_disk(log_dir, cmdline, modules, log, build_dir="."):
    """A GRUB disk holding init and the runtime (from build_dir, relative to the top of the tree),
    whose only menu entry boots XMHF with the given command line and module lines."""
    cfg = os.path.join(log_dir, "grub.cfg")
    with open(cfg, "w") as f:
        f.write("set timeout=0\nset default=0\n")
        f.write(XMHF_ENTRY.format(cmdline=cmdline, modules="\n".join("\tmodule " + m for m in modules)))
    img = os.path.join(log_dir, "disk0.img")
    sh(["tools/mkgrubdisk.sh", "-o", img, "-c", cfg,
        "-f", "%s/init-x86-amd64.bin:/boot/init-x86-amd64.bin" % build_dir,
        "-f", "%s/hypervisor-x86-amd64.bin.gz:/boot/hypervisor-x86-amd64.bin.gz" % build_dir,
        "-f", "%s/hypervisor-x86-amd64.bin.gz:/boot/hypervisor-nounzip-test.bin.gz" % build_dir], log)
    return img


def parse_map(text, title):
    """Entries of the 'XMHF: memory map (title):' block as (start, end, type) tuples."""
    m = re.search(r"^XMHF: memory map \(%s\):\n((?:  0x.*\n)+)" % re.escape(title), text, re.M)
    if not m:
        return []
    out = []
    for line in m.group(1).splitlines():
        a, b, t = re.match(r"\s+0x([0-9a-f]+)-0x([0-9a-f]+) (.*)", line).groups()
        out.append((int(a, 16), int(b, 16), t))
    return out


def check_region_hidden(text):
    """The hypervisor region lies inside a reserved entry of the guest map and overlaps no usable RAM."""
    m = re.search(r"^XMHF: hypervisor region 0x([0-9a-f]+)-0x([0-9a-f]+)", text, re.M)
    if not m:
        return "no 'hypervisor region' line"
    lo, hi = int(m.group(1), 16), int(m.group(2), 16)
    if lo % (2 << 20):
        return "region base 0x%x is not 2 MiB aligned" % lo
    guest = parse_map(text, "guest")
    if not guest:
        return "no guest memory map printed"
    if not any(a <= lo and hi <= b and t == "reserved" for a, b, t in guest):
        return "region 0x%x-0x%x is not inside one reserved entry of the guest map" % (lo, hi)
    for a, b, t in guest:
        if t == "usable" and a <= hi and lo <= b:
            return "guest map has usable RAM 0x%x-0x%x inside the region" % (a, b)
    fw = parse_map(text, "firmware")
    if not any(a <= lo and hi <= b and t == "usable" for a, b, t in fw):
        return "region is not in firmware-usable RAM"
    return ""


class BootTest(Test):
    def __init__(self, name, platform, smp=1, mem=256, cmdline=GOOD_CMDLINE, modules=GOOD_MODULES,
                 expect=(), forbid=(), end=None, timeout=120, check=None):
        super().__init__(name)
        self.platform = platform
        self.smp = smp
        self.mem = mem
        self.cmdline = cmdline
        self.modules = modules
        self.expect = expect
        self.forbid = forbid
        self.end = end
        self.timeout = timeout
        self.check = check

    def run(self, log_dir):
        log = os.path.join(log_dir, "build.log")
        disks = [grub_disk(log_dir, self.cmdline, self.modules, log), guest_disk(log)]
        serial = os.path.join(log_dir, "serial.log")
        text, secs, ended = run_emulator(self.platform, disks, serial, log_dir, smp=self.smp, mem=self.mem,
                                         timeout=self.timeout, end=self.end)
        figures = {}
        m = re.search(r"boot took (\d+) TSC ticks", text)
        if m:
            figures["tsc_boot"] = int(m.group(1))
        if ended == "timeout":
            return Result(self.name, False, "timed out after %d s (see %s)" % (self.timeout, serial), secs)
        err = check_patterns(text, self.expect, self.forbid)
        if not err and self.check:
            err = self.check(text)
        return Result(self.name, not err, err or "", secs, figures)


def good_boot(platform, smp, mem=256):
    expect = [r"^XMHF \S+ \(amd64\)", r"^XMHF: memory map \(firmware\):", r"^XMHF: hypervisor region 0x"]
    expect += [r"^XMHF: CPU %d \(APIC id \d+\) online$" % i for i in range(smp)]
    expect += [r"^XMHF: runtime ready \(%d CPUs\)$" % smp, r"^XMHF: powering off"]
    name = "boot-%s-smp%d%s" % (platform if platform == "bochs" else "qemu-tcg", smp,
                                "" if mem == 256 else "-%dm" % mem)
    return BootTest(name, platform, smp=smp, mem=mem, expect=expect,
                    forbid=[r"FATAL", r"warning"], check=check_region_hidden)


def bad_input(name, expect, **kw):
    """init must print one clear FATAL line and halt: no triple fault, no silence."""
    return BootTest("bad-" + name, "bochs", expect=[r"^XMHF: FATAL: .*" + expect, r"^XMHF: init halted\.$"],
                    forbid=[r"runtime ready", r"entering the runtime"], end=r"^XMHF: init halted\.$",
                    timeout=60, **kw)


def guest_boot(platform, smp):
    """The VMX core starts the guest's boot sector, which reads its disk through the BIOS and powers off."""
    expect = [r"^XMHF: runtime ready \(%d CPUs\)$" % smp, r"^XMHF: EPT01: identity map",
              r"^XMHF: CPU 0: starting the guest at 0000:7c00 with DL=0x81",
              r"guest: boot sector reached, DL=0x81", r"^guest: int13h read ok", r"^guest: powering off"]
    return BootTest("vmx-bootsector-%s-smp%d" % (platform, smp), platform, smp=smp,
                    cmdline="serial=115200,8n1,0x3f8 boot_drive=0x81 on_stop=poweroff",
                    expect=expect, forbid=[r"FATAL", r"SECURITY"], check=check_region_hidden)


def tests():
    runtime = "/boot/hypervisor-x86-amd64.bin.gz"
    bootsector = "--nounzip (hd1)+1"
    return [
        BootTest("runtime-exception-dump-smp2", "bochs", smp=2, cmdline=GOOD_CMDLINE + " selftest=exception",
                 expect=[r"^XMHF: runtime ready \(2 CPUs\)$", r"^XMHF: selftest: executing UD2",
                         r"^XMHF: FATAL: CPU 0 \(APIC id 0\): exception 6 \(#UD\), error code 0x0$",
                         r"^  RIP=[0-9a-f]{16} CS=0008 RFLAGS=", r"^  RAX=", r"^  CR0=", r"^  stack\+00: ",
                         r"^XMHF: CPU halted\.$"],
                 forbid=[r"powering off"], end=r"^XMHF: CPU halted\.$", timeout=60),
        # Page-table hardening: page 0 absent, text read-only, heap not executable (pagetables.c).
        ] + [BootTest("runtime-selftest-%s" % what, "bochs", smp=2, cmdline=GOOD_CMDLINE + " selftest=" + what,
                      expect=[r"^XMHF: page tables: .*page 0 absent, text 0x[0-9a-f]+-0x[0-9a-f]+ read-only, "
                              r"the rest non-executable$", r"^XMHF: runtime ready \(2 CPUs\)$",
                              r"^XMHF: selftest: " + start,
                              r"^XMHF: FATAL: CPU 0 \(APIC id 0\): exception 14 \(#PF\), error code %s$" % code,
                              r"^XMHF: CPU halted\.$"],
                      forbid=[r"powering off", r"^XMHF: selftest: (read 0x|text written|heap code ran)"],
                      end=r"^XMHF: CPU halted\.$", timeout=60)
             for what, start, code in (("null", "reading address 0", "0x0"),
                                       ("write-text", "writing the hypervisor's text", "0x3"),
                                       ("exec-heap", "calling heap page", "0x11"))] + [
        guest_boot("bochs", 1),
        guest_boot("bochs", 2),
        BootTest("vmx-missing-qemu-tcg", "qemu", smp=1, cmdline="serial=115200,8n1,0x3f8 boot_drive=0x81",
                 expect=[r"^XMHF: runtime ready", r"^XMHF: FATAL: this CPU cannot run the hypervisor: no VMX",
                         r"^XMHF: the guest was not started\.$"],
                 forbid=[r"starting the guest", r"guest: boot sector"], end=r"the guest was not started",
                 timeout=60),
        good_boot("bochs", 1),
        good_boot("bochs", 2),
        good_boot("bochs", 4),
        good_boot("bochs", 2, mem=1024),
        good_boot("qemu", 2),
        bad_input("no-modules", r"missing module 0: the runtime", modules=[]),
        bad_input("no-bootsector", r"missing module 1: the guest's boot sector", modules=[runtime]),
        bad_input("runtime-not-first", r"module 0 .* is not the XMHF runtime", modules=[bootsector, runtime]),
        bad_input("runtime-gzipped", r"module 0 .* is still gzip-compressed",
                  modules=["--nounzip /boot/hypervisor-nounzip-test.bin.gz", bootsector]),
        bad_input("bootsector-not-bootable", r"module 1 .* is not a boot sector",
                  modules=[runtime, "--nounzip /boot/init-x86-amd64.bin"]),
        bad_input("bootsector-short", r"module 1 .* is shorter than a 512-byte boot sector",
                  modules=[runtime, "--nounzip /boot/grub/grub.cfg"]),
        bad_input("cmdline-serial", r"bad command line .*serial",
                  cmdline="serial=garbage boot_drive=0x81"),
        bad_input("cmdline-boot-drive", r"bad command line .*boot_drive",
                  cmdline="serial=115200,8n1,0x3f8 boot_drive=0x1234"),
        bad_input("memory-too-small", r"not enough memory", mem=16),
    ]
