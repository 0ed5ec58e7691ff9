#!/usr/bin/env python3
"""closer.py SOCKET: a FastCGI server that answers every request with
QUERY_STRING bytes of 'c' (Content-Length set; "N&stream" adds
X-Accel-Buffering: no), then END_REQUEST, then
closes the connection whatever FCGI_KEEP_CONN said (as php-fpm does without
keep-alive). Serves one connection at a time, forever."""
import os
import socket
import struct
import sys

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(16)


def params(data):
    out, i = {}, 0
    while i < len(data):
        lens = []
        for _ in range(2):
            b = data[i]
            if b < 128:
                lens.append(b)
                i += 1
            else:
                lens.append(struct.unpack(">I", data[i : i + 4])[0] & 0x7FFFFFFF)
                i += 4
        k, v = data[i : i + lens[0]], data[i + lens[0] : i + lens[0] + lens[1]]
        i += lens[0] + lens[1]
        out[k.decode()] = v.decode("latin-1")
    return out


def record(typ, rid, body):
    pad = (8 - len(body) % 8) % 8
    return struct.pack(">BBHHBB", 1, typ, rid, len(body), pad, 0) + body + b"\0" * pad


while True:
    conn, _ = srv.accept()
    buf, pbuf, rid, done = b"", b"", 1, False
    while not done:
        d = conn.recv(65536)
        if not d:
            break
        buf += d
        while len(buf) >= 8 and not done:
            _, typ, rid, clen, plen, _ = struct.unpack(">BBHHBB", buf[:8])
            if len(buf) < 8 + clen + plen:
                break
            content, buf = buf[8 : 8 + clen], buf[8 + clen + plen :]
            if typ == 4:
                pbuf += content
            elif typ == 5 and clen == 0:  # end of STDIN: answer
                q = (params(pbuf).get("QUERY_STRING") or "0").split("&")
                n = int(q[0] or "0")
                extra = b"X-Accel-Buffering: no\r\n" if "stream" in q else b""
                out = b"Content-Type: text/plain\r\n" + extra + b"Content-Length: %d\r\n\r\n" % n + b"c" * n
                for i in range(0, len(out), 65535):
                    conn.sendall(record(6, rid, out[i : i + 65535]))
                conn.sendall(record(3, rid, struct.pack(">IB3x", 0, 0)))
                done = True
    conn.close()
