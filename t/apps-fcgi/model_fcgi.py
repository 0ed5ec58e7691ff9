#!/usr/bin/env python3
"""An awkward FastCGI responder for t/model/run.py, run as a pool process:
the listening socket is descriptor 0. It answers as t/apps/model_echo.sh
does (QUERY_STRING t=TAG&n=SIZE&cl=0|1&st=CODE&hp=SIZE).

model_fcgi.py split SEED  STDOUT records of random sizes and padding (one
                          may hold the end of the header block and 64 KiB
                          of body), END_REQUEST with padding, every record
                          cut at random byte boundaries across writes with
                          tiny pauses; FCGI_KEEP_CONN honoured
model_fcgi.py close SEED  answers in one write, then closes the connection
                          right after END_REQUEST even when FCGI_KEEP_CONN
                          was asked
"""
import hashlib
import os
import random
import socket
import struct
import sys
import time

BEGIN, ABORT, END, PARAMS, STDIN, STDOUT = 1, 2, 3, 4, 5, 6
mode = sys.argv[1]
rng = random.Random("%s-%s-%d" % (mode, sys.argv[2] if len(sys.argv) > 2 else "0", os.getpid()))


def pairs(data):
    out, i = {}, 0

    def length():
        nonlocal i
        if data[i] & 0x80:
            n = struct.unpack(">I", data[i : i + 4])[0] & 0x7FFFFFFF
            i += 4
        else:
            n = data[i]
            i += 1
        return n

    while i < len(data):
        nl = length()
        vl = length()
        out[data[i : i + nl].decode("latin-1")] = data[i + nl : i + nl + vl].decode("latin-1")
        i += nl + vl
    return out


def record(typ, rid, content, pad=0):
    return struct.pack(">BBHHBB", 1, typ, rid, len(content), pad, 0) + content + b"\0" * pad


def answer(params, body):
    q = dict(kv.split("=", 1) for kv in params.get("QUERY_STRING", "").split("&") if "=" in kv)
    n, cl, st, hp = int(q.get("n", 0)), q.get("cl") == "1", q.get("st", ""), int(q.get("hp", 0))
    text = "method=%s\nuri=%s\nlen=%s\nsha=%s\n" % (
        params.get("REQUEST_METHOD", ""),
        params.get("REQUEST_URI", ""),
        params.get("CONTENT_LENGTH", "") or "0",
        hashlib.sha256(body).hexdigest(),
    )
    head = ""
    if st:
        head += "Status: %s Model\r\n" % st
    head += "Content-Type: text/plain\r\n"
    if hp:
        head += "X-Pad: %s\r\n" % ("p" * hp)
    if cl and st in ("204", "304"):
        return (head + "\r\n").encode()
    if cl:
        head += "Content-Length: %d\r\n" % (len(text) + n)
    return (head + "\r\n" + text).encode() + b"x" * n


def split_stream(rid, out):
    """The records of a response, cut into pieces to write one by one."""
    recs, i = [], 0
    while i < len(out):
        # mostly small records, some as large as a record goes: one may
        # hold the end of the header block and much of the body
        k = rng.choice((rng.randint(1, 24), rng.randint(1, 24), rng.randint(1, 65535)))
        recs.append(record(STDOUT, rid, out[i : i + k], rng.choice((0, 0, 1, 7))))
        i += k
    recs.append(record(STDOUT, rid, b""))
    recs.append(record(END, rid, struct.pack(">IB3x", 0, 0), rng.choice((0, 0, 3, 8))))
    pieces = []
    for r in recs:
        if len(r) > 4096 and rng.random() < 0.7:
            pieces.append(r)
            continue
        cuts = sorted(rng.sample(range(1, len(r)), min(len(r) - 1, rng.randint(0, 3))))
        last = 0
        for c in cuts + [len(r)]:
            pieces.append(r[last:c])
            last = c
    return pieces


def serve(conn):
    buf = b""
    params, body, rid, keep = b"", b"", 0, False
    while True:
        while len(buf) >= 8:
            _, typ, r, clen, plen, _ = struct.unpack(">BBHHBB", buf[:8])
            if len(buf) < 8 + clen + plen:
                break
            content = buf[8 : 8 + clen]
            buf = buf[8 + clen + plen :]
            if typ == BEGIN:
                rid, keep = r, bool(content[2] & 1)
                params, body = b"", b""
            elif typ == ABORT:
                conn.sendall(record(END, r, struct.pack(">IB3x", 0, 0)))
                if not keep:
                    return
            elif typ == PARAMS:
                params += content
            elif typ == STDIN and clen:
                body += content
            elif typ == STDIN:
                out = answer(pairs(params), body)
                if mode == "split":
                    for p in split_stream(rid, out):
                        conn.sendall(p)
                        if rng.random() < 0.3:
                            time.sleep(rng.random() * 0.002)
                else:
                    conn.sendall(
                        b"".join(record(STDOUT, rid, out[i : i + 65535]) for i in range(0, len(out), 65535))
                        + record(STDOUT, rid, b"")
                        + record(END, rid, struct.pack(">IB3x", 0, 0))
                    )
                if mode == "close" or not keep:
                    return
        d = conn.recv(65536)
        if not d:
            return
        buf += d


srv = socket.socket(fileno=0)
while True:
    conn, _ = srv.accept()
    try:
        serve(conn)
    except OSError:
        pass
    conn.close()
