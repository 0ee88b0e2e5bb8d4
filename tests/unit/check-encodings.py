#!/usr/bin/env python3
"""Re-assembles the rows of an encoding table in a unit test with GNU as and compares them with objdump.

usage: check-encodings.py FILE...
A row is a C initializer `{ BITS, "as spelling", "\\xNN...", LEN, ...` (BITS 16, 32 or 64); rows with
an empty spelling were worked out by hand and are skipped. Each spelling is assembled in the mode
of BITS (.code16/.code32/.code64) and disassembled with objdump -d: its bytes must be the row's
bytes and their number LEN. Prints one line per mismatch and exits 1 on any, else prints a count."""

import os
import re
import subprocess
import sys
import tempfile

ROW = re.compile(r'^\s*\{ (16|32|64), "([^"]+)", "((?:\\x[0-9a-f]{2})+)", (\d+),', re.M)
MODE = {"16": (".code16", "i8086"), "32": (".code32", "i386"), "64": (".code64", "x86-64")}


def assemble(bits, text, tmp):
    src, obj = os.path.join(tmp, "x.s"), os.path.join(tmp, "x.o")
    with open(src, "w") as f:
        f.write("%s\n%s\n" % (MODE[bits][0], text))
    subprocess.run(["as", "--64", src, "-o", obj], check=True, capture_output=True, text=True)
    out = subprocess.run(["objdump", "-d", "-M", MODE[bits][1], obj], check=True, capture_output=True,
                         text=True).stdout
    got = []
    for line in out.splitlines():
        m = re.match(r"^\s*[0-9a-f]+:\t((?:[0-9a-f]{2} )+)", line)
        if m:
            got += [int(b, 16) for b in m.group(1).split()]
    return bytes(got)


def main():
    bad = rows = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in sys.argv[1:]:
            for m in ROW.finditer(open(path).read()):
                bits, text, esc, length = m.group(1), m.group(2), m.group(3), int(m.group(4))
                want = bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-f]{2})", esc))
                rows += 1
                try:
                    got = assemble(bits, text, tmp)
                except subprocess.CalledProcessError as e:
                    print("FAIL encoding %s-bit \"%s\": as: %s" % (bits, text, e.stderr.strip()))
                    bad += 1
                    continue
                if got != want or len(got) != length:
                    print("FAIL encoding %s-bit \"%s\": as gives %s (%d bytes), the table %s (%d)" %
                          (bits, text, got.hex(" "), len(got), want.hex(" "), length))
                    bad += 1
    print("encodings: %d rows checked against as/objdump, %d differ" % (rows, bad))
    return 1 if bad or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
