#!/usr/bin/env bats
# Bytes through TLS: every path a response or a request body takes on a
# plain connection (memory, the temporary file, sendfile of a static file,
# a streamed body, pipelining) taken again over a TLS listener, where
# sendfile cannot be used and OpenSSL keeps bytes epoll does not see.
load helpers

setup_file() {
	d=$BATS_FILE_TMPDIR
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" \
		-days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
	mkdir -p "$d/www"
	head -c 3000000 /dev/urandom >"$d/www/rand.bin"
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
  "routes": [{ "prefix": "/files/", "backend": "files" }, { "prefix": "/", "backend": "apps" }],
  "backends": {
    "files": { "type": "static", "root": "$d/www" },
    "apps": { "type": "cgi", "root": "$APPS", "response_buffer": "64K" }
  }
}
JSON
	cpm_start
}

surl() { echo "https://127.0.0.1:$CPM_PORT$1"; }
scurl() { curl -s --cacert "$BATS_FILE_TMPDIR/cert.pem" "$@"; }

@test "tls: a static file, a range and a file read slowly arrive intact" {
	tls_start
	f=$BATS_FILE_TMPDIR/www/rand.bin
	scurl "$(surl /files/rand.bin)" | cmp - "$f"
	scurl -r 100000-1199999 "$(surl /files/rand.bin)" | cmp - <(tail -c +100001 "$f" | head -c 1100000)
	scurl --limit-rate 3M "$(surl /files/rand.bin)" | cmp - "$f"
	run grep -c '"GET /files/rand.bin HTTP/1.1" 20[06] ' "$BATS_TEST_TMPDIR/access.log"
	assert_output 3
}

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

@test "tls: fifty pipelined requests in one TLS record (bytes OpenSSL holds are read), and one request cut into single-byte records" {
	tls_start
	run python3 - "$CPM_PORT" "$BATS_FILE_TMPDIR/cert.pem" <<'PY'
import socket, ssl, sys, time
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
s = conn()
for b in b"GET /env.sh?one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
    s.sendall(bytes([b]))  # one TLS record a byte
    time.sleep(0.001)
out = read_all(s)
print("split", out.startswith(b"HTTP/1.1 200 "), b"QUERY_STRING=one" in out)
PY
	assert_success
	assert_line "responses 50 in order True"
	assert_line "split True True"
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
        s.sendall(b"POST /echo_body.sh HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
    else:
        s.sendall(b"GET /big.sh HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1000)
    s.close()  # SSLSocket.close sends no close_notify (unwrap would): the TCP connection just ends
print("done")
PY
	assert_success
	within 5 eval '[ "$(wc -l <"$BATS_TEST_TMPDIR/access.log")" = 2 ]'
	cat "$BATS_TEST_TMPDIR/access.log"
	grep -q "\"POST /echo_body.sh HTTP/1.1\" 499 " "$BATS_TEST_TMPDIR/access.log"
	within 5 eval '[ "$(ls /proc/$(workers_of "$CPM_PID")/fd | wc -l)" = "$fds0" ]'
	# and the worker still serves
	run scurl -o /dev/null -w '%{http_code}' "$(surl /env.sh)"
	assert_output 200
}
