#!/usr/bin/env bash
# t/soak/run.sh - a bounded soak of cpm (minutes, not hours; `make soak` runs it).
#
#   t/soak/run.sh                       # 120 s of load
#   SOAK_SECONDS=600 t/soak/run.sh
#
# One cpm (2 workers, a free port on 127.0.0.1) serves a mixed load for SOAK_SECONDS
# (t/soak/load.py): CGI (/hello, a C program; /form.sh, a shell script echoing POST
# bodies, Content-Length and chunked), a FastCGI pool (/fcgi: examples/counter, 2
# processes) and a FastCGI pool that crashes (/flaky: t/apps-fcgi/flaky.c, 3 processes,
# each exits right after answering every SOAK_FLAKY_EVERY-th request, and
# /flaky?crash, every 3 s, makes one exit without answering; SOAK_FLAKY_EVERY is large
# enough that a process lives more than 1 s: cpm delays the restart of a process that
# dies sooner, doubling the delay each time, and the pool would be down for long), keep-alive clients and
# connection-per-request clients, and a client that disconnects early (from a sleeping
# CGI script, a sleeping FastCGI request, a body cut short) ~10 times a second. The
# master gets a HUP every SOAK_HUP s (5).
#
# Every request is answered and checked, or counted as the expected error: 200 with the
# right body for every normal request (including the PUTs that a dead FastCGI process
# received on a kept connection: idempotent, cpm must send them again), 502 only for
# /flaky?crash.
# A refused or reset connection, a timeout, another status or a wrong body on a
# normal request is a failure.
#
# How memory and descriptors are compared. A HUP replaces the workers, so no worker
# lives from start to end. What lives across the run is the master (it re-reads the
# configuration 20+ times) and the counter pool ("reload": "keep": kept across
# HUPs; the flaky pool is restarted one process at a time by each); their RSS and descriptor counts are compared start -> end directly. For the
# workers, a fresh generation is measured at both ends after the same warm-up:
#   start: 10 s of the soak's load (so that the master and the pools reach their
#          steady state), then HUP, wait until only the new workers run, then the
#          fixed warm-up (load.py warm: 1,200 requests on 4 keep-alive connections),
#          then sample;
#   end:   the soak's load stops, HUP, wait until only the new workers run, the same
#          warm-up, then sample.
# A worker is forked from the master, so whatever the master accumulated (leaked
# memory, descriptors not closed on reload) shows in a fresh worker too.
#
# Assertions: no failed request (soak and both warm-ups); at least one /flaky?crash
# answered 502; worker RSS (sum over the 2 workers) and master RSS at the end within
# SOAK_RSS_PCT % (10) of the start; master descriptors unchanged; worker descriptors
# unchanged apart from sockets (kept connections to pool processes depend on which
# worker served what); counter pool processes: same PIDs, same descriptors apart from
# sockets (a worker may or may not hold its kept connection at that moment);
# no zombie child of the master or of a worker at the end, and none that lasted 3
# samples (s) during the run; exactly 2 workers and no CGI process at the end; the status backend's
# generation counts every HUP; cpm stops on QUIT with exit code 0 and leaves no process.
#
# Output: a markdown summary on stdout (and $OUT/summary.md); the load reports, the
# samples and cpm's error and access logs in $OUT (default: a new /tmp/cpm-soak.XXXXXX).
# Exit 0 if every assertion holds, 1 if not, 2 on a setup error.
#
# Environment: CPM_BIN (default ./cpm, built with make), SOAK_SECONDS (120), SOAK_HUP (5),
# SOAK_FLAKY_EVERY (500), SOAK_THREADS (4 keep-alive clients), SOAK_RSS_PCT (10), OUT.
set -u -o pipefail

SOAK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SOAK/../.." && pwd)
SOAK_SECONDS=${SOAK_SECONDS:-120}
SOAK_HUP=${SOAK_HUP:-5}
SOAK_FLAKY_EVERY=${SOAK_FLAKY_EVERY:-500}
SOAK_THREADS=${SOAK_THREADS:-4}
SOAK_RSS_PCT=${SOAK_RSS_PCT:-10}
OUT=${OUT:-$(mktemp -d /tmp/cpm-soak.XXXXXX)}

die() { echo "soak: $*" >&2; exit 2; }

command -v python3 >/dev/null || die "python3 is required"
[ -f /usr/include/fcgiapp.h ] || die "libfcgi-dev is required (make deps)"
if [ -z "${CPM_BIN:-}" ]; then
    make -C "$ROOT" cpm examples/hello examples/counter >&2 || die "building cpm failed"
    CPM_BIN=$ROOT/cpm
fi
[ -x "$CPM_BIN" ] && [ -x "$ROOT/examples/hello" ] && [ -x "$ROOT/examples/counter" ] \
    || die "need $CPM_BIN, examples/hello and examples/counter (make)"
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
${CC:-cc} -O2 -Wall -Wextra -o "$OUT/flaky" "$SOAK/../apps-fcgi/flaky.c" -lfcgi || die "building flaky.c failed"

CPM_PID="" LOAD_PID="" SAMPLER_PID="" HUP_PID=""
cleanup() {
    local p
    for p in $LOAD_PID $SAMPLER_PID $HUP_PID; do kill "$p" 2>/dev/null; done
    if [ -n "$CPM_PID" ]; then
        kill -TERM "$CPM_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$CPM_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$CPM_PID" 2>/dev/null
        wait "$CPM_PID" 2>/dev/null
    fi
    CPM_PID="" LOAD_PID="" SAMPLER_PID="" HUP_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$OUT/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$PORT"],
  "workers": 2,
  "user": "root",
  "access_log": "$OUT/access.log",
  "error_log": "$OUT/error.log",
  "keepalive": 10,
  "header_timeout": 10,
  "client_timeout": 10,
  "graceful_timeout": 15,
  "routes": [
    { "prefix": "/status", "backend": "st" },
    { "prefix": "/fcgi", "backend": "counter" },
    { "prefix": "/flaky", "backend": "flaky" },
    { "prefix": "/apps/", "backend": "apps" },
    { "prefix": "/", "backend": "cgi" }
  ],
  "backends": {
    "cgi": { "type": "cgi", "root": "$ROOT/examples", "timeout": 20 },
    "apps": { "type": "cgi", "root": "$ROOT/t/apps", "timeout": 10 },
    "counter": { "type": "fastcgi", "command": ["$ROOT/examples/counter"], "processes": 2, "timeout": 20,
                 "reload": "keep" },
    "flaky": { "type": "fastcgi", "command": ["$OUT/flaky"], "processes": 3, "timeout": 20,
               "env": { "FLAKY_EVERY": "$SOAK_FLAKY_EVERY" } },
    "st": { "type": "status" }
  }
}
JSON
"$CPM_BIN" -t -c "$OUT/cpm.json" >/dev/null || die "cpm rejected $OUT/cpm.json"
"$CPM_BIN" -c "$OUT/cpm.json" >"$OUT/stderr.log" 2>&1 &
CPM_PID=$!
ok=0
for _ in $(seq 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/hello" 2>/dev/null; then ok=1; break; fi
    kill -0 "$CPM_PID" 2>/dev/null || break
    sleep 0.1
done
[ $ok = 1 ] || { cat "$OUT/stderr.log" "$OUT/error.log" >&2; die "cpm did not start"; }

# ---- sampling (python): processes of this cpm ----
cat >"$OUT/sample.py" <<'PY'
# sample.py MASTER PORT [loop]: one JSON line now (or one per second until killed)
import json, os, socket, sys, time
master, port = int(sys.argv[1]), int(sys.argv[2])
def rd(p):
    try:
        return open(p, "rb").read().decode(errors="replace")
    except OSError:
        return ""
def field(text, name):
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0
def children(pid):
    return [int(x) for x in rd(f"/proc/{pid}/task/{pid}/children").split()]
def state(pid):
    s = rd(f"/proc/{pid}/stat")
    return s[s.rfind(")") + 2:].split()[0] if s else "?"
def fds(pid):
    kinds = {}
    try:
        for f in os.listdir(f"/proc/{pid}/fd"):
            try:
                t = os.readlink(f"/proc/{pid}/fd/{f}")
            except OSError:
                continue
            k = t.split(":")[0] if ":" in t and not t.startswith("/") else "file"
            kinds[k] = kinds.get(k, 0) + 1
    except OSError:
        return None
    return kinds
def proc(pid):
    s = rd(f"/proc/{pid}/status")
    f = fds(pid) or {}
    return {"pid": pid, "title": rd(f"/proc/{pid}/cmdline").replace("\0", " ").strip(), "state": state(pid),
            "rss_kb": field(s, "VmRSS"), "fds": sum(f.values()), "fd_kinds": f}
def status():
    try:
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.settimeout(5)
        s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        d = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            d += b
        s.close()
        return json.loads(d.split(b"\r\n\r\n", 1)[1])
    except Exception as e:
        return {"error": repr(e)}
def sample():
    kids = [proc(p) for p in children(master)]
    workers = [k for k in kids if k["title"].startswith("cpm: worker")]
    # pool processes keep their own argv: the children that are not workers
    pools = [k for k in kids if k["title"] and not k["title"].startswith("cpm: worker") and k["state"] != "Z"]
    zombies = [{"pid": k["pid"], "ppid": master} for k in kids if k["state"] == "Z"]
    cgi = 0
    for w in workers:
        for c in children(w["pid"]):
            cgi += 1
            if state(c) == "Z":
                zombies.append({"pid": c, "ppid": w["pid"]})
    st = status()
    return {"t": time.time(), "master": proc(master), "workers": workers, "pools": pools, "zombies": zombies,
            "cgi": cgi, "generation": st.get("master", {}).get("generation"),
            "worker_states": [w["state"] for w in st.get("workers", [])], "requests": st.get("requests"),
            "pool_states": [p["state"] for pl in st.get("pools", []) for p in pl["processes"]]}
if len(sys.argv) > 3:
    t0 = time.time()
    while True:
        print(json.dumps(sample()), flush=True)
        time.sleep(max(0.0, 1.0 - (time.time() - t0) % 1.0))
else:
    print(json.dumps(sample()))
PY

# wait_generation: until exactly 2 workers run, none drains (old generation gone) and
# every pool process is up (a flaky one may be waiting for its restart)
wait_generation() {
    for _ in $(seq 600); do
        if python3 "$OUT/sample.py" "$CPM_PID" "$PORT" | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if len(s["workers"]) == 2 and s["worker_states"] == ["ready", "ready"]
         and s["pool_states"] == ["ready"] * 5 else 1)'; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

FAIL=0
echo "[soak] warm-up: 10 s of the soak load" >&2
python3 "$SOAK/load.py" run "$PORT" 10 "$OUT/load-warm0.json" "$SOAK_THREADS" || FAIL=1
kill -HUP "$CPM_PID"
wait_generation || { echo "[soak] old workers still there 60 s after a HUP" >&2; FAIL=1; }
python3 "$SOAK/load.py" warm "$PORT" "$OUT/warm-start.json" || FAIL=1
sleep 1
python3 "$OUT/sample.py" "$CPM_PID" "$PORT" >"$OUT/start.json"

echo "[soak] ${SOAK_SECONDS} s of load, HUP every ${SOAK_HUP} s" >&2
python3 "$OUT/sample.py" "$CPM_PID" "$PORT" loop >"$OUT/samples.jsonl" &
SAMPLER_PID=$!
(
    n=0
    while sleep "$SOAK_HUP"; do
        kill -HUP "$CPM_PID" 2>/dev/null || break
        n=$((n + 1))
        echo "$n" >"$OUT/hups"
    done
) &
HUP_PID=$!
python3 "$SOAK/load.py" run "$PORT" "$SOAK_SECONDS" "$OUT/load.json" "$SOAK_THREADS" &
LOAD_PID=$!
wait "$LOAD_PID" || FAIL=1
LOAD_PID=""
kill "$HUP_PID" 2>/dev/null
wait "$HUP_PID" 2>/dev/null
HUP_PID=""
HUPS=$(cat "$OUT/hups" 2>/dev/null || echo 0)

echo "[soak] end: HUP, same warm-up" >&2
sleep 1
kill -HUP "$CPM_PID"
wait_generation || { echo "[soak] old workers still there 60 s after the last HUP" >&2; FAIL=1; }
kill "$SAMPLER_PID" 2>/dev/null
wait "$SAMPLER_PID" 2>/dev/null
SAMPLER_PID=""
python3 "$SOAK/load.py" warm "$PORT" "$OUT/warm-end.json" || FAIL=1
sleep 1
python3 "$OUT/sample.py" "$CPM_PID" "$PORT" >"$OUT/end.json"
sleep 1
python3 "$OUT/sample.py" "$CPM_PID" "$PORT" >"$OUT/end2.json"   # zombies: a second look

# stop: QUIT, exit code 0, nothing left behind
kill -QUIT "$CPM_PID"
rc=""
for _ in $(seq 300); do
    if ! kill -0 "$CPM_PID" 2>/dev/null; then break; fi
    sleep 0.1
done
if kill -0 "$CPM_PID" 2>/dev/null; then
    rc="still running 30 s after QUIT"
else
    wait "$CPM_PID"
    rc=$?
fi
CPM_PID=""
left=""
for p in $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(*[p["pid"] for p in s["workers"]+s["pools"]])' "$OUT/end.json"); do
    kill -0 "$p" 2>/dev/null && left="$left $p"
done

python3 - "$OUT" "$HUPS" "$SOAK_RSS_PCT" "$rc" "$left" "$SOAK_SECONDS" "$SOAK_HUP" "$SOAK_FLAKY_EVERY" <<'PY' | tee "$OUT/summary.md"
import json, os, re, sys
out, hups, pct, rc, left, secs, hup_every, every = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5].split(), sys.argv[6], sys.argv[7], sys.argv[8]
J = lambda f: json.load(open(os.path.join(out, f)))
fails = []
load, w0, w1, w2 = J("load.json"), J("load-warm0.json"), J("warm-start.json"), J("warm-end.json")
s0, s1, s1b = J("start.json"), J("end.json"), J("end2.json")
samples = [json.loads(l) for l in open(os.path.join(out, "samples.jsonl")) if l.strip()]

print(f"### cpm soak: {secs} s of mixed load, HUP every {hup_every} s ({hups} HUPs), flaky pool exits after every {every}th request\n")
print("| request | ok (200) | expected error (502) | abandoned (client left) | **failed** | p50 ms | p99 ms | max ms |")
print("|---|---|---|---|---|---|---|---|")
tot = {"ok": 0, "expected": 0, "abandoned": 0, "failed": 0}
for k, v in load["kinds"].items():
    for x in tot:
        tot[x] += v[x]
    print(f"| {k} | {v['ok']} | {v['expected']} | {v['abandoned']} | **{v['failed']}** | {v['p50_ms']} | {v['p99_ms']} | {v['max_ms']} |")
print(f"| **total** | {tot['ok']} | {tot['expected']} | {tot['abandoned']} | **{tot['failed']}** | | | |")
for name, rep in (("soak", load), ("warm-up load", w0), ("fixed warm-up (start)", w1), ("fixed warm-up (end)", w2)):
    if rep["n_failures"]:
        fails.append(f"{name}: {rep['n_failures']} failed request(s); first: " +
                     "; ".join(f"t={f['t']} {f['kind']} reused={f['reused']} {f['detail']}" for f in rep["failures"][:5]))
if load["kinds"].get("flaky_crash", {}).get("expected", 0) == 0:
    fails.append("no /flaky?crash request got its 502")

def wsum(s, key):
    return sum(w[key] for w in s["workers"])
def kinds_nosock(s):
    k = {}
    for w in s["workers"]:
        for t, n in w["fd_kinds"].items():
            if t != "socket":
                k[t] = k.get(t, 0) + n
    return k
m0, m1 = s0["master"], s1["master"]
rows = [
    ("workers (fresh generation, after the fixed warm-up): RSS kB, sum of 2", wsum(s0, "rss_kb"), wsum(s1, "rss_kb")),
    ("workers: descriptors, sum of 2", wsum(s0, "fds"), wsum(s1, "fds")),
    ("workers: descriptors other than sockets", kinds_nosock(s0), kinds_nosock(s1)),
    ("master: RSS kB", m0["rss_kb"], m1["rss_kb"]),
    ("master: descriptors", m0["fds"], m1["fds"]),
]
cnt0 = {p["pid"]: p for p in s0["pools"] if "counter" in p["title"]}
cnt1 = {p["pid"]: p for p in s1["pools"] if "counter" in p["title"]}
rows.append(("counter pool: PIDs", sorted(cnt0), sorted(cnt1)))
rows.append(("counter pool: RSS kB, sum", sum(p["rss_kb"] for p in cnt0.values()), sum(p["rss_kb"] for p in cnt1.values())))
def nosock(ps):
    k = {}
    for p in ps:
        for t, n in p["fd_kinds"].items():
            if t != "socket":
                k[t] = k.get(t, 0) + n
    return k
rows.append(("counter pool: descriptors, sum", sum(p["fds"] for p in cnt0.values()), sum(p["fds"] for p in cnt1.values())))
rows.append(("counter pool: descriptors other than sockets", nosock(cnt0.values()), nosock(cnt1.values())))
rows.append(("flaky pool: processes", len([p for p in s0["pools"] if "flaky" in p["title"]]), len([p for p in s1["pools"] if "flaky" in p["title"]])))
rows.append(("configuration generation (status)", s0["generation"], s1["generation"]))
print("\n| measure | start | end |")
print("|---|---|---|")
for name, a, b in rows:
    print(f"| {name} | {a} | {b} |")

def within(name, a, b):
    if a and abs(b - a) / a * 100 > pct:
        fails.append(f"{name}: {a} -> {b} ({(b - a) / a * 100:+.1f} %, limit ±{pct:g} %)")
within("worker RSS", wsum(s0, "rss_kb"), wsum(s1, "rss_kb"))
within("master RSS", m0["rss_kb"], m1["rss_kb"])
if m0["fds"] != m1["fds"]:
    fails.append(f"master descriptors {m0['fds']} -> {m1['fds']}: {m0['fd_kinds']} -> {m1['fd_kinds']}")
if kinds_nosock(s0) != kinds_nosock(s1):
    fails.append(f"worker descriptors other than sockets {kinds_nosock(s0)} -> {kinds_nosock(s1)}")
if sorted(cnt0) != sorted(cnt1):
    fails.append(f"counter pool processes changed: {sorted(cnt0)} -> {sorted(cnt1)}")
elif nosock(cnt0.values()) != nosock(cnt1.values()):
    fails.append(f"counter pool descriptors other than sockets: {nosock(cnt0.values())} -> {nosock(cnt1.values())}")
if s1["generation"] is None or s0["generation"] is None or s1["generation"] - s0["generation"] != hups + 1:
    fails.append(f"generation {s0['generation']} -> {s1['generation']} after {hups + 1} HUPs")
if len(s1["workers"]) != 2:
    fails.append(f"{len(s1['workers'])} workers at the end")
if s1["cgi"]:
    fails.append(f"{s1['cgi']} CGI process(es) still running at the end")

# zombies: at the end (two looks, 1 s apart) and during the run (same pid in 3 samples)
z_end = {z["pid"] for z in s1["zombies"]} & {z["pid"] for z in s1b["zombies"]}
if z_end:
    fails.append(f"zombie(s) at the end: {sorted(z_end)}")
seen, stuck, zmax = {}, set(), 0
for s in samples:
    zs = {z["pid"] for z in s["zombies"]}
    zmax = max(zmax, len(zs))
    seen = {p: seen.get(p, 0) + 1 for p in zs}
    stuck |= {p for p, n in seen.items() if n >= 3}
if stuck:
    fails.append(f"zombie(s) that lasted 3 s or more during the run: {sorted(stuck)[:10]}")
workers_max = max((len(s["workers"]) for s in samples), default=0)
mrss = [s["master"]["rss_kb"] for s in samples]
mfds = [s["master"]["fds"] for s in samples]
cgi_max = max((s["cgi"] for s in samples), default=0)
print(f"\nDuring the run ({len(samples)} samples): master RSS {min(mrss, default=0)}-{max(mrss, default=0)} kB, "
      f"master descriptors {min(mfds, default=0)}-{max(mfds, default=0)}, at most {workers_max} worker processes "
      f"(old generations draining), at most {cgi_max} CGI processes, at most {zmax} zombie(s) in one sample "
      f"(none lasting: {'yes' if not stuck else 'NO'}).")
req = s1.get("requests") or {}
print(f"cpm's own count (status, whole run): {req}")
if rc != "0":
    fails.append(f"cpm exited with {rc} on QUIT")
if left:
    fails.append(f"processes left after cpm stopped: {left}")

log = open(os.path.join(out, "error.log"), errors="replace").read().splitlines()
msgs = {}
for l in log:
    m = re.match(r"\S+ \[(error|warn)\] cpm\[\d+\]: (.*)", l)
    if m:
        key = m.group(1) + ": " + re.sub(r"\d+", "N", m.group(2))[:110]
        msgs[key] = msgs.get(key, 0) + 1
print("\ncpm error log, [error] and [warn] lines by kind (numbers replaced by N):\n")
for k, n in sorted(msgs.items(), key=lambda x: -x[1])[:15]:
    print(f"    {n:6d}  {k}")
print()
for f in fails:
    print("FAIL: " + f)
print("all assertions hold" if not fails else "assertions FAILED")
PY
grep -q '^all assertions hold' "$OUT/summary.md" || FAIL=1
echo "raw data: $OUT" >&2
exit $FAIL
