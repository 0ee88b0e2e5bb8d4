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

from core import BUILD, ROOT, Result, build_once, check_patterns, read, run_emulator, sh
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


L2_MEM = 96  # MiB, QEMU -m
L2_APPEND = "console=ttyS0,115200 panic=-1 quiet"
# What the L2 workload prints when it works (init-l2): seq 1..1000 summed; the first 16 hex digits of
# the SHA-256 of `seq 1 500 | sort -r` (busybox, as on the host); 200 lines through the pipe.
L2_EXPECT = [r"^LINUX-L2: init started$", r"^LINUX-L2: cpus \d+$", r"^LINUX-L2: memtotal \d+$",
             r"^LINUX-L2: sum 500500$", r"^LINUX-L2: sha256 85eaffb8717272e2$",
             r"^LINUX-L2: pipe lines 200$", r"^LINUX-L2: vda sectors 2048$", r"^LINUX-L2: vda write ok$",
             r"^LINUX-L2: done$", r"^LINUX: qemu exit 0$", r"^LINUX: l2 disk marker written by L2$"]


def l2_job(smp):
    """/job/run: a 1 MiB disk (the first MiB of the L2's bzImage: a copy, cheap in Bochs where `seq` output
    cost L1 half a minute under XMHF) for virtio-blk, QEMU booting the L2 kernel with smp CPUs
    (-no-reboot: the L2's reset ends QEMU), then the sector L2 wrote. One socket per CPU: the L2 has
    no ACPI and takes its CPUs from SeaBIOS's MP table, which lists only the first CPU of each package
    (QEMU 7.2's -smp N alone makes N cores in one socket, so the L2 found 1 CPU)."""
    return ('d=/tmp/l2disk.img\n'
            'head -c 1048576 /job/bzImage >$d\n'
            'echo "LINUX: l2 disk md5 $(md5sum <$d | cut -d" " -f1)"\n'
            'echo "LINUX: uptime before qemu $(cut -d" " -f1 /proc/uptime)"\n'
            '%s -m %d -smp %d,sockets=%d -no-reboot -kernel /job/bzImage -initrd /job/initrd-l2.img -append "%s" '
            '-drive file=$d,if=virtio,format=raw\n'
            'rc=$?\necho "LINUX: uptime after qemu $(cut -d" " -f1 /proc/uptime)"\n'
            'echo "LINUX: qemu exit $rc"\n'
            'echo "LINUX: l2 disk marker $(dd if=$d bs=512 skip=1024 count=1 2>/dev/null | head -n1)"\n'
            '[ $rc = 0 ]\n' % (QEMU, L2_MEM, smp, smp, L2_APPEND))


def build_l2_kernel(log):
    # Once per run, behind build_once's lock: the four linux-kvm-l2-* tests run in parallel, and two
    # builds in one source tree (a clean checkout, as in CI) wreck each other's unpacking and objects.
    build_once("tests/linux/build-l2-kernel.sh", LINUX_OUT, log)
    return os.path.join(LINUX_OUT, "l2", "bzImage")


def irq_counts(text, name):
    """(before, after) per-CPU counts of an interrupt line of init-l2 (`LINUX-L2: loc before N.. after N..`)."""
    m = re.search(r"^LINUX-L2: %s before((?: \d+)+) after((?: \d+)+)$" % name, text, re.M)
    if not m:
        return None
    return [int(x) for x in m.group(1).split()], [int(x) for x in m.group(2).split()]


def l2_times(text):
    """Figures (guest seconds, never asserted): l2_boot_s, the L2's uptime (kvm-clock) when its init
    starts, i.e. its boot to userspace; l1_qemu_s, L1's uptime across the whole QEMU run (L2 boot,
    workload, reset). In Bochs both follow emulated time, like the run's ticks."""
    out = {}
    m = re.search(r"^LINUX-L2: uptime ([\d.]+)$", text, re.M)
    if m:
        out["l2_boot_s"] = float(m.group(1))
    a = re.search(r"^LINUX: uptime before qemu ([\d.]+)$", text, re.M)
    b = re.search(r"^LINUX: uptime after qemu ([\d.]+)$", text, re.M)
    if a and b:
        out["l1_qemu_s"] = round(float(b.group(1)) - float(a.group(1)), 2)
    return out


class LinuxL2Test(QemuJobTest):
    """Linux/KVM (L1) boots the small Linux as L2 with QEMU -enable-kvm; L1 and L2 have smp CPUs."""

    long = True

    def disk(self, log):
        self.job_files = {"bzImage": build_l2_kernel(log),
                          "initrd-l2.img": os.path.join(LINUX_OUT, "initrd-l2.img")}
        self.job_script = l2_job(self.smp)
        return super().disk(log)

    def run(self, log_dir):
        r = super().run(log_dir)
        r.figures.update(l2_times(read(os.path.join(log_dir, "serial.log"))))
        return r

    def job_check(self, text):
        err = check_patterns(text, L2_EXPECT, [r"^LINUX-L2: (no /dev/vda|reboot failed)"])
        if err:
            return err
        cpus = int(re.search(r"^LINUX-L2: cpus (\d+)$", text, re.M).group(1))
        if cpus != self.smp:
            return "the L2 Linux sees %d CPUs, want %d" % (cpus, self.smp)
        kb = int(re.search(r"^LINUX-L2: memtotal (\d+)$", text, re.M).group(1))
        if not L2_MEM * 1024 // 2 < kb < L2_MEM * 1024:
            return "the L2's MemTotal %d kB is implausible for %d MiB" % (kb, L2_MEM)
        if not re.search(r"^LINUX-L2: hypervisor yes$", text, re.M):
            return "the L2 Linux does not see the hypervisor CPUID bit"
        md5 = re.search(r"^LINUX: l2 disk md5 ([0-9a-f]{32})$", text, re.M)
        got = re.search(r"^LINUX-L2: vda md5 ([0-9a-f]{32})$", text, re.M)
        if not md5 or not got or md5.group(1) != got.group(1):
            return "the L2 read %s through virtio-blk, L1 wrote %s" % (got and got.group(1), md5 and md5.group(1))
        # Timers on every CPU (the local APIC timer's LOC count grows); with 2 CPUs, the cross-CPU
        # wake-ups of the pipe are reschedule IPIs (RES).
        loc = irq_counts(text, "loc")
        if not loc or len(loc[0]) != self.smp or any(a <= b for b, a in zip(*loc)):
            return "the L2's local timer interrupts did not grow on every CPU: %s" % (loc,)
        if self.smp > 1:
            res = irq_counts(text, "res")
            if not res or sum(res[1]) <= sum(res[0]):
                return "no reschedule IPIs in the L2 with %d CPUs: %s" % (self.smp, res)
        return ""


def tests():
    # Linux/KVM on Bochs (the reference) and as XMHF's L1 (nested=1); L1 and the L2 with 1 CPU, then 2.
    return [LinuxL2Test("linux-kvm-l2-%s-smp%d" % ("xmhf" if hv else "bare", smp), smp, hv, timeout=3000,
                        hv_extra=" nested=1" if hv else "")
            for hv in (False, True) for smp in (1, 2)]


def bench_job(n, modes):
    """/job/run for lhv2 under QEMU-KVM, for each bench mode twice: bench=1, then bench=n. KVM's
    statistics (debugfs, summed over the live VMs) are read while QEMU still runs, after lhv2 is done
    (its power-off port is not there, so it halts): the difference of the two runs' L0 exit counts over
    n-1 is KVM's L0 exits per round trip."""
    return ('''mount -t debugfs debugfs /sys/kernel/debug
k=/sys/kernel/debug/kvm
run() {
    rm -f /tmp/lhv2.log
    %s -m 64 -smp 1 -serial file:/tmp/lhv2.log -kernel /job/lhv2.bin -append "bench=$1 bench_mode=$2" &
    q=$!
    while kill -0 $q 2>/dev/null && ! grep -q "^TESTS DONE" /tmp/lhv2.log 2>/dev/null; do sleep 1; done
    echo "LINUX: kvm stats mode=$2 bench=$1 exits $(cat $k/exits) nested_run $(cat $k/nested_run)"
    kill $q
    wait $q
    cat /tmp/lhv2.log
    grep -q "^TESTS DONE" /tmp/lhv2.log
}
ok=0
for m in %s; do run 1 $m && run %d $m || ok=1; done
[ $ok = 0 ]
''' % (QEMU_BASE, " ".join(modes), n))


class KvmL0BenchRun(QemuJobTest):
    def __init__(self, n, modes):
        super().__init__("kvm-l0-bench", 1, False)
        self.n, self.modes = n, modes
        self.job_files = {"lhv2.bin": os.path.join(GUEST_OUT, "lhv2.bin")}
        self.job_script = bench_job(n, modes)

    def job_check(self, text):
        missing = [m for m in self.modes if not ticks_each(text, self.n, m)]
        if missing:
            return "lhv2 printed no 'INFO bench %s: %d round trips' line" % (missing[0], self.n)
        if len(STATS_RE.findall(text)) != 2 * len(self.modes):
            return "no KVM statistics for every lhv2 run"
        return ""


BENCH_RE = re.compile(r"^INFO bench (\S+): (\d+) round trips, (\d+) ticks, (\d+) ticks each", re.M)
STATS_RE = re.compile(r"^LINUX: kvm stats mode=(\S+) bench=(\d+) exits (\d+) nested_run (\d+)$", re.M)


def ticks_each(text, n, mode="cpuid"):
    """lhv2's ticks per round trip in its bench=n run of a bench mode, or None."""
    for m, trips, _, each in BENCH_RE.findall(text):
        if m == mode and int(trips) == n:
            return int(each)
    return None


def kvm_l0_bench(log_root=None, n=1000, modes=("cpuid",)):
    """KVM as L0 (Linux/KVM on bare Bochs, lhv2 bench=n bench_mode=M in QEMU -cpu host), one Linux boot
    for every mode. Prints per mode KVM's ticks and L0 exits per round trip; returns [Result] with
    figures {"ticks": {mode: ticks}, "l0_exits": {mode: exits}}."""
    log_root = log_root or os.path.join(BUILD, "kvm-l0-bench")
    os.makedirs(log_root, exist_ok=True)
    log = os.path.join(log_root, "build.log")
    build_kernels(log)
    t = KvmL0BenchRun(n, list(modes))
    d = os.path.join(log_root, t.name)
    os.makedirs(d, exist_ok=True)
    try:
        r = t.run(d)
    except Exception as e:  # a broken set-up is a failed run, not a crash of the runner
        r = Result(t.name, False, "%s: %s" % (type(e).__name__, e))
    text = read(os.path.join(d, "serial.log"))
    stats = {(m, int(b)): int(e) for m, b, e, _ in STATS_RE.findall(text)}
    r.figures["ticks"], r.figures["l0_exits"] = {}, {}
    for m in modes:
        if ticks_each(text, n, m):
            r.figures["ticks"][m] = ticks_each(text, n, m)
        if (m, 1) in stats and (m, n) in stats:
            r.figures["l0_exits"][m] = (stats[(m, n)] - stats[(m, 1)]) / (n - 1)
        print("kvm-l0 bench: %-12s %s ticks per round trip, %s L0 exits (KVM's debugfs exits, bench=%d less "
              "bench=1)" % (m, r.figures["ticks"].get(m, "(none)"),
                            "%.1f" % r.figures["l0_exits"][m] if m in r.figures["l0_exits"] else "(none)", n))
    print("kvm-l0 bench: %s %s (%.1f s wall)%s" % (r.name, "PASS" if r.ok else "FAIL", r.seconds,
                                                  ": " + r.detail if r.detail else ""))
    return [r]


def nested_bench_figures(modes):
    """The KVM-as-L0 column of guest.nested_bench(): {mode: ticks per round trip}."""
    return kvm_l0_bench(modes=modes)[0].figures.get("ticks", {})
