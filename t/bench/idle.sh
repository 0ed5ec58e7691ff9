#!/usr/bin/env bash
# t/bench/idle.sh - what idle keep-alive connections cost cpm: bytes per connection.
#
#   t/bench/idle.sh                    # 10,000 connections, 2 rounds
#   IDLE_CONNS=2000 IDLE_ROUNDS=1 t/bench/idle.sh
#
# Starts its own cpm (2 workers, a free port on 127.0.0.1, keepalive 600 s,
# max_connections $IDLE_MAX_CONNECTIONS per worker), then for each of $IDLE_ROUNDS rounds:
#
#   1. samples the workers (the master's children titled `cpm: worker`): VmRSS, Pss
#      (smaps_rollup) and open descriptors (/proc/PID/fd), and the master's descriptors;
#   2. one python3 process opens $IDLE_CONNS connections (non-blocking sockets and
#      selectors, at most 256 requests in flight), sends one complete GET $IDLE_PATH on
#      each (default /hello, a C CGI program: a real request, not just a connect) and
#      reads the whole response (200, keep-alive), then leaves every connection idle;
#   3. after $IDLE_HOLD s of idleness, samples again: (RSS with - RSS before) / connections
#      is the cost of an idle connection to the workers (user-space memory; kernel socket
#      buffers are not in RSS - /proc/net/sockstat's TCP mem is reported for them);
#   4. while they are open: a normal request on a fresh connection must get 200 (latency
#      reported), and $IDLE_REUSE of the idle connections, picked at random, must still
#      answer a second request (keep-alive works after the idle time);
#   5. closes them all, waits until cpm's status backend shows no connection left, and
#      samples again twice, 2 s apart.
#
# Assertions: every connection opened and answered; cpm held all of them at once (status
# backend); the normal request and every reused connection got 200; RSS per idle
# connection under $IDLE_MAX_BYTES bytes; after closing, the workers' descriptor counts
# are back to what they were before the round and RSS does not grow between the two
# samples; RSS after the last round is no more than $IDLE_GROWTH_KB KiB above RSS after
# the first (memory freed by closed connections is reused, not leaked - malloc may keep
# what it freed, so the first round's after-close RSS, not the start, is the reference).
#
# Output: a markdown summary on stdout (and $OUT/summary.md); samples and cpm's logs in
# $OUT (default t/bench/results/<date>-idle). Exit 0 if every assertion holds, 1 if not,
# 2 on a setup error.
#
# Environment: CPM_BIN (default ./cpm, built with make), IDLE_CONNS (10000), IDLE_ROUNDS (2),
# IDLE_PATH (/hello), IDLE_HOLD (5), IDLE_REUSE (100), IDLE_MAX_BYTES (32768),
# IDLE_GROWTH_KB (2048), IDLE_MAX_CONNECTIONS (12000), OUT.
set -u -o pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/../.." && pwd)
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_ROUNDS=${IDLE_ROUNDS:-2}
IDLE_PATH=${IDLE_PATH:-/hello}
IDLE_HOLD=${IDLE_HOLD:-5}
IDLE_REUSE=${IDLE_REUSE:-100}
IDLE_MAX_BYTES=${IDLE_MAX_BYTES:-32768}
IDLE_GROWTH_KB=${IDLE_GROWTH_KB:-2048}
IDLE_MAX_CONNECTIONS=${IDLE_MAX_CONNECTIONS:-12000}
OUT=${OUT:-$BENCH/results/$(date +%Y%m%d-%H%M%S)-idle}

die() { echo "idle.sh: $*" >&2; exit 2; }

command -v python3 >/dev/null || die "python3 is required"
if [ -z "${CPM_BIN:-}" ]; then
    make -C "$ROOT" cpm examples/hello >&2 || die "building cpm failed"
    CPM_BIN=$ROOT/cpm
fi
[ -x "$CPM_BIN" ] || die "no cpm binary at $CPM_BIN"
# the client holds IDLE_CONNS sockets, and cpm (which inherits the limit) as many
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((IDLE_CONNS + 100)) ] \
    || die "open files limit $(ulimit -n) (hard $(ulimit -Hn)) is below IDLE_CONNS + 100"

mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
[ "$(dirname "$OUT")" = "$BENCH/results" ] && ln -sfn "$(basename "$OUT")" "$BENCH/results/latest-idle" 2>/dev/null

CPM_PID="" CLIENT_PID=""
cleanup() {
    [ -n "$CLIENT_PID" ] && kill "$CLIENT_PID" 2>/dev/null
    if [ -n "$CPM_PID" ]; then
        kill -TERM "$CPM_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$CPM_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$CPM_PID" 2>/dev/null
        wait "$CPM_PID" 2>/dev/null
    fi
    CPM_PID="" CLIENT_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$OUT/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$PORT"],
  "workers": 2,
  "user": "root",
  "access_log": null,
  "error_log": "$OUT/error.log",
  "max_connections": $IDLE_MAX_CONNECTIONS,
  "backlog": 4096,
  "keepalive": 600,
  "routes": [ { "prefix": "/status", "backend": "st" }, { "prefix": "/", "backend": "cgi" } ],
  "backends": {
    "cgi": { "type": "cgi", "root": "$ROOT/examples" },
    "st": { "type": "status" }
  }
}
JSON
"$CPM_BIN" -c "$OUT/cpm.json" >"$OUT/stderr.log" 2>&1 &
CPM_PID=$!
ok=0
for _ in $(seq 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT$IDLE_PATH" 2>/dev/null; then ok=1; break; fi
    kill -0 "$CPM_PID" 2>/dev/null || break
    sleep 0.1
done
[ $ok = 1 ] || { cat "$OUT/stderr.log" "$OUT/error.log" >&2; die "cpm did not start"; }
# warm up both workers a little (first requests allocate the parser's arrays etc.)
for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT$IDLE_PATH"; done

# ---- python: sample, client ----
cat >"$OUT/sample.py" <<'PY'
# sample.py MASTER PORT LABEL: one JSON line describing the workers now
import json, os, socket, sys, time
master, port, label = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
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
kids = [int(x) for x in rd(f"/proc/{master}/task/{master}/children").split()]
ws = [p for p in kids if rd(f"/proc/{p}/cmdline").startswith("cpm: worker")]
def nfd(p):
    try:
        return len(os.listdir(f"/proc/{p}/fd"))
    except OSError:
        return -1
def status():
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
def kinds(p):
    k = {}
    try:
        for f in os.listdir(f"/proc/{p}/fd"):
            try:
                t = os.readlink(f"/proc/{p}/fd/{f}")
            except OSError:
                continue
            t = t.split(":")[0] if ":" in t and not t.startswith("/") else t
            k[t] = k.get(t, 0) + 1
    except OSError:
        pass
    return k
# descriptors first: the status request below is a connection of one worker
fd0 = {w: nfd(w) for w in ws}
fk0 = {w: kinds(w) for w in ws}
st = status()
conns = {w["pid"]: w["connections"] for w in st["workers"]}
sock = rd("/proc/net/sockstat")
tcp = next((l for l in sock.splitlines() if l.startswith("TCP:")), "").split()
tcpmem = int(tcp[tcp.index("mem") + 1]) if "mem" in tcp else -1
out = {"label": label, "t": time.time(), "master_fds": nfd(master), "tcp_mem_pages": tcpmem, "workers": []}
for w in ws:
    s = rd(f"/proc/{w}/status")
    out["workers"].append({"pid": w, "rss_kb": field(s, "VmRSS"), "pss_kb": field(rd(f"/proc/{w}/smaps_rollup"), "Pss"),
                           "fds": fd0[w], "fd_kinds": fk0[w], "conns": conns.get(w, -1)})
# the status request itself is one connection of one worker
out["conns"] = sum(conns.values()) - 1
out["rss_kb"] = sum(w["rss_kb"] for w in out["workers"])
out["pss_kb"] = sum(w["pss_kb"] for w in out["workers"])
out["fds"] = sum(w["fds"] for w in out["workers"])
print(json.dumps(out))
PY

cat >"$OUT/client.py" <<'PY'
# client.py PORT N PATH REUSE DIR: open N keep-alive connections, one GET each, keep them
# idle; writes DIR/ready (JSON) when all are answered, then waits for DIR/reuse (sends a
# second request on REUSE random connections, writes DIR/reused) and DIR/close (closes
# all, writes DIR/closed).
import errno, json, os, random, selectors, socket, sys, time
port, n, path, reuse, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
REQ = f"GET {path} HTTP/1.1\r\nHost: idle\r\n\r\n".encode()
INFLIGHT = 256
sel = selectors.DefaultSelector()

def complete(buf):
    """a full response in buf? returns (done, status)"""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return False, None
    head = buf[:i].decode("latin-1").lower()
    status = int(head.split(None, 2)[1])
    body = buf[i + 4:]
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip() == "content-length":
            return len(body) >= int(v), status
        if k.strip() == "transfer-encoding" and "chunked" in v:
            return body.endswith(b"0\r\n\r\n"), status
    return False, status

def run_requests(socks, connect):
    """connect (if asked) and do one request on each socket; returns (ok, errors)"""
    state = {}
    todo = list(socks)
    ok, errs = 0, []
    active = 0
    t_end = time.time() + 300
    while (todo or active) and time.time() < t_end:
        while todo and active < INFLIGHT:
            s = todo.pop()
            if connect:
                r = s.connect_ex(("127.0.0.1", port))
                if r not in (0, errno.EINPROGRESS):
                    errs.append(f"connect: {os.strerror(r)}")
                    continue
                sel.register(s, selectors.EVENT_WRITE)
                state[s] = [b"", False]
            else:
                s.send(REQ)  # an idle socket: the request fits in the send buffer
                sel.register(s, selectors.EVENT_READ)
                state[s] = [b"", True]
            active += 1
        for key, ev in sel.select(timeout=1):
            s = key.fileobj
            st = state[s]
            if not st[1]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    errs.append(f"connect: {os.strerror(err)}")
                    sel.unregister(s); active -= 1
                    continue
                s.send(REQ)
                st[1] = True
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                b = s.recv(65536)
            except OSError as e:
                b = None
                errs.append(f"recv: {e}")
            if not b:
                if b is not None:
                    errs.append("closed by the server")
                sel.unregister(s); active -= 1
                continue
            st[0] += b
            done, status = complete(st[0])
            if done:
                sel.unregister(s); active -= 1
                if status == 200:
                    ok += 1
                else:
                    errs.append(f"status {status}")
    if todo or active:
        errs.append(f"{len(todo) + active} requests not finished in 300 s")
    return ok, errs

def wait_for(name):
    while not os.path.exists(os.path.join(d, name)):
        time.sleep(0.1)

def write(name, obj):
    tmp = os.path.join(d, name + ".tmp")
    json.dump(obj, open(tmp, "w"))
    os.rename(tmp, os.path.join(d, name))

socks = []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    socks.append(s)
t0 = time.time()
ok, errs = run_requests(socks, True)
write("ready", {"opened": n, "ok": ok, "errors": len(errs), "first_errors": errs[:5], "seconds": round(time.time() - t0, 1)})
wait_for("reuse")
sample = random.sample(socks, min(reuse, n))
ok2, errs2 = run_requests(sample, False)
write("reused", {"n": len(sample), "ok": ok2, "errors": len(errs2), "first_errors": errs2[:5]})
wait_for("close")
for s in socks:
    s.close()
write("closed", {"closed": n})
wait_for("exit")
PY

sample() { python3 "$OUT/sample.py" "$CPM_PID" "$PORT" "$1"; }
waitfile() {  # waitfile FILE SECONDS
    for _ in $(seq $(($2 * 10))); do [ -f "$1" ] && return 0; kill -0 "$CLIENT_PID" 2>/dev/null || return 1; sleep 0.1; done
    return 1
}

probe() {  # a normal request on a fresh connection: "status seconds"
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 10 "http://127.0.0.1:$PORT/hello"
}

FAIL=0
: >"$OUT/rounds.jsonl"
for round in $(seq "$IDLE_ROUNDS"); do
    R=$OUT/round$round
    rm -rf "$R"; mkdir -p "$R"
    sleep 1
    sample before >"$R/before.json"
    echo "[round $round] opening $IDLE_CONNS connections to $IDLE_PATH" >&2
    python3 "$OUT/client.py" "$PORT" "$IDLE_CONNS" "$IDLE_PATH" "$IDLE_REUSE" "$R" >"$R/client.log" 2>&1 &
    CLIENT_PID=$!
    waitfile "$R/ready" 600 || { cat "$R/client.log" >&2; echo "[round $round] client failed" >&2; FAIL=1; break; }
    sleep "$IDLE_HOLD"
    sample with >"$R/with.json"
    probe >"$R/probe.txt"
    touch "$R/reuse"
    waitfile "$R/reused" 120 || { cat "$R/client.log" >&2; FAIL=1; break; }
    sample with2 >"$R/with2.json"
    touch "$R/close"
    waitfile "$R/closed" 60 || { FAIL=1; break; }
    # wait for cpm to see every close
    for _ in $(seq 100); do
        c=$(sample x | python3 -c 'import json,sys; print(json.load(sys.stdin)["conns"])')
        [ "$c" -le 0 ] && break
        sleep 0.1
    done
    sleep 1
    sample after >"$R/after.json"
    sleep 2
    sample after2 >"$R/after2.json"
    touch "$R/exit"
    wait "$CLIENT_PID" 2>/dev/null
    CLIENT_PID=""
    python3 - "$R" "$round" "$IDLE_CONNS" >>"$OUT/rounds.jsonl" <<'PY'
import json, os, sys
R, rnd, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
J = lambda f: json.load(open(os.path.join(R, f)))
b, w, w2, a, a2 = J("before.json"), J("with.json"), J("with2.json"), J("after.json"), J("after2.json")
code, secs = open(os.path.join(R, "probe.txt")).read().split()
print(json.dumps({"round": rnd, "n": n, "ready": J("ready"), "reused": J("reused"),
                  "before": b, "with": w, "with2": w2, "after": a, "after2": a2,
                  "probe_status": int(code), "probe_ms": round(float(secs) * 1000, 1)}))
PY
done
cleanup

python3 - "$OUT/rounds.jsonl" "$IDLE_MAX_BYTES" "$IDLE_GROWTH_KB" "$IDLE_PATH" <<'PY' | tee "$OUT/summary.md"
import json, sys
rounds = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
max_bytes, growth_kb, path = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fails = []
print(f"### cpm: idle keep-alive connections (one GET {path} each, then idle)\n")
print("| round | conns | opened in s | held (status) | per worker | RSS kB before / with / after | **RSS per conn** | Pss per conn | worker fds before / with / after | master fds | TCP mem pages (system) before / with | normal req | reused ok |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rounds:
    n, b, w, a, a2 = r["n"], r["before"], r["with"], r["after"], r["after2"]
    rss_pc = (w["rss_kb"] - b["rss_kb"]) * 1024 / n
    pss_pc = (w["pss_kb"] - b["pss_kb"]) * 1024 / n
    per = " + ".join(str(x["conns"]) for x in w["workers"])
    print(f"| {r['round']} | {n} | {r['ready']['seconds']} | {w['conns']} | {per} | {b['rss_kb']} / {w['rss_kb']} / {a2['rss_kb']} "
          f"| **{rss_pc:,.0f} B** | {pss_pc:,.0f} B | {b['fds']} / {w['fds']} / {a2['fds']} | {b['master_fds']} / {w['master_fds']} / {a2['master_fds']} "
          f"| {b['tcp_mem_pages']} / {w['tcp_mem_pages']} | {r['probe_status']} in {r['probe_ms']} ms | {r['reused']['ok']}/{r['reused']['n']} |")
    rd = r["ready"]
    if rd["ok"] != n or rd["errors"]:
        fails.append(f"round {r['round']}: {rd['ok']} of {n} connections answered, errors {rd['first_errors']}")
    if w["conns"] < n:
        fails.append(f"round {r['round']}: cpm held {w['conns']} connections, not {n}")
    if r["probe_status"] != 200:
        fails.append(f"round {r['round']}: normal request got {r['probe_status']}")
    ru = r["reused"]
    if ru["ok"] != ru["n"]:
        fails.append(f"round {r['round']}: {ru['ok']} of {ru['n']} idle connections answered a second request: {ru['first_errors']}")
    if rss_pc > max_bytes:
        fails.append(f"round {r['round']}: {rss_pc:.0f} bytes RSS per idle connection > {max_bytes}")
    if a2["fds"] != b["fds"] or a2["master_fds"] != b["master_fds"]:
        fails.append(f"round {r['round']}: descriptors workers {b['fds']} -> {a2['fds']}, master {b['master_fds']} -> {a2['master_fds']}")
    if a2["conns"] > 0:
        fails.append(f"round {r['round']}: {a2['conns']} connection(s) left after closing")
    if a2["rss_kb"] > a["rss_kb"] + 256:
        fails.append(f"round {r['round']}: RSS still growing after closing: {a['rss_kb']} -> {a2['rss_kb']} kB")
if len(rounds) > 1:
    first, last = rounds[0]["after2"]["rss_kb"], rounds[-1]["after2"]["rss_kb"]
    print(f"\nRSS after closing, round 1 -> round {len(rounds)}: {first} -> {last} kB "
          f"(the memory of closed connections is {'reused' if last <= first + growth_kb else 'NOT reused'})")
    if last > first + growth_kb:
        fails.append(f"RSS after round {len(rounds)} is {last - first} kB above round 1 (> {growth_kb} kB)")
if not rounds:
    fails.append("no round completed")
print()
for f in fails:
    print("FAIL: " + f)
print("all assertions hold" if not fails else "assertions FAILED")
PY
grep -q '^all assertions hold' "$OUT/summary.md" || FAIL=1
grep -E '\[(error|warn)\]' "$OUT/error.log" | grep -v 'running as root' | head -5 | sed 's/^/cpm log: /' >&2
echo "raw data: $OUT" >&2
exit $FAIL
