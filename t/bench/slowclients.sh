#!/usr/bin/env bash
# t/bench/slowclients.sh - slowloris and slow-body attacks (Debian's slowhttptest)
# against a running cpm: normal requests keep being answered, worker memory stays
# bounded, and the attackers are cut by the read timeouts.
#
#   t/bench/slowclients.sh                  # both modes, 1000 attack connections
#   SLOW_MODES=H t/bench/slowclients.sh     # slowloris only (B: slow body only)
#
# For each mode (H = slowloris: the request head trickles in; B = slow body: a POST
# whose Content-Length body trickles in) it starts its own cpm (2 workers, port picked
# free on 127.0.0.1, header_timeout = client_timeout = $SLOW_TIMEOUT s), then
#
#   1. baseline: `wrk -t1 -c4 --latency` on /hello (a C CGI program, keep-alive) for
#      $BASE_SECONDS s, and at the same time a probe that opens a fresh connection per
#      request (GET /hello, Connection: close, one every 50 ms) - so both the request
#      path and the accept path are measured;
#   2. attack: slowhttptest -c $SLOW_CONNS -r $SLOW_RATE against cpm. Slowloris sends
#      a header line every $SLOW_H_INTERVAL s (less than header_timeout: header_timeout
#      bounds the whole head, not the gap); slow body POSTs to /form.sh, a CGI script
#      that reads its body (so every attack connection also holds a CGI process), and
#      sends a piece every $SLOW_B_INTERVAL s (more than client_timeout, which is the
#      longest gap allowed while a body arrives). The same wrk + probe run for
#      $SLOW_TIMEOUT s starting 2 s into the attack, which covers the peak (all
#      connections open, before the first is cut);
#   3. after: slowhttptest ends when cpm has closed all its connections; the script
#      waits $SETTLE_SECONDS s and measures 3 s more (wrk + probe);
#   4. steps 2-3 again, $SLOW_WAVES attacks in all: the memory the first attack made
#      the workers take must be reused by the next, not added to.
#
# A sampler reads every second: VmRSS (and Pss from smaps_rollup) of the workers (the
# master's children titled `cpm: worker`), their open connections (status backend),
# and the CGI processes under the workers (count and Pss).
#
# Assertions, per mode: no failed normal request (wrk socket errors, non-2xx, probe
# errors) in any phase; attack p99 (wrk and probe) under $P99_MAX_MS ms; cpm held at
# least 80% of $SLOW_CONNS attack connections at each peak (the attack was real); at
# least 95% of them were cut by cpm's timeouts (error log: "408 request head not
# received within header_timeout", or "client stalled for client_timeout"); no
# connection and no CGI process left after an attack; worker RSS (sum over workers)
# under $RSS_MAX_MB MiB; each worker's RSS after the last attack at most $RSS_GROWTH_MB MiB
# above its RSS after the first, plus 24 KiB per connection by which its high-water mark
# of open connections rose. RSS does not go back to the baseline after an attack:
# glibc's malloc keeps the freed per-connection buffers (scattered over the heap, so not
# trimmed), up to the most connections a worker has held; the summary shows base / peak
# / after, and the repeated attack shows that this memory is reused, i.e. bounded, not
# leaked (a leak of about 1 KiB per connection or more would show).
#
# Output: a markdown summary on stdout (also in $OUT/summary.md); raw wrk/slowhttptest
# output, samples and cpm's logs in $OUT (default t/bench/results/<date>-slowclients).
# Exit status: 0 when every assertion holds, 1 otherwise, 2 on a setup error.
#
# Environment: CPM_BIN (default ./cpm, built with make), SLOW_MODES ("H B"),
# SLOW_CONNS (1000), SLOW_RATE (200), SLOW_TIMEOUT (10), SLOW_H_INTERVAL (5),
# SLOW_B_INTERVAL (15), BASE_SECONDS (10), SETTLE_SECONDS (3), P99_MAX_MS (1000),
# RSS_MAX_MB (64), RSS_GROWTH_MB (2), SLOW_WAVES (2), OUT.
set -u -o pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/../.." && pwd)
SLOW_MODES=${SLOW_MODES:-H B}
SLOW_CONNS=${SLOW_CONNS:-1000}
SLOW_RATE=${SLOW_RATE:-200}
SLOW_TIMEOUT=${SLOW_TIMEOUT:-10}
SLOW_H_INTERVAL=${SLOW_H_INTERVAL:-5}
SLOW_B_INTERVAL=${SLOW_B_INTERVAL:-15}
BASE_SECONDS=${BASE_SECONDS:-10}
SETTLE_SECONDS=${SETTLE_SECONDS:-3}
P99_MAX_MS=${P99_MAX_MS:-1000}
RSS_MAX_MB=${RSS_MAX_MB:-64}
RSS_GROWTH_MB=${RSS_GROWTH_MB:-2}
SLOW_WAVES=${SLOW_WAVES:-2}
OUT=${OUT:-$BENCH/results/$(date +%Y%m%d-%H%M%S)-slowclients}

die() { echo "slowclients.sh: $*" >&2; exit 2; }

# ---- tools ----
if ! command -v slowhttptest >/dev/null || ! command -v wrk >/dev/null; then
    missing=""
    command -v slowhttptest >/dev/null || missing="$missing slowhttptest"
    command -v wrk >/dev/null || missing="$missing wrk"
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2 \
            || die "apt-get install$missing failed"
    else
        die "missing:$missing (run: sudo apt-get install -y$missing)"
    fi
fi
command -v python3 >/dev/null || die "python3 is required"
if [ -z "${CPM_BIN:-}" ]; then
    make -C "$ROOT" cpm examples/hello >&2 || die "building cpm failed"
    CPM_BIN=$ROOT/cpm
fi
[ -x "$CPM_BIN" ] || die "no cpm binary at $CPM_BIN"
# attackers and cpm both hold one descriptor per connection
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((SLOW_CONNS + 200)) ] \
    || die "open files limit $(ulimit -n) is below SLOW_CONNS + 200"

mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
[ -d "$BENCH/results" ] && [ "$(dirname "$OUT")" = "$BENCH/results" ] \
    && ln -sfn "$(basename "$OUT")" "$BENCH/results/latest-slowclients" 2>/dev/null

# ---- processes we started (killed by PID only) ----
CPM_PID="" BG_PIDS=""
cleanup() {
    local p
    for p in $BG_PIDS; do kill "$p" 2>/dev/null; done
    if [ -n "$CPM_PID" ]; then
        kill -TERM "$CPM_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$CPM_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$CPM_PID" 2>/dev/null
        wait "$CPM_PID" 2>/dev/null
    fi
    CPM_PID="" BG_PIDS=""
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- helpers in python ----
cat >"$OUT/sampler.py" <<'PY'
# sampler.py MASTER PORT OUTFILE: one TSV line per second until killed:
# time, per worker "pid:RSS kB:connections" (comma-separated), worker RSS kB (sum),
# worker Pss kB (sum), connections (sum), CGI processes under the workers, their Pss kB (sum)
import json, os, socket, sys, time
master, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []

def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""

def field(pid, name, fname="status"):
    try:
        with open(f"/proc/{pid}/{fname}") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def descendants(pid):
    out, todo = [], children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out

def status_conns():
    """{worker pid: open connections}, this request not counted"""
    try:
        s = socket.create_connection(("127.0.0.1", port), 2)
        s.settimeout(2)
        s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        doc = json.loads(data.split(b"\r\n\r\n", 1)[1])
        conns = {w["pid"]: w["connections"] for w in doc["workers"]}
        busiest = max(conns, key=conns.get)  # the one answering this request (it has at least 1)
        conns[busiest] -= 1
        return conns
    except Exception:
        return None

t0 = time.time()
with open(out, "a", buffering=1) as f:
    while True:
        ws = [p for p in children(master) if cmdline(p).startswith("cpm: worker")]
        cgis = [d for w in ws for d in descendants(w)]
        rss = {w: field(w, "VmRSS") for w in ws}
        pss = sum(field(w, "Pss", "smaps_rollup") for w in ws)
        conns = status_conns()
        per = ",".join(f"{w}:{rss[w]}:{conns.get(w, -1) if conns else -1}" for w in ws)
        f.write(f"{time.time():.3f}\t{per}\t{sum(rss.values())}\t{pss}\t{sum(conns.values()) if conns else -1}\t"
                f"{len(cgis)}\t{sum(field(c, 'Pss', 'smaps_rollup') for c in cgis)}\n")
        time.sleep(max(0.0, 1.0 - (time.time() - t0) % 1.0))
PY

cat >"$OUT/probe.py" <<'PY'
# probe.py PORT SECONDS OUTFILE: GET /hello on a fresh connection every 50 ms;
# writes JSON {n, errors, p50_ms, p99_ms, max_ms, first_errors}
import json, socket, sys, time
port, secs, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
lat, errs = [], []
end = time.time() + secs
while time.time() < end:
    t = time.time()
    try:
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.settimeout(5)
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        if not data.startswith(b"HTTP/1.1 200 ") or b"Hello from C\n" not in data:
            errs.append("bad response: %r" % data[:60])
        else:
            lat.append((time.time() - t) * 1000)
    except Exception as e:
        errs.append(repr(e))
    time.sleep(max(0.0, 0.05 - (time.time() - t)))
lat.sort()
pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None
json.dump({"n": len(lat) + len(errs), "errors": len(errs), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
           "max_ms": round(lat[-1], 2) if lat else None, "first_errors": errs[:5]}, open(out, "w"))
PY

# wrk_json FILE: wrk --latency output -> JSON {rps, p50_ms, p99_ms, errors, non2xx}
wrk_json() {
    python3 - "$1" <<'PY'
import json, re, sys
t = open(sys.argv[1]).read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    n, u = float(m.group(1)), m.group(2)
    return round(n * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[u], 3)
pc = dict((k, ms(v)) for k, v in re.findall(r"^\s+(50|99)%\s+(\S+)", t, re.M))
se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
nx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
rq = re.search(r"(\d+) requests in", t)
rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
print(json.dumps({"requests": int(rq.group(1)) if rq else 0, "rps": float(rps.group(1)) if rps else 0,
                  "p50_ms": pc.get("50"), "p99_ms": pc.get("99"),
                  "errors": sum(map(int, se.groups())) if se else 0, "non2xx": int(nx.group(1)) if nx else 0}))
PY
}

# measure PHASE SECONDS: wrk + probe in parallel, results in $D/PHASE.{wrk,probe}
measure() {
    local phase=$1 secs=$2 wp pp
    wrk -t1 -c4 -d"${secs}s" --latency "http://127.0.0.1:$PORT/hello" >"$D/$phase.wrk.txt" 2>&1 &
    wp=$!
    python3 "$OUT/probe.py" "$PORT" "$secs" "$D/$phase.probe.json" &
    pp=$!
    BG_PIDS="$BG_PIDS $wp $pp"
    wait "$wp" "$pp"
    wrk_json "$D/$phase.wrk.txt" >"$D/$phase.wrk.json"
}

FAIL=0
RESULTS=()

run_mode() {
    local mode=$1 name target interval extra
    case $mode in
    H) name=slowloris target=/hello interval=$SLOW_H_INTERVAL extra="-H" ;;
    B) name=slow-body target=/form.sh interval=$SLOW_B_INTERVAL extra="-B -s 4096" ;;
    *) die "unknown mode $mode (H or B)" ;;
    esac
    D=$OUT/$name
    mkdir -p "$D"
    PORT=$(free_port)
    cat >"$D/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$PORT"],
  "workers": 2,
  "user": "root",
  "access_log": null,
  "error_log": "$D/error.log",
  "max_connections": 6000,
  "header_timeout": $SLOW_TIMEOUT,
  "client_timeout": $SLOW_TIMEOUT,
  "keepalive": 60,
  "routes": [ { "prefix": "/status", "backend": "st" }, { "prefix": "/", "backend": "cgi" } ],
  "backends": {
    "cgi": { "type": "cgi", "root": "$ROOT/examples" },
    "st": { "type": "status" }
  }
}
JSON
    "$CPM_BIN" -c "$D/cpm.json" >"$D/stderr.log" 2>&1 &
    CPM_PID=$!
    local ok=0
    for _ in $(seq 100); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/hello" 2>/dev/null; then ok=1; break; fi
        kill -0 "$CPM_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ $ok = 1 ] || { cat "$D/stderr.log" "$D/error.log" >&2; die "cpm did not start ($name)"; }

    python3 "$OUT/sampler.py" "$CPM_PID" "$PORT" "$D/samples.tsv" &
    local sp=$!
    BG_PIDS="$BG_PIDS $sp"
    echo "[$name] baseline ${BASE_SECONDS}s" >&2
    measure base "$BASE_SECONDS"
    local wave times="" t_attack t_end ap
    for wave in $(seq "$SLOW_WAVES"); do
        t_attack=$(date +%s.%N)
        echo "[$name] attack $wave: slowhttptest $extra -c $SLOW_CONNS -r $SLOW_RATE -i $interval" >&2
        # -l: an upper bound; slowhttptest ends by itself once cpm has closed every connection
        slowhttptest $extra -c "$SLOW_CONNS" -r "$SLOW_RATE" -i "$interval" \
            -l $((SLOW_TIMEOUT * 3 + SLOW_CONNS / SLOW_RATE + 30)) -p 3 \
            -u "http://127.0.0.1:$PORT$target" -g -o "$D/slowhttptest$wave" >"$D/slowhttptest$wave.txt" 2>&1 &
        ap=$!
        BG_PIDS="$BG_PIDS $ap"
        sleep 2
        measure "attack$wave" "$SLOW_TIMEOUT"
        wait "$ap"
        t_end=$(date +%s.%N)
        times="$times $t_attack,$t_end"
        echo "[$name] settle ${SETTLE_SECONDS}s" >&2
        sleep "$SETTLE_SECONDS"
        measure "after$wave" 3
        sleep 1.5
    done
    kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null
    cleanup

    python3 - "$D" "$name" "$SLOW_CONNS" "$P99_MAX_MS" "$RSS_MAX_MB" "$RSS_GROWTH_MB" $times \
        >"$D/result.json" <<'PY'
import csv, json, os, re, sys
d, name = sys.argv[1], sys.argv[2]
conns, p99_max, rss_max_mb, growth_mb = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
waves = [tuple(map(float, w.split(","))) for w in sys.argv[7:]]
J = lambda f: json.load(open(os.path.join(d, f)))
rows = []
for line in open(os.path.join(d, "samples.tsv")):
    t, per, rss, pss, c, ncgi, cgipss = line.rstrip("\n").split("\t")
    per = {int(a): (int(b), int(c_)) for a, b, c_ in (x.split(":") for x in per.split(",") if x)}
    rows.append(dict(t=float(t), per=per, rss=int(rss), pss=int(pss), conns=int(c), ncgi=int(ncgi), cgipss=int(cgipss)))
log = open(os.path.join(d, "error.log"), errors="replace").read()
errors = [l for l in log.splitlines() if "[error]" in l]
r = dict(mode=name, phases={"base": {"wrk": J("base.wrk.json"), "probe": J("base.probe.json")}},
         rss_base_kb=max(r["rss"] for r in rows if r["t"] < waves[0][0]), waves=[],
         cut_head=log.count("408 request head not received within header_timeout"),
         cut_body=log.count("request body not received within client_timeout"),
         stalled=log.count("client stalled for client_timeout"), error_lines=errors[:5], n_error_lines=len(errors))
for i, (t0, t1) in enumerate(waves, 1):
    nxt = waves[i][0] if i < len(waves) else float("inf")
    att = [x for x in rows if t0 <= x["t"] <= t1]
    aft = [x for x in rows if t1 < x["t"] < nxt]
    csvp = os.path.join(d, f"slowhttptest{i}.csv")
    last = list(csv.reader(open(csvp)))[-1] if os.path.exists(csvp) else None
    st = dict(seconds=int(last[0]), closed=int(last[1]), pending=int(last[2]), connected=int(last[3])) if last else {}
    txt = open(os.path.join(d, f"slowhttptest{i}.txt"), errors="replace").read()
    m = re.findall(r"error:\s*(?:\x1b\[[0-9;]*m)*\s*(\d+)", txt)
    st["error"] = int(m[-1]) if m else None
    st["service_available_no"] = re.findall(r"service available:\s*(?:\x1b\[[0-9;]*m)*\s*(YES|NO)", txt).count("NO")
    r["phases"][f"attack {i}"] = {"wrk": J(f"attack{i}.wrk.json"), "probe": J(f"attack{i}.probe.json")}
    r["phases"][f"after {i}"] = {"wrk": J(f"after{i}.wrk.json"), "probe": J(f"after{i}.probe.json")}
    # per worker: RSS after this attack, and the most connections it has held so far
    hw = {}
    for x in rows:
        if x["t"] <= t1:
            for pid, (_, c) in x["per"].items():
                hw[pid] = max(hw.get(pid, 0), c)
    per_after = {pid: {"rss_kb": v[0], "conns_high": hw.get(pid, 0)} for pid, v in (aft[-1]["per"].items() if aft else [])}
    r["waves"].append(dict(per_worker_after=per_after, seconds=round(t1 - t0, 1), rss_peak_kb=max(x["rss"] for x in att),
                           pss_peak_kb=max(x["pss"] for x in att), conns_peak=max(x["conns"] for x in att),
                           cgi_peak=max(x["ncgi"] for x in att), cgi_pss_peak_kb=max(x["cgipss"] for x in att),
                           rss_after_kb=aft[-1]["rss"] if aft else None, conns_after=aft[-1]["conns"] if aft else None,
                           cgi_after=aft[-1]["ncgi"] if aft else None, slowhttptest=st))
fails = []
for ph, m in r["phases"].items():
    w, p = m["wrk"], m["probe"]
    if w["errors"] or w["non2xx"] or not w["requests"]:
        fails.append(f"{ph}: wrk {w['requests']} requests, {w['errors']} socket errors, {w['non2xx']} non-2xx")
    if p["errors"] or not p["n"]:
        fails.append(f"{ph}: probe {p['errors']} of {p['n']} failed: {p['first_errors']}")
    if ph.startswith("attack"):
        for k in ("wrk", "probe"):
            if m[k]["p99_ms"] is None or m[k]["p99_ms"] > p99_max:
                fails.append(f"{ph}: {k} p99 {m[k]['p99_ms']} ms > {p99_max:g} ms")
for i, w in enumerate(r["waves"], 1):
    if w["conns_peak"] < 0.8 * conns:
        fails.append(f"attack {i}: cpm held only {w['conns_peak']} attack connections at the peak (< 80% of {conns})")
    if w["conns_after"] is None or w["conns_after"] > 0:
        fails.append(f"attack {i}: {w['conns_after']} connection(s) still open afterwards")
    if w["cgi_after"]:
        fails.append(f"attack {i}: {w['cgi_after']} CGI process(es) left afterwards")
    if w["rss_peak_kb"] > rss_max_mb * 1024:
        fails.append(f"attack {i}: worker RSS peak {w['rss_peak_kb']} kB > {rss_max_mb:g} MiB")
cut = r["cut_head"] + r["stalled"]  # "client stalled" is logged for every body cut (408 or close)
if cut < 0.95 * conns * len(waves):
    fails.append(f"only {cut} of {conns * len(waves)} attack connections cut by cpm's timeouts (error log)")
# Memory kept after an attack follows each worker's high-water mark of connections
# (malloc keeps what it freed): a worker that held more connections in a later attack
# may keep more. Anything beyond that (GROWTH_MB, plus 24 KiB per connection of a
# higher mark) is growth that was not reused.
if len(r["waves"]) > 1:
    w1, wn = r["waves"][0]["per_worker_after"], r["waves"][-1]["per_worker_after"]
    for pid in sorted(set(w1) & set(wn)):
        a, b = w1[pid], wn[pid]
        allow = growth_mb * 1024 + 24 * max(0, b["conns_high"] - a["conns_high"])
        if b["rss_kb"] - a["rss_kb"] > allow:
            fails.append(f"worker {pid}: RSS after attack 1 {a['rss_kb']} kB (high-water {a['conns_high']} connections), "
                         f"after attack {len(waves)} {b['rss_kb']} kB (high-water {b['conns_high']}): more than +{allow:.0f} kB")
    if set(w1) != set(wn):
        fails.append(f"workers changed during the test: {sorted(w1)} -> {sorted(wn)}")
r["fails"] = fails
print(json.dumps(r, indent=1))
PY
    if [ ! -s "$D/result.json" ]; then
        echo "[$name] could not evaluate (see $D)" >&2
        FAIL=1
        return
    fi
    RESULTS+=("$D/result.json")
}

for m in $SLOW_MODES; do
    run_mode "$m"
done

python3 - "$SLOW_CONNS" "$SLOW_RATE" "$SLOW_TIMEOUT" "$SLOW_H_INTERVAL" "$SLOW_B_INTERVAL" "${RESULTS[@]}" <<'PY' | tee "$OUT/summary.md"
import json, sys
conns, rate, tmo, hi, bi = sys.argv[1:6]
res = [json.load(open(f)) for f in sys.argv[6:]]
print(f"### cpm under slowhttptest ({conns} connections at {rate}/s; header_timeout = client_timeout = {tmo} s)\n")
print(f"slowloris: a header line every {hi} s to /hello; slow body: POST /form.sh (a CGI script reading "
      f"its body), Content-Length 4096, a piece every {bi} s. Normal load: wrk -t1 -c4 on /hello "
      f"(keep-alive) + a probe opening a connection per request every 50 ms.\n")
print("| mode | phase | wrk req/s | wrk p50 ms | wrk p99 ms | wrk errors | probe n | probe p50 ms | probe p99 ms | probe max ms | probe errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in res:
    for ph, m in r["phases"].items():
        w, p = m["wrk"], m["probe"]
        print(f"| {r['mode']} | {ph} | {w['rps']:.0f} | {w['p50_ms']} | {w['p99_ms']} | {w['errors'] + w['non2xx']} "
              f"| {p['n']} | {p['p50_ms']} | {p['p99_ms']} | {p['max_ms']} | {p['errors']} |")
print("\n| mode | attack | s | attack conns held (peak) | CGI procs (peak; their Pss MiB) | slowhttptest closed / error / service down | worker RSS kB: base / peak / after | (peak - base) per attack conn | worker Pss peak kB | left after: conns / CGI |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in res:
    for i, w in enumerate(r["waves"], 1):
        s = w["slowhttptest"]
        per = (w["rss_peak_kb"] - r["rss_base_kb"]) * 1024 / max(1, w["conns_peak"])
        print(f"| {r['mode']} | {i} | {w['seconds']} | {w['conns_peak']} | {w['cgi_peak']}; {w['cgi_pss_peak_kb'] / 1024:.0f} "
              f"| {s.get('closed')} / {s.get('error')} / {s.get('service_available_no')} "
              f"| {r['rss_base_kb']} / {w['rss_peak_kb']} / {w['rss_after_kb']} | {per / 1024:.1f} KiB | {w['pss_peak_kb']} "
              f"| {w['conns_after']} / {w['cgi_after']} |")
print()
for r in res:
    print(f"{r['mode']}: per worker after each attack, RSS kB (connection high-water mark): " + "; ".join(
        f"attack {i}: " + ", ".join(f"{v['rss_kb']} ({v['conns_high']})" for _, v in sorted(w["per_worker_after"].items()))
        for i, w in enumerate(r["waves"], 1)))
print()
for r in res:
    print(f"{r['mode']}: cut by cpm: {r['cut_head']} x 408 (header_timeout), {r['stalled']} x client_timeout "
          f"({r['cut_body']} of them with 408, the others after the CGI's response head)")
print()
bad = 0
for r in res:
    if r["n_error_lines"]:
        print(f"{r['mode']}: {r['n_error_lines']} [error] line(s) in cpm's log, e.g. {r['error_lines'][0]}")
    for f in r["fails"]:
        print(f"FAIL {r['mode']}: {f}")
        bad = 1
print("all assertions hold" if not bad and res else "assertions FAILED" if bad else "nothing measured")
PY
grep -q '^all assertions hold' "$OUT/summary.md" || FAIL=1
echo "raw data: $OUT" >&2
exit $FAIL
