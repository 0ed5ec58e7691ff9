#!/usr/bin/env python3
"""hammer.py PORT PATH STOPFILE MAXSECS [FRESH KEEPALIVE]: request PATH from
127.0.0.1:PORT until STOPFILE exists (or MAXSECS pass), with FRESH threads
opening a new connection per request and KEEPALIVE threads reusing theirs
(reconnecting only when the server answers with Connection: close). Prints
one line of counts:

requests=N ok=N bad_status=N bad_body=N refused=N failed=N connections=N
ka_requests=N ka_connections=N

ok: 200 with the expected body (PATH's body is read and compared with the
first one seen). refused: connect() got ECONNREFUSED. failed: any other
error (reset, early close, timeout). ka_*: the share of the keep-alive
threads. The first few errors go to stderr."""
import http.client
import os
import sys
import threading
import time

port, path, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
deadline = time.time() + float(sys.argv[4])
nfresh = int(sys.argv[5]) if len(sys.argv) > 5 else 2
nkeep = int(sys.argv[6]) if len(sys.argv) > 6 else 2

lock = threading.Lock()
counts = dict(requests=0, ok=0, bad_status=0, bad_body=0, refused=0, failed=0, connections=0,
              ka_requests=0, ka_connections=0)
first_body = []
errors = []


def add(key, err=None):
    with lock:
        counts[key] += 1
        if err is not None and len(errors) < 10:
            errors.append("%s: %r" % (key, err))


def running():
    return time.time() < deadline and not os.path.exists(stop)


def one(conn, ka=False):
    """One request on conn; returns False when conn is no longer usable."""
    if conn.sock is None:
        add("connections")
        if ka:
            add("ka_connections")
    add("requests")
    if ka:
        add("ka_requests")
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
    except ConnectionRefusedError as e:
        add("refused", e)
        conn.close()
        return False
    except Exception as e:  # reset, early close, timeout
        add("failed", e)
        conn.close()
        return False
    if r.status != 200:
        add("bad_status", r.status)
        return True
    with lock:
        if not first_body:
            first_body.append(body)
        same = body == first_body[0]
    add("ok" if same else "bad_body", None if same else body)
    return True


def fresh():
    while running():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        one(conn)
        conn.close()


def keepalive():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while running():
        # http.client reconnects by itself after a Connection: close
        if not one(conn, ka=True):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.close()


threads = [threading.Thread(target=fresh) for _ in range(nfresh)]
threads += [threading.Thread(target=keepalive) for _ in range(nkeep)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for e in errors:
    print(e, file=sys.stderr)
print(" ".join("%s=%d" % (k, v) for k, v in counts.items()))
