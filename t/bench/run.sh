#!/usr/bin/env bash
# t/bench/run.sh - cpm against its peers in one run: every issue-14 target, one ratio table
# (`make bench` runs this).
#
#   t/bench/run.sh              # full: 2 reps x 8 s per row, ~30 min on 2 cores
#   t/bench/run.sh --quick      # smoke test: 1 rep x 3 s, short idle/profile steps (~10 min)
#   t/bench/run.sh --reps 3     # any other run-peers.sh option is passed through
#   t/bench/run.sh --set static # only one comparison (cgi, fcgi, static; no memory/profile step)
#
# Builds cpm if needed, then ONE ../shared/bench/run-peers.sh run with t/bench/stacks-cpm.sh:
# spawnbench; nginx-return (c8/c32/c128); CGI: cpm-cgi, nginx-fcgiwrap, lighttpd-cgi, uwsgi-cgi
# (CGI_TESTS); FastCGI fcgi-hello: cpm-fcgi, nginx-fcgi-ka, nginx-fcgi, lighttpd-fcgi, h2o-fcgi,
# h2o-fcgi-ext at c8/c32/c128, and each with a pool of one process (NAME-p1, c32); static:
# cpm-static, nginx-static, lighttpd-static, h2o-static (4k c32, 100m c8). Then, unless --set or
# --only chose a subset: the memory step (idle RSS of `make run`'s etc/cpm.json, t/bench/idle.sh
# for bytes per idle connection) and t/bench/profile.sh (syscalls and context switches per
# FastCGI request, perf report of cpm's workers). Everything goes to t/bench/results/<date>/;
# ratios.py prints the ratio table (saved as ratios.md), chart.py draws chart.svg.
#
# Exit status: non-zero when something could not be measured (a stack failed its curl check,
# wrk gave no result, cpm's rows have errors, a step failed), not when a target is missed.
#
# Environment: CPM_BIN (binary to measure; default ./cpm, built with make), PEERS_DIR (default
# ../shared/bench), BENCH_RESULTS (results directory of this run), BENCH_MEMORY=0 /
# BENCH_PROFILE=0 (skip a step), BENCH_LOCK_WAIT (s to wait for the lock, 900), IDLE_CONNS
# (10000; --quick 1000), PROFILE_SECS (10; --quick 3), plus run-peers.sh's own variables
# (PEERS_RUN_DIR, REPS, DURATION, SPAWN_SECS, ...).
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
    echo "t/bench/run.sh: another benchmark holds $LOCK; waiting up to ${BENCH_LOCK_WAIT:-900}s" >&2
    flock -w "${BENCH_LOCK_WAIT:-900}" 9 || { echo "t/bench/run.sh: $LOCK still held, giving up" >&2; exit 1; }
fi

RES=${BENCH_RESULTS:-$BENCH/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RES"
RES=$(cd "$RES" && pwd)
ln -sfn "$(basename "$RES")" "$BENCH/results/latest" 2>/dev/null || true
export PEERS_RESULTS_DIR=$RES

QUICK=0 SUBSET=0
for a in "$@"; do
    case $a in --quick) QUICK=1 ;; --set|--only) SUBSET=1 ;; esac
done
DEFAULTS=()
if [ "$QUICK" = 0 ]; then
    [ -n "${REPS:-}" ] || DEFAULTS+=(--reps 2)
    [ -n "${DURATION:-}" ] || DEFAULTS+=(--duration 8)
fi
FCGI='nginx-fcgi-ka|nginx-fcgi|lighttpd-fcgi|h2o-fcgi|h2o-fcgi-ext|cpm-fcgi'
ONLY="^(spawnbench|nginx-return|nginx-fcgiwrap|lighttpd-cgi|uwsgi-cgi|cpm-cgi|$FCGI|($FCGI)-p1"
ONLY+='|nginx-static|lighttpd-static|h2o-static|cpm-static)$'

start=$(date +%s)
echo "cpm: $CPM_BIN ($("$CPM_BIN" -v 2>&1))  results: $RES" >&2
"$PEERS_DIR/run-peers.sh" --extra "$BENCH/stacks-cpm.sh" --only "$ONLY" ${DEFAULTS[@]+"${DEFAULTS[@]}"} "$@"
rc=$?

# Keep this run's server logs and configs with its results ($RUN is wiped by the next run).
if [ -f "$RES/env.txt" ]; then    # (setup ran: $RUN belongs to this run)
    mkdir -p "$RES/run-logs"
    cp -p "$RUN"/logs/* "$RUN"/conf/* "$RES/run-logs/" 2>/dev/null || true
fi


# Memory: the idle RSS of `make run`'s stack (etc/cpm.json, made to listen on a free port with
# its paths absolute and logs in $RES/memory), and t/bench/idle.sh for bytes per connection.
memory_step() {
    local d=$RES/memory port pid
    mkdir -p "$d"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    python3 - "$ROOT/etc/cpm.json" "$d/cpm.json" "$port" <<'PY' || return 1
import json, os, sys
src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3]
base = os.path.dirname(os.path.abspath(src))
c = json.load(open(src))
c["listen"] = [f"127.0.0.1:{port}"]
c["access_log"] = os.path.join(os.path.dirname(dst), "access.log")
c["error_log"] = os.path.join(os.path.dirname(dst), "error.log")
ab = lambda p: p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))
for b in c["backends"].values():
    for k in ("root", "cwd"):
        if k in b:
            b[k] = ab(b[k])
    if "command" in b and "/" in b["command"][0]:
        b["command"][0] = ab(b["command"][0])
json.dump(c, open(dst, "w"), indent=1)
PY
    # as `make run` does: as root, examples run as nobody unless nobody cannot reach them
    if "$CPM_BIN" -t -c "$d/cpm.json" 2>&1 | grep -q 'is not reachable by user nobody'; then
        sed -i '1s/^{$/{ "user": "root",/' "$d/cpm.json"
    fi
    "$CPM_BIN" -t -c "$d/cpm.json" >"$d/check.txt" 2>&1 || { echo "memory: cpm -t failed: $(cat "$d/check.txt")" >&2; return 1; }
    "$CPM_BIN" -c "$d/cpm.json" >"$d/stdout.txt" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    sleep 1
    # one request to each route with an application behind it, then idle
    for u in / /hello.sh /fcgi/counter /fcgi/perl; do
        curl -s -o /dev/null -w "$u %{http_code}\n" --max-time 10 "http://127.0.0.1:$port$u"
    done >"$d/requests.txt" 2>&1
    sleep 3
    python3 - "$pid" >"$d/default-stack.json" <<'PY'
import json, os, sys
root = sys.argv[1]
kids = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            st = open(f"/proc/{p}/stat").read()
            kids.setdefault(st[st.rindex(")") + 2:].split()[1], []).append(p)
        except OSError:
            pass
def info(p):
    cmd = open(f"/proc/{p}/cmdline").read().replace("\0", " ").strip()
    rss = next(int(l.split()[1]) for l in open(f"/proc/{p}/status") if l.startswith("VmRSS:"))
    pss = next(int(l.split()[1]) for l in open(f"/proc/{p}/smaps_rollup") if l.startswith("Pss:"))
    return {"pid": int(p), "cmd": cmd, "rss_kb": rss, "pss_kb": pss}
out = {"master": info(root), "workers": [], "apps": []}
todo = list(kids.get(root, []))
while todo:
    p = todo.pop()
    todo += kids.get(p, [])
    i = info(p)
    out["workers" if i["cmd"].startswith("cpm: worker") else "apps"].append(i)
json.dump(out, sys.stdout, indent=1)
PY
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "memory: default stack $(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(len(m["workers"]), "workers,", len(m["apps"]), "apps")' "$d/default-stack.json"); requests: $(tr '\n' ' ' <"$d/requests.txt")" >&2
    IDLE_CONNS=${IDLE_CONNS:-$([ "$QUICK" = 1 ] && echo 1000 || echo 10000)} IDLE_ROUNDS=${IDLE_ROUNDS:-1} \
        CPM_BIN=$CPM_BIN OUT=$RES/idle "$BENCH/idle.sh" >"$RES/idle.txt" 2>&1 ||
        { echo "memory: t/bench/idle.sh failed (see $RES/idle.txt)" >&2; return 1; }
}

if [ "$SUBSET" = 0 ] && [ "${BENCH_MEMORY:-1}" = 1 ]; then
    echo "memory step (default stack RSS, idle.sh)" >&2
    memory_step || rc=1
fi
if [ "$SUBSET" = 0 ] && [ "${BENCH_PROFILE:-1}" = 1 ]; then
    echo "profile step (t/bench/profile.sh)" >&2
    if [ "$QUICK" = 1 ]; then : "${PROFILE_SECS:=3}" "${PROFILE_RECORD_SECS:=2}"; fi
    PROFILE_SECS=${PROFILE_SECS:-10} PROFILE_RECORD_SECS=${PROFILE_RECORD_SECS:-5} \
        CPM_BENCH_LOCKED=1 BENCH_RESULTS=$RES CPM_BIN=$CPM_BIN PEERS_DIR=$PEERS_DIR \
        "$BENCH/profile.sh" >"$RES/profile.txt" 2>&1 ||
        { echo "profile.sh failed (see $RES/profile.txt)" >&2; rc=1; }
fi

# The ratio table from this run's files only (absolute numbers do not carry across runs).
python3 "$BENCH/ratios.py" "$RES" >"$RES/ratios.md" || rc=1
for log in "$RES"/run-logs/cpm-cgi.err "$RES"/run-logs/cpm-fcgi.err "$RES"/run-logs/cpm-static.err; do
    [ -f "$log" ] || continue
    nerr=$(grep -c '\[error\]' "$log"); nwarn=$(grep -c '\[warn\]' "$log")
    echo "cpm log ($log): $nerr error, $nwarn warn line(s)" >>"$RES/ratios.md"
    grep -E '\[(error|warn)\]' "$log" | head -10 | sed 's/^/  /' >>"$RES/ratios.md"
done
python3 "$BENCH/chart.py" "$RES" >&2 || echo "chart.py failed" >&2
echo "run took $(( ($(date +%s) - start) / 60 )) min" >>"$RES/ratios.md"
cat "$RES/ratios.md"
exit "$rc"
