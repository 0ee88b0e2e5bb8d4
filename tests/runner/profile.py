"""The exit profile of an event-logger run (build.sh --event-logger): VM exits by reason and the TSC ticks
L0 spent handling them, L1's exits and L2's apart, printed as a table and drawn as an SVG bar chart
(plain SVG written here: no plotting package needed). `make bench` writes build/bench/*.svg."""

import html
import os
import re

# Basic VM-exit reasons (Intel SDM vol. 3, appendix C).
EXIT_REASONS = {
    0: "exception/NMI", 1: "external interrupt", 2: "triple fault", 3: "INIT", 4: "SIPI", 7: "interrupt window",
    8: "NMI window", 9: "task switch", 10: "CPUID", 12: "HLT", 13: "INVD", 14: "INVLPG", 15: "RDPMC",
    16: "RDTSC", 18: "VMCALL", 19: "VMCLEAR", 20: "VMLAUNCH", 21: "VMPTRLD", 22: "VMPTRST", 23: "VMREAD",
    24: "VMRESUME", 25: "VMWRITE", 26: "VMXOFF", 27: "VMXON", 28: "CR access", 29: "MOV DR", 30: "I/O",
    31: "RDMSR", 32: "WRMSR", 33: "bad guest state", 34: "MSR loading", 36: "MWAIT", 37: "MTF", 39: "MONITOR",
    40: "PAUSE", 41: "machine check", 43: "TPR below threshold", 44: "APIC access", 45: "virtualized EOI",
    46: "GDTR/IDTR access", 47: "LDTR/TR access", 48: "EPT violation", 49: "EPT misconfiguration",
    50: "INVEPT", 51: "RDTSCP", 52: "preemption timer", 53: "INVVPID", 54: "WBINVD", 55: "XSETBV",
    56: "APIC write", 57: "RDRAND", 58: "INVPCID", 59: "VMFUNC", 61: "RDSEED", 62: "PML full", 63: "XSAVES",
    64: "XRSTORS",
}


def reason_name(r):
    return EXIT_REASONS.get(r, "reason %d" % r)


def parse_rows(text, what):
    """The event logger's `XMHF: <what> CPU n: rR=V ...` rows, the last print-out of each CPU, summed over
    the CPUs: {reason: value}. what is "exits", "exit ticks", "L2 exits" or "L2 exit ticks"."""
    per_cpu = {}
    for cpu, rest in re.findall(r"^XMHF: %s CPU (\d+):((?: r\d+=\d+)+)\s*$" % re.escape(what), text, re.M):
        per_cpu[int(cpu)] = {int(r): int(n) for r, n in re.findall(r"r(\d+)=(\d+)", rest)}
    total = {}
    for rows in per_cpu.values():
        for r, n in rows.items():
            total[r] = total.get(r, 0) + n
    return total


def profile(text):
    """[(level, reason, exits, ticks)] for L1's and L2's exits, most ticks first."""
    out = []
    for level, exits_row, ticks_row in (("L1", "exits", "exit ticks"), ("L2", "L2 exits", "L2 exit ticks")):
        exits, ticks = parse_rows(text, exits_row), parse_rows(text, ticks_row)
        out += [(level, r, n, ticks.get(r, 0)) for r, n in exits.items()]
    return sorted(out, key=lambda x: -x[3])


def print_profile(prefix, rows):
    total = sum(t for _, _, _, t in rows) or 1
    print("%s %-3s %-22s %10s %13s %9s %6s" % (prefix, "lvl", "exit reason", "exits", "L0 ticks", "ticks/exit", "share"))
    for level, r, n, t in rows:
        print("%s %-3s %-22s %10d %13d %9.0f %5.1f%%" % (prefix, level, "%s (r%d)" % (reason_name(r), r), n, t,
                                                         t / n if n else 0, 100.0 * t / total))


def write_svg(path, title, rows):
    """Two horizontal bar charts side by side: exits by reason, and L0 ticks per exit by reason."""
    rows = [x for x in rows if x[2]]
    if not rows:
        return None
    bar_h, gap, label_w, chart_w, top = 16, 4, 230, 300, 48
    height = top + len(rows) * (bar_h + gap) + 24
    width = label_w + 2 * chart_w + 80
    max_n = max(n for _, _, n, _ in rows)
    max_per = max(t / n for _, _, n, t in rows)
    e = html.escape
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="monospace" '
           'font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="8" y="18" font-size="14">%s</text>' % e(title),
           '<text x="%d" y="38">VM exits</text>' % label_w,
           '<text x="%d" y="38">L0 ticks per exit</text>' % (label_w + chart_w + 40)]
    for i, (level, r, n, t) in enumerate(rows):
        y = top + i * (bar_h + gap)
        per = t / n
        w1 = max(1, int(chart_w * n / max_n))
        w2 = max(1, int(chart_w * per / max_per)) if max_per else 1
        color = "#4a7ab5" if level == "L1" else "#c0504d"
        out.append('<text x="8" y="%d">%s %s</text>' % (y + 12, level, e(reason_name(r))))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>' % (label_w, y, w1, bar_h, color))
        out.append('<text x="%d" y="%d">%d</text>' % (label_w + w1 + 4, y + 12, n))
        x2 = label_w + chart_w + 40
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>' % (x2, y, w2, bar_h, color))
        out.append('<text x="%d" y="%d">%.0f</text>' % (x2 + w2 + 4, y + 12, per))
    out.append('<text x="8" y="%d">blue: exits of L1 (the guest); red: exits of L2 (a nested guest) that L0 '
               'took</text>' % (height - 8))
    out.append("</svg>\n")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out))
    return path
