#!/usr/bin/env python3
"""A load generator that counts: N clients GET a path on 127.0.0.1:PORT
until a duration has passed or a stop file appears, half of them on one
keep-alive connection, half on a new connection per request. Every answer
other than a 200 with a whole body, every connection error and every
timeout is a failure, listed with its cause.

    loadgen.py PORT [--path /client.sh] [--clients 4] [--duration 30]
               [--stop-file F] [--status F] [--source 127.0.0.5]
               [--expect LINE]...

Prints a JSON summary on stdout: sent, ok, failed, failures (each with time,
client, keep-alive or not, cause), by_server (answers per SERVER_PORT line
of the body) and last_seen (when each server last answered, Unix time).
--expect LINE: a 200 whose body lacks that line is a failure too.
--status F: the same summary, rewritten every 0.2 s while it runs.
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time

lock = threading.Lock()
stats = {"sent": 0, "ok": 0, "failed": 0, "failures": [], "by_server": {}, "last_seen": {}}
MAX_LISTED = 100


def record(client, keepalive, ok, cause=None, server=None):
    with lock:
        if ok:
            stats["ok"] += 1
            if server:
                stats["by_server"][server] = stats["by_server"].get(server, 0) + 1
                stats["last_seen"][server] = time.time()
        else:
            stats["failed"] += 1
            if len(stats["failures"]) < MAX_LISTED:
                stats["failures"].append(
                    {"time": round(time.time(), 3), "client": client, "keepalive": keepalive, "cause": cause}
                )


def server_of(body):
    for line in body.split(b"\n"):
        if line.startswith(b"SERVER_PORT="):
            return line[12:].decode(errors="replace").strip()
    return None


def client(n, args, stop):
    keepalive = n % 2 == 0
    expect = [e.encode() for e in args.expect]
    conn = None
    while not stop.is_set():
        if conn is None:
            conn = http.client.HTTPConnection(
                "127.0.0.1", args.port, timeout=args.timeout, source_address=(args.source, 0) if args.source else None
            )
        with lock:
            stats["sent"] += 1
        try:
            headers = {} if keepalive else {"Connection": "close"}
            conn.request("GET", args.path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                record(n, keepalive, False, "status %d %s: %r" % (r.status, r.reason, body[:200]))
                conn.close()
                conn = None
            elif any(e not in body.split(b"\n") for e in expect):
                record(n, keepalive, False, "200 without %r: %r" % (args.expect, body[:300]))
                if not keepalive or r.will_close:
                    conn.close()
                    conn = None
            else:
                record(n, keepalive, True, server=server_of(body))
                if not keepalive or r.will_close:
                    conn.close()
                    conn = None
        except (OSError, http.client.HTTPException) as e:
            record(n, keepalive, False, "%s: %s" % (type(e).__name__, e))
            try:
                conn.close()
            except OSError:
                pass
            conn = None
    if conn is not None:
        conn.close()


def summary():
    with lock:
        return json.dumps(stats, sort_keys=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--path", default="/client.sh")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--stop-file")
    p.add_argument("--status")
    p.add_argument("--source")
    p.add_argument("--expect", action="append", default=[])
    args = p.parse_args()

    stop = threading.Event()
    threads = [threading.Thread(target=client, args=(n, args, stop), daemon=True) for n in range(args.clients)]
    for t in threads:
        t.start()
    end = time.monotonic() + args.duration
    while time.monotonic() < end and not (args.stop_file and os.path.exists(args.stop_file)):
        if args.status:
            tmp = args.status + ".tmp"
            with open(tmp, "w") as f:
                f.write(summary() + "\n")
            os.replace(tmp, args.status)
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(args.timeout + 1)
    out = summary()
    if args.status:
        with open(args.status, "w") as f:
            f.write(out + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
