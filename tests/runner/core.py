"""Test runner core: test records, emulator runs with serial watching, results and the summary line.

An emulator test builds its disk images, starts tools/bios-bochs.sh or tools/bios-qemu.sh in its own
process group with serial going to a file, and watches that file. It stops the emulator as soon as
the test's end pattern shows (a halted hypervisor never powers off), or at the timeout. The checks
then run on the whole serial log.
"""

import os
import re
import signal
import shlex
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build", "tests")


class Result:
    def __init__(self, name, ok, detail="", seconds=0.0, figures=None):
        self.name = name
        self.ok = ok
        self.detail = detail
        self.seconds = seconds
        self.figures = figures or {}
        self.xfail = False  # a known open bug: reported, counted neither as passed nor as failed
        self.skipped = False  # not run on purpose (e.g. a feature not implemented yet)


class Test:
    """Base: a named test on a platform. Subclasses implement run(log_dir) -> Result."""

    platform = "host"
    # A long test (a whole OS as L2, Xen) runs only in `tests/run --long` (make test-long), not in
    # `make test`, which must stay under 30 minutes.
    long = False
    # A test run only when a filter names it (tests/run xen-domu): not in make test or make test-long.
    manual = False

    def __init__(self, name):
        self.name = name

    def run(self, log_dir):
        raise NotImplementedError


def sh(cmd, log=None, cwd=ROOT, check=True):
    """Runs a command, appending its output to log (a path); raises on failure if check."""
    with open(log or os.devnull, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        rc = subprocess.call(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    if check and rc != 0:
        raise RuntimeError("command failed (%d): %s" % (rc, " ".join(cmd)))
    return rc


_built = set()
_build_locks = {}                 # script -> its lock: builds of different scripts run side by side
_build_locks_lock = threading.Lock()


def build_once(script, out_dir, log, *args):
    """Runs a build script (`script OUTDIR ARGS...`, quick when up to date) once per run of the runner
    for each ARGS; the tests that need it call this, and a second caller waits for the first (one lock
    per script: its builds with other ARGS share OUTDIR)."""
    with _build_locks_lock:
        lock = _build_locks.setdefault(script, threading.Lock())
    with lock:
        if (script,) + args not in _built:
            sh([script, out_dir] + list(args), log)
            _built.add((script,) + args)


def read(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read().replace("\r", "")
    except FileNotFoundError:
        return ""


def run_emulator(platform, disks, serial, log_dir, smp=1, mem=256, timeout=120, end=None,
                 grace=0.5, extra=()):
    """Boots disks and returns (serial text, seconds, how it ended).

    end: a regex; once the serial log matches it the emulator is stopped after `grace` seconds.
    'ended' is 'exited' (emulator stopped by itself: power-off or panic), 'end-pattern' or 'timeout'.
    """
    tool = {"bochs": "tools/bios-bochs.sh", "qemu": "tools/bios-qemu.sh"}[platform]
    cmd = [os.path.join(ROOT, tool), "-smp", str(smp), "-m", str(mem), "--timeout", str(timeout),
           "--serial", serial, "--stop-on-triple-fault", "--snapshot"]
    if platform == "bochs":
        cmd += ["--log", os.path.join(log_dir, "bochs.log")]
    else:
        cmd += ["--no-kvm"]
    for d in disks:
        cmd += ["-d", d]
    cmd += list(extra)
    if os.path.exists(serial):
        os.unlink(serial)
    out = open(os.path.join(log_dir, "emulator.out"), "w")
    out.write("$ " + shlex.join(cmd) + "\n")
    out.flush()
    start = time.time()
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    ended = "exited"
    end_re = re.compile(end, re.M) if end else None
    seen_at = None
    while p.poll() is None:
        time.sleep(0.1)
        if end_re and seen_at is None and end_re.search(read(serial)):
            seen_at = time.time()
        if seen_at is not None and time.time() - seen_at >= grace:
            ended = "end-pattern"
            break
        if time.time() - start > timeout + 10:
            ended = "timeout"
            break
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    elif p.returncode in (124, 137) and ended == "exited":
        ended = "timeout"
    out.close()
    return read(serial), time.time() - start, ended


def check_patterns(text, expect=(), forbid=()):
    """Every regex of expect must match, in order; none of forbid may. Returns a failure or ''."""
    pos = 0
    for pat in expect:
        m = re.compile(pat, re.M).search(text, pos)
        if not m:
            return "expected /%s/ not found%s" % (pat, " after the previous match" if pos else "")
        pos = m.end()
    for pat in forbid:
        m = re.search(pat, text, re.M)
        if m:
            return "forbidden /%s/ found: %r" % (pat, m.group(0))
    return ""
