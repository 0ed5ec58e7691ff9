#!/usr/bin/env python3
"""A stateful, randomized end-to-end test of cpm against a model.

run.py SEED SECONDS [--cpm PATH] [--conns N] [--keep] [--tls]

Starts the real cpm (2 workers, short timeouts) with a CGI backend
(t/apps/model_echo.sh), a libfcgi pool (t/apps-fcgi/model_echo.c) and two
awkward Python pools (t/apps-fcgi/model_fcgi.py: "split" cuts every record
at random byte boundaries, "close" closes after END_REQUEST even with
FCGI_KEEP_CONN). N kept-alive connections, one thread each, run random
sequences of valid (GET/HEAD/POST, Content-Length and chunked bodies,
Expect: 100-continue, HTTP/1.0 and 1.1), pipelined, fragmented, invalid,
abandoned, stalled and slowly read requests for SECONDS. Every response is
parsed strictly and checked against what the model predicts: status, body
(the apps echo method, URI, body length and SHA-256, then n filler bytes),
framing and whether the connection stays open.

Invariants: master and worker pids unchanged (no worker died), no sanitizer
report in cpm's stderr or error log, workers' descriptors back to their
baseline once every client is gone, no zombie children, no worker above 50%
CPU while every client is paused (mid-request and mid-response included),
and every response received is in the access log with its status.

--tls: the listener speaks TLS with a throwaway self-signed ECDSA P-256
certificate (openssl), and every client speaks TLS 1.3 or 1.2 through
memory BIOs over its TCP socket, resuming an earlier session half the time
(which must resume): the test decides where records begin and end (a
request in one record, several pipelined requests in one record, one
request across many small records) and where TCP cuts them. Socket options
(SO_RCVBUF for slow readers, SO_LINGER for resets) stay on the TCP socket,
so a reader that stops still fills the TLS stream. Every clean close by cpm
must carry close_notify. On top of that, actions only a TLS port has:
handshakes that stall (nothing, a record header, half a ClientHello, the
ClientHello then silence, half the client's Finished) must be cut at
header_timeout and not before; garbage instead of a ClientHello (plain
HTTP, whose first byte is a letter: read as HTTP and answered 400 in plain
text; anything else: at most one alert, closed at once);
bytes that do not decrypt after the handshake (at a boundary, in a head,
in a body: nothing answered, closed at once); the client's close_notify
(at a boundary, in a head, in a body, during a response, sometimes with a
TCP half-close after it: cpm's own close_notify back). Not exercised: a
TLS 1.2 renegotiation (Python's ssl module cannot start one).

Each connection's action sequence is a function of SEED and its number
(random.Random); timing is not, so a seed reproduces the same sequences,
not the same interleavings. Exit status 1 on any failure, with the seed and
the failing connection's last events (the bytes sent are the raw repro).
"""
import argparse
import collections
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPS = os.path.join(ROOT, "t", "apps")
FCGI_APPS = os.path.join(ROOT, "t", "apps-fcgi")

IDEMPOTENT = ("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE")
HEADER_TIMEOUT = 4
CLIENT_TIMEOUT = 4
KEEPALIVE = 4
# a measured client-side gap this close to a timeout may have let cpm's
# timer fire: the model then accepts the timeout outcome as well
MARGIN = 1.0
LIMIT_LINE = 2048
LIMIT_HEAD = 8192
LIMIT_COUNT = 30
LIMIT_BODY = 1 << 20
POOLS = {"fc": 4, "split": 2, "close": 2}  # processes per pool
PATHS = {"cgi": "/cgi/model_echo.sh", "fc": "/fc/echo", "split": "/split/echo", "close": "/close/echo"}
RESPONSE_WAIT = 25.0


def tcp_wmem_max():
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


# cpm pauses reading from an application once 256 KiB wait for the client
# (OUT_HIGH) on top of what the kernel's send buffer holds (up to
# tcp_wmem's maximum): responses of the close app around that size end
# while cpm is paused, behind a reader that has stopped
STALL_SIZES = (int(tcp_wmem_max() * 0.8) + 262144, int(tcp_wmem_max() * 1.05) + 262144)  # longest wait for a response that must come
TRANSCRIPT = 40


class Failure(Exception):
    pass


class Closed(Exception):
    """The server closed (EOF or reset) while we read or wrote."""


class Stop(Exception):
    pass


def now():
    return time.monotonic()


# ---------------------------------------------------------------- processes


def proc_children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(")") + 2 :].split()
        if int(rest[1]) == pid:
            out.append((int(d), rest[0], st[st.index("(") + 1 : st.rindex(")")]))
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("latin-1")
    except OSError:
        return ""


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    rest = st[st.rindex(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])


def socket_inodes(pid):
    kinds = {}
    for name, col in (("tcp", 9), ("tcp6", 9), ("unix", 6)):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if len(p) > col:
                        kinds[p[col]] = "unix" if name == "unix" else "tcp"
        except OSError:
            pass
    return kinds


def fd_profile(pid):
    """Counts of a process's descriptors: tcp sockets, unix sockets, other."""
    prof = collections.Counter()
    detail = []
    kinds = socket_inodes(pid)
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", link)
        k = kinds.get(m.group(1), "socket?") if m else "other"
        prof[k] += 1
        detail.append("%s:%s" % (fd, link))
    return prof, detail


# ---------------------------------------------------------------- cpm


def make_certificate(tmp):
    """A throwaway self-signed ECDSA P-256 certificate for model.test and
    127.0.0.1: (certificate, key)."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]
        + ["-subj", "/CN=model.test", "-addext", "subjectAltName=DNS:model.test,IP:127.0.0.1"]
        + ["-keyout", key, "-out", cert],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return cert, key


class Cpm:
    def __init__(self, binary, tmp, seed, tls=False):
        self.tmp = tmp
        self.port = self.free_port()
        self.tls = tls
        listen = "127.0.0.1:%d" % self.port
        if tls:
            self.cert, key = make_certificate(tmp)
            listen = {"address": listen, "tls": {"certificate": self.cert, "key": key}}
        echo = os.path.join(tmp, "model_echo")
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", echo, os.path.join(FCGI_APPS, "model_echo.c"), "-lfcgi"],
            check=True,
        )
        py = shutil.which("python3")
        app = os.path.join(FCGI_APPS, "model_fcgi.py")
        self.access = os.path.join(tmp, "access.log")
        self.error = os.path.join(tmp, "error.log")
        self.stderr = os.path.join(tmp, "stderr.log")
        pool = {"type": "fastcgi", "timeout": 30, "queue_timeout": 20}
        conf = {
            "listen": [listen],
            "workers": 2,
            "header_timeout": HEADER_TIMEOUT,
            "client_timeout": CLIENT_TIMEOUT,
            "keepalive": KEEPALIVE,
            "access_log": self.access,
            "error_log": self.error,
            "limits": {
                "request_line": LIMIT_LINE,
                "header_size": LIMIT_HEAD,
                "header_count": LIMIT_COUNT,
                "body": LIMIT_BODY,
                "body_buffer": "16K",
            },
            "routes": [{"prefix": p.rsplit("/", 1)[0] + "/", "backend": b} for b, p in PATHS.items()],
            "backends": {
                "cgi": {"type": "cgi", "root": APPS, "timeout": 20},
                "fc": dict(pool, command=[echo], processes=POOLS["fc"]),
                "split": dict(pool, command=[py, app, "split", str(seed)], processes=POOLS["split"]),
                "close": dict(pool, command=[py, app, "close", str(seed)], processes=POOLS["close"]),
            },
        }
        if os.geteuid() == 0:
            # as t/helpers.bash: the test's files sit in a directory only
            # root may search, so insist on root instead of nobody
            conf["user"] = "root"
        self.conf = os.path.join(tmp, "cpm.json")
        with open(self.conf, "w") as f:
            json.dump(conf, f, indent=1)
        self.errf = open(self.stderr, "wb")
        env = dict(os.environ)
        # as .ci/run: a sanitizer build aborts on its first report; leaks
        # at exit are not this test's business
        env.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=0")
        env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        self.proc = subprocess.Popen([binary, "-c", self.conf], stdout=self.errf, stderr=self.errf, env=env)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        else:
            pass
        if self.proc.poll() is not None:
            raise SystemExit("cpm did not start:\n" + self.logs())
        self.pid = self.proc.pid
        deadline = now() + 10
        while now() < deadline:
            self.workers = self.worker_pids()
            self.pools = self.pool_pids()
            if len(self.workers) == 2 and len(self.pools) == sum(POOLS.values()):
                break
            time.sleep(0.05)
        else:
            raise SystemExit("cpm did not start its workers and pools:\n" + self.logs())

    @staticmethod
    def free_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        return p

    def worker_pids(self):
        return sorted(p for p, _, _ in proc_children(self.pid) if "cpm: worker" in cmdline(p))

    def pool_pids(self):
        # the master's children that are not workers: pool processes keep
        # their own argv
        return sorted(
            p for p, st, _ in proc_children(self.pid) if st != "Z" and cmdline(p) and not cmdline(p).startswith("cpm: worker")
        )

    def logs(self):
        out = []
        for p in (self.stderr, self.error):
            try:
                with open(p, "rb") as f:
                    out.append(f.read()[-4000:].decode("latin-1"))
            except OSError:
                pass
        return "\n".join(out)

    def sanitizer_reports(self):
        hits = []
        for p in (self.stderr, self.error):
            try:
                with open(p, "rb") as f:
                    text = f.read().decode("latin-1")
            except OSError:
                continue
            for m in re.finditer(r"^.*(AddressSanitizer|LeakSanitizer|runtime error).*$", text, re.M):
                if m.group(0).startswith("SUMMARY"):
                    continue
                # the report and the first frames of its stack
                frames = re.findall(r"^ +#[0-9]+ .* in (\S+ \S+)$", text[m.end() : m.end() + 4000], re.M)[:4]
                hits.append((p, m.start(), m.group(0).strip() + " | " + " < ".join(frames)))
        return hits

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errf.close()


# ---------------------------------------------------------------- the model


class Spec:
    """One valid request and what the model predicts for it."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class Resp:
    def __init__(self, status, headers, body, eof, interim):
        self.status, self.headers, self.body, self.eof, self.interim = status, headers, body, eof, interim

    def get(self, name):
        return [v for n, v in self.headers if n == name]

    def close(self):
        return any("close" in [t.strip() for t in v.lower().split(",")] for v in self.get("connection"))


INVALID = [
    # (name, head bytes after the target's request line parts, statuses)
    ("bad field name", lambda t: b"GET %s HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n" % t, {400}),
    ("folded line", lambda t: b"GET %s HTTP/1.1\r\nHost: a\r\n  folded\r\n\r\n" % t, {400}),
    ("CL and TE", lambda t: b"POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n" % t, {400}),
    ("bad CL", lambda t: b"POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n" % t, {400}),
    ("two CL", lambda t: b"POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd" % t, {400}),
    ("no Host", lambda t: b"GET %s HTTP/1.1\r\n\r\n" % t, {400}),
    ("two Host", lambda t: b"GET %s HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" % t, {400}),
    ("NUL in target", lambda t: b"GET %s\x00 HTTP/1.1\r\nHost: a\r\n\r\n" % t, {400}),
    ("bare CR in value", lambda t: b"GET %s HTTP/1.1\r\nHost: a\rb\r\n\r\n" % t, {400}),
    ("CR CR after request line", lambda t: b"GET %s HTTP/1.1\r\r\nHost: a\r\n\r\n" % t, {400}),
    ("CR CR after a field", lambda t: b"GET %s HTTP/1.1\r\nHost: a\r\r\n\r\n" % t, {400}),
    ("CR CR ending the head", lambda t: b"GET %s HTTP/1.1\r\nHost: a\r\n\r\r\n" % t, {400}),
    ("CR CR before the request", lambda t: b"\r\rGET %s HTTP/1.1\r\nHost: a\r\n\r\n" % t, {400}),
    ("space before colon", lambda t: b"GET %s HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n" % t, {400}),
    ("target not origin-form", lambda t: b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % t.lstrip(b"/"), {400}),
    ("HTTP/3.0", lambda t: b"GET %s HTTP/3.0\r\nHost: a\r\n\r\n" % t, {505}),
    ("unknown coding", lambda t: b"POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" % t, {501}),
    ("long request line", lambda t: b"GET %s&pad=%s HTTP/1.1\r\nHost: a\r\n\r\n" % (t, b"a" * LIMIT_LINE), {414}),
    (
        "too many fields",
        lambda t: b"GET %s HTTP/1.1\r\nHost: a\r\n%s\r\n" % (t, b"".join(b"X-%d: a\r\n" % i for i in range(LIMIT_COUNT + 5))),
        {431},
    ),
    ("head too large", lambda t: b"GET %s HTTP/1.1\r\nHost: a\r\nX-Big: %s\r\n\r\n" % (t, b"b" * LIMIT_HEAD), {431}),
    ("body too large", lambda t: b"POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (t, LIMIT_BODY + 1), {413}),
    (
        "bad chunk size",
        lambda t: b"POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" % t,
        {400},
    ),
    (
        "chunk data overrun",
        lambda t: b"POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" % t,
        {400},
    ),
    (
        "huge chunk size",
        lambda t: b"POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nx\r\n0\r\n\r\n" % t,
        {400, 413},
    ),
    (
        "space after chunk size",
        lambda t: b"POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n" % t,
        {400},
    ),
    (
        "framing trailer",
        lambda t: b"POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n" % t,
        {400},
    ),
]


class Run:
    def __init__(self, args, cpm):
        self.args, self.cpm = args, cpm
        self.lock = threading.Lock()
        self.failures = []
        self.stats = collections.Counter()
        self.logged = {}  # tag -> status of every response received
        self.stop = False
        self.paused = False
        self.parked = 0
        self.cond = threading.Condition(self.lock)
        self.threads = []
        self.hint = 0.0
        self.parked_threads = set()
        self.conns = {}  # thread ident -> Conn
        self.tls_ctx = {}
        if cpm.tls:
            for v, ver in (("1.3", ssl.TLSVersion.TLSv1_3), ("1.2", ssl.TLSVersion.TLSv1_2)):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.load_verify_locations(cpm.cert)
                ctx.minimum_version = ctx.maximum_version = ver
                ctx.set_alpn_protocols(["http/1.1"])
                self.tls_ctx[v] = ctx

    def fail(self, kind, msg, conn=None):
        with self.lock:
            self.stats["failures"] += 1
            self.failures.append((kind, msg, list(conn.events) if conn else [], conn.n if conn else None))

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    # pausing: a thread parks at every send, receive and sleep
    def checkpoint(self):
        with self.cond:
            if not self.paused:
                return
            self.parked += 1
            self.parked_threads.add(threading.get_ident())
            self.cond.notify_all()
            while self.paused:
                self.cond.wait()
            self.parked -= 1
            self.parked_threads.discard(threading.get_ident())

    def sleep(self, d):
        with self.cond:
            self.parked += 1
            self.parked_threads.add(threading.get_ident())
            self.cond.notify_all()
        try:
            time.sleep(d)
        finally:
            with self.cond:
                self.parked -= 1
                self.parked_threads.discard(threading.get_ident())
        self.checkpoint()

    def pause_and_sample(self, label):
        """Pause every client where it is, then measure the workers' CPU."""
        with self.cond:
            self.paused = True
            alive = sum(t.is_alive() for t in self.threads)
            deadline = now() + 1.0
            while self.parked < alive and now() < deadline:
                self.cond.wait(deadline - now())
            parked = self.parked
        time.sleep(0.2)
        tck = os.sysconf("SC_CLK_TCK")
        workers = self.cpm.worker_pids()
        t0 = now()
        try:
            before = {p: cpu_ticks(p) for p in workers}
            time.sleep(1.0)
            after = {p: cpu_ticks(p) for p in workers}
        except OSError:
            after = before = {}
        dt = now() - t0
        for p in before:
            share = (after[p] - before[p]) / tck / dt
            self.count("cpu_samples")
            with self.lock:
                self.stats["cpu_max_pct"] = max(self.stats["cpu_max_pct"], int(share * 100))
            if share > 0.5:
                trace = self.trace_spin(p)
                with self.lock:
                    busy = [c for t, c in self.conns.items() if t not in self.parked_threads and c.events]
                self.fail(
                    "cpu spin",
                    "%s: worker %d used %.0f%% CPU over %.1f s while %d/%d clients were paused; the others' last events: %s"
                    % (label, p, share * 100, dt, parked, alive, "; ".join("conn %d: %s" % (c.n, c.events[-1][:160]) for c in busy))
                    + trace,
                )
        with self.cond:
            self.paused = False
            self.cond.notify_all()

    @staticmethod
    def trace_spin(pid):
        """What a spinning worker does: its system calls for 0.3 s (strace,
        if there is one) and what its descriptors are."""
        if not shutil.which("strace"):
            return ""
        try:
            out = subprocess.run(
                ["timeout", "-s", "INT", "0.3", "strace", "-p", str(pid), "-e", "trace=!futex", "-s", "40"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stderr.splitlines()
        except (OSError, subprocess.TimeoutExpired):
            return ""
        calls = collections.Counter(re.sub(r"\(.*", "", ln) + "(" + ln.split("(", 1)[1].split(",")[0] + ")" for ln in out if "(" in ln)
        fds = {}
        for fd in ("%d" % i for i in range(64)):
            try:
                fds[fd] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                pass
        return "\n    strace: %s\n    first calls: %s\n    fds: %s" % (
            calls.most_common(8),
            " | ".join(out[1:9]),
            " ".join("%s:%s" % kv for kv in fds.items()),
        )

    def check_pids(self, label):
        if self.cpm.proc.poll() is not None:
            self.fail("master died", "%s: cpm exited with %s" % (label, self.cpm.proc.returncode))
            return False
        w = self.cpm.worker_pids()
        if w != self.cpm.workers:
            self.fail("worker died", "%s: workers were %s, now %s" % (label, self.cpm.workers, w))
            self.cpm.workers = w
        p = self.cpm.pool_pids()
        if p != self.cpm.pools:
            self.fail("pool process died", "%s: pool processes were %s, now %s" % (label, self.cpm.pools, p))
            self.cpm.pools = p
        return True


# ---------------------------------------------------------------- a client


class Conn:
    def __init__(self, run, n):
        self.run, self.n = run, n
        self.rng = random.Random("%d-%d" % (run.args.seed, n))
        self.events = collections.deque(maxlen=TRANSCRIPT)
        self.sock = None
        self.reqno = 0
        self.slow = False
        self.tls = None
        self.sessions = {}  # TLS version -> the last session, to resume

    # ---- transport

    def ev(self, kind, data=b""):
        if isinstance(data, bytes) and len(data) > 300:
            data = data[:200] + b"...(%d bytes)..." % len(data) + data[-60:]
        self.events.append("%8.3f %s %r" % (now() - T0, kind, data))

    def connect(self, rcvbuf=None, tls=True):
        """A new connection; over TLS when the run is (tls=False: the raw
        TCP connection only, for the actions that speak no or broken TLS)."""
        self.close()
        s = socket.socket()
        if rcvbuf:
            # on the TCP socket: a small receive window under the TLS
            # stream throttles cpm's encrypted writes as it does plain ones
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(RESPONSE_WAIT)
        s.connect(("127.0.0.1", self.run.cpm.port))
        self.sock = s
        self.buf = b""
        self.eof = False
        self.eof_clean = None  # TLS: the end came with close_notify
        self.slow = bool(rcvbuf)
        self.stall_first = False
        self.resp_rx = 0
        self.last_rx_lb = now()  # lower bound of when the server last wrote
        self.got_bytes = False
        self.last_rx = now()
        self.rx_mark = now()
        self.read_gap = 0.0
        self.served = 0
        self.pipe_sent = None
        self.tls = None
        self.ev("connect", b"rcvbuf=%d port=%d" % (rcvbuf or 0, s.getsockname()[1]))
        self.run.count("connections")
        if self.run.cpm.tls and tls:
            self.tls_handshake()

    # ---- TLS through memory BIOs over the TCP socket: the test decides
    # where records begin and end and how they are cut into TCP segments

    def tls_context(self):
        """TLS 1.3 or 1.2 (a connection's choice), and that context's last
        session to resume, if any."""
        v = self.rng.choice(("1.3", "1.3", "1.2"))
        return self.run.tls_ctx[v], v

    def tls_handshake(self):
        ctx, v = self.tls_context()
        session = self.sessions.get(v) if self.rng.random() < 0.5 else None
        self.tls_in, self.tls_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.tls_in, self.tls_out, server_hostname="model.test", session=session)
        deadline = now() + RESPONSE_WAIT
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.tls_flush()
                self.tls_feed(deadline)
        self.tls_flush()
        self.ev("tls", ("%s %s%s" % (self.tls.version(), self.tls.cipher()[0], " resumed" if self.tls.session_reused else "")).encode())
        self.run.count("tls_handshakes")
        self.tls_version = v
        if self.tls.version() != "TLSv" + v or self.tls.selected_alpn_protocol() != "http/1.1":
            raise Failure("TLS %s with ALPN http/1.1 offered: got %s, ALPN %r" % (v, self.tls.version(), self.tls.selected_alpn_protocol()))
        if session is not None:
            # cpm.json(5), TLS: session tickets are on by default, their
            # keys shared by every worker: a ticket from any earlier
            # connection (of either worker) resumes
            self.run.count("tls_resumptions_offered")
            if not self.tls.session_reused:
                raise Failure("TLS %s: a session ticket from an earlier connection was not resumed" % v)
            self.run.count("tls_resumed")

    def tls_feed(self, deadline):
        """Read TCP bytes into the TLS object."""
        t = deadline - now()
        if t <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(t)
        d = self.sock.recv(65536)
        if d:
            self.tls_in.write(d)
        else:
            self.tls_in.write_eof()

    def tls_flush(self, split=False):
        """Send what the TLS object wrote; split: at random points, in
        several TCP segments (records cut across segments)."""
        data = self.tls_out.read()
        if not data:
            return
        pieces = [data]
        if split and len(data) > 1:
            k = self.rng.randint(1, min(6, len(data) - 1))
            cuts = sorted(self.rng.sample(range(1, len(data)), k))
            pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        for i, p in enumerate(pieces):
            if i:
                self.run.sleep(self.rng.choice((0, 0.001, 0.005)))
            try:
                self.sock.sendall(p)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.ev("send-error", str(e).encode())
                raise Closed("send: %s" % e)

    def xsend(self, p):
        """Send plaintext: on TLS, in one record (up to 16 KiB), in many
        small ones, and the records in one or several TCP segments."""
        if not self.tls:
            try:
                self.sock.sendall(p)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.ev("send-error", str(e).encode())
                raise Closed("send: %s" % e)
            return
        r = self.rng.random()
        if r < 0.15 and len(p) > 1:
            # one request across many records
            size = 1 if len(p) < 600 and self.rng.random() < 0.5 else self.rng.choice((7, 64, 512))
            self.run.count("tls_many_records")
            for i in range(0, len(p), size):
                self.tls.write(p[i : i + size])
        else:
            self.tls.write(p)
        self.tls_flush(self.rng.random() < 0.2)

    def xrecv(self, n):
        """Like socket.recv: b"" at the end (eof_clean: with close_notify)."""
        if not self.tls:
            return self.sock.recv(n)
        deadline = now() + self.sock.gettimeout()
        while True:
            try:
                d = self.tls.read(n)
                if not d:
                    self.eof_clean = True
                    return d
                # and the other whole records already here, as a plain
                # recv returns all that the kernel has
                while len(d) < n:
                    try:
                        more = self.tls.read(n - len(d))
                    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        break
                    if not more:
                        break
                    d += more
                return d
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                # close_notify after ours (Python returns b"" only when
                # cpm's close_notify came first)
                self.eof_clean = True
                return b""
            except ssl.SSLEOFError:
                self.eof_clean = False
                return b""
            finally:
                self.tls_flush()
            self.tls_feed(deadline)

    def close(self):
        if self.tls is not None and self.tls.session is not None and self.tls.session.has_ticket:
            self.sessions[self.tls_version] = self.tls.session
        if self.sock:
            self.sock.close()
            self.ev("close")
            self.sock = None
            self.tls = None

    def send(self, data, frags=False):
        """Send data, maybe in random fragments with small delays; returns
        the longest gap between two fragments."""
        pieces = [data]
        if frags and len(data) > 1:
            k = self.rng.randint(1, min(8, len(data) - 1))
            cuts = sorted(self.rng.sample(range(1, len(data)), k))
            pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        gap, last = 0.0, now()
        for i, p in enumerate(pieces):
            if i:
                self.run.sleep(self.rng.choice((0, 0.001, 0.01, 0.05, 0.2)))
            self.run.checkpoint()
            gap = max(gap, now() - last)
            self.ev("send", p)
            self.xsend(p)
            last = now()
        return gap

    def fill(self, deadline):
        if self.eof:
            raise Closed("EOF")
        if self.slow:
            self.run.sleep(self.rng.uniform(0.01, 0.25))
        self.run.checkpoint()
        t = deadline - now()
        if t <= 0:
            raise Failure("no response within %.0f s" % RESPONSE_WAIT)
        self.sock.settimeout(t)
        start = now()
        try:
            d = self.xrecv(32768 if self.slow else 262144)
        except socket.timeout:
            raise Failure("no response within %.0f s (have %r)" % (RESPONSE_WAIT, self.buf[:200]))
        except ConnectionResetError:
            self.ev("recv-reset")
            self.eof = True
            raise Closed("reset")
        except ssl.SSLError as e:
            # an alert from cpm, or bytes that do not decrypt
            self.ev("tls-error", str(e).encode())
            raise Failure("TLS error from cpm: %s" % e)
        end = now()
        self.read_gap = max(self.read_gap, start - self.rx_mark)
        self.rx_mark = end
        self.last_rx = end
        self.got_bytes = True
        if not d:
            self.ev("recv-eof", b"close_notify" if self.eof_clean else b"" if self.tls is None else b"no close_notify")
            self.eof = True
            raise Closed("EOF")
        self.ev("recv", d)
        self.buf += d
        self.resp_rx += len(d)

    def check_close_notify(self, what):
        """A TLS connection that cpm closes at a clean point (after a
        response that closes, an idle keep-alive connection, the client's
        own close_notify) ends with close_notify (cpm.json(5), TLS): a
        client cannot otherwise tell a complete close-delimited body from
        a cut one. A reset is not checked (cpm closed with bytes unread)."""
        if self.tls is None or self.eof_clean is None:
            return
        self.run.count("tls_close_notify_checked")
        if not self.eof_clean:
            raise Failure("%s: cpm closed the TLS connection without close_notify" % what)

    def need(self, n, deadline):
        while len(self.buf) < n:
            self.fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self, deadline, limit=65536):
        while b"\r\n" not in self.buf:
            if len(self.buf) > limit:
                raise Failure("line longer than %d" % limit)
            self.fill(deadline)
        i = self.buf.index(b"\r\n")
        out, self.buf = self.buf[:i], self.buf[i + 2 :]
        return out

    # ---- strict HTTP/1.1 response parsing

    def read_response(self, method, expect100=False):
        deadline = now() + RESPONSE_WAIT
        self.read_gap = 0.0
        self.rx_mark = now()
        self.got_bytes = bool(self.buf)
        self.resp_rx = 0
        # the server cannot have finished writing this response before we
        # began to wait for it, but may have any time after: its keep-alive
        # idle time runs from then at the earliest (slow readers drain
        # socket buffers long after cpm handed them the last byte)
        self.last_rx_lb = self.rx_mark
        if self.pipe_sent is not None:
            # a pipelined response after the first: cpm may have written
            # it into our receive buffer as soon as its request was in,
            # long before a slow reader got to it
            self.last_rx_lb = min(self.last_rx_lb, self.pipe_sent)
            self.pipe_sent = None
        if self.stall_first:
            # a reader that stops before the response: wait, let the main
            # loop pause everyone and look at the workers' CPU, then read
            self.stall_first = False
            self.run.sleep(0.6)
            self.run.hint = now()
            self.run.sleep(0.9)
        interim = []
        while True:
            sl = self.line(deadline)
            m = re.fullmatch(rb"HTTP/1\.1 ([1-5][0-9][0-9]) [\x20-\x7e\t]*", sl)
            if not m:
                raise Failure("bad status line %r" % sl)
            status = int(m.group(1))
            headers = []
            while True:
                h = self.line(deadline)
                if not h:
                    break
                hm = re.fullmatch(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e\t]*?)[ \t]*", h)
                if not hm:
                    raise Failure("bad header line %r" % h)
                headers.append((hm.group(1).decode().lower(), hm.group(2).decode()))
                if len(headers) > 100:
                    raise Failure("too many response headers")
            if 100 <= status < 200:
                if status == 100 and expect100 and not interim:
                    interim.append(status)
                    continue
                raise Failure("unexpected interim response %d %r (Expect: 100-continue %s)" % (status, sl, expect100))
            break
        r = Resp(status, headers, b"", False, interim)
        if not r.get("date") or not r.get("server"):
            raise Failure("response without Date or Server: %r" % headers)
        te, cl = r.get("transfer-encoding"), r.get("content-length")
        if te and cl:
            raise Failure("both Transfer-Encoding and Content-Length")
        if len(cl) > 1:
            raise Failure("several Content-Length: %r" % cl)
        if status in (204, 304) and te:
            raise Failure("%d with Transfer-Encoding" % status)
        if method == "HEAD" or status in (204, 304):
            r.clen = int(cl[0]) if cl else None
            return r
        if te:
            if len(te) != 1 or te[0].lower() != "chunked":
                raise Failure("Transfer-Encoding %r" % te)
            body = []
            while True:
                szl = self.line(deadline)
                cm = re.fullmatch(rb"([0-9a-fA-F]{1,8})(;[\x20-\x7e]*)?", szl)
                if not cm:
                    raise Failure("bad chunk size line %r" % szl)
                sz = int(cm.group(1), 16)
                if sz == 0:
                    break
                body.append(self.need(sz, deadline))
                if self.need(2, deadline) != b"\r\n":
                    raise Failure("chunk data not followed by CRLF")
            while self.line(deadline):  # trailers
                pass
            r.body = b"".join(body)
        elif cl:
            if not re.fullmatch(r"[0-9]{1,12}", cl[0]):
                raise Failure("bad Content-Length %r" % cl[0])
            r.body = self.need(int(cl[0]), deadline)
        else:
            # delimited by the close: only when the response says so
            if not r.close():
                raise Failure("a body with neither length nor chunked nor Connection: close")
            try:
                while True:
                    self.fill(deadline)
            except Closed:
                pass
            r.body, self.buf = self.buf, b""
            r.eof = True
            self.check_close_notify("a body delimited by the close")
        r.clen = int(cl[0]) if cl else None
        return r

    def expect_eof(self, what):
        """The server must close now: nothing more may come."""
        deadline = now() + 5
        try:
            while True:
                if self.buf:
                    raise Failure("%s: bytes after a response that closes: %r" % (what, self.buf[:200]))
                self.fill(deadline)
        except Closed:
            if self.buf:
                raise Failure("%s: bytes after a response that closes: %r" % (what, self.buf[:200]))
        except Failure as e:
            if "TLS error" in str(e):
                raise Failure("%s: %s" % (what, e))
            raise Failure("%s: connection not closed within 5 s after Connection: close" % what)
        self.check_close_notify(what)
        self.close()

    # ---- request building

    def tag(self):
        self.reqno += 1
        return "%d.%d" % (self.n, self.reqno)

    def new_spec(self, big=False):
        r = self.rng
        if big:
            backend = r.choice(("close", "close", "split", "fc", "cgi"))
        else:
            backend = r.choice(("cgi", "fc", "split", "close", "cgi", "fc"))
        method = r.choice(("GET", "GET", "HEAD", "POST", "POST"))
        ver = "1.0" if r.random() < 0.12 else "1.1"
        st = None
        x = r.random()
        if x < 0.03:
            st = r.choice((103, 150))
        elif x < 0.15:
            st = r.choice((201, 204, 404, 500))
        n = 0
        if big and backend == "close":
            n = r.randint(*STALL_SIZES)
        elif big:
            n = r.randint(200000, 600000)
        elif r.random() < 0.4:
            n = r.choice((1, 100, 5000, 70000, r.randint(0, 200000)))
        cl = r.random() < 0.4
        # a header block just under the 32 KiB limit now and then
        hp = r.randint(31000, 32500) if r.random() < 0.06 else 0
        body = None
        chunked = False
        if method == "POST":
            size = r.choice((0, 1, 10, 1000, 20000, r.randint(0, 300000)))
            body = r.randbytes(size)
            chunked = ver == "1.1" and r.random() < 0.4
        spec = Spec(
            tag=self.tag(),
            backend=backend,
            method=method,
            ver=ver,
            st=st,
            n=n,
            hp=hp,
            cl=cl,
            body=body,
            chunked=chunked,
            conn_close=ver == "1.1" and r.random() < 0.08,
            keepalive_hdr=ver == "1.0" and r.random() < 0.7,
            expect=body is not None and ver == "1.1" and r.random() < 0.2,
            lf=r.random() < 0.1,
        )
        q = "t=%s&n=%d&cl=%d" % (spec.tag, n, int(cl))
        if st:
            q += "&st=%d" % st
        if hp:
            q += "&hp=%d" % hp
        spec.target = "%s?%s" % (PATHS[backend], q)
        return spec

    def head_bytes(self, s):
        r = self.rng
        h = ["%s %s HTTP/%s" % (s.method, s.target, s.ver)]
        fields = []
        if s.ver == "1.1" or r.random() < 0.5:
            fields.append("Host: model.test")
        fields.append("User-Agent: cpm-model")
        for i in range(r.choice((0, 0, 1, 3))):
            fields.append("X-Model-%d: %s" % (i, "v" * r.randint(0, 40)))
        if s.conn_close:
            fields.append("Connection: close")
        if s.keepalive_hdr:
            fields.append("Connection: keep-alive")
        if s.body is not None:
            fields.append("Content-Type: application/octet-stream")
            if s.chunked:
                fields.append("Transfer-Encoding: chunked")
            else:
                fields.append("Content-Length: %d" % len(s.body))
        if s.expect:
            fields.append("Expect: 100-continue")
        r.shuffle(fields)
        eol = "\n" if s.lf else "\r\n"
        return (eol.join(h + fields) + eol + eol).encode()

    def body_bytes(self, s):
        if s.body is None:
            return b""
        if not s.chunked:
            return s.body
        r, out, i = self.rng, [], 0
        while i < len(s.body):
            k = r.choice((1, 7, 100, 4096, 65536))
            piece = s.body[i : i + k]
            ext = r.choice((b"", b"", b";a=b"))
            out.append(b"%x%s\r\n%s\r\n" % (len(piece), ext, piece))
            i += k
        out.append(b"0\r\n")
        if r.random() < 0.2:
            out.append(b"X-Trailer: t\r\n")
        out.append(b"\r\n")
        return b"".join(out)

    def expected(self, s):
        """(status, body or None, close: True/False/None for either)."""
        if s.st and s.st < 200:
            # a 1xx is no final response: cpm must answer 502 (RFC 9110
            # 15.2: 1xx only before a final response)
            if s.conn_close or (s.ver == "1.0" and not s.keepalive_hdr):
                return 502, None, True
            return 502, None, None
        if s.backend == "close" and s.body is not None and len(s.body) > 128 * 1024 and getattr(self, "last502", False):
            return 502, None, None
        if s.backend == "close" and s.method not in IDEMPOTENT and getattr(self, "last502", False):
            # cpm.json(5), Pools: a request that may have reached the
            # application is not sent again unless its method is
            # idempotent; "close" breaks FCGI_KEEP_CONN, so a request
            # written before its close arrived may get 502
            return 502, None, None
        status = s.st or 200
        text = "method=%s\nuri=%s\nlen=%d\nsha=%s\n" % (
            s.method,
            s.target,
            len(s.body) if s.body is not None else 0,
            hashlib.sha256(s.body or b"").hexdigest(),
        )
        full = text.encode() + b"x" * s.n
        body = b"" if s.method == "HEAD" or status in (204, 304) else full
        if s.conn_close:
            close = True
        elif s.ver == "1.0" and not s.keepalive_hdr:
            close = True
        elif s.ver == "1.0":
            # kept alive only with a length to delimit the body
            close = None if not body and not s.cl else not s.cl
        else:
            close = False
        s.full_len = len(full)
        return status, body, close

    def check(self, s, r):
        # cpm.json(5), Pools: a request whose kept connection was closed by
        # the application is sent again, unless more than 128 KiB of its
        # body had gone out: then 502
        self.last502 = r.status == 502
        status, body, close = self.expected(s)
        what = "%s %s HTTP/%s" % (s.method, s.target, s.ver)
        if r.status != status:
            raise Failure("%s: status %d, model says %d" % (what, r.status, status))
        if body is not None and r.body != body:
            i = next((k for k in range(min(len(body), len(r.body))) if body[k] != r.body[k]), min(len(body), len(r.body)))
            raise Failure(
                "%s: body differs at byte %d: got %d bytes %r..., model %d bytes %r..."
                % (what, i, len(r.body), r.body[max(0, i - 20) : i + 40], len(body), body[max(0, i - 20) : i + 40])
            )
        if body is not None and s.cl and s.method == "HEAD" and r.clen is not None and r.clen != s.full_len:
            raise Failure("%s: HEAD Content-Length %d, the app sent %d" % (what, r.clen, s.full_len))
        if body is not None and s.cl and s.method != "HEAD" and status not in (204, 304) and r.clen != len(body):
            raise Failure("%s: the app's Content-Length was not passed through: %r" % (what, r.get("content-length")))
        if s.hp and status != 502 and not (s.st and s.st < 200) and [len(v) for v in r.get("x-pad")] != [s.hp]:
            raise Failure("%s: X-Pad of %d bytes sent, got %r" % (what, s.hp, [len(v) for v in r.get("x-pad")]))
        if r.eof and close is False:
            raise Failure("%s: close-delimited body on a connection the model keeps open" % what)
        if close is True and not r.close():
            raise Failure("%s: the model closes this connection but the response lacks Connection: close" % what)
        if close is False and r.close():
            raise Failure("%s: Connection: close on a connection the model keeps open" % what)
        with self.run.lock:
            self.run.logged[s.tag] = (r.status, "%s %s HTTP/%s%s" % (s.method, s.target, s.ver, s.where))
        self.run.count("responses_checked")
        return r.close()

    # ---- actions

    def timing_slack(self, t_start, t_head, body_gap, reading=True):
        """Whether a timeout of cpm's may legitimately have fired."""
        return (
            t_head - t_start > HEADER_TIMEOUT - MARGIN
            or body_gap > CLIENT_TIMEOUT - MARGIN
            or (reading and self.read_gap > CLIENT_TIMEOUT - MARGIN)
        )

    def idle_allowed(self):
        return now() - self.last_rx_lb > KEEPALIVE - MARGIN

    def exchange(self, specs, frags):
        """Send specs (pipelined when several) and check every response."""
        t_start = self.last_rx_lb
        idle_ok = self.idle_allowed()
        body_gap = 0.0
        t_head = now()
        try:
            if len(specs) == 1 and specs[0].expect:
                s = specs[0]
                self.send(self.head_bytes(s), frags)
                t_head = now()
                # wait up to 1 s for 100 Continue, then send the body anyway
                deadline = now() + 1.0
                while now() < deadline and b"\r\n\r\n" not in self.buf:
                    self.sock.settimeout(max(0.01, deadline - now()))
                    try:
                        d = self.xrecv(65536)
                    except socket.timeout:
                        break
                    except ConnectionResetError:
                        self.eof = True
                        raise Closed("reset")
                    if not d:
                        self.eof = True
                        raise Closed("EOF")
                    self.ev("recv", d)
                    self.buf += d
                body_gap = max(now() - t_head, self.send(self.body_bytes(s), frags))
            else:
                data = b"".join(self.head_bytes(s) + self.body_bytes(s) for s in specs)
                body_gap = self.send(data, frags)
                t_head = now()
        except Closed as e:
            # what cpm answered before it closed is still to be read
            self.ev("note", b"send failed: %s" % str(e).encode())
        self.run.count("requests", len(specs))
        for i, s in enumerate(specs):
            s.where = " (pipelined %d of %d)" % (i + 1, len(specs)) if len(specs) > 1 else ""
            self.pipe_sent = t_head if i else None
            try:
                r = self.read_response(s.method, s.expect)
            except Closed as e:
                if i == 0 and idle_ok and not self.buf:
                    self.ev("note", b"closed by keepalive (allowed)")
                    self.run.count("keepalive_closes")
                    self.check_close_notify("closed as idle")
                    self.close()
                    return
                if self.timing_slack(t_start, t_head, body_gap):
                    self.run.count("timeouts_allowed")
                    self.close()
                    return
                raise Failure(
                    "connection closed (%s) %s the response to %s %s"
                    % (e, "in the middle of" if self.got_bytes else "without", s.method, s.target)
                )
            self.run.count("responses")
            self.served += 1
            if r.status == 408 and (self.timing_slack(t_start, t_head, body_gap) or (i == 0 and idle_ok)):
                self.run.count("timeouts_allowed")
                if not r.close():
                    raise Failure("408 without Connection: close")
                self.expect_eof("408")
                return
            if self.check(s, r):
                # an error before the body was read closes the connection
                # (its framing is lost): the rest of the pipeline goes too
                if i != len(specs) - 1 and not (r.status == 502 and s.body):
                    raise Failure("connection closed with pipelined requests unanswered")
                if not r.eof:
                    self.expect_eof("%s %s" % (s.method, s.target))
                else:
                    self.close()
                return

    def act_invalid(self):
        name, make, statuses = self.rng.choice(INVALID)
        tag = self.tag()
        target = ("%s?t=%s" % (PATHS[self.rng.choice(list(PATHS))], tag)).encode()
        data = make(target)
        idle_ok = self.idle_allowed()
        t_start = self.last_rx_lb
        self.run.count("requests")
        self.run.count("invalid")
        gap, t_head = 0.0, now()
        try:
            gap = self.send(data, self.rng.random() < 0.3)
            t_head = now()
            if self.rng.random() < 0.2:
                # a valid request pipelined behind it: must be dropped
                self.send(self.head_bytes(self.new_spec()))
        except Closed as e:
            self.ev("note", b"send failed: %s" % str(e).encode())
        try:
            r = self.read_response("GET")
        except Closed as e:
            if idle_ok and not self.buf:
                self.close()
                return
            raise Failure(
                "%s: closed (%s) %s the error response to %r"
                % (name, e, "in the middle of" if self.got_bytes else "without", data[:200])
            )
        self.run.count("responses")
        if r.status == 408 and self.timing_slack(t_start, t_head, gap, False):
            self.run.count("timeouts_allowed")
            self.expect_eof("408")
            return
        if r.status not in statuses:
            raise Failure("%s: status %d, model says %s for %r" % (name, r.status, sorted(statuses), data[:200]))
        if not r.close():
            raise Failure("%s: error response without Connection: close" % name)
        self.run.count("responses_checked")
        self.expect_eof(name)

    def act_abandon(self):
        s = self.new_spec(big=self.rng.random() < 0.5)
        head, body = self.head_bytes(s), self.body_bytes(s)
        how = self.rng.choice(("head", "body", "response", "sent"))
        self.run.count("abandoned")
        self.run.count("abandoned_" + how)
        try:
            if how == "head":
                self.send(head[: self.rng.randint(1, len(head) - 1)])
            elif how == "body" and body:
                self.send(head + body[: self.rng.randint(0, len(body) - 1)])
            elif how == "response":
                self.send(head + body)
                self.run.sleep(self.rng.uniform(0, 0.3))
                self.sock.settimeout(2)
                try:
                    self.ev("recv", self.xrecv(self.rng.randint(1, 5000)))
                except (socket.timeout, ConnectionResetError, ssl.SSLError):
                    pass
            else:
                self.send(head + body)
        except Closed:
            pass
        # sometimes RST instead of FIN
        if self.rng.random() < 0.3:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        self.close()

    def act_stall(self):
        """Stall past a timeout on purpose: 408, then close."""
        s = self.new_spec()
        head = self.head_bytes(s)
        # cpm may already have closed this connection as idle: its
        # keep-alive time runs from when it handed the last response to
        # the kernel, which for a slow reader is long before we read it
        idle_ok = self.idle_allowed()
        try:
            if s.body and not s.chunked and not s.expect and self.rng.random() < 0.5:
                what, wait = "body", CLIENT_TIMEOUT + 1.0
                self.send(head + s.body[: len(s.body) // 2])
            else:
                what, wait = "head", HEADER_TIMEOUT + 1.0
                self.send(head[: self.rng.randint(1, len(head) - 3)])
        except Closed as e:
            # closed as idle before we began (over TLS the records may go
            # in several segments: the reset to the first fails the next)
            if idle_ok:
                self.run.count("keepalive_closes")
                self.close()
                return
            raise Failure("stalling mid-%s: send failed (%s) on a connection the model keeps open" % (what, e))
        self.run.count("stalls")
        self.run.count("requests")
        self.run.sleep(wait)
        try:
            r = self.read_response("GET")
        except Closed as e:
            if idle_ok:
                self.run.count("keepalive_closes")
                self.close()
                return
            raise Failure("stalled mid-%s: closed (%s) without 408" % (what, e))
        self.run.count("responses")
        if r.status != 408:
            raise Failure("stalled mid-%s for %.1f s: status %d, model says 408" % (what, wait, r.status))
        self.run.count("responses_checked")
        self.expect_eof("408")

    def act_idle_out(self):
        """Stay idle past keepalive: cpm closes the connection, silently."""
        self.run.sleep(KEEPALIVE + 1.0)
        self.run.count("idle_outs")
        try:
            r = self.read_response("GET")
        except Closed:
            self.check_close_notify("closed as idle")
            self.close()
            return
        except Failure as e:
            raise Failure("idle %.1f s past keepalive %d s: %s" % (KEEPALIVE + 1.0, KEEPALIVE, e))
        # a 408 on an idle connection is allowed (RFC 9110 15.5.9), then close
        if r.status != 408:
            raise Failure("idle connection got an unsolicited %d response" % r.status)
        self.expect_eof("idle 408")

    # ---- TLS: what only a TLS port has

    def raw_read_all(self, deadline):
        """Raw bytes until EOF, reset or the deadline: (bytes, how, when)."""
        got = b""
        while True:
            t = deadline - now()
            if t <= 0:
                return got, "timeout", now()
            self.sock.settimeout(t)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return got, "timeout", now()
            except ConnectionResetError:
                self.ev("recv-reset")
                return got, "reset", now()
            if not d:
                self.ev("recv-eof")
                return got, "eof", now()
            self.ev("recv", d)
            got += d

    @staticmethod
    def tls_records(data):
        """The record types of data, or None if it is not whole records."""
        types, i = [], 0
        while i < len(data):
            if len(data) - i < 5 or data[i + 1] != 3:
                return None
            n = int.from_bytes(data[i + 3 : i + 5], "big")
            if len(data) - i - 5 < n:
                return None
            types.append(data[i])
            i += 5 + n
        return types

    def client_hello(self, ctx):
        """A ClientHello (and the TLS object that made it)."""
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="model.test")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return obj, inc, out.read(), out

    def act_tls_stall_handshake(self):
        """A handshake that stops: cpm cuts it at header_timeout (counted
        from the accept), not before, sending nothing but its own
        handshake records, and spins on nothing meanwhile."""
        how = self.rng.choice(("nothing", "record header", "half ClientHello", "ClientHello", "half Finished"))
        self.connect(tls=False)
        t0 = now()
        ctx, v = self.tls_context()
        obj, inc, hello, out = self.client_hello(ctx)
        self.run.count("tls_stalled_handshakes")
        if how == "record header":
            self.ev("send", hello[:3])
            self.sock.sendall(hello[:3])
        elif how == "half ClientHello":
            self.ev("send", hello[: len(hello) // 2])
            self.sock.sendall(hello[: len(hello) // 2])
        elif how in ("ClientHello", "half Finished"):
            self.ev("send", hello)
            self.sock.sendall(hello)
        if how == "half Finished":
            # the server's flight, then half of the client's last one
            while True:
                self.sock.settimeout(5)
                d = self.sock.recv(65536)
                if not d:
                    raise Failure("TLS %s: cpm closed after the ClientHello" % v)
                self.ev("recv", d)
                inc.write(d)
                try:
                    obj.do_handshake()
                    break  # TLS 1.3: the client is done, its Finished waits
                except ssl.SSLWantReadError:
                    if out.pending:
                        break  # TLS 1.2: its key exchange and Finished wait
            fin = out.read()
            self.ev("send", fin[: len(fin) // 2])
            self.sock.sendall(fin[: len(fin) // 2])
        self.run.sleep(max(0.0, HEADER_TIMEOUT - MARGIN - (now() - t0)))
        # still open: peek without waiting (unless a pause kept us past
        # header_timeout)
        looked = now() - t0
        self.sock.setblocking(False)
        try:
            early = self.sock.recv(65536, socket.MSG_PEEK)
        except BlockingIOError:
            early = None
        except ConnectionResetError:
            early = b""
        if early == b"" and looked < HEADER_TIMEOUT - 0.2:
            raise Failure("a TLS handshake stalled at %r was cut after %.1f s, before header_timeout %d s" % (how, now() - t0, HEADER_TIMEOUT))
        got, end, when = self.raw_read_all(t0 + HEADER_TIMEOUT + 3.0)
        if end == "timeout":
            raise Failure("a TLS handshake stalled at %r was still open %.1f s after the connect (header_timeout %d s)" % (how, now() - t0, HEADER_TIMEOUT))
        types = self.tls_records(got)
        if how in ("nothing", "record header", "half ClientHello") and got:
            raise Failure("TLS handshake stalled at %r: cpm sent %r" % (how, got[:100]))
        if types is None or 0x15 in types:
            raise Failure("TLS handshake stalled at %r: cpm sent more than its handshake: %r" % (how, got[:100]))
        self.close()

    GARBAGE = ("plain HTTP", "not TLS", "record of garbage", "record too long")

    def act_tls_garbage_first(self):
        """Bytes that are not a ClientHello on a new connection."""
        how = self.rng.choice(self.GARBAGE)
        self.connect(tls=False)
        self.run.count("tls_garbage_first")
        if how == "plain HTTP":
            # cpm.json(5), TLS: read as plain HTTP (its first byte is a
            # letter, not a TLS record's), answered 400 in plain text
            # (no body for HEAD) and closed
            s = self.new_spec()
            self.run.count("requests")
            self.send(self.head_bytes(s) + self.body_bytes(s), self.rng.random() < 0.3)
            r = self.read_response(s.method)
            self.run.count("responses")
            want = b"" if s.method == "HEAD" else b"plain HTTP request was sent to an HTTPS port"
            if r.status != 400 or not r.close() or want not in r.body:
                raise Failure("plain HTTP on the TLS port: %d %r, model says 400 in plain text and close" % (r.status, r.body[:100]))
            self.run.count("responses_checked")
            self.expect_eof("plain HTTP on the TLS port")
            return
        r = self.rng
        if how == "not TLS":
            # neither a record type (0x14-0x18), nor SSLv2's high bit,
            # nor an upper-case letter (the first of a method: plain HTTP)
            first = r.choice([b for b in range(0x00, 0x80) if not 0x14 <= b <= 0x18 and not 0x41 <= b <= 0x5a])
            data = bytes([first]) + r.randbytes(r.randint(4, 300))
        elif how == "record of garbage":
            # a whole record (cpm would wait for the rest of one), at
            # least a handshake message's header, and not the type of a
            # ClientHello (whose announced length cpm would wait for)
            body = bytearray(r.randbytes(r.randint(4, 2000)))
            if body[0] == 1:
                body[0] = 2
            data = bytes([r.choice((0x14, 0x15, 0x16, 0x17)), 3, r.choice((1, 3))]) + len(body).to_bytes(2, "big") + bytes(body)
        else:
            data = bytes([0x16, 3, 1]) + r.randint(18433, 65535).to_bytes(2, "big")
        self.ev("send", data)
        t0 = now()
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got, end, when = self.raw_read_all(t0 + 3.0)
        types = self.tls_records(got)
        if end == "timeout":
            raise Failure("%s instead of a ClientHello %r: not closed within 3 s" % (how, data[:60]))
        if types is None or any(t != 0x15 for t in types) or len(types) > 1:
            raise Failure("%s instead of a ClientHello %r: cpm sent %r, not one alert" % (how, data[:60], got[:100]))
        self.close()

    def act_tls_garbage_later(self):
        """Bytes that do not decrypt after the handshake: at a request
        boundary, inside a head or inside a body. cpm drops the
        connection (an alert at most), answering nothing."""
        if self.idle_allowed():
            self.connect(self.rng.choice((None, 32768)))
        where = self.rng.choice(("boundary", "head", "body"))
        s = self.new_spec()
        s.expect = False  # no 100 Continue before the garbage
        head, body = self.head_bytes(s), self.body_bytes(s)
        self.run.count("tls_garbage_later")
        if where == "head":
            self.send(head[: self.rng.randint(1, len(head) - 1)])
        elif where == "body" and body:
            self.send(head + body[: self.rng.randint(0, len(body) - 1)])
            self.run.count("abandoned")  # its access-log line may say so
        r = self.rng
        if r.random() < 0.5:
            # at least a record header's 5 bytes, and not one that
            # announces a record still to come (cpm would wait for it)
            data = bytearray(r.randbytes(r.randint(5, 100)))
            if data[1] == 3:
                data[1] = 4
            data = bytes(data)
        else:
            data = b"\x17\x03\x03" + (n := r.randint(17, 600)).to_bytes(2, "big") + r.randbytes(n)
        self.ev("send raw", data)
        t0 = now()
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = t0 + 3.0
        while True:
            try:
                self.sock.settimeout(max(0.01, deadline - now()))
                d = self.xrecv(65536)
            except socket.timeout:
                raise Failure("TLS garbage %r in the %s: not closed within 3 s" % (data[:40], where))
            except (ConnectionResetError, ssl.SSLError) as e:
                self.ev("end", str(e).encode())
                break
            if not d:
                self.ev("end", b"close_notify" if self.eof_clean else b"EOF")
                break
            raise Failure("TLS garbage %r in the %s: cpm answered %r" % (data[:40], where, d[:100]))
        self.close()

    def act_tls_close_notify(self):
        """The client's close_notify at a request boundary, inside a head,
        inside a body or while the response comes, sometimes with a TCP
        half-close (SHUT_WR) after it: cpm answers with its own
        close_notify and closes (RFC 8446 6.1); a response underway may
        be finished or dropped."""
        if self.idle_allowed():
            self.connect(self.rng.choice((None, 32768)))
        where = self.rng.choice(("boundary", "head", "body", "response"))
        s = self.new_spec()
        s.expect = False
        s.where = " (the client's close_notify after it)"
        head, body = self.head_bytes(s), self.body_bytes(s)
        self.run.count("tls_close_notify_" + where)
        if where == "head":
            self.send(head[: self.rng.randint(1, len(head) - 1)])
        elif where == "body" and body:
            self.send(head + body[: self.rng.randint(0, len(body) - 1)])
            self.run.count("abandoned")
        elif where == "response":
            self.send(head + body)
            self.run.count("requests")
            self.run.count("abandoned")
        try:
            self.tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        self.ev("send", b"close_notify")
        self.tls_flush()
        half = self.rng.random() < 0.3
        if half:
            # a TCP half-close as well: cpm takes a FIN while it works on
            # a request for a client that left, and may then close with
            # this request's bytes unread (a reset)
            self.ev("shutdown", b"SHUT_WR")
            self.sock.shutdown(socket.SHUT_WR)
        deadline = now() + (RESPONSE_WAIT if where == "response" else 5.0)
        if where == "response":
            try:
                r = self.read_response(s.method, s.expect)
            except Closed:
                self.close()  # dropped, or cut: both allowed
                return
            self.run.count("responses")
            self.check(s, r)
            if r.eof:
                self.close()
                return
        while True:
            try:
                self.fill(deadline)
            except Closed as e:
                if self.buf:
                    raise Failure("close_notify %s: cpm answered %r" % ("after a response" if where == "response" else "in the " + where, self.buf[:100]))
                if self.eof_clean is None:
                    if half:
                        self.close()
                        return
                    raise Failure("close_notify in the %s: cpm reset the connection (%s)" % (where, e))
                self.check_close_notify("the client's close_notify in the %s" % where)
                self.close()
                return
            except Failure as e:
                raise Failure("close_notify in the %s: %s" % (where, e))

    def act_tls(self):
        # not here: TLS 1.2 renegotiation (Python's ssl module cannot
        # start one; cpm sets SSL_OP_NO_RENEGOTIATION)
        x = self.rng.random()
        if x < 0.25:
            self.act_tls_stall_handshake()
        elif x < 0.5:
            self.act_tls_garbage_first()
        elif x < 0.7:
            self.act_tls_garbage_later()
        else:
            self.act_tls_close_notify()

    def step(self):
        r = self.rng
        if self.sock is None:
            self.connect(r.choice((None, None, None, 32768)))
        if self.run.cpm.tls and r.random() < 0.12:
            self.act_tls()
            return
        x = r.random()
        if x < 0.40:
            self.exchange([self.new_spec()], r.random() < 0.4)
        elif x < 0.55:
            specs = []
            want = r.randint(2, 6)
            while len(specs) < want:
                s = self.new_spec()
                if not (s.st and s.st < 200):
                    specs.append(s)
            for s in specs:
                s.expect = False
                s.conn_close = False
                if s.ver == "1.0":
                    s.keepalive_hdr = True
                    s.cl = True
                    s.target = s.target.replace("cl=0", "cl=1")
            specs[-1].conn_close = specs[-1].ver == "1.1" and r.random() < 0.2
            self.run.count("pipelines")
            self.exchange(specs, r.random() < 0.5)
        elif x < 0.65:
            self.act_invalid()
        elif x < 0.75:
            self.act_abandon()
        elif x < 0.83:
            # a slow reader of a large response, on a small receive buffer
            self.connect(16384)
            s = self.new_spec(big=True)
            if s.backend == "close" and s.method != "HEAD":
                # the close app behind a reader that stops, then reads fast
                self.slow = False
                self.stall_first = True
                self.run.count("stalled_reads")
            else:
                self.run.count("slow_reads")
            self.exchange([s], False)
            self.slow = False
            self.stall_first = False
        elif x < 0.88:
            self.act_stall()
        elif x < 0.90:
            self.act_idle_out()
        else:
            self.run.sleep(r.choice((0.05, 0.2, 0.5, 1.0)))

    def loop(self):
        with self.run.lock:
            self.run.conns[threading.get_ident()] = self
        while not self.run.stop:
            self.run.count("sequences")
            try:
                self.step()
            except Failure as e:
                self.run.fail("model", "conn %d: %s" % (self.n, e), self)
                self.close()
            except (OSError, Closed) as e:
                self.run.fail("client", "conn %d: %s: %s" % (self.n, type(e).__name__, e), self)
                self.close()
                if self.run.cpm.proc.poll() is not None:
                    return
                time.sleep(0.1)
        self.close()


# ---------------------------------------------------------------- main


def check_access_log(run, expected_min, expected_max):
    time.sleep(0.5)
    try:
        with open(run.cpm.access, "rb") as f:
            lines = f.read().decode("latin-1").splitlines()
    except OSError:
        lines = []
    seen = {}
    for ln in lines:
        m = re.search(r'"[A-Z]+ [^" ]*[?&]t=(\d+\.\d+)[^" ]* HTTP/[0-9.]+" (\d{3}) ', ln)
        if m:
            seen.setdefault(m.group(1), []).append(int(m.group(2)))
    missing = [(t, s) for t, s in run.logged.items() if s[0] not in seen.get(t, [])]
    if missing:
        run.fail(
            "access log",
            "%d responses not in access.log with their status, e.g. %s" % (len(missing), missing[:5]),
        )
    if not expected_min <= len(lines) <= expected_max:
        run.fail(
            "access log",
            "access.log has %d lines; responses received %d, requests that may have been logged at most %d"
            % (len(lines), expected_min, expected_max),
        )
    run.stats["access_log_lines"] = len(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seed", type=int)
    ap.add_argument("seconds", type=float)
    ap.add_argument("--cpm", default=os.path.join(ROOT, "cpm"))
    ap.add_argument("--conns", type=int, default=24)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--tls", action="store_true", help="the same over TLS, and TLS's own troubles")
    args = ap.parse_args()
    global T0
    T0 = now()
    tmp = tempfile.mkdtemp(prefix="cpm-model.")
    print("model: seed %d, %g s, %d connections, cpm %s, dir %s" % (args.seed, args.seconds, args.conns, args.cpm, tmp), flush=True)
    cpm = Cpm(os.path.abspath(args.cpm), tmp, args.seed, args.tls)
    run = Run(args, cpm)
    try:
        base = {p: fd_profile(p) for p in cpm.workers}
        conns = [Conn(run, i) for i in range(args.conns)]
        run.threads = [threading.Thread(target=c.loop, daemon=True) for c in conns]
        for t in run.threads:
            t.start()
        end = now() + args.seconds
        every = max(8.0, args.seconds / 3)
        next_cpu = now() + min(every, args.seconds / 2)
        last_pause = now()
        while now() < end:
            time.sleep(0.25)
            if not run.check_pids("during the run"):
                break
            if now() >= next_cpu and now() < end - 2:
                run.pause_and_sample("mid-run")
                next_cpu = now() + every
                last_pause = now()
            elif now() - run.hint < 0.3 and now() - last_pause > 3 and now() < end - 2:
                run.pause_and_sample("a reader stopped before a large response of the close app")
                last_pause = now()
        if cpm.proc.poll() is None:
            run.pause_and_sample("end of run")
        run.stop = True
        for t in run.threads:
            t.join(60)
            if t.is_alive():
                run.fail("client", "a client thread did not finish within 60 s")
        alive = run.check_pids("after the run")
        if alive:
            # descriptors back to baseline; a worker may keep one idle
            # FCGI_KEEP_CONN connection per pool process (unix sockets)
            deadline = now() + 8
            while True:
                bad = []
                for p in cpm.workers:
                    if p not in base:
                        continue  # a replacement: its death is reported
                    prof, detail = fd_profile(p)
                    b = base[p][0]
                    if (
                        prof["tcp"] != b["tcp"]
                        or prof["other"] != b["other"]
                        or prof["socket?"] != b["socket?"]
                        or prof["unix"] > b["unix"] + sum(POOLS.values())
                    ):
                        bad.append((p, dict(prof), dict(b), detail))
                if not bad or now() > deadline:
                    break
                time.sleep(0.25)
            for p, prof, b, detail in bad:
                run.fail("fd growth", "worker %d: descriptors %s, baseline %s: %s" % (p, prof, b, " ".join(detail)))
            run.stats["fds_checked"] = len(cpm.workers)
            # zombies: a child left unreaped for more than a second
            z1 = {p for q in [cpm.pid] + cpm.workers for p, s, _ in proc_children(q) if s == "Z"}
            time.sleep(1.0)
            z2 = {p for q in [cpm.pid] + cpm.workers for p, s, _ in proc_children(q) if s == "Z"}
            if z1 & z2:
                run.fail("zombie", "children left unreaped: %s" % sorted(z1 & z2))
            lo = run.stats["responses"]
            hi = lo + run.stats["requests"] - run.stats["responses"] + run.stats["abandoned"]
            check_access_log(run, lo, hi)
    finally:
        cpm.stop()
    for path, pos, text in cpm.sanitizer_reports():
        run.fail("sanitizer", "%s: %s" % (os.path.basename(path), re.sub(r"0x[0-9a-f]+|==[0-9]+==", "", text)))
    if cpm.proc.returncode not in (0, None):
        run.fail("master exit", "cpm exited with %d after SIGQUIT" % cpm.proc.returncode)
    s = run.stats
    print(
        "model: seed %d: %d sequences on %d connections, %d requests (%d pipelined batches, %d invalid, %d abandoned, "
        "%d stalls, %d slow reads, %d stopped readers), %d responses, %d checked against the model, %d timeouts allowed, "
        "%d keepalive closes, %d idle-outs, %d CPU samples (max %d%%), %d access-log lines; %d failures"
        % (
            args.seed,
            s["sequences"],
            s["connections"],
            s["requests"],
            s["pipelines"],
            s["invalid"],
            s["abandoned"],
            s["stalls"],
            s["slow_reads"],
            s["stalled_reads"],
            s["responses"],
            s["responses_checked"],
            s["timeouts_allowed"],
            s["keepalive_closes"],
            s["idle_outs"],
            s["cpu_samples"],
            s["cpu_max_pct"],
            s["access_log_lines"],
            len(run.failures),
        )
    )
    if args.tls:
        print(
            "model: tls: %d handshakes (%d resumed of %d offered), %d requests across many records, %d stalled handshakes, "
            "%d garbage instead of a ClientHello, %d garbage after the handshake, close_notify from the client at a "
            "boundary %d, in a head %d, in a body %d, during a response %d; %d closes checked for close_notify"
            % (
                s["tls_handshakes"],
                s["tls_resumed"],
                s["tls_resumptions_offered"],
                s["tls_many_records"],
                s["tls_stalled_handshakes"],
                s["tls_garbage_first"],
                s["tls_garbage_later"],
                s["tls_close_notify_boundary"],
                s["tls_close_notify_head"],
                s["tls_close_notify_body"],
                s["tls_close_notify_response"],
                s["tls_close_notify_checked"],
            )
        )
    if run.failures:
        kinds = collections.Counter(k for k, _, _, _ in run.failures)
        print("model: FAILED (seed %d): %s" % (args.seed, dict(kinds)))
        classes = collections.Counter(
            (k, re.sub(r"conn [0-9]+: |t=[0-9.]+|[0-9]+", "#", m.split(" for b")[0])[:110]) for k, m, _, _ in run.failures
        )
        for (k, m), c in classes.most_common():
            print("model:   %4d x %s: %s" % (c, k, m))
        shown = collections.Counter()
        for kind, msg, events, n in run.failures:
            key = (kind, re.sub(r"[0-9]+", "N", msg)[:60])
            shown[key] += 1
            if shown[key] > 2:
                continue
            print("\n--- %s: %s" % (kind, msg))
            for e in events:
                print("    " + e)
        print("\nmodel: FAILED (seed %d), logs in %s" % (args.seed, tmp))
        sys.exit(1)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print("model: ok")


T0 = now()
if __name__ == "__main__":
    main()
