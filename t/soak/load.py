#!/usr/bin/env python3
"""Load generator of t/soak/run.sh: mixed CGI and FastCGI requests against cpm.

  load.py run PORT SECONDS OUT.json [KEEPALIVE_THREADS]   the soak load
  load.py warm PORT OUT.json                              a fixed warm-up

Routes expected (t/soak/run.sh writes them): /hello (C CGI program), /form.sh (CGI,
echoes a POST body), /apps/sleep.sh (CGI, sleeps QUERY_STRING seconds), /fcgi/...
(pool: examples/counter), /flaky (pool: t/soak/flaky.c).

"run" starts these threads, until SECONDS have passed:
  * KEEPALIVE_THREADS (default 4) clients on keep-alive connections (reconnecting after
    a Connection: close), each picking at random: GET /hello, GET /fcgi/..., GET /flaky,
    POST /form.sh (Content-Length or chunked body, echoed back), POST /flaky (body
    length and byte sum checked);
  * one client doing the same on a new connection per request (Connection: close);
  * one sending GET /flaky?crash every 3 s on a new connection: the process dies
    without answering, the expected answer is 502;
  * one client that disconnects early, every ~100 ms: sends a request (a 1 s CGI sleep,
    a 300 ms FastCGI sleep, a POST whose body is cut short, or GET /hello) and closes
    the connection after 0-150 ms without reading the answer, half of the time with a
    reset (SO_LINGER 0).
Every answered request is checked (status and body). Outcomes: "ok" (200 with the
right body), "expected" (502 for /flaky?crash), "failed" (anything else: another
status, a wrong body, a refused or reset connection, a timeout - with "reused" telling
whether it happened on a kept connection), "abandoned" (early disconnects: no outcome).
"warm" runs a fixed sequence (4 keep-alive clients x 60 rounds of the five normal
kinds, bodies from a fixed seed) and reports the same way.
"""
import http.client
import json
import random
import socket
import struct
import sys
import threading
import time

PORT = 0
lock = threading.Lock()
stats = {}
failures = []
n_failures = 0
T0 = time.time()

ALNUM = bytes(b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36] for i in range(256))
NORMAL = ["cgi_get", "fcgi_get", "flaky_get", "cgi_post", "cgi_post_chunked", "flaky_post"]
WEIGHTS = [30, 25, 20, 6, 4, 8]


def record(kind, outcome, ms=None, detail=None, reused=None):
    global n_failures
    with lock:
        s = stats.setdefault(kind, {"ok": 0, "expected": 0, "failed": 0, "abandoned": 0, "lat": []})
        s[outcome] += 1
        if ms is not None:
            s["lat"].append(ms)
        if outcome == "failed":
            n_failures += 1
            if len(failures) < 50:
                failures.append({"t": round(time.time() - T0, 3), "kind": kind, "reused": reused, "detail": detail})


def make(kind, rng, n):
    """(method, path, body, headers, check(status, data) -> error or None)"""
    if kind == "cgi_get":
        return "GET", "/hello", None, {}, lambda st, d: None if st == 200 and d == b"Hello from C\n" else "bad"
    if kind == "fcgi_get":
        return "GET", f"/fcgi/{n}", None, {}, \
            lambda st, d: None if st == 200 and d.startswith(b"count=") and f"uri=/fcgi/{n}".encode() in d else "bad"
    if kind == "flaky_get":
        return "GET", f"/flaky?i={n}", None, {}, \
            lambda st, d: None if st == 200 and d.startswith(b"ok pid=") and d.endswith(b" len=0 sum=0\n") else "bad"
    if kind in ("cgi_post", "cgi_post_chunked"):
        size = rng.choice([1, 100, 4000, 20000, 70000])
        body = rng.randbytes(size).translate(ALNUM)
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        want = f"CONTENT_LENGTH={size}\n\n".encode() + body + b"\n"
        check = lambda st, d: None if st == 200 and d.endswith(want) else "bad"
        if kind == "cgi_post_chunked":
            chunks = [body[i:i + 3000] for i in range(0, len(body), 3000)]
            return "POST", "/form.sh", iter(chunks), h, check
        return "POST", "/form.sh", body, h, check
    if kind == "flaky_post":
        size = rng.choice([1, 1000, 65536, 100000])
        body = rng.randbytes(size)
        want = f" len={size} sum={sum(body) & 0xffffffff}\n".encode()
        # PUT: idempotent, so a body a process took to its exit is sent
        # again (a POST that may have been read gets 502 instead:
        # cpm.json(5), Pools)
        return "PUT", f"/flaky?p={n}", body, {"Content-Type": "application/octet-stream"}, \
            lambda st, d: None if st == 200 and d.startswith(b"ok pid=") and d.endswith(want) else "bad"
    raise ValueError(kind)


def one(conn, kind, rng, n, extra=None):
    method, path, body, headers, check = make(kind, rng, n)
    if extra:
        headers = dict(headers, **extra)
    reused = conn.sock is not None
    t = time.time()
    try:
        conn.request(method, path, body=body, headers=headers, encode_chunked=kind == "cgi_post_chunked")
        r = conn.getresponse()
        data = r.read()
    except Exception as e:  # refused, reset, timeout, malformed answer
        conn.close()
        record(kind, "failed", detail=f"{method} {path}: {e!r}", reused=reused)
        return
    ms = (time.time() - t) * 1000
    err = check(r.status, data)
    if err:
        record(kind, "failed", ms, f"{method} {path}: {r.status} {data[:80]!r}", reused)
        conn.close()
    else:
        record(kind, "ok", ms)


def keepalive_client(idx, end):
    rng = random.Random(1000 + idx)
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    n = 0
    while time.time() < end:
        n += 1
        one(conn, rng.choices(NORMAL, WEIGHTS)[0], rng, n)
    conn.close()


def fresh_client(end):
    rng = random.Random(7)
    n = 0
    while time.time() < end:
        n += 1
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        one(conn, rng.choices(NORMAL, WEIGHTS)[0], rng, n, {"Connection": "close"})
        conn.close()


def crash_client(end):
    while time.time() < end:
        t = time.time()
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        try:
            conn.request("GET", "/flaky?crash")
            r = conn.getresponse()
            r.read()
            if r.status == 502:
                record("flaky_crash", "expected", (time.time() - t) * 1000)
            else:
                record("flaky_crash", "failed", detail=f"GET /flaky?crash: {r.status}, not 502")
        except Exception as e:
            record("flaky_crash", "failed", detail=f"GET /flaky?crash: {e!r}")
        conn.close()
        time.sleep(max(0, 3 - (time.time() - t)))


ABORTS = [
    ("abort_cgi_sleep", b"GET /apps/sleep.sh?1 HTTP/1.1\r\nHost: soak\r\n\r\n"),
    ("abort_fcgi_sleep", b"GET /flaky?sleep=300 HTTP/1.1\r\nHost: soak\r\n\r\n"),
    ("abort_cgi_body", b"POST /form.sh HTTP/1.1\r\nHost: soak\r\nContent-Length: 10000\r\n\r\n" + b"x" * 100),
    ("abort_fcgi_body", b"POST /flaky HTTP/1.1\r\nHost: soak\r\nContent-Length: 10000\r\n\r\n" + b"x" * 100),
    ("abort_hello", b"GET /hello HTTP/1.1\r\nHost: soak\r\n\r\n"),
]


def abort_client(end):
    rng = random.Random(99)
    while time.time() < end:
        kind, req = rng.choice(ABORTS)
        try:
            s = socket.create_connection(("127.0.0.1", PORT), 10)
            s.sendall(req)
            time.sleep(rng.uniform(0, 0.15))
            if rng.random() < 0.5:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            record(kind, "abandoned")
        except Exception as e:
            record(kind, "failed", detail=f"connect/send: {e!r}")
        time.sleep(rng.uniform(0.05, 0.15))


def warm_client(idx):
    rng = random.Random(500 + idx)
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    for n in range(60):
        for kind in ("cgi_get", "fcgi_get", "flaky_get", "cgi_post", "flaky_post"):
            one(conn, kind, rng, n)
    conn.close()


def report(path, seconds):
    out = {"seconds": round(seconds, 1), "kinds": {}, "n_failures": n_failures, "failures": failures}
    for k, s in sorted(stats.items()):
        lat = sorted(s.pop("lat"))
        pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None
        out["kinds"][k] = dict(s, p50_ms=pct(0.5), p99_ms=pct(0.99), max_ms=round(lat[-1], 1) if lat else None)
    json.dump(out, open(path, "w"), indent=1)


def main():
    global PORT
    mode, PORT = sys.argv[1], int(sys.argv[2])
    t0 = time.time()
    if mode == "run":
        secs, out = float(sys.argv[3]), sys.argv[4]
        nka = int(sys.argv[5]) if len(sys.argv) > 5 else 4
        end = time.time() + secs
        ts = [threading.Thread(target=keepalive_client, args=(i, end)) for i in range(nka)]
        ts += [threading.Thread(target=f, args=(end,)) for f in (fresh_client, crash_client, abort_client)]
    elif mode == "warm":
        out = sys.argv[3]
        ts = [threading.Thread(target=warm_client, args=(i,)) for i in range(4)]
    else:
        sys.exit(__doc__)
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    report(out, time.time() - t0)


if __name__ == "__main__":
    main()
