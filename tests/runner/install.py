"""Debian integration tests (host): `make install`, the GRUB script dist/grub.d/20_xmhf on a fake /boot
tree (plain, with tboot, with tboot and SINIT modules, without XMHF), and the .deb from `make deb`."""

import os
import re
import shutil
import subprocess
import time

from core import ROOT, Result, Test, sh

SCRIPT = os.path.join(ROOT, "dist", "grub.d", "20_xmhf")
IMAGES = ["init-x86-amd64.bin", "hypervisor-x86-amd64.bin.gz"]
INIT_ELF = "init-x86-amd64.elf"  # stripped, in /boot: what tboot loads
SYMBOLS = ["init-x86-amd64.elf", "hypervisor-x86-amd64.elf"]


def run_script(boot_dir, default_file="/nonexistent", extra_env=None):
    env = dict(os.environ, XMHF_BOOT_DIR=boot_dir, XMHF_GRUB_BOOT_PATH="/boot", XMHF_DEFAULT_FILE=default_file,
               GRUB_DEVICE_BOOT="")
    env.update(extra_env or {})
    p = subprocess.run(["sh", SCRIPT], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("20_xmhf failed (%d): %s" % (p.returncode, p.stderr))
    return p.stdout


def entries(text):
    """menuentry title -> list of its body lines (stripped), in order."""
    out = {}
    for m in re.finditer(r"^menuentry '([^']*)'[^\n]*\{\n(.*?)^\}", text, re.M | re.S):
        out[m.group(1)] = [ln.strip() for ln in m.group(2).splitlines() if ln.strip()]
    return out


def script_check(text, log_dir, name):
    """grub-script-check parses the generated menu as GRUB would."""
    path = os.path.join(log_dir, name + ".cfg")
    with open(path, "w") as f:
        f.write(text)
    if shutil.which("grub-script-check") and subprocess.call(["grub-script-check", path]) != 0:
        return "grub-script-check rejects %s" % path
    return ""


def lines_re(body):
    return [re.sub(r"\s+", " ", ln) for ln in body]


PLAIN = ["multiboot /boot/init-x86-amd64.bin serial=115200,8n1,0x3f8 boot_drive=0x80",
         "module /boot/hypervisor-x86-amd64.bin.gz", "module --nounzip (hd0)+1"]


def check_grub_script(log_dir):
    root = os.path.join(log_dir, "fakeroot")
    boot = os.path.join(root, "boot")
    os.makedirs(boot)
    # Without the images: no entry at all.
    if run_script(boot).strip():
        return "entries printed although /boot has no XMHF images"
    for f in IMAGES + ["vmlinuz-6.1.0-13-amd64"]:
        open(os.path.join(boot, f), "wb").close()

    out = run_script(boot)
    err = script_check(out, log_dir, "plain")
    if err:
        return err
    e = entries(out)
    if len(e) != 1:
        return "without tboot: %d entries, want 1: %r" % (len(e), list(e))
    body = lines_re(list(e.values())[0])
    if [ln for ln in body if not ln.startswith("echo")] != PLAIN:
        return "plain entry is %r, want %r" % (body, PLAIN)

    # tboot without init's ELF: no tboot entry (tboot cannot launch the flat binary).
    open(os.path.join(boot, "tboot.gz"), "wb").close()
    if len(entries(run_script(boot))) != 1:
        return "a tboot entry although /boot has no %s" % INIT_ELF
    # tboot without SINIT: a second entry, tboot first, init's ELF as its first module, no SINIT line.
    open(os.path.join(boot, INIT_ELF), "wb").close()
    out = run_script(boot)
    e = entries(out)
    err = script_check(out, log_dir, "tboot")
    if err:
        return err
    tb = [t for t in e if "tboot" in t]
    if len(e) != 2 or len(tb) != 1:
        return "with tboot: entries %r, want the plain one and one with tboot" % list(e)
    want_tboot = ["multiboot /boot/tboot.gz logging=serial,memory",
                  "module /boot/init-x86-amd64.elf serial=115200,8n1,0x3f8 boot_drive=0x80",
                  "module /boot/hypervisor-x86-amd64.bin.gz", "module --nounzip (hd0)+1"]
    body = [ln for ln in lines_re(e[tb[0]]) if not ln.startswith("echo")]
    if body != want_tboot:
        return "tboot entry is %r, want %r" % (body, want_tboot)

    # SINIT modules come last, every one of them; backup files are not picked up.
    for f in ["i5_i7_DUAL_SINIT_51.BIN", "6th_7th_gen_i5_i7-SINIT_79.bin", "old_SINIT_1.bin.dpkg-old"]:
        open(os.path.join(boot, f), "wb").close()
    out = run_script(boot)
    e = entries(out)
    body = [ln for ln in lines_re(e[tb[0]]) if not ln.startswith("echo")]
    sinit = sorted(body[len(want_tboot):])
    want_sinit = ["module /boot/6th_7th_gen_i5_i7-SINIT_79.bin", "module /boot/i5_i7_DUAL_SINIT_51.BIN"]
    if body[:len(want_tboot)] != want_tboot or sinit != want_sinit:
        return "tboot entry with SINIT is %r, want %r then %r" % (body, want_tboot, want_sinit)

    # /etc/default/xmhf changes the command line and the guest disk; a separate /boot partition ("").
    cfg = os.path.join(log_dir, "default-xmhf")
    with open(cfg, "w") as f:
        f.write('XMHF_CMDLINE="serial=9600,8n1,0x2f8 nested=0"\nXMHF_BOOT_DRIVE=0x81\nXMHF_GUEST_SECTOR="(hd1)+1"\n')
    out = run_script(boot, cfg, {"XMHF_GRUB_BOOT_PATH": ""})
    e = entries(out)
    plain = [t for t in e if "tboot" not in t]
    body = [ln for ln in lines_re(e[plain[0]]) if not ln.startswith("echo")]
    want = ["multiboot /init-x86-amd64.bin serial=9600,8n1,0x2f8 nested=0 boot_drive=0x81",
            "module /hypervisor-x86-amd64.bin.gz", "module --nounzip (hd1)+1"]
    if body != want:
        return "with /etc/default/xmhf: %r, want %r" % (body, want)
    with open(os.path.join(log_dir, "menu.txt"), "w") as f:
        f.write(out)
    return ""


def check_install(log_dir):
    dest = os.path.join(log_dir, "destdir")
    sh(["make", "-s", "install", "DESTDIR=" + dest], os.path.join(log_dir, "make.log"))
    for f in IMAGES:
        a, b = os.path.join(ROOT, f), os.path.join(dest, "boot", f)
        if not os.path.exists(b) or open(a, "rb").read() != open(b, "rb").read():
            return "make install: /boot/%s missing or differs from the build" % f
    for f in SYMBOLS:
        if not os.path.exists(os.path.join(dest, "usr/lib/debug/boot", f)):
            return "make install: /usr/lib/debug/boot/%s missing" % f
    elf = open(os.path.join(dest, "boot", INIT_ELF), "rb").read()
    if elf[:4] != b"\x7fELF" or b".debug_info" in elf or b"\x02\xb0\xad\x1b" not in elf[:8192]:
        return "make install: /boot/%s is not a stripped ELF with the multiboot header in its first 8 KiB" % INIT_ELF
    st = os.stat(os.path.join(dest, "etc/grub.d/20_xmhf"))
    if not st.st_mode & 0o111:
        return "make install: /etc/grub.d/20_xmhf is not executable (update-grub skips it)"
    return ""


def check_deb(log_dir):
    log = os.path.join(log_dir, "make.log")
    for old in os.listdir(ROOT):
        if old.startswith("xmhf-amd64_") and old.endswith(".deb"):
            os.unlink(os.path.join(ROOT, old))
    sh(["make", "-s", "deb"], log)
    debs = [f for f in os.listdir(ROOT) if f.startswith("xmhf-amd64_") and f.endswith("_amd64.deb")]
    if len(debs) != 1:
        return "make deb made %r, want one xmhf-amd64_VERSION_amd64.deb" % debs
    deb = os.path.join(ROOT, debs[0])
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    files = sorted(ln.split()[-1].lstrip(".") for ln in listing.splitlines() if not ln.startswith("d"))
    want = sorted(["/boot/" + f for f in IMAGES + [INIT_ELF]] + ["/usr/lib/debug/boot/" + f for f in SYMBOLS] +
                  ["/etc/grub.d/20_xmhf", "/etc/default/xmhf", "/usr/share/doc/xmhf-amd64/README.md",
                   "/usr/share/doc/xmhf-amd64/trusted-boot.md"])
    if files != want:
        return ".deb holds %r, want %r" % (files, want)
    mode = [ln.split()[0] for ln in listing.splitlines() if ln.endswith("/etc/grub.d/20_xmhf")]
    if mode != ["-rwxr-xr-x"]:
        return ".deb: 20_xmhf has mode %r, want -rwxr-xr-x" % mode
    pkg = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Architecture"], capture_output=True, text=True,
                         check=True).stdout
    if "Package: xmhf-amd64" not in pkg or "Architecture: amd64" not in pkg:
        return ".deb control fields: %r" % pkg
    ctrl = os.path.join(log_dir, "control")
    sh(["dpkg-deb", "-e", deb, ctrl], log)
    conff = open(os.path.join(ctrl, "conffiles")).read().split()
    if sorted(conff) != ["/etc/default/xmhf", "/etc/grub.d/20_xmhf"]:
        return ".deb conffiles: %r" % conff
    return ""


class HostCheck(Test):
    platform = "host"

    def __init__(self, name, fn):
        super().__init__(name)
        self.fn = fn

    def run(self, log_dir):
        t0 = time.time()
        err = self.fn(log_dir)
        return Result(self.name, not err, err, time.time() - t0)


def tests():
    return [HostCheck("install-grub-script", check_grub_script), HostCheck("install-make-install", check_install),
            HostCheck("install-deb", check_deb)]
