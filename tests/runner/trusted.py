"""Trusted boot tests on QEMU TCG (no VMX there, so the runtime stops at its VMX check; everything
checked here happens before): TPM 2.0 measurements with swtpm, read back and replayed on the host;
VT-d DMA protection with QEMU's intel-iommu and edu devices (docs/trusted-boot.md)."""

import gzip
import hashlib
import os
import re
import shutil
import signal
import struct
import subprocess
import time

from boot import GOOD_MODULES, check_region_hidden, grub_disk, guest_disk
from core import BUILD, ROOT, Result, Test, check_patterns, run_emulator, sh

GUEST_DISK_SECTOR = os.path.join(BUILD, "guest-bootsector.img")
BASE_CMDLINE = "serial=115200,8n1,0x3f8 boot_drive=0x81"


def qemu_args(*args):
    out = []
    for a in args:
        out += ["--qemu-extra", a]
    return out


class Swtpm:
    """A TPM 2.0 emulator for one QEMU run: swtpm on a unix control socket in log_dir."""

    def __init__(self, log_dir):
        self.dir = os.path.join(log_dir, "swtpm")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "ctrl.sock")
        self.data_sock = os.path.join(self.dir, "data.sock")
        self.p = None

    def __enter__(self):
        if not shutil.which("swtpm"):
            raise RuntimeError("swtpm not installed (tools/install-deps.sh)")
        self.p = self.start(["--ctrl", "type=unixio,path=" + self.sock], self.sock)
        return self

    def start(self, args, wait_for):
        p = subprocess.Popen(["swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + self.dir,
                              "--log", "file=%s/swtpm.log,level=1" % self.dir] + args,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                             start_new_session=True)
        for _ in range(100):
            if os.path.exists(wait_for):
                break
            time.sleep(0.05)
        return p

    def qemu_extra(self):
        return qemu_args("-chardev", "socket,id=chrtpm,path=" + self.sock, "-tpmdev",
                         "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0")

    def pcrread(self, pcrs, log_dir):
        """Reads the SHA-256 PCRs with tpm2_pcrread into log_dir/tpm2_pcrread.txt once QEMU is gone: QEMU
        holds swtpm's data channel, so swtpm saves its volatile state (PCRs) and stops, and a second
        swtpm on the same state with a server socket answers tpm2-tools."""
        out = os.path.join(log_dir, "tpm2_pcrread.txt")
        ctrl2 = self.data_sock + ".ctrl"  # where the swtpm TCTI looks for it
        with open(out, "w") as f:
            for cmd in (["swtpm_ioctl", "--unix", self.sock, "-v"], ["swtpm_ioctl", "--unix", self.sock, "-s"]):
                f.write("$ %s\n" % " ".join(cmd))
                f.flush()
                subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=30)
            self.p.wait(timeout=10)
            p2 = self.start(["--server", "type=unixio,path=" + self.data_sock, "--ctrl", "type=unixio,path=" + ctrl2,
                             "--flags", "not-need-init"], self.data_sock)
            try:
                f.flush()
                subprocess.call(["tpm2_pcrread", "-T", "swtpm:path=" + self.data_sock,
                                 "sha256:" + ",".join(str(i) for i in pcrs)], stdout=f, stderr=subprocess.STDOUT,
                                timeout=30)
            finally:
                os.killpg(p2.pid, signal.SIGKILL)
                p2.wait()

    def __exit__(self, *exc):
        if self.p and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()


def extend(pcr, digest):
    return hashlib.sha256(pcr + digest).digest()


def check_measurements(text, log_dir):
    """The PCR values the hypervisor read back equal SHA-256 extends of the host's own hashes of the
    command line, the runtime image, the extra module (this test's grub.cfg) and the guest's boot
    sector, in the logged order."""
    m = re.search(r"^XMHF: command line: (.*)$", text, re.M)
    if not m:
        return "no command line printed"
    cmdline = m.group(1).encode()
    with gzip.open(os.path.join(ROOT, "hypervisor-x86-amd64.bin.gz")) as f:
        runtime = f.read()
    with open(GUEST_DISK_SECTOR, "rb") as f:
        sector = f.read(512)
    want_events = [(12, hashlib.sha256(cmdline).digest()), (13, hashlib.sha256(runtime).digest())]
    if "/boot/grub/grub.cfg" in open(os.path.join(log_dir, "grub.cfg")).read():  # measured as module 2
        with open(os.path.join(log_dir, "grub.cfg"), "rb") as f:
            want_events.append((13, hashlib.sha256(f.read()).digest()))
    want_events.append((14, hashlib.sha256(sector).digest()))
    got_events = [(int(p), bytes.fromhex(d)) for p, d in
                  re.findall(r"^XMHF: TPM: PCR (\d+) extended with SHA-256 ([0-9a-f]{64})", text, re.M)]
    if got_events != want_events:
        return "extends %r, want (host hashes) %r" % ([(p, d.hex()) for p, d in got_events],
                                                      [(p, d.hex()) for p, d in want_events])
    pcrs = {}
    for p, d in want_events:
        pcrs[p] = extend(pcrs.get(p, bytes(32)), d)
    got = {int(p): v for p, v in re.findall(r"^XMHF: TPM: PCR (\d+) \(SHA-256\) = ([0-9a-f]{64})$", text, re.M)}
    for p in sorted(pcrs):
        if got.get(p) != pcrs[p].hex():
            return "PCR %d read back as %s, host-computed %s" % (p, got.get(p), pcrs[p].hex())
    # And as tpm2-tools reads them from swtpm after QEMU is gone (Swtpm.pcrread).
    path = os.path.join(log_dir, "tpm2_pcrread.txt")
    tools = {int(i): v.lower() for i, v in re.findall(r"^\s+(\d+)\s*:\s*0x([0-9A-Fa-f]{64})$",
                                                     open(path).read() if os.path.exists(path) else "", re.M)}
    for p in sorted(pcrs):
        if tools.get(p) != pcrs[p].hex():
            return "tpm2_pcrread gives PCR %d = %s, host-computed %s (see %s)" % (p, tools.get(p), pcrs[p].hex(), path)
    with open(os.path.join(log_dir, "pcrs-host.txt"), "w") as f:
        f.write("".join("PCR %d: host %s, XMHF read back %s, tpm2_pcrread %s\n" % (p, pcrs[p].hex(), got[p], tools[p])
                        for p in sorted(pcrs)))
    return ""


def check_event_log(text, log_dir):
    """The hex dump of the event log parses with tpm2_eventlog, and its replay gives the PCRs read back."""
    data = bytes.fromhex("".join(re.findall(r"^XMHF: TPM: log [0-9a-f]{4}: ([0-9a-f]+)$", text, re.M)))
    m = re.search(r"^XMHF: TPM: event log at 0x[0-9a-f]+, (\d+) bytes, (\d+) events", text, re.M)
    if not m or len(data) != int(m.group(1)):
        return "event log dump (%d bytes) does not match the announced size" % len(data)
    path = os.path.join(log_dir, "eventlog.bin")
    with open(path, "wb") as f:
        f.write(data)
    if not shutil.which("tpm2_eventlog"):
        return "tpm2_eventlog not installed (tools/install-deps.sh)"
    p = subprocess.run(["tpm2_eventlog", path], capture_output=True, text=True)
    with open(os.path.join(log_dir, "eventlog.txt"), "w") as f:
        f.write(p.stdout + p.stderr)
    if p.returncode != 0:
        return "tpm2_eventlog rejects the log: %s" % p.stderr.strip()[:200]
    got = {int(p): v for p, v in re.findall(r"^XMHF: TPM: PCR (\d+) \(SHA-256\) = ([0-9a-f]{64})$", text, re.M)}
    replay = {int(i): v.lower() for i, v in re.findall(r"^\s+(\d+)\s*:\s*0x([0-9A-Fa-f]{64})$",
                                                        p.stdout.split("pcrs:")[-1], re.M)}
    for pcr, v in got.items():
        if replay.get(pcr) != v:
            return "tpm2_eventlog replays PCR %d to %s, the TPM has %s" % (pcr, replay.get(pcr), v)
    if not got:
        return "no PCR values read back"
    return ""


class TrustedTest(Test):
    platform = "qemu"

    def __init__(self, name, cmdline, expect, forbid=(), tpm=False, extra=(), end=None, check=None,
                 modules=GOOD_MODULES, timeout=90, platform="qemu"):
        super().__init__(name)
        self.platform = platform
        self.smp = 1
        self.cmdline = cmdline
        self.expect = expect
        self.forbid = forbid
        self.tpm = tpm
        self.extra = list(extra)
        self.end = end or r"^XMHF: (the guest was not started\.|init halted\.)$"
        self.check = check
        self.modules = modules
        self.timeout = timeout

    def first_disk(self, log_dir, log):
        return grub_disk(log_dir, self.cmdline, self.modules, log)

    def run(self, log_dir):
        log = os.path.join(log_dir, "build.log")
        disks = [self.first_disk(log_dir, log), guest_disk(log)]
        serial = os.path.join(log_dir, "serial.log")
        extra = list(self.extra)
        tpm = Swtpm(log_dir) if self.tpm else None
        try:
            if tpm:
                tpm.__enter__()
                extra += tpm.qemu_extra()
            text, secs, ended = run_emulator(self.platform, disks, serial, log_dir, timeout=self.timeout,
                                             end=self.end, extra=extra)
            if tpm:
                tpm.pcrread([12, 13, 14], log_dir)
        finally:
            if tpm:
                tpm.__exit__()
        if ended == "timeout":
            return Result(self.name, False, "timed out after %d s (see %s)" % (self.timeout, serial), secs)
        err = check_patterns(text, self.expect, self.forbid)
        if not err and self.check:
            err = self.check(text, log_dir)
        return Result(self.name, not err, err, secs)


def tpm_tests():
    return [
        TrustedTest("tpm-measure-qemu-tcg", BASE_CMDLINE + " selftest=tpm-log",
                    expect=[r"^XMHF: TPM 2\.0 at 0xfed40000 \(TIS, vendor 0x1014",
                            r"^XMHF: TPM: PCR 12 extended", r"^XMHF: TPM: PCR 13 extended",
                            r"^XMHF: TPM: PCR 13 extended with SHA-256 [0-9a-f]{64} \(XMHF module 2 \)",
                            r"^XMHF: TPM: PCR 14 extended", r"^XMHF: TPM: PCR 14 \(SHA-256\) = ",
                            r"^XMHF: TPM: event log at 0x[0-9a-f]+, \d+ bytes, 4 events",
                            r"^XMHF: runtime ready",
                            r"^XMHF: FATAL: this CPU cannot run the hypervisor: no VMX"],
                    forbid=[r"TPM: .*(failed|timeout|incomplete)"], tpm=True,
                    modules=GOOD_MODULES + ["/boot/grub/grub.cfg"],
                    check=lambda text, d: check_measurements(text, d) or check_event_log(text, d)),
        # No TPM: one line, the boot goes on; tpm=required stops in init instead.
        TrustedTest("tpm-absent-qemu-tcg", BASE_CMDLINE,
                    expect=[r"^XMHF: TPM: no TPM at 0xfed40000 \(TIS\); nothing measured, booting on",
                            r"^XMHF: runtime ready"],
                    forbid=[r"TPM: PCR", r"FATAL: tpm"]),
        TrustedTest("tpm-required-absent-qemu-tcg", BASE_CMDLINE + " tpm=required",
                    expect=[r"^XMHF: TPM: no TPM at 0xfed40000 \(TIS\); nothing measured$",
                            r"^XMHF: FATAL: tpm=required, and the boot could not be measured into the TPM$",
                            r"^XMHF: init halted\.$"],
                    forbid=[r"runtime ready"]),
        TrustedTest("tpm-off-qemu-tcg", BASE_CMDLINE + " tpm=off",
                    expect=[r"^XMHF: TPM: tpm=off, nothing measured$", r"^XMHF: runtime ready"],
                    forbid=[r"TPM: PCR"], tpm=True),
    ]


Q35_IOMMU_EDU = qemu_args("-machine", "q35", "-device", "intel-iommu", "-device", "edu")
DMA_CMDLINE = BASE_CMDLINE + " selftest=dma"
INIT_DENY_ALL = r"^XMHF: VT-d: all DMA blocked until the runtime's tables are in \(1 of 1 unit\)$"
DMA_READY = [INIT_DENY_ALL, r"^XMHF: entering the runtime",
             r"^XMHF: VT-d: DMA remapping on in 1 unit \(\d-level tables, \d+ GiB mapped, \d+ KiB of tables\); "
             r"region 0x[0-9a-f]+-0x[0-9a-f]+ not reachable by DMA; DMAR hidden from the guest$",
             r"^XMHF: runtime ready",
             r"^XMHF: selftest: DMA engine edu at 00:[0-9a-f]{2}\.0, BAR0 0x[0-9a-f]+; VT-d on$",
             r"^XMHF: selftest: DMA guest 0x70000 -> device -> guest 0x71000: copied, 2048 bytes match$"]


def check_fault_addresses(text, log_dir):
    """The fault records name the edu device and exactly the two region pages the test aimed at."""
    w = re.search(r"^XMHF: selftest: DMA write into the hypervisor region at (0x[0-9a-f]+)", text, re.M)
    r = re.search(r"^XMHF: selftest: DMA read from the hypervisor region at (0x[0-9a-f]+)", text, re.M)
    edu = re.search(r"edu at (00:[0-9a-f]{2}\.0)", text)
    faults = re.findall(r"^XMHF: VT-d: DMA fault: device (\S+) (read|write) at (0x[0-9a-f]+) blocked", text, re.M)
    want = [(edu.group(1), "write", w.group(1)), (edu.group(1), "read", r.group(1))]
    if sorted(faults) != sorted(want):
        return "fault records %r, want %r" % (faults, want)
    region = re.search(r"^XMHF: hypervisor region 0x([0-9a-f]+)-0x([0-9a-f]+)", text, re.M)
    lo, hi = int(region.group(1), 16), int(region.group(2), 16)
    for _, _, a in faults:
        if not lo <= int(a, 16) <= hi:
            return "fault address %s is outside the region 0x%x-0x%x" % (a, lo, hi)
    return ""


def dmar_body(units):
    """The body of a DMAR after its ACPI header (QEMU's -acpitable adds the header and its checksum):
    HAW 39 bits, then one DRHD per (length, segment, register base)."""
    body = bytes([38, 0]) + bytes(10)
    for length, segment, base in units:
        body += struct.pack("<HHBBHQ", 0, length, 1, 0, segment, base)
    return body


class ExtraDmarTest(TrustedTest):
    """A DMAR of our own on the q35 machine (QEMU's -acpitable), with or without QEMU's own."""

    def __init__(self, name, cmdline, units, expect, extra=(), **kw):
        super().__init__(name, cmdline, expect, **kw)
        self.units = units
        self.more = list(extra)

    def run(self, log_dir):
        path = os.path.join(log_dir, "dmar-body.bin")
        with open(path, "wb") as f:
            f.write(dmar_body(self.units))
        self.extra = qemu_args("-machine", "q35", "-acpitable", "sig=DMAR,rev=1,data=" + path) + self.more
        return super().run(log_dir)


def dma_tests():
    return [
        TrustedTest("vtd-dma-blocked-qemu-tcg", DMA_CMDLINE, extra=Q35_IOMMU_EDU,
                    expect=DMA_READY + [
                        r"^XMHF: selftest: DMA write into the hypervisor region at 0x[0-9a-f]+: blocked, page unchanged$",
                        r"^XMHF: selftest: DMA read from the hypervisor region at 0x[0-9a-f]+: blocked, nothing leaked$",
                        r"^XMHF: selftest: 2 DMA fault records reported$",
                        r"^XMHF: FATAL: this CPU cannot run the hypervisor: no VMX"],
                    forbid=[r"NOT BLOCKED", r"not copied", r"DMA protection off"], check=check_fault_addresses),
        # Before the runtime's tables are in, init's deny-all table refuses every DMA, guest pages too.
        TrustedTest("vtd-dma-early-deny-all-qemu-tcg", BASE_CMDLINE + " selftest=dma-early", extra=Q35_IOMMU_EDU,
                    expect=[INIT_DENY_ALL, r"^XMHF: entering the runtime",
                            r"^XMHF: selftest: DMA engine edu at 00:[0-9a-f]{2}\.0, BAR0 0x[0-9a-f]+; VT-d as init left it$",
                            r"^XMHF: selftest: DMA guest 0x70000 -> device -> guest 0x71000: not copied, bytes differ$",
                            r"^XMHF: selftest: DMA write into the hypervisor region at 0x[0-9a-f]+: blocked, page unchanged$",
                            r"^XMHF: selftest: DMA read from the hypervisor region at 0x[0-9a-f]+: blocked, nothing leaked$",
                            r"^XMHF: VT-d: DMA remapping on in 1 unit",
                            r"^XMHF: VT-d: DMA fault: device 00:[0-9a-f]{2}\.0 read at 0x70000 blocked, reason 0x1 "
                            r"\(root entry not present\)$",
                            r"^XMHF: selftest: [1-9]\d* DMA fault records from init's deny-all table$",
                            r"^XMHF: runtime ready"],
                    forbid=[r"NOT BLOCKED", r"copied, 2048 bytes match"]),
        # The control: the same DMAs with vtd=off reach the region, so the test above can fail.
        TrustedTest("vtd-off-dma-reaches-region-qemu-tcg", DMA_CMDLINE + " vtd=off", extra=Q35_IOMMU_EDU,
                    forbid=[r"all DMA blocked"],
                    expect=[r"^XMHF: VT-d: vtd=off, DMA protection off$",
                            r"^XMHF: selftest: DMA engine edu at .*; VT-d off$",
                            r"^XMHF: selftest: DMA guest 0x70000 -> device -> guest 0x71000: copied",
                            r"^XMHF: selftest: DMA write into the hypervisor region at 0x[0-9a-f]+: NOT BLOCKED",
                            r"^XMHF: selftest: DMA read from the hypervisor region at 0x[0-9a-f]+: NOT BLOCKED",
                            r"^XMHF: selftest: 0 DMA fault records reported$"]),
        # No IOMMU (the i440fx machine): one line, the boot goes on; vtd=required stops.
        TrustedTest("vtd-absent-qemu-tcg", BASE_CMDLINE,
                    expect=[r"^XMHF: VT-d: no ACPI DMAR table .*; DMA protection off, booting on",
                            r"^XMHF: runtime ready", r"^XMHF: FATAL: this CPU cannot run the hypervisor: no VMX"]),
        TrustedTest("vtd-required-absent-qemu-tcg", BASE_CMDLINE + " vtd=required",
                    expect=[r"^XMHF: VT-d: no ACPI DMAR table .*; vtd=required$",
                            r"^XMHF: FATAL: CPU 0 \(APIC id 0\): DMA protection required but not in force"],
                    forbid=[r"runtime ready"], end=r"^XMHF: CPU halted\.$|the guest was not started"),
        # A DRHD claiming 64 bytes in a 16-byte remainder.
        ExtraDmarTest("vtd-garbage-dmar-qemu-tcg", BASE_CMDLINE, [(64, 0, 0xfed90000)],
                        expect=[r"^XMHF: VT-d: the DMAR table is malformed: structure at offset 48 has a bad length "
                                r"64; DMA protection off, booting on",
                                r"^XMHF: runtime ready", r"^XMHF: FATAL: this CPU cannot run the hypervisor: no VMX"]),
        # Two DMARs (QEMU's and one more): the guest must see neither (before, hiding the first showed
        # it the second, and the runtime stopped on its own check).
        ExtraDmarTest("vtd-two-dmars-qemu-tcg", DMA_CMDLINE, [(16, 0, 0xfed90000), (16, 1, 0xfed91000)],
                      extra=qemu_args("-device", "intel-iommu", "-device", "edu"),
                      expect=DMA_READY[:2] + [r"^XMHF: VT-d: DMA remapping on in 1 unit .*DMAR hidden from the guest "
                                              r"\(all of them\)$"] + DMA_READY[3:] +
                      [r"^XMHF: selftest: DMA write into the hypervisor region at 0x[0-9a-f]+: blocked"],
                      forbid=[r"NOT BLOCKED", r"still visible", r"cannot be hidden"]),
    ]


TBOOT = "/boot/tboot.gz"  # Debian package tboot


def tboot_disk(log_dir, cmdline, sinit, log):
    """A GRUB disk whose entry is the tboot chain 20_xmhf writes: tboot, init as a stripped ELF, the
    runtime, the guest's boot sector, and optionally a module named like an SINIT ACM."""
    elf = os.path.join(log_dir, "init-x86-amd64.elf")
    sh(["objcopy", "--strip-debug", os.path.join(ROOT, "init-x86-amd64.elf"), elf], log)
    lines = ["multiboot /boot/tboot.gz logging=serial,memory serial=115200,8n1,0x3f8",
             "module /boot/init-x86-amd64.elf " + cmdline, "module /boot/hypervisor-x86-amd64.bin.gz",
             "module --nounzip (hd1)+1"]
    files = ["-f", TBOOT + ":/boot/tboot.gz", "-f", elf + ":/boot/init-x86-amd64.elf",
             "-f", os.path.join(ROOT, "hypervisor-x86-amd64.bin.gz") + ":/boot/hypervisor-x86-amd64.bin.gz"]
    if sinit:
        bad = os.path.join(log_dir, "garbage_SINIT_99.BIN")
        with open(bad, "wb") as f:
            f.write(bytes(range(256)) * 64)
        files += ["-f", bad + ":/boot/garbage_SINIT_99.BIN"]
        lines.append("module /boot/garbage_SINIT_99.BIN")
    cfg = os.path.join(log_dir, "grub.cfg")
    with open(cfg, "w") as f:
        f.write("set timeout=0\nset default=0\nmenuentry \"XMHF, with tboot\" {\n%s\n}\n" %
                "\n".join("\t" + ln for ln in lines))
    img = os.path.join(log_dir, "disk0.img")
    sh(["tools/mkgrubdisk.sh", "-o", img, "-c", cfg] + files, log)
    return img


class TbootTest(TrustedTest):
    """GRUB -> tboot -> XMHF init -> runtime (-> the guest on Bochs). Without TXT (neither emulator has
    SMX) tboot launches init unmeasured; the checks are that the chain works, and that a corrupt SINIT
    costs nothing but tboot's message: tboot does not recognise it and passes it on as an extra module."""

    def __init__(self, name, platform, cmdline, expect, forbid=(), sinit=False, timeout=120, check=None,
                 tpm=False):
        super().__init__(name, cmdline, expect, forbid, tpm=tpm, check=check, timeout=timeout, platform=platform)
        self.sinit = sinit

    def first_disk(self, log_dir, log):
        if not os.path.exists(TBOOT):
            raise RuntimeError("%s missing (apt-get install tboot; tools/install-deps.sh)" % TBOOT)
        return tboot_disk(log_dir, self.cmdline, self.sinit, log)


TBOOT_START = [r"^TBOOT: \*+ TBOOT \*+", r"^TBOOT: transfering control to kernel"]


def tboot_tests():
    return [
        TbootTest("tboot-chain-qemu-tcg", "qemu", BASE_CMDLINE, sinit=True,
                  expect=TBOOT_START[:1] + [r"^TBOOT: no SINIT AC module found"] + TBOOT_START[1:] + [
                      r"^XMHF \S+ \(amd64\): init", r"^XMHF: modules: runtime \d+ bytes, boot sector at 0x[0-9a-f]+, 1 extra$",
                      r"^XMHF: runtime ready", r"^XMHF: FATAL: this CPU cannot run the hypervisor: no VMX"],
                  check=lambda text, d: check_region_hidden(text)),
        # tboot without TXT leaves the TPM to init, which measures as without tboot.
        TbootTest("tboot-chain-tpm-measure-qemu-tcg", "qemu", BASE_CMDLINE, tpm=True,
                  expect=TBOOT_START + [r"^XMHF: TPM 2\.0 at 0xfed40000", r"^XMHF: TPM: PCR 14 \(SHA-256\) = ",
                                        r"^XMHF: runtime ready"],
                  forbid=[r"TPM: .*(failed|timeout|incomplete)"], check=check_measurements),
        TbootTest("tboot-chain-vmx-bootsector-bochs", "bochs", BASE_CMDLINE + " on_stop=poweroff",
                  expect=TBOOT_START + [r"^XMHF \S+ \(amd64\): init", r"^XMHF: runtime ready \(1 CPUs\)$",
                                        r"^XMHF: CPU 0: starting the guest at 0000:7c00 with DL=0x81",
                                        r"guest: boot sector reached, DL=0x81", r"^guest: int13h read ok",
                                        r"^guest: powering off"],
                  forbid=[r"FATAL", r"SECURITY"], timeout=300, check=lambda text, d: check_region_hidden(text)),
    ]


def tests():
    return tpm_tests() + dma_tests() + tboot_tests()
