"""Linux/KVM runs QEMU -enable-kvm inside Bochs (bare, or as XMHF's L1 with nested=1).

The L1 disk: Debian's kernel with initrd-qemu.img (tests/linux/build.sh: KVM's modules, QEMU with its
libraries and firmware; /init = tests/linux/init-qemu) plus a second initramfs, the job, made here: a
/job/run script and its files. init-qemu loads KVM with nested=1, runs /job/run, then the ordinary test
init prints L1's CPU count and memory and powers off (LinuxTest's checks). QEMU's serial port is L1's
console, so the QEMU guest's lines land in the Bochs serial log as they are printed.

kvm_l0_bench(): KVM as L0. Linux/KVM on bare Bochs runs the L1 test hypervisor lhv2 (bench=N) under
QEMU -cpu host: the L2 CPUID round trip it measures (RDTSC, i.e. Bochs ticks) is the KVM-as-L0 figure
beside guest.nested_bench()'s bare and XMHF-as-L0 ones.
"""

import os
import re
import subprocess

from core import BUILD, ROOT, Result, check_patterns, read, run_emulator, sh
from guest import GUEST_OUT, build_kernels
from linux import LINUX_OUT, LinuxTest, build_linux

INITRD_QEMU = os.path.join(LINUX_OUT, "initrd-qemu.img")
JOBS = os.path.join(LINUX_OUT, "jobs")
CMDLINE = "console=ttyS0,115200 panic=-1 reboot=t nokaslr clearcpuid=rdrand,rdseed quiet"
# QEMU with nothing it does not need: no default devices (no VGA, NIC, floppy: no option ROMs beyond
# the -kernel loaders), its serial port on stdio (L1's console), isa-debug-exit for lhv2's power-off.
QEMU = ("qemu-system-x86_64 -enable-kvm -cpu host -nodefaults -no-user-config -display none "
        "-serial stdio -device isa-debug-exit,iobase=0xf4,iosize=4")


def job_cpio(out, files, script):
    """A newc cpio holding /job/run (script, a shell script) and files {name in /job: source path},
    with fixed owners, modes and mtimes (the same job gives the same bytes). Returns its path."""
    stage = out + ".d"
    sh(["rm", "-rf", stage])
    os.makedirs(os.path.join(stage, "job"))
    for name, src in sorted(files.items()):
        sh(["cp", src, os.path.join(stage, "job", name)])
        os.chmod(os.path.join(stage, "job", name), 0o644)
    with open(os.path.join(stage, "job", "run"), "w") as f:
        f.write("#!/bin/sh\n" + script)
    os.chmod(os.path.join(stage, "job", "run"), 0o755)
    os.chmod(os.path.join(stage, "job"), 0o755)
    sh(["find", stage, "-exec", "touch", "-h", "-d", "@0", "{}", "+"])
    names = subprocess.run("find . -mindepth 1 | LC_ALL=C sort", shell=True, cwd=stage, check=True,
                           capture_output=True).stdout
    with open(out, "wb") as f:
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0", "--reproducible"], cwd=stage,
                       input=names, stdout=f, check=True)
    sh(["rm", "-rf", stage])
    return out


def qemu_disk(name, files, script, log):
    """The L1 GRUB disk for a job: Debian's kernel, initrd-qemu.img and the job's cpio (GRUB loads
    both initramfs images one after the other; Linux unpacks them in order)."""
    build_linux(log)
    d = os.path.join(JOBS, name)
    os.makedirs(d, exist_ok=True)
    job = job_cpio(os.path.join(d, "job.cpio"), files, script)
    cfg = os.path.join(d, "grub.cfg")
    with open(cfg, "w") as f:
        f.write("set timeout=0\nset default=0\nmenuentry \"Linux with QEMU (%s)\" {\n"
                "\tlinux /boot/vmlinuz %s\n\tinitrd /boot/initrd.img /boot/job.cpio\n}\n" % (name, CMDLINE))
    size = (sum(os.path.getsize(p) for p in (os.path.join(LINUX_OUT, "vmlinuz"), INITRD_QEMU, job))
            // 1048576 + 4)
    img = os.path.join(d, "disk.img")
    sh(["tools/mkgrubdisk.sh", "-o", img, "-c", cfg, "-s", str(size),
        "-f", "%s:/boot/vmlinuz" % os.path.join(LINUX_OUT, "vmlinuz"),
        "-f", "%s:/boot/initrd.img" % INITRD_QEMU, "-f", "%s:/boot/job.cpio" % job], log)
    return img


class QemuJobTest(LinuxTest):
    """Linux (1 level) running a QEMU job; the L1 checks are LinuxTest's (CPU count, memory, vmx flag,
    under XMHF the hidden region); job_check(text) adds the job's own."""

    job_files, job_script = {}, ""

    def __init__(self, name, smp, hv, mem=512, timeout=900, variant=None, hv_extra=""):
        super().__init__(name, smp, hv, mem=mem, timeout=timeout, variant=variant, hv_extra=hv_extra)

    def disk(self, log):
        return qemu_disk(self.name, self.job_files, self.job_script, log)

    def check(self, text, ended):
        err = check_patterns(text, [r"^LINUX: qemu init started$", r"^LINUX: kvm insmod kvm-intel ok$",
                                    r"^LINUX: job exit 0$", r"^LINUX: qemu done$"],
                             [r"^LINUX: dmesg .*(WARNING|BUG|Oops|Call Trace)"])
        return err or self.job_check(text) or super().check(text, ended)

    def job_check(self, text):
        return ""


def bench_job(n):
    """/job/run for lhv2 bench=n under QEMU-KVM; lhv2 ends QEMU through isa-debug-exit (status 99)."""
    return ('%s -m 64 -smp 1 -kernel /job/lhv2.bin -append "bench=%d"\n'
            'rc=$?\necho "LINUX: qemu exit $rc"\n[ $rc = 99 ]\n' % (QEMU, n))


class KvmL0BenchRun(QemuJobTest):
    def __init__(self, n):
        super().__init__("kvm-l0-bench", 1, False)
        self.n = n
        self.job_files = {"lhv2.bin": os.path.join(GUEST_OUT, "lhv2.bin")}
        self.job_script = bench_job(n)

    def job_check(self, text):
        if not re.search(r"^INFO bench: %d L2 CPUID round trips" % self.n, text, re.M):
            return "lhv2 printed no 'INFO bench: %d L2 CPUID round trips' line" % self.n
        return ""


BENCH_RE = re.compile(r"^INFO bench: (\d+) L2 CPUID round trips, (\d+) ticks, (\d+) ticks each", re.M)


def kvm_l0_bench(log_root=None, n=1000):
    """KVM as L0 (Linux/KVM on bare Bochs, lhv2 bench=n in QEMU -cpu host): prints the L2 CPUID round
    trip beside the bare and XMHF figures of guest.nested_bench() (read from its logs when it ran in
    this tree). Returns [Result] with figures {"ticks_each": ...}."""
    log_root = log_root or os.path.join(BUILD, "kvm-l0-bench")
    os.makedirs(log_root, exist_ok=True)
    log = os.path.join(log_root, "build.log")
    build_kernels(log)
    t = KvmL0BenchRun(n)
    d = os.path.join(log_root, t.name)
    os.makedirs(d, exist_ok=True)
    try:
        r = t.run(d)
    except Exception as e:  # a broken set-up is a failed run, not a crash of the runner
        r = Result(t.name, False, "%s: %s" % (type(e).__name__, e))
    m = BENCH_RE.search(read(os.path.join(d, "serial.log")))
    if m:
        r.figures["ticks_each"] = int(m.group(3))
    print("kvm-l0 bench: %s %s (%.1f s wall)%s" % (r.name, "PASS" if r.ok else "FAIL", r.seconds,
                                                  ": " + r.detail if r.detail else ""))
    cols = [("bare Bochs", os.path.join(BUILD, "nested-bench", "bare", "serial.log")),
            ("XMHF as L0", os.path.join(BUILD, "nested-bench", "xmhf-plain", "serial.log")),
            ("KVM as L0", os.path.join(d, "serial.log"))]
    print("kvm-l0 bench: L2 CPUID round trip handled by L1 (lhv2 bench=%d), Bochs ticks each:" % n)
    base = None
    for label, path in cols:
        m = BENCH_RE.search(read(path))
        each = int(m.group(3)) if m and int(m.group(1)) == n else None
        if label == "bare Bochs":
            base = each
        print("kvm-l0 bench:   %-11s %9s%s" % (label, each if each else "(no run)",
                                              "  x%.1f" % (each / base) if each and base and label != "bare Bochs"
                                              else ""))
    return [r]
