"""A TLS client over MemoryBIO for tests: full control of how records
reach TCP (part of a record, a record in many segments). From the attacker
review of cpm's TLS (/work/attack-tls)."""
import select
import socket
import ssl
import time

class Raw:
    def __init__(self, port, sni="localhost", alpn=None, maxver=None, ctx=None, session=None):
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if alpn: ctx.set_alpn_protocols(alpn)
            if maxver: ctx.maximum_version = maxver
        self.ctx = ctx
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inc = ssl.MemoryBIO(); self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=False, server_hostname=sni, session=session)
    def pump_out(self, chunk=None, delay=0):
        data = self.out.read()
        if chunk is None:
            if data: self.sock.sendall(data)
        else:
            for i in range(0, len(data), chunk):
                self.sock.sendall(data[i:i+chunk]); 
                if delay: time.sleep(delay)
        return data
    def pump_in(self, timeout=5):
        r,_,_ = select.select([self.sock],[],[],timeout)
        if not r: return None
        d = self.sock.recv(65536)
        if not d: self.inc.write_eof(); return b""
        self.inc.write(d); return d
    def handshake(self, chunk=None, delay=0):
        while True:
            try:
                self.obj.do_handshake(); self.pump_out(chunk, delay); return
            except ssl.SSLWantReadError:
                self.pump_out(chunk, delay)
                if self.pump_in() in (None, b""): raise Exception("handshake: no data")
    def records(self, data):
        """encrypt data, return raw record bytes (not sent)"""
        self.obj.write(data); return self.out.read()
    def read_all(self, timeout=5, limit=None):
        buf = b""
        while True:
            try:
                while True:
                    d = self.obj.read(65536)
                    if not d: return buf
                    buf += d
                    if limit and len(buf) >= limit: return buf
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                return buf
            self.pump_out()
            d = self.pump_in(timeout)
            if d is None: return buf
            if d == b"": 
                try: buf += self.obj.read(65536)
                except Exception: pass
                return buf
