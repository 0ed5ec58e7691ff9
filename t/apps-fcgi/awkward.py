#!/usr/bin/env python3
"""A deliberately awkward FastCGI responder for t/fastcgi.bats and
t/pools.bats: it splits a known response into records and writes at chosen
boundaries, and misbehaves in the ways a real application can.

awkward.py [SOCKET]
  Without SOCKET it serves the listening socket on fd 0 (a pool process,
  or spawn-fcgi); with it, it binds that unix socket itself. One
  connection at a time; FCGI_KEEP_CONN is honoured.

The QUERY_STRING says what to answer (name=value pairs joined with &):
  h=N      the CGI header block is N bytes (at least 28): Content-Type,
           an X-Pad field filling it up, the empty line
  b=N      then N body bytes: byte i is (i * 7 + 3) % 251
  rec=A,B  STDOUT record boundaries at these offsets of the response
           (header block + body); records never exceed 65535 bytes
  pad=N    every STDOUT record carries N padding bytes
  wr=N     write the records in pieces of at most N bytes (default: one
           write per record)
  pause=MS sleep MS milliseconds between two writes
  endpad=MS  END_REQUEST carries 8 padding bytes, written MS ms after
           the rest of the record
  sleep=MS sleep MS milliseconds before answering
  exit=MS  answer, close the connection, then stop accepting for MS
           milliseconds and exit (a connection made meanwhile waits in the
           listening socket's backlog for the next process)
  crash    exit without answering (after reading the whole request)
  close    answer, then shut the connection for reading (a request sent
           on it fails at its first write, and cpm's idle connection sees
           no event), close it 200 ms later and go on accepting
With $AWKWARD_LOG set, each request appends "METHOD QUERY_STRING" to that
file before it is handled: the test counts executions.
"""
import os
import socket
import struct
import sys
import time


def records(conn):
    buf = b""
    while True:
        while len(buf) >= 8:
            _, typ, rid, clen, plen, _ = struct.unpack(">BBHHBB", buf[:8])
            if len(buf) < 8 + clen + plen:
                break
            yield typ, rid, buf[8 : 8 + clen]
            buf = buf[8 + clen + plen :]
        d = conn.recv(65536)
        if not d:
            return
        buf += d


def params(data):
    out, i = {}, 0
    while i < len(data):
        lens = []
        for _ in range(2):
            n = data[i]
            if n & 0x80:
                n = struct.unpack(">I", data[i : i + 4])[0] & 0x7FFFFFFF
                i += 4
            else:
                i += 1
            lens.append(n)
        name = data[i : i + lens[0]].decode("latin-1")
        i += lens[0]
        out[name] = data[i : i + lens[1]].decode("latin-1")
        i += lens[1]
    return out


def response(q):
    h = int(q.get("h", "28"))
    b = int(q.get("b", "0"))
    head = b"Content-Type: text/plain\r\n"
    fill = h - len(head) - 2
    if fill >= 10:
        head += b"X-Pad: " + b"p" * (fill - 9) + b"\r\n"
    head += b"\r\n"
    return head + bytes((i * 7 + 3) % 251 for i in range(b))


def record(typ, rid, content, pad):
    return struct.pack(">BBHHBB", 1, typ, rid, len(content), pad, 0) + content + b"\0" * pad


def answer(conn, rid, q):
    out = response(q)
    cuts = sorted({int(x) for x in q.get("rec", "").split(",") if x} | {0, len(out)})
    pad = int(q.get("pad", "0"))
    recs = []
    for a, z in zip(cuts, cuts[1:]):
        for s in range(a, z, 65535):
            recs.append(record(6, rid, out[s : min(z, s + 65535)], pad))
    recs.append(record(6, rid, b"", 0))
    end = struct.pack(">BBHHBB", 1, 3, rid, 8, 8 if "endpad" in q else 0, 0) + struct.pack(">IB3x", 0, 0)
    recs.append(end)
    wr = int(q.get("wr", "0"))
    writes = recs if wr <= 0 else [w[i : i + wr] for w in [b"".join(recs)] for i in range(0, len(w), wr)]
    pause = int(q.get("pause", "0")) / 1000.0
    for n, w in enumerate(writes):
        if n and pause:
            time.sleep(pause)
        conn.sendall(w)
    if "endpad" in q:
        time.sleep(int(q["endpad"] or "0") / 1000.0)
        conn.sendall(b"\0" * 8)


def serve(conn):
    env, keep = {}, False
    for typ, rid, content in records(conn):
        if typ == 1:  # BEGIN_REQUEST
            env, keep = {}, bool(content[2] & 1)
            penv = b""
        elif typ == 4:  # PARAMS
            if content:
                penv += content
            else:
                env = params(penv)
        elif typ == 5 and not content:  # the end of STDIN
            q = {}
            for kv in env.get("QUERY_STRING", "").split("&"):
                k, _, v = kv.partition("=")
                if k:
                    q[k] = v
            if "AWKWARD_LOG" in os.environ:
                with open(os.environ["AWKWARD_LOG"], "a") as f:
                    f.write("%s %s\n" % (env.get("REQUEST_METHOD"), env.get("QUERY_STRING")))
            if "crash" in q:
                os._exit(1)
            time.sleep(int(q.get("sleep", "0")) / 1000.0)
            answer(conn, rid, q)
            if "exit" in q:
                conn.close()
                time.sleep(int(q["exit"] or "0") / 1000.0)
                os._exit(0)
            if "close" in q:
                conn.shutdown(socket.SHUT_RD)
                time.sleep(0.2)
                return
            if not keep:
                return


if len(sys.argv) > 1:
    if os.path.exists(sys.argv[1]):
        os.unlink(sys.argv[1])
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(sys.argv[1])
    srv.listen(16)
else:
    srv = socket.socket(fileno=0)
while True:
    c, _ = srv.accept()
    try:
        serve(c)
    except (BrokenPipeError, ConnectionResetError):
        pass
    c.close()
