#!/usr/bin/env python3
"""The issue-14 ratio table of one t/bench/run.sh run (run.sh prints it and saves ratios.md).

usage: t/bench/ratios.py RESULTS_DIR

Reads only that run's files: reps.tsv, spawn.tsv and failures.tsv (run-peers.sh),
memory/default-stack.json and idle/rounds.jsonl (run.sh's memory step), profile/profile.tsv
(profile.sh). Per (stack, backend, c): the median req/s, p50 and p99 over the reps (as
run-peers.sh's report.py), errors summed (non-2xx + connect/read/write/timeout), and the
starvation mark '‡' of report.py: req/s × p50 < c/4 (most connections had no request being
answered: req/s describes the served ones). A "fair" peer is one without the mark.

Prints one table, a row per target: measured value, target, PASS / MISS ("report" where the
issue sets no target, "NO DATA" where the rows are missing), then the per-test tables.
Exit status: 0, or 1 when the run has a measurement failure (failures.tsv) or cpm's rows
have errors; a MISS is not a failure.
"""
import csv
import json
import os
import statistics
import sys

FCGI_PEERS = ["nginx-fcgi-ka", "nginx-fcgi", "lighttpd-fcgi", "h2o-fcgi", "h2o-fcgi-ext"]
STATIC_PEERS = ["nginx-static", "lighttpd-static", "h2o-static"]
CGI_PROGRAM = {"hello.c": "hello", "hello.c-static": "hello-static", "hello.sh": "hello.sh", "hello.pl": "hello.pl"}
RSS_TARGET_KB = 5.4 * 1024      # issue 14: idle RSS of the default stack, 5.4 MiB
CONN_TARGET_B = 1.2 * 1024      # issue 14: ~1.2 KB per idle keep-alive connection


def tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


class Row:
    def __init__(self, reps):
        self.c = int(reps[0]["conns"])
        self.rps = statistics.median(int(r["requests"]) / (int(r["duration_us"]) / 1e6) for r in reps)
        self.p50 = statistics.median(int(r["p50_us"]) / 1000 for r in reps)
        self.p99 = statistics.median(int(r["p99_us"]) / 1000 for r in reps)
        self.non2xx = sum(int(r["status"]) for r in reps)
        self.sock = sum(int(r[k]) for r in reps for k in ("connect", "read", "write", "timeout"))
        self.errors = self.non2xx + self.sock
        self.wrk = statistics.median(int(r["wrk_cpu_pct"]) for r in reps)
        self.other = max(int(r.get("other_cpu_pct") or 0) for r in reps)
        self.starved = self.rps * self.p50 / 1000 < self.c / 4
        self.rss_idle = statistics.median(int(r.get("rss_idle_kb") or 0) for r in reps)
        self.procs_idle = int(reps[0].get("procs_idle") or 0)
        self.reps = len(reps)

    def show(self):
        return f"{self.rps:,.{1 if self.rps < 100 else 0}f}" + (" ‡" if self.starved else "")


def main():
    res = sys.argv[1]
    groups, order = {}, []
    for r in tsv(os.path.join(res, "reps.tsv")):
        k = (r["stack"], r["backend"], int(r["conns"]))
        if k not in groups:
            order.append(k)
        groups.setdefault(k, []).append(r)
    M = {k: Row(v) for k, v in groups.items()}
    spawn = {}
    for r in tsv(os.path.join(res, "spawn.tsv")):
        spawn.setdefault((r["program"], r["mode"], int(r["jobs"]), int(r["ballast_mb"])), []).append(
            float(r["spawns_per_s"]))
    spawn = {k: statistics.median(v) for k, v in spawn.items()}
    failures = tsv(os.path.join(res, "failures.tsv"))

    env = {}
    if os.path.exists(os.path.join(res, "env.txt")):
        for line in open(os.path.join(res, "env.txt")):
            if ":" in line and not line.startswith(" "):
                k, v = line.split(":", 1)
                env.setdefault(k.strip(), v.strip())
    out = []
    p = out.append
    p(f"## cpm vs its peers: issue-14 targets (one run, {env.get('date', '?')})\n")
    st = dict(x.split("=", 1) for x in env.get("settings", "").split() if "=" in x)
    p(f"Machine: {env.get('model name', '?')}, {env.get('cpus', '?')} CPUs, kernel {env.get('kernel', '?')}; "
      f"wrk -t2 on the same CPUs; {st.get('REPS', '?')} reps x {st.get('DURATION', '?')} s per row (median), "
      f"warm-up {st.get('WARMUP', '?')} s; {st.get('NGINX_WORKERS', '2')} workers per server; "
      f"{st.get('FCGI_PROCS', '?')} fcgi-hello processes (-p1 stacks: 1).\n")
    p("| # | what (ratio = req/s ÷ req/s, same run, medians) | measured | target | result |")
    p("|---|---|---|---|---|")
    n = [0]

    def row(what, measured, target, ok):
        n[0] += 1
        status = "NO DATA" if ok is None else ("report only" if ok == "report" else ("PASS" if ok else "**MISS**"))
        p(f"| {n[0]} | {what} | {measured} | {target} | {status} |")

    def get(stack, backend, c):
        return M.get((stack, backend, c))

    def ratio(a, b, an, bn):
        r = f"{a.rps / b.rps:.2f}" if b.rps else "∞"
        return f"**{r}** ({an} {a.show()} ÷ {bn} {b.show()})"

    def best_fair(peers, backend, c, suffix=""):
        cand = [(get(s + suffix, backend, c), s + suffix) for s in peers]
        cand = [(m, s) for m, s in cand if m is not None and not m.starved and m.rps > 0]
        return max(cand, key=lambda x: x[0].rps) if cand else (None, None)

    # ---- FastCGI
    for c, suffix, label, target in ((32, "", "c32", True), (8, "", "c8", False), (128, "", "c128", False),
                                     (32, "-p1", "pool of 1, c32", False)):
        cpm = get("cpm-fcgi" + suffix, "fcgi-hello", c)
        peer, pname = best_fair(FCGI_PEERS, "fcgi-hello", c, suffix)
        if cpm and peer:
            r = cpm.rps / peer.rps
            row(f"FastCGI {label}: cpm-fcgi{suffix} ÷ best fair peer", ratio(cpm, peer, "cpm", pname),
                "≥ 1.2" if target else "-", r >= 1.2 if target else "report")
        else:
            row(f"FastCGI {label}: cpm-fcgi{suffix} ÷ best fair peer", "-", "≥ 1.2" if target else "-", None)
        if cpm:
            row(f"FastCGI {label}: cpm-fcgi{suffix} p99, errors, starvation",
                f"p99 {cpm.p99:.2f} ms, {cpm.errors} errors{', starved ‡' if cpm.starved else ''}",
                "p99 ≤ 5 ms, 0 errors, no ‡" if target else "-",
                (cpm.p99 <= 5 and cpm.errors == 0 and not cpm.starved) if target else "report")
        else:
            row(f"FastCGI {label}: cpm-fcgi{suffix} p99, errors", "-", "-", None)
        ka = get("nginx-fcgi-ka" + suffix, "fcgi-hello", c)
        if cpm and ka:
            row(f"FastCGI {label}: cpm-fcgi{suffix} ÷ nginx-fcgi-ka{suffix} (req/s; ‡ = its starved rows)",
                ratio(cpm, ka, "cpm", "nginx-fcgi-ka" + suffix), "> 1" if target else "-",
                cpm.rps > ka.rps if target else "report")
        else:
            row(f"FastCGI {label}: cpm-fcgi{suffix} ÷ nginx-fcgi-ka{suffix}", "-", "> 1" if target else "-", None)
    vals = []
    for c in (8, 32, 128):
        a, b = get("cpm-fcgi", "fcgi-hello", c), get("nginx-return", "none", c)
        vals.append(f"c{c} **{a.rps / b.rps:.2f}**" if a and b and b.rps else f"c{c} -")
    have = any(get("nginx-return", "none", c) for c in (8, 32, 128))
    row("FastCGI: cpm-fcgi ÷ nginx-return (the HTTP ceiling: a fixed 200 from nginx)", ", ".join(vals), "-",
        "report" if have else None)

    # ---- CGI
    cpm = get("cpm-cgi", "hello.c", 32)
    for peer, target in (("nginx-fcgiwrap", 2.0), ("lighttpd-cgi", 1.5), ("uwsgi-cgi", None)):
        m = get(peer, "hello.c", 32)
        what = f"CGI hello.c c32: cpm-cgi ÷ {peer}"
        if cpm and m and m.rps:
            row(what, ratio(cpm, m, "cpm", peer), f"≥ {target}" if target else "-",
                cpm.rps / m.rps >= target if target else "report")
        else:
            row(what, "-", f"≥ {target}" if target else "-", None)
    ceil = spawn.get(("hello", "spawn", 2, 0))
    if cpm and ceil:
        row("CGI hello.c c32: cpm-cgi ÷ spawnbench (posix_spawn of hello, 2 in parallel: the spawn ceiling)",
            f"**{cpm.rps / ceil:.2f}** (cpm {cpm.show()} ÷ {ceil:,.0f} spawns/s)", "≥ 0.9", cpm.rps / ceil >= 0.9)
    else:
        row("CGI hello.c c32: cpm-cgi ÷ spawnbench (2 in parallel)", "-", "≥ 0.9", None)
    if cpm:
        row("CGI hello.c c32: cpm-cgi p99, errors", f"p99 {cpm.p99:.2f} ms, {cpm.errors} errors", "-", "report")
    for backend, c in (("hello.c", 8), ("hello.c", 128), ("hello.c-static", 32), ("hello.sh", 32), ("hello.pl", 32)):
        a = get("cpm-cgi", backend, c)
        parts = []
        for peer in ("nginx-fcgiwrap", "lighttpd-cgi", "uwsgi-cgi"):
            b = get(peer, backend, c)
            if a and b and b.rps:
                parts.append(f"÷ {peer} **{a.rps / b.rps:.2f}**")
        sp = spawn.get((CGI_PROGRAM[backend], "spawn", 2, 0))
        if a and sp:
            parts.append(f"÷ spawn ceiling **{a.rps / sp:.2f}**")
        row(f"CGI {backend} c{c}: cpm-cgi ({a.show() if a else '-'} req/s)", ", ".join(parts) or "-", "-",
            "report" if parts else None)

    # ---- static
    cpm = get("cpm-static", "static-4k", 32)
    cand = [(get(s, "static-4k", 32), s) for s in STATIC_PEERS]
    cand = [(m, s) for m, s in cand if m and m.rps]
    if cpm and cand:
        best, bname = max(cand, key=lambda x: x[0].rps)
        row("static 4 KiB c32: cpm-static ÷ best of nginx-static (open_file_cache), lighttpd-static, h2o-static",
            ratio(cpm, best, "cpm", bname), "≥ 1", cpm.rps >= best.rps)
    else:
        row("static 4 KiB c32: cpm-static ÷ best peer", "-", "≥ 1", None)
    cpm, ngx = get("cpm-static", "static-100m", 8), get("nginx-static", "static-100m", 8)
    if cpm and ngx and ngx.rps:
        mib = 100 * cpm.rps
        row("static 100 MiB c8: cpm-static ÷ nginx-static (wrk is near its own limit: wrk CPU % of one core shown)",
            f"{ratio(cpm, ngx, 'cpm', 'nginx')}; cpm {mib:,.0f} MiB/s; wrk {cpm.wrk:.0f}% / {ngx.wrk:.0f}%",
            "≥ 0.9", cpm.rps / ngx.rps >= 0.9)
    else:
        row("static 100 MiB c8: cpm-static ÷ nginx-static", "-", "≥ 0.9", None)

    # ---- memory
    # the 5.4 MiB is run-peers.sh's own figure, "RSS idle" of the cpm-cgi stack (VmRSS
    # of the master and its 2 workers before the load), taken before cpm linked OpenSSL
    cgi = next((v for (s_, b, c), v in M.items() if s_ == "cpm-cgi" and v.rss_idle), None)
    if cgi:
        row(f"memory: idle RSS of the cpm-cgi stack (run-peers.sh's figure, {cgi.procs_idle} processes: "
            "master + workers; the issue's 5.4 MiB is this figure from before TLS)",
            f"**{cgi.rss_idle / 1024:.1f} MiB**", "≤ 5.4 MiB", cgi.rss_idle <= RSS_TARGET_KB)
    else:
        row("memory: idle RSS of the cpm-cgi stack", "-", "≤ 5.4 MiB", None)
    mem_path = os.path.join(res, "memory", "default-stack.json")
    if os.path.exists(mem_path):
        m = json.load(open(mem_path))
        cpm_rss = m["master"]["rss_kb"] + sum(w["rss_kb"] for w in m["workers"])
        cpm_pss = m["master"]["pss_kb"] + sum(w["pss_kb"] for w in m["workers"])
        app_rss = sum(a["rss_kb"] for a in m["apps"])
        app_pss = sum(a["pss_kb"] for a in m["apps"])
        row(f"memory: idle RSS of the default stack (etc/cpm.json; VmRSS of cpm's master + {len(m['workers'])} workers)",
            f"**{cpm_rss / 1024:.1f} MiB** (PSS {cpm_pss / 1024:.1f} MiB; + pool apps {len(m['apps'])} procs: "
            f"RSS {app_rss / 1024:.1f}, PSS {app_pss / 1024:.1f} MiB)", "-", "report")
    else:
        row("memory: idle RSS of the default stack", "-", "-", None)
    idle_path = os.path.join(res, "idle", "rounds.jsonl")
    rounds = [json.loads(x) for x in open(idle_path) if x.strip()] if os.path.exists(idle_path) else []
    if rounds:
        r = rounds[0]
        per = (r["with"]["rss_kb"] - r["before"]["rss_kb"]) * 1024 / r["n"]
        pss = (r["with"]["pss_kb"] - r["before"]["pss_kb"]) * 1024 / r["n"]
        row("memory: bytes per idle keep-alive connection (t/bench/idle.sh: workers' RSS with - before ÷ connections)",
            f"**{per:,.0f} B** (PSS {pss:,.0f} B; {r['n']} connections)", f"≤ ~1.2 KB ({CONN_TARGET_B:.0f} B)",
            per <= CONN_TARGET_B)
    else:
        row("memory: bytes per idle keep-alive connection", "-", "≤ ~1.2 KB", None)
    idle_sum = os.path.join(res, "idle", "summary.md")
    idle_fails = [x.strip() for x in open(idle_sum) if x.startswith("FAIL")] if os.path.exists(idle_sum) else []

    # ---- profile
    prof = {r["stack"]: r for r in tsv(os.path.join(res, "profile", "profile.tsv"))}
    if prof:
        def per_req(r, a, b):
            n = int(r["requests"])
            return f"{(int(r[a]) + int(r[b])) / n:.1f} ({int(r[a]) / n:.1f} + {int(r[b]) / n:.1f})" if n else "-"
        for key, what in (("syscalls", "syscalls"), ("csw", "context switches")):
            vals = ", ".join(f"{s} {per_req(r, key + '_server', key + '_app')}" for s, r in prof.items())
            row(f"profile FastCGI c32: {what} per request, server + app (profile.sh, perf stat)", vals, "-", "report")

    # ---- per-test tables
    tests = []
    for s, b, c in order:
        if (b, c, s.endswith("-p1")) not in tests:
            tests.append((b, c, s.endswith("-p1")))
    if tests:
        p("\n'‡' = req/s × p50 < c/4: most connections starved, not a fair bar. PASS/MISS only where the issue "
          "sets a target; absolute numbers only mean something next to the other rows of this run.\n")
        p("### per stack and test (medians over the reps)\n")
        p("| test | stack | req/s | p50 ms | p99 ms | errors (non-2xx + sock) | reps | cpm ÷ this |")
        p("|---|---|---|---|---|---|---|---|")
        for b, c, p1 in tests:
            rows = sorted(((s, M[(s, bb, cc)]) for s, bb, cc in order if (bb, cc, s.endswith("-p1")) == (b, c, p1)),
                          key=lambda x: -x[1].rps)
            cpm = next((m for s, m in rows if s.startswith("cpm-") and not s.endswith("-p1")), None)
            for s, m in rows:
                if s.endswith("-p1"):
                    cpm_here = next((mm for ss, mm in rows if ss == "cpm-fcgi-p1"), None)
                else:
                    cpm_here = cpm
                rel = f"{cpm_here.rps / m.rps:.2f}" if cpm_here and m.rps and not s.startswith("cpm-") else "-"
                test = f"{b} c{c}" + (" (pool of 1)" if s.endswith("-p1") else "")
                flag = " !" if m.other > float(os.environ.get("OTHER_MAX", "15")) else ""
                p(f"| {test} | {s} | {m.show()}{flag} | {m.p50:.2f} | {m.p99:.2f} | {m.non2xx} + {m.sock} | {m.reps} | {rel} |")
        sp = {k: v for k, v in spawn.items() if k[1] == "spawn" and k[3] == 0}
        if sp:
            p("\nspawn ceiling (spawnbench, posix_spawn, stdout to a pipe read to EOF, waitpid; spawns/s): "
              + ", ".join(f"{k[0]} x{k[2]} {v:,.0f}" for k, v in sorted(sp.items())))
    bad = False
    if failures:
        p("")
        for r in failures:
            p(f"FAILED: {r['stack']} {r['backend']} c{r['conns']}: {r['reason']}")
        bad = True
    for f in idle_fails:
        p(f"idle.sh {f}")
        bad = True
    for (s, b, c), m in M.items():
        if s.startswith("cpm-") and m.errors:
            p(f"ERRORS: {s} {b} c{c}: {m.non2xx} non-2xx, {m.sock} socket errors")
            bad = True
    p(f"\nfull table: {res}/table.md   chart: {res}/chart.svg")
    print("\n".join(out))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
