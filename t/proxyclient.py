#!/usr/bin/env python3
"""proxyclient.py PORT HEADER DATA [options]: connect to 127.0.0.1:PORT (or
--unix PATH), send a PROXY protocol header, then DATA (with \\r \\n \\xHH
escapes), over TLS with --tls CAFILE (SNI --sni NAME), and print what comes
back, then <EOF>, <RESET> or <TIMEOUT>.

HEADER: v1:SRC:SPORT (TCP4 or TCP6 by SRC), v1unknown, v2:SRC:SPORT,
v2local, v2unix, v2ssl:SRC:SPORT (the SSL TLV with the client flag),
v2tlv:SRC:SPORT (a few TLVs: ALPN, authority, unique id, NOOP), none, or
raw:ESCAPED (bytes as given).
--trickle: the header one byte at a time, 20 ms apart."""
import argparse
import ipaddress
import socket
import ssl
import struct
import sys
import time

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(cmd, fam, addrs, tlvs=b""):
    body = addrs + tlvs
    return SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body)) + body


def tlv(t, v):
    return bytes([t]) + struct.pack("!H", len(v)) + v


def header(spec):
    if spec == "none":
        return b""
    if spec.startswith("raw:"):
        return spec[4:].encode("latin-1").decode("unicode_escape").encode("latin-1")
    if spec == "v1unknown":
        return b"PROXY UNKNOWN\r\n"
    if spec == "v2local":
        return v2(0, 0x00, b"")
    if spec == "v2unix":
        return v2(1, 0x31, b"/tmp/a".ljust(108, b"\0") + b"/tmp/b".ljust(108, b"\0"))
    kind, rest = spec.split(":", 1)
    src, sport = rest.rsplit(":", 1)
    ip = ipaddress.ip_address(src)
    if kind == "v1":
        fam = "TCP4" if ip.version == 4 else "TCP6"
        dst = "127.0.0.1" if ip.version == 4 else "::1"
        return f"PROXY {fam} {src} {dst} {sport} 80\r\n".encode()
    dst = ipaddress.ip_address("127.0.0.1" if ip.version == 4 else "::1")
    fam = 0x11 if ip.version == 4 else 0x21
    addrs = ip.packed + dst.packed + struct.pack("!HH", int(sport), 80)
    tlvs = b""
    if kind == "v2ssl":
        tlvs = tlv(0x20, bytes([0x01]) + struct.pack("!I", 0) + tlv(0x21, b"TLSv1.3"))
    elif kind == "v2tlv":
        tlvs = tlv(0x01, b"h2") + tlv(0x02, b"example.org") + tlv(0x05, b"x" * 40) + tlv(0x04, b"\0" * 3)
    return v2(1, fam, addrs, tlvs)


ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("header")
ap.add_argument("data")
ap.add_argument("--tls")
ap.add_argument("--sni", default="localhost")
ap.add_argument("--unix")
ap.add_argument("--trickle", action="store_true")
ap.add_argument("--timeout", type=float, default=3.0)
a = ap.parse_args()

if a.unix:
    s = socket.socket(socket.AF_UNIX)
    s.connect(a.unix)
else:
    s = socket.create_connection(("127.0.0.1", a.port))
h = header(a.header)
if a.trickle:
    for b in h:
        s.sendall(bytes([b]))
        time.sleep(0.02)
else:
    s.sendall(h)
s.settimeout(a.timeout)
if a.tls:
    ctx = ssl.create_default_context(cafile=a.tls)
    s = ctx.wrap_socket(s, server_hostname=a.sni)
data = a.data.encode("latin-1").decode("unicode_escape").encode("latin-1")
out = b""
end = "<TIMEOUT>"
try:
    s.sendall(data)
    while True:
        d = s.recv(65536)
        if not d:
            end = "<EOF>"
            break
        out += d
except socket.timeout:
    pass
except (ConnectionResetError, BrokenPipeError):
    end = "<RESET>"
except ssl.SSLError as e:
    end = f"<SSL {e.reason}>"
sys.stdout.write(out.decode("latin-1"))
sys.stdout.write("\n" + end + "\n")
