"""Linux/KVM runs QEMU -enable-kvm inside Bochs (bare, or as XMHF's L1 with nested=1).

The L1 disk: Debian's kernel with initrd-qemu.img (tests/linux/build.sh: KVM's modules, QEMU with its
libraries and firmware; /init = tests/linux/init-qemu) plus a second initramfs, the job, made here: a
/job/run script and its files. init-qemu loads KVM with nested=1, runs /job/run, then the ordinary test
init prints L1's CPU count and memory and powers off (LinuxTest's checks). QEMU's serial port is L1's
console, so the QEMU guest's lines land in the Bochs serial log as they are printed.

The linux-kvm-l2-* tests (make test-long): the job boots a small Linux (tests/linux/build-l2-kernel.sh,
config tests/linux/l2.config) with QEMU -enable-kvm -kernel as L2, with as many CPUs as L1 has; its
init (tests/linux/init-l2) prints `LINUX-L2: ` lines: CPU count, memory, a workload (busybox commands,
timers and cross-CPU wake-ups, virtio-blk reads and a write) that the runner checks. Bare: Linux/KVM on
Bochs's VMX, the reference; under XMHF (nested=1) KVM is XMHF's L1 and the small Linux its L2.

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
# the -kernel loaders); QEMU: its serial port on stdio (L1's console).
QEMU_BASE = "qemu-system-x86_64 -enable-kvm -cpu host -nodefaults -no-user-config -display none"
QEMU = QEMU_BASE + " -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=4"


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
    """/job/run for lhv2 under QEMU-KVM, twice: bench=1, then bench=n. KVM's statistics (debugfs, summed
    over the live VMs) are read while QEMU still runs, after lhv2 is done (its power-off port is not
    there, so it halts): the difference of the two runs' L0 exit counts over n-1 is KVM's L0 exits per
    L2 CPUID round trip."""
    return ('''mount -t debugfs debugfs /sys/kernel/debug
k=/sys/kernel/debug/kvm
run() {
    rm -f /tmp/lhv2.log
    %s -m 64 -smp 1 -serial file:/tmp/lhv2.log -kernel /job/lhv2.bin -append "bench=$1" &
    q=$!
    while kill -0 $q 2>/dev/null && ! grep -q "^TESTS DONE" /tmp/lhv2.log 2>/dev/null; do sleep 1; done
    echo "LINUX: kvm stats bench=$1 exits $(cat $k/exits) nested_run $(cat $k/nested_run)"
    kill $q
    wait $q
    cat /tmp/lhv2.log
    grep -q "^TESTS DONE" /tmp/lhv2.log
}
run 1 && run %d
''' % (QEMU_BASE, n))


class KvmL0BenchRun(QemuJobTest):
    def __init__(self, n):
        super().__init__("kvm-l0-bench", 1, False)
        self.n = n
        self.job_files = {"lhv2.bin": os.path.join(GUEST_OUT, "lhv2.bin")}
        self.job_script = bench_job(n)

    def job_check(self, text):
        if not ticks_each(text, self.n):
            return "lhv2 printed no 'INFO bench: %d L2 CPUID round trips' line" % self.n
        if len(STATS_RE.findall(text)) != 2:
            return "no KVM statistics for both lhv2 runs"
        return ""


BENCH_RE = re.compile(r"^INFO bench: (\d+) L2 CPUID round trips, (\d+) ticks, (\d+) ticks each", re.M)
STATS_RE = re.compile(r"^LINUX: kvm stats bench=(\d+) exits (\d+) nested_run (\d+)$", re.M)


def ticks_each(text, n):
    """lhv2's ticks per round trip in its bench=n run, or None."""
    for trips, _, each in BENCH_RE.findall(text):
        if int(trips) == n:
            return int(each)
    return None


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
    text = read(os.path.join(d, "serial.log"))
    if ticks_each(text, n):
        r.figures["ticks_each"] = ticks_each(text, n)
    stats = {int(b): (int(e), int(nr)) for b, e, nr in STATS_RE.findall(text)}
    if 1 in stats and n in stats:
        r.figures["l0_exits_each"] = (stats[n][0] - stats[1][0]) / (n - 1)
        r.figures["l2_entries_each"] = (stats[n][1] - stats[1][1]) / (n - 1)
    print("kvm-l0 bench: %s %s (%.1f s wall)%s" % (r.name, "PASS" if r.ok else "FAIL", r.seconds,
                                                  ": " + r.detail if r.detail else ""))
    cols = [("bare Bochs", os.path.join(BUILD, "nested-bench", "bare", "serial.log")),
            ("XMHF as L0", os.path.join(BUILD, "nested-bench", "xmhf-plain", "serial.log")),
            ("KVM as L0", os.path.join(d, "serial.log"))]
    print("kvm-l0 bench: L2 CPUID round trip handled by L1 (lhv2 bench=%d), Bochs ticks each:" % n)
    base = None
    for label, path in cols:
        each = ticks_each(read(path), n)
        if label == "bare Bochs":
            base = each
        print("kvm-l0 bench:   %-11s %9s%s" % (label, each if each else "(no run)",
                                              "  x%.1f" % (each / base) if each and base and label != "bare Bochs"
                                              else ""))
    if "l0_exits_each" in r.figures:
        print("kvm-l0 bench: KVM's L0 exits per L2 CPUID round trip: %.1f (VM entries into L2: %.1f; KVM's debugfs "
              "exits and nested_run, bench=%d less bench=1)" % (r.figures["l0_exits_each"],
                                                                r.figures["l2_entries_each"], n))
    return [r]
