"""Host unit tests (tests/unit, ASan/UBSan): one Result per unit test, from its PASS/FAIL lines."""

import os
import re
import subprocess
import time

from core import ROOT, Result


def run_unit(log_dir, filters=()):
    log = os.path.join(log_dir, "unit.log")
    start = time.time()
    with open(log, "w") as f:
        rc = subprocess.call(["make", "-s", "-C", "tests/unit", "run", "ARGS=" + " ".join(filters)], cwd=ROOT,
                             stdout=f, stderr=subprocess.STDOUT)
    text = open(log, errors="replace").read()
    secs = time.time() - start
    results = []
    for m in re.finditer(r"^(PASS|FAIL) (\S+)(.*)$", text, re.M):
        results.append(Result("unit/" + m.group(2), m.group(1) == "PASS", m.group(3).strip(), 0.0))
    summary = re.search(r"^(\d+) passed, (\d+) failed$", text, re.M)
    if not results or not summary or rc != 0 and all(r.ok for r in results):
        results.append(Result("unit", False, "unit test binary failed (exit %d), see %s" % (rc, log), secs))
    return results
