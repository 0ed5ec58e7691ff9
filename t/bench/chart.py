#!/usr/bin/env python3
"""Draw RESULTS_DIR/chart.svg from one run's reps.tsv and spawn.tsv (plain SVG, python3 only).

usage: t/bench/chart.py RESULTS_DIR [OUT.svg]

One panel per test (backend and connection count): a horizontal bar per stack, longest
first, req/s (median over the reps) as the bar and its label, p99 next to it. cpm's bars
are orange, the peers' blue; a starved row ('‡': req/s × p50 < c/4, as in run-peers.sh's
report) is grey and says so. CGI panels draw the spawn ceiling (spawnbench, posix_spawn of
the same program, 2 in parallel) and FastCGI panels nginx-return (the HTTP ceiling at the
same c) as dashed lines when the run measured them. Each panel has its own scale: compare
bars within a panel, not across panels.
"""
import csv
import os
import statistics
import sys
from xml.sax.saxutils import escape

PANEL_W, LABEL_W, BAR_W, BAR_H, GAP, COLS = 680, 130, 230, 16, 5, 2
CGI_PROGRAM = {"hello.c": "hello", "hello.c-static": "hello-static", "hello.sh": "hello.sh", "hello.pl": "hello.pl"}
FAMILY = [("fcgi-hello", "FastCGI fcgi-hello (4 libfcgi processes)"), ("hello.c", "CGI hello.c"),
          ("hello.c-static", "CGI hello.c (static binary)"), ("hello.sh", "CGI hello.sh"),
          ("hello.pl", "CGI hello.pl"), ("static-4k", "static file, 4 KiB"),
          ("static-100m", "static file, 100 MiB (wrk near its own limit)"), ("none", "nginx-return: the HTTP ceiling")]


def tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def b_fam(title):
    return "static-100m" if title.startswith("static file, 100 MiB") else ""


def fmt(x):
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def main():
    res = sys.argv[1]
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(res, "chart.svg")
    groups = {}
    for r in tsv(os.path.join(res, "reps.tsv")):
        groups.setdefault((r["stack"], r["backend"], int(r["conns"])), []).append(r)
    if not groups:
        print(f"chart.py: no rows in {res}/reps.tsv", file=sys.stderr)
        return 1
    rows = {}
    for (s, b, c), rs in groups.items():
        rps = statistics.median(int(r["requests"]) / (int(r["duration_us"]) / 1e6) for r in rs)
        p50 = statistics.median(int(r["p50_us"]) / 1000 for r in rs)
        p99 = statistics.median(int(r["p99_us"]) / 1000 for r in rs)
        err = sum(int(r[k]) for r in rs for k in ("status", "connect", "read", "write", "timeout"))
        rows[(s, b, c)] = (rps, p99, rps * p50 / 1000 < c / 4, err)
    spawn = {}
    for r in tsv(os.path.join(res, "spawn.tsv")):
        if r["mode"] == "spawn" and r["jobs"] == "2" and r["ballast_mb"] == "0":
            spawn.setdefault(r["program"], []).append(float(r["spawns_per_s"]))
    spawn = {k: statistics.median(v) for k, v in spawn.items()}
    date = "?"
    if os.path.exists(os.path.join(res, "env.txt")):
        env = {}
        for line in open(os.path.join(res, "env.txt")):
            if ":" in line and line[0] != " ":
                k, v = line.split(":", 1)
                env.setdefault(k.strip(), v)
        date = env.get("date", "?").strip()
        machine = f"{env.get('model name', '?').strip()}, {env.get('cpus', '?').strip()} CPUs, kernel {env.get('kernel', '?').strip()}"
    else:
        machine = "?"

    # panels: (title, [(stack, rps, p99, starved, err)], ceiling (value, label) or None)
    panels = []
    for fam, title in FAMILY:
        if fam == "none":   # the ceiling: one panel, a bar per c
            bars = [(f"{s} c{c}",) + rows[(s, b, c)] for s, b, c in sorted(rows, key=lambda k: k[2]) if b == fam]
            if bars:
                panels.append((title, bars, None))
            continue
        cs = sorted({c for s, b, c in rows if b == fam}, key=lambda c: (c != 32, c))  # c32 first
        for c in cs:
            for p1 in (False, True):
                bars = [(s,) + rows[(s, b, cc)] for s, b, cc in rows
                        if b == fam and cc == c and s.endswith("-p1") == p1]
                if not bars:
                    continue
                bars.sort(key=lambda x: -x[1])
                ceil = None
                if fam in CGI_PROGRAM and CGI_PROGRAM[fam] in spawn:
                    ceil = (spawn[CGI_PROGRAM[fam]], "posix_spawn ceiling (2 in parallel)")
                elif fam == "fcgi-hello" and ("nginx-return", "none", c) in rows:
                    ceil = (rows[("nginx-return", "none", c)][0], "nginx-return (HTTP ceiling)")
                t = title.replace("4 libfcgi processes", "a pool of ONE process") if p1 else title
                panels.append((f"{t}, c={c}", bars, ceil))

    out = []
    heights = [32 + len(b) * (BAR_H + GAP) + (14 if c else 0) for _, b, c in panels]
    y, placed = 70, []
    for i in range(0, len(panels), COLS):   # a grid: panels in reading order, a row as tall as its tallest
        for j, panel in enumerate(panels[i:i + COLS]):
            placed.append((panel, j * PANEL_W + 10, y))
        y += max(heights[i:i + COLS]) + 10
    W, H = COLS * PANEL_W + 20, y + 30
    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
               'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">')
    out.append(f'<rect width="{W}" height="{H}" fill="white"/>')
    out.append(f'<text x="10" y="24" font-size="17" font-weight="bold">cpm and its peers: requests/s (median), p99 latency</text>')
    out.append(f'<text x="10" y="44" fill="#444">{escape(date)} · {escape(machine)} · wrk -t2 on the same CPUs · '
               'one run: compare bars within a panel (each panel has its own scale)</text>')
    out.append('<rect x="10" y="53" width="12" height="10" fill="#e8731a"/><text x="26" y="62">cpm</text>'
               '<rect x="70" y="53" width="12" height="10" fill="#4a7fb5"/><text x="86" y="62">peer</text>'
               '<rect x="130" y="53" width="12" height="10" fill="#c4c4c4"/>'
               '<text x="146" y="62">‡ starved: req/s × p50 &lt; c/4, most connections got no answer (not a fair bar)</text>')
    for (title, bars, ceil), x0, y0 in placed:
        h = 32 + len(bars) * (BAR_H + GAP)
        out.append(f'<rect x="{x0}" y="{y0}" width="{PANEL_W - 10}" height="{h + (14 if ceil else 0)}" '
                   'fill="#fafafa" stroke="#ddd"/>')
        out.append(f'<text x="{x0 + 8}" y="{y0 + 17}" font-weight="bold" font-size="12">{escape(title)}</text>')
        top = max(b[1] for b in bars)
        off = ceil is not None and ceil[0] > 1.5 * top   # a ceiling far above the bars: text only
        if ceil and not off:
            top = max(top, ceil[0])
        scale = BAR_W / top if top > 0 else 0
        bx = x0 + LABEL_W
        if off:
            out.append(f'<text x="{bx}" y="{y0 + h + 8}" fill="#b22" font-size="10">{escape(ceil[1])}: '
                       f'{fmt(ceil[0])}/s, {ceil[0] / max(b[1] for b in bars):.1f}x the longest bar (off this scale)</text>')
        elif ceil:
            cx = bx + ceil[0] * scale
            out.append(f'<line x1="{cx:.1f}" y1="{y0 + 24}" x2="{cx:.1f}" y2="{y0 + h}" stroke="#b22" '
                       'stroke-dasharray="4,3" stroke-width="1.2"/>')
            out.append(f'<text x="{bx}" y="{y0 + h + 8}" fill="#b22" font-size="10">dashed: '
                       f'{escape(ceil[1])}, {fmt(ceil[0])}/s</text>')
        for i, (s, rps, p99, starved, err) in enumerate(bars):
            y = y0 + 28 + i * (BAR_H + GAP)
            color = "#c4c4c4" if starved else ("#e8731a" if s.startswith("cpm-") else "#4a7fb5")
            weight = ' font-weight="bold"' if s.startswith("cpm-") else ""
            out.append(f'<text x="{bx - 6}" y="{y + 12}" text-anchor="end"{weight}>{escape(s)}</text>')
            out.append(f'<rect x="{bx}" y="{y}" width="{max(rps * scale, 1):.1f}" height="{BAR_H}" fill="{color}" stroke="none"/>')
            mib = f" ({rps * 100:,.0f} MiB/s)" if b_fam(title) == "static-100m" else ""
            label = f"{fmt(rps)} req/s{mib} · p99 {p99:,.1f} ms" + (" · ‡ starved" if starved else "") + \
                (f" · {err} err" if err else "")
            tx = bx + rps * scale + 5
            out.append(f'<rect x="{tx - 2:.1f}" y="{y + 1}" width="{len(label) * 6.3 + 4:.0f}" height="{BAR_H - 2}" '
                       'fill="#fafafa" stroke="none"/>')   # keeps a ceiling line from crossing the text
            out.append(f'<text x="{tx:.1f}" y="{y + 12}" fill="#222">{escape(label)}</text>')
    out.append(f'<text x="10" y="{H - 12}" fill="#444">made by t/bench/chart.py from {escape(os.path.basename(os.path.abspath(res)))}/reps.tsv; '
               'the numbers and ratios: ratios.md, table.md</text>')
    out.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"chart: {dst} ({len(panels)} panels)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
