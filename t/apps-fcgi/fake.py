#!/usr/bin/env python3
"""A FastCGI server that answers what libfcgi cannot be made to send.

fake.py SOCKET MODE [LOG]
  overloaded    END_REQUEST with protocolStatus FCGI_OVERLOADED
  cant_mpx      END_REQUEST with protocolStatus FCGI_CANT_MPX_CONN
  unknown_role  END_REQUEST with protocolStatus FCGI_UNKNOWN_ROLE
  hold          read the request, never answer; when the peer closes,
                append "closed" to LOG
Serves one connection at a time, forever.
"""
import os
import socket
import struct
import sys

path, mode = sys.argv[1], sys.argv[2]
log = sys.argv[3] if len(sys.argv) > 3 else None
STATUS = {"cant_mpx": 1, "overloaded": 2, "unknown_role": 3}

if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(16)


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


while True:
    conn, _ = srv.accept()
    rid = 1
    for typ, rid, content in records(conn):
        if typ == 1:  # BEGIN_REQUEST
            if mode in STATUS:
                body = struct.pack(">IB3x", 0, STATUS[mode])
                conn.sendall(struct.pack(">BBHHBB", 1, 3, rid, len(body), 0, 0) + body)
                break
    else:
        if log:
            with open(log, "a") as f:
                f.write("closed\n")
    conn.close()
