#!/usr/bin/env bash
# t/bench/run.sh - measure cpm against its CGI peers in one run (`make bench` runs this).
#
#   t/bench/run.sh              # full: 3 reps x 10 s per row (~10 min)
#   t/bench/run.sh --quick      # smoke test: 1 rep x 3 s
#   t/bench/run.sh --reps 5     # any other run-peers.sh option is passed through
#   t/bench/run.sh --set static # cpm-static against nginx/lighttpd/h2o static files
#
# Builds cpm if needed, runs ../shared/bench/run-peers.sh (relative to the repository
# root) with stack cpm-cgi from t/bench/stacks-cpm.sh next to nginx-fcgiwrap and
# lighttpd-cgi, writes everything to t/bench/results/<date>/ and prints, from that
# run's reps.tsv, cpm's req/s as a ratio to nginx-fcgiwrap (and lighttpd-cgi).
#
# Environment: CPM_BIN (binary to measure; default ./cpm, built with make),
# PEERS_DIR (default ../shared/bench), BENCH_RESULTS (results directory of this run),
# plus run-peers.sh's own variables (PEERS_RUN_DIR, REPS, DURATION, ...).
set -u -o pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/../.." && pwd)
PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/bench}

if [ ! -x "$PEERS_DIR/run-peers.sh" ]; then
    echo "t/bench/run.sh: peer benchmark not found: $PEERS_DIR/run-peers.sh" >&2
    echo "  (expected ../shared/bench next to the repository, or set PEERS_DIR)" >&2
    exit 1
fi
PEERS_DIR=$(cd "$PEERS_DIR" && pwd)

if [ -z "${CPM_BIN:-}" ]; then
    make -C "$ROOT" cpm >&2 || { echo "t/bench/run.sh: building cpm failed" >&2; exit 1; }
    CPM_BIN=$ROOT/cpm
fi
[ -x "$CPM_BIN" ] || { echo "t/bench/run.sh: no cpm binary at $CPM_BIN" >&2; exit 1; }
export CPM_BIN

# run-peers.sh wipes and reuses one run directory and fixed ports: one run at a time.
RUN=${PEERS_RUN_DIR:-/tmp/cpm-peers-run}
LOCK=${RUN%/}.lock
exec 9>>"$LOCK"
if ! flock -n 9; then
    echo "t/bench/run.sh: another benchmark run holds $LOCK; wait for it to finish" >&2
    exit 1
fi

RES=${BENCH_RESULTS:-$BENCH/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RES"
RES=$(cd "$RES" && pwd)
ln -sfn "$(basename "$RES")" "$BENCH/results/latest" 2>/dev/null || true
export PEERS_RESULTS_DIR=$RES

echo "cpm: $CPM_BIN ($("$CPM_BIN" -v 2>&1))  results: $RES" >&2
"$PEERS_DIR/run-peers.sh" --extra "$BENCH/stacks-cpm.sh" \
    --only '^(nginx-fcgiwrap|cpm-cgi|lighttpd-cgi|nginx-fcgi-ka|nginx-fcgi|cpm-fcgi)$' --no-spawn "$@"
rc=$?

# Keep this run's server logs and configs with its results ($RUN is wiped by the next run).
if [ -f "$RES/env.txt" ]; then    # (setup ran: $RUN belongs to this run)
    mkdir -p "$RES/run-logs"
    cp -p "$RUN"/logs/* "$RUN"/conf/* "$RES/run-logs/" 2>/dev/null || true
fi

# Ratio summary from this run's reps.tsv only (absolute numbers do not carry across runs).
/usr/bin/env python3 - "$RES" <<'PY' | tee "$RES/ratios.md"
import csv, os, statistics, sys
res = sys.argv[1]
path = os.path.join(res, "reps.tsv")
if not os.path.exists(path):
    print(f"no {path}: nothing measured"); sys.exit(0)
with open(path, newline="") as f:
    reps = list(csv.DictReader(f, delimiter="\t"))
rps, err, order = {}, {}, []
for r in reps:
    k = (r["stack"], r["backend"], int(r["conns"]))
    rps.setdefault(k, []).append(int(r["requests"]) / (int(r["duration_us"]) / 1e6))
    e = err.setdefault(k, [0, 0])
    e[0] += int(r["status"])
    e[1] += sum(int(r[x]) for x in ("connect", "read", "write", "timeout"))
    t = (r["backend"], int(r["conns"]))
    if t not in order:
        order.append(t)
med = {k: statistics.median(v) for k, v in rps.items()}
def fmt(x): return f"{x:,.0f}" if x is not None else "-"
def ratio(a, b): return f"{a / b:.2f}" if a is not None and b else "-"
def cgi_row(b): return b != "fcgi-hello" and not b.startswith("static-")
if any(cgi_row(b) for b, c in order):
    print("### cpm-cgi vs peers (same run; median req/s; ratio = cpm ÷ peer)\n")
    print("| backend | c | cpm-cgi | nginx-fcgiwrap | **cpm ÷ nginx-fcgiwrap** | lighttpd-cgi | cpm ÷ lighttpd-cgi | cpm non-2xx | cpm sock err |")
    print("|---|---|---|---|---|---|---|---|---|")
for b, c in order:
    if not cgi_row(b):
        continue
    cpm, ngx, lig = (med.get((s, b, c)) for s in ("cpm-cgi", "nginx-fcgiwrap", "lighttpd-cgi"))
    e = err.get(("cpm-cgi", b, c))
    print(f"| {b} | {c} | {fmt(cpm)} | {fmt(ngx)} | **{ratio(cpm, ngx)}** | {fmt(lig)} | {ratio(cpm, lig)} "
          f"| {e[0] if e else '-'} | {e[1] if e else '-'} |")
if ("fcgi-hello", 32) in order:
    print("\n### cpm-fcgi (pool, KEEP_CONN) vs nginx -> spawn-fcgi (same run; median req/s)\n")
    print("| backend | c | cpm-fcgi | nginx-fcgi-ka | **cpm ÷ nginx-fcgi-ka** | nginx-fcgi | cpm ÷ nginx-fcgi | cpm non-2xx | cpm sock err |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b, c in order:
        if b != "fcgi-hello":
            continue
        cpm, ka, nk = (med.get((s, b, c)) for s in ("cpm-fcgi", "nginx-fcgi-ka", "nginx-fcgi"))
        e = err.get(("cpm-fcgi", b, c))
        print(f"| {b} | {c} | {fmt(cpm)} | {fmt(ka)} | **{ratio(cpm, ka)}** | {fmt(nk)} | {ratio(cpm, nk)} "
              f"| {e[0] if e else '-'} | {e[1] if e else '-'} |")
if any(b.startswith("static-") for b, c in order):
    print("\n### cpm-static vs nginx-static (sendfile, open_file_cache) and lighttpd-static (same run; median req/s)\n")
    print("| backend | c | cpm-static | nginx-static | **cpm ÷ nginx-static** | lighttpd-static | cpm ÷ lighttpd-static | cpm MiB/s | cpm non-2xx | cpm sock err |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    size = {"static-4k": 4096, "static-100m": 100 << 20}
    for b, c in order:
        if not b.startswith("static-"):
            continue
        cpm, ngx, lig = (med.get((s, b, c)) for s in ("cpm-static", "nginx-static", "lighttpd-static"))
        e = err.get(("cpm-static", b, c))
        mib = f"{cpm * size[b] / (1 << 20):,.0f}" if cpm is not None and b in size else "-"
        print(f"| {b} | {c} | {fmt(cpm)} | {fmt(ngx)} | **{ratio(cpm, ngx)}** | {fmt(lig)} | {ratio(cpm, lig)} "
              f"| {mib} | {e[0] if e else '-'} | {e[1] if e else '-'} |")
fpath = os.path.join(res, "failures.tsv")
if os.path.exists(fpath):
    with open(fpath, newline="") as f:
        fails = list(csv.DictReader(f, delimiter="\t"))
    if fails:
        print()
    for r in fails:
        print(f"FAILED: {r['stack']} {r['backend']} c{r['conns']}: {r['reason']}")
print(f"\nfull table: {res}/table.md")
PY

for log in "$RES"/run-logs/cpm-cgi.err "$RES"/run-logs/cpm-fcgi.err "$RES"/run-logs/cpm-static.err; do
    [ -f "$log" ] || continue
    nerr=$(grep -c '\[error\]' "$log"); nwarn=$(grep -c '\[warn\]' "$log")
    echo "cpm log ($log): $nerr error, $nwarn warn line(s)" | tee -a "$RES/ratios.md"
    grep -E '\[(error|warn)\]' "$log" | head -10 | sed 's/^/  /' | tee -a "$RES/ratios.md"
done
exit "$rc"
