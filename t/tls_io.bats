#!/usr/bin/env bats
# Bytes through TLS, the paths t/tls.bats does not take: a response
# through the temporary file to a slow client, streamed and chunked bodies,
# pipelining past what one read takes (OpenSSL then holds bytes epoll does
# not announce), records that arrive in pieces, closes with and without
# close_notify. (Static files over TLS: t/tls.bats.)
load helpers

setup_file() {
	d=$BATS_FILE_TMPDIR
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" \
		-days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
	chmod -R a+rX "$d"
}

tls_start() {
	CPM_PORT=$(free_port)
	local d=$BATS_FILE_TMPDIR
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": [{"address": "127.0.0.1:$CPM_PORT", "tls": {"certificate": "$d/cert.pem", "key": "$d/key.pem"}}],
  "workers": 1, ${TOP:-}
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member "")
  "routes": [{ "prefix": "/", "backend": "apps" }],
  "backends": {
    "apps": { "type": "cgi", "root": "$APPS", "response_buffer": "64K" }
  }
}
JSON
	cpm_start
}

surl() { echo "https://127.0.0.1:$CPM_PORT$1"; }
scurl() { curl -s --cacert "$BATS_FILE_TMPDIR/cert.pem" "$@"; }

@test "tls: a 10 MB CGI response to a slow client goes through the temporary file intact" {
	tls_start
	run sh -c "curl -s --cacert '$BATS_FILE_TMPDIR/cert.pem' --limit-rate 5M '$(surl /big.sh)' | tr -d a | wc -c"
	assert_output 0
	run sh -c "curl -s --cacert '$BATS_FILE_TMPDIR/cert.pem' --limit-rate 5M '$(surl /big.sh)' | wc -c"
	assert_output 10485760
	# the worker used a response file (the backend did not wait for the client)
	grep -q '"GET /big.sh HTTP/1.1" 200 10485760 ' "$BATS_TEST_TMPDIR/access.log"
}

@test "tls: a 4 MB request body, streamed and chunked, reaches the CGI program intact" {
	tls_start
	head -c 4000000 /dev/urandom >"$BATS_TEST_TMPDIR/body"
	sha=$(sha256sum <"$BATS_TEST_TMPDIR/body" | cut -d' ' -f1)
	run scurl --data-binary @"$BATS_TEST_TMPDIR/body" "$(surl /echo_body.sh)"
	assert_line "CONTENT_LENGTH=4000000"
	assert_line "sha=$sha"
	run scurl -H 'Transfer-Encoding: chunked' --data-binary @"$BATS_TEST_TMPDIR/body" "$(surl /echo_body.sh)"
	assert_line "CONTENT_LENGTH=4000000"
	assert_line "sha=$sha"
}

@test "tls: fifty pipelined requests in one TLS record (bytes OpenSSL holds are read; a request in 1-byte records: t/tls.bats)" {
	tls_start
	run python3 - "$CPM_PORT" "$BATS_FILE_TMPDIR/cert.pem" <<'PY'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
def conn():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.settimeout(10)
    return s
def read_all(s):
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            return out
        out += d
s = conn()
# 300 bytes a request: 15 KB in one TLS record, more than the worker
# reads at once, so the rest waits inside OpenSSL where epoll cannot see it
pad = b"X-Pad: " + b"p" * 260 + b"\r\n"
reqs = b"".join(b"GET /env.sh?n=%d HTTP/1.1\r\nHost: x\r\n%s\r\n" % (i, pad) for i in range(49))
s.sendall(reqs + b"GET /env.sh?n=49 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
out = read_all(s)
n = out.count(b"HTTP/1.1 200 ")
order = [int(x.split(b"\n")[0]) for x in out.split(b"QUERY_STRING=n=")[1:]]
print("responses", n, "in order", order == list(range(50)))
PY
	assert_success
	assert_line "responses 50 in order True"
}

@test "tls: a client that closes without close_notify mid-body and mid-response is logged and leaves nothing behind" {
	tls_start
	fds0=$(ls /proc/"$(workers_of "$CPM_PID")"/fd | wc -l)
	run python3 - "$CPM_PORT" "$BATS_FILE_TMPDIR/cert.pem" <<'PY'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
for what in ("body", "response"):
    raw = socket.create_connection(("127.0.0.1", port))
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    if what == "body":
        s.sendall(b"POST /body_first.sh HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
    else:
        s.sendall(b"GET /big.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)
    s.close()  # SSLSocket.close sends no close_notify (unwrap would): the TCP connection just ends
print("done")
PY
	assert_success
	within 5 eval '[ "$(wc -l <"$BATS_TEST_TMPDIR/access.log")" = 2 ]'
	cat "$BATS_TEST_TMPDIR/access.log"
	grep -q "\"POST /body_first.sh HTTP/1.1\" 499 " "$BATS_TEST_TMPDIR/access.log"
	within 5 eval '[ "$(ls /proc/$(workers_of "$CPM_PID")/fd | wc -l)" = "$fds0" ]'
	# and the worker still serves
	run scurl -o /dev/null -w '%{http_code}' "$(surl /env.sh)"
	assert_output 200
}

# CPU seconds (user + system) the worker of $CPM_PID has used
worker_cpu() {
	awk -v t="$(cpu_ticks "$(workers_of "$CPM_PID")")" -v hz="$(getconf CLK_TCK)" 'BEGIN { print t / hz }'
}

@test "tls: a record that arrives in pieces is waited for, not spun on (mid-head, mid-body, an upload in TCP segments)" {
	TOP='"client_timeout": 20,' tls_start
	cpu0=$(worker_cpu)
	run python3 - "$CPM_PORT" "$ROOT/t" <<'PY'
import sys, time
port = int(sys.argv[1]); sys.path.insert(0, sys.argv[2])
from tlsraw import Raw
# the first 10 bytes of a body record, then 2 s of nothing
r = Raw(port); r.handshake()
r.sock.sendall(r.records(b"POST /echo_body.sh HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"))
rec = r.records(b"A" * 1000)
r.sock.sendall(rec[:10]); time.sleep(2); r.sock.sendall(rec[10:])
print("body", b"CONTENT_LENGTH=1000" in r.read_all(timeout=5, limit=300))
# a head record cut in two, 1 s apart
r = Raw(port); r.handshake()
rec = r.records(b"GET /env.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
r.sock.sendall(rec[:7]); time.sleep(1); r.sock.sendall(rec[7:])
print("head", r.read_all(timeout=5).startswith(b"HTTP/1.1 200 "))
# 64 KB uploaded as a WAN delivers it: 1448-byte segments 20 ms apart
r = Raw(port); r.handshake()
r.sock.sendall(r.records(b"POST /echo_body.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 65536\r\n\r\n"))
data = r.records(b"x" * 65536)
for i in range(0, len(data), 1448):
    r.sock.sendall(data[i:i + 1448]); time.sleep(0.02)
print("upload", b"CONTENT_LENGTH=65536" in r.read_all(timeout=5))
PY
	cpu1=$(worker_cpu)
	echo "$output"
	assert_line "body True"
	assert_line "head True"
	assert_line "upload True"
	# about 4 s of waiting: a worker that spun would have used most of it
	echo "worker CPU: $cpu0 s -> $cpu1 s"
	awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { exit !(b - a < 0.5) }'
}

@test "tls: every close says close_notify: keepalive timeout, the answer to the client's, Connection: close" {
	TOP='"keepalive": 1,' tls_start
	run python3 - "$CPM_PORT" "$BATS_FILE_TMPDIR/cert.pem" <<'PY'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
def conn():
    # suppress_ragged_eofs=False: an end without close_notify raises
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost",
                        suppress_ragged_eofs=False)
    s.settimeout(5)
    return s
def until_end(s):
    try:
        while s.recv(65536):
            pass
        return "close_notify"
    except ssl.SSLEOFError:
        return "no close_notify"
s = conn(); s.sendall(b"GET /env.sh HTTP/1.1\r\nHost: x\r\n\r\n")
print("keepalive:", until_end(s))  # the response, then the idle timeout
s = conn(); s.sendall(b"GET /env.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
print("close:", until_end(s))
s = conn(); s.sendall(b"GET /env.sh HTTP/1.1\r\nHost: x\r\n\r\n")
got = b""
while not got.endswith(b"\r\n0\r\n\r\n"):  # the whole (chunked) response
    got += s.recv(65536)
try:
    s.unwrap()  # our close_notify, then theirs
    print("unwrap: close_notify")
except (ssl.SSLError, OSError) as e:
    print("unwrap:", e)
PY
	echo "$output"
	assert_line "keepalive: close_notify"
	assert_line "close: close_notify"
	assert_line "unwrap: close_notify"
}

@test "tls: failed handshakes are logged at most 20 at once per worker, then counted" {
	tls_start
	run python3 - "$CPM_PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def garbage():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x16\x03\x01\x00\x05garbage")  # a record that is no ClientHello
    s.settimeout(3)
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
for i in range(60):
    garbage()
time.sleep(1.2)  # a second's worth of the bucket refills
garbage()
print("done")
PY
	assert_success
	# every failure is a line or in a count, and some were counted (the
	# bucket refills 20 a second: exact numbers would depend on speed)
	logged=$(grep -c "TLS handshake failed" "$BATS_TEST_TMPDIR/error.log")
	dropped=$(sed -n 's/.*: \([0-9]*\) more TLS failure(s) not logged$/\1/p' "$BATS_TEST_TMPDIR/error.log" |
		awk '{ n += $1 } END { print n + 0 }')
	echo "logged $logged, counted $dropped"
	[ "$dropped" -gt 0 ]
	[ "$logged" -lt 61 ]
	assert_equal "$((logged + dropped))" 61
}
