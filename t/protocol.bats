#!/usr/bin/env bats
# HTTP/1.1 details not covered by http.bats: line endings, connection
# management, header forwarding to CGI, Expect, SERVER_NAME.
load helpers

@test "bare LF line endings in the request head are accepted" {
	cpm_start
	run raw "GET /env.sh?lf=1 HTTP/1.1\nHost: a\nX-Test: yes\nConnection: close\n\n"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line "QUERY_STRING=lf=1"
	assert_line "HTTP_X_TEST=yes"
}

@test "a bare CR in the request line is 400" {
	cpm_start
	run raw "GET /env.sh\rHTTP/1.1\r\nHost: a\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 400'
	assert_line "<EOF>"
}

@test "Connection: close on HTTP/1.1 closes after the response" {
	cpm_start
	run raw "GET /length.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" 4
	assert_line --regexp '^HTTP/1.1 200'
	assert_output --partial $'Connection: close\r'
	assert_line "<EOF>"
}

@test "an HTTP/1.0 request without keep-alive is closed after the response" {
	cpm_start
	run raw "GET /length.sh HTTP/1.0\r\n\r\n" 4
	assert_line --regexp '^HTTP/1.1 200'
	assert_line "fixed"
	assert_line "<EOF>"
}

@test "keepalive 0 closes the connection after every response" {
	cpm_config '"keepalive": 0'
	cpm_start
	run raw "GET /length.sh HTTP/1.1\r\nHost: a\r\n\r\nGET /length.sh HTTP/1.1\r\nHost: a\r\n\r\n" 4
	[ "$(grep -c '^HTTP/1.1 200' <<<"$output")" -eq 1 ]
	assert_output --partial $'Connection: close\r'
	assert_line "<EOF>"
}

@test "a pipelined POST with a body and a GET are answered in order" {
	cpm_start
	run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /status.sh?207 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	assert_line "CONTENT_LENGTH=5"
	assert_line "sha=$(printf hello | sha256sum | cut -d' ' -f1)"
	codes=$(grep -o '^HTTP/1.1 20[0-9]' <<<"$output" | tr '\n' ' ')
	assert_equal "$codes" "HTTP/1.1 200 HTTP/1.1 207 "
	assert_line "<EOF>"
}

@test "an error response closes the connection; pipelined requests after it are dropped" {
	cpm_start
	run raw "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: nope\r\n\r\nGET /length.sh HTTP/1.1\r\nHost: a\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 400'
	[ "$(grep -c '^HTTP/1.1 ' <<<"$output")" -eq 1 ]
	assert_output --partial $'Connection: close\r'
	assert_line "<EOF>"
}

@test "repeated request headers are joined with a comma, Cookie with a semicolon" {
	cpm_start
	run curl -s -H 'X-Multi: a' -H 'X-Multi: b' -H 'Cookie: c=1' -H 'Cookie: d=2' "$(url /env.sh)"
	assert_line "HTTP_X_MULTI=a, b"
	assert_line "HTTP_COOKIE=c=1; d=2"
}

@test "hop-by-hop request headers do not reach the script" {
	cpm_start
	run raw "GET /env.sh HTTP/1.1\r\nHost: a\r\nConnection: close, X-Hop\r\nKeep-Alive: 5\r\nTE: trailers\r\nTrailer: X\r\nUpgrade: foo\r\nX-Kept: 1\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line "HTTP_X_KEPT=1"
	for v in HTTP_CONNECTION HTTP_KEEP_ALIVE HTTP_TE HTTP_TRAILER HTTP_UPGRADE HTTP_TRANSFER_ENCODING; do
		refute_line --partial "$v="
	done
}

@test "Authorization is not passed, only its scheme as AUTH_TYPE" {
	cpm_start
	run curl -s -H 'Authorization: Bearer secret-token' "$(url /env.sh)"
	assert_line "AUTH_TYPE=Bearer"
	refute_output --partial "secret-token"
}

@test "without a body there is no CONTENT_LENGTH or CONTENT_TYPE" {
	cpm_start
	run curl -s "$(url /env.sh)"
	assert_line "REQUEST_METHOD=GET"
	refute_line --partial "CONTENT_LENGTH="
	refute_line --partial "CONTENT_TYPE="
	refute_line --partial "PATH_TRANSLATED="
	assert_line "QUERY_STRING="
}

@test "SERVER_PROTOCOL follows the request version" {
	cpm_start
	run raw "GET /env.sh HTTP/1.0\r\nHost: a\r\n\r\n"
	assert_line "SERVER_PROTOCOL=HTTP/1.0"
	run raw "GET /env.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	assert_line "SERVER_PROTOCOL=HTTP/1.1"
}

@test "SERVER_NAME comes from Host, else from server_name" {
	cpm_config '"server_name": "fallback.test"'
	cpm_start
	run raw "GET /env.sh HTTP/1.1\r\nHost: vhost.test:8080\r\nConnection: close\r\n\r\n"
	assert_line "SERVER_NAME=vhost.test"
	run raw "GET /env.sh HTTP/1.0\r\n\r\n"
	assert_line "SERVER_NAME=fallback.test"
}

@test "Expect: 100-continue over the body limit gets 413 and no 100" {
	cpm_config '"limits": {"body": "1K"}'
	cpm_start
	run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 413'
	refute_output --partial "100 Continue"
}

@test "Expect: 100-continue: 100 comes first, then the final response" {
	cpm_start
	run python3 - "$CPM_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(3)
s.sendall(b"POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
first = s.recv(4096)          # the interim response, before any body was sent
print("FIRST " + first.decode().split("\r\n")[0])
s.sendall(b"abc")
rest = first
while True:
    d = s.recv(65536)
    if not d: break
    rest += d
print(rest.decode())
PY
	assert_line "FIRST HTTP/1.1 100 Continue"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line "CONTENT_LENGTH=3"
	assert_line "sha=$(printf abc | sha256sum | cut -d' ' -f1)"
	[ "$(grep -n '^HTTP/1.1 100' <<<"$output" | tail -1 | cut -d: -f1)" -lt "$(grep -n '^HTTP/1.1 200' <<<"$output" | cut -d: -f1)" ]
}

@test "HEAD on a script with Content-Length keeps the length and sends no body" {
	cpm_start
	run raw "HEAD /length.sh HTTP/1.1\r\nHost: a\r\n\r\nGET /length.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	[ "$(grep -c '^HTTP/1.1 200' <<<"$output")" -eq 2 ]
	[ "$(grep -c '^fixed' <<<"$output")" -eq 1 ]
	assert_output --partial $'Content-Length: 6\r'
}

@test "error responses carry Date and Server too" {
	cpm_start
	run curl -si "$(url /nope.sh)"
	assert_line --regexp '^HTTP/1.1 404'
	assert_line --regexp '^Date: '
	assert_line --regexp '^Server: cpm/'
}

@test "the response to a script's 204 has no body and no chunked framing" {
	cpm_start
	run raw "GET /status.sh?204 HTTP/1.1\r\nHost: a\r\n\r\nGET /length.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 204'
	[ "$(grep -c '^HTTP/1.1 ' <<<"$output")" -eq 2 ]
	refute_output --partial "status body"
	# the 204 head must not announce chunked coding
	head204=$(sed -n '/^HTTP\/1.1 204/,/^\r$/p' <<<"$output")
	refute [ -n "$(grep -i 'transfer-encoding' <<<"$head204")" ]
}

@test "a client stalling in the middle of its body is cut off after client_timeout" {
	cpm_config '"client_timeout": 1'
	cpm_start
	start=$(date +%s%N)
	run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly-a-few-bytes" 5
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_line --regexp '^<(EOF|RESET)>$'
	[ "$elapsed" -lt 4000 ]
	# whatever was sent, the exchange is not presented as complete
	refute_output --partial $'\r\n0\r\n\r\n'
	refute_line --partial "sha="
}

@test "header_timeout bounds the whole head, not the gap between bytes" {
	cpm_config '"header_timeout": 1'
	cpm_start
	# one byte every 0.2 s: never idle for a second, but never done either
	run python3 - "$CPM_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t0 = time.time(); got = b""
s.setblocking(False)
for c in b"GET /env.sh HTTP/1.1\r\nHost: a\r\nX-Drip: " + b"a" * 100:
    try:
        s.send(bytes([c]))
    except OSError:
        break
    time.sleep(0.2)
    try:
        d = s.recv(4096)
        if not d: break
        got += d
        if b"\r\n\r\n" in got: break
    except BlockingIOError:
        pass
print(got.decode("latin-1").split("\r\n")[0], "after=%.1f" % (time.time() - t0))
PY
	assert_output --regexp '^HTTP/1.1 408 .* after=[12]\.'
}

@test "HTTP/1.0 keep-alive with a body of unknown length: close-delimited, connection closed" {
	cpm_start
	run raw "GET /ex/hello.sh HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /ex/hello.sh HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" 4
	[ "$(grep -c '^HTTP/1.1 200' <<<"$output")" -eq 1 ]
	refute_output --partial chunked
	assert_line "Hello, world!"
	assert_line "<EOF>"
}

@test "whitespace between a field name and its colon is 400" {
	cpm_start
	run raw "GET /env.sh HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 400'
	assert_line "<EOF>"
}

@test "two different Content-Length values are 400" {
	cpm_start
	run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
	assert_line --regexp '^HTTP/1.1 400'
	assert_line "<EOF>"
}

@test "max_connections: a full worker stops accepting until a connection closes" {
	CPM_WORKERS=1 cpm_config '"max_connections": 1, "keepalive": 2'
	cpm_start
	run python3 - "$CPM_PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
a = socket.create_connection(("127.0.0.1", port))
a.sendall(b"GET /length.sh HTTP/1.1\r\nHost: a\r\n\r\n")   # keeps its slot (keep-alive)
a.settimeout(3); a.recv(4096)
t0 = time.time()
b = socket.create_connection(("127.0.0.1", port))
b.sendall(b"GET /length.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
b.settimeout(5)
got = b.recv(4096)
print(got.decode().split("\r\n")[0], "waited=%.1f" % (time.time() - t0))
PY
	# b is served only once a's keep-alive (2 s) ran out
	assert_output --regexp '^HTTP/1.1 200 OK waited=(1\.[5-9]|2\.|3\.)'
}

@test "a request target that is neither origin- nor absolute-form is 400" {
	cpm_start
	run raw "GET env.sh HTTP/1.1\r\nHost: a\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 400'
	assert_line "<EOF>"
}

@test "HTTP/3.0 is 505; HTTP/1.2 is served as HTTP/1.1 (RFC 9110 2.5)" {
	cpm_start
	run raw "GET /env.sh HTTP/3.0\r\nHost: a\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 505'
	assert_line "<EOF>"
	run raw "GET /env.sh HTTP/1.2\r\nHost: a\r\nConnection: close\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
	assert_output --partial "SERVER_PROTOCOL=HTTP/1.2"
}

@test "a chunked body with extensions and trailers is decoded" {
	cpm_start
	run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line "CONTENT_LENGTH=11"
	assert_line "sha=$(printf 'hello world' | sha256sum | cut -d' ' -f1)"
}

@test "a malformed chunk size is 400" {
	cpm_start
	for body in "zz\r\nhello\r\n0\r\n\r\n" "fffffffffffffffffffff\r\nx\r\n0\r\n\r\n" "5\r\nhelloXX0\r\n\r\n"; do
		run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n$body"
		assert_line --regexp '^HTTP/1.1 (400|413)'
		refute_line --regexp '^HTTP/1.1 200'
	done
}

@test "Transfer-Encoding is case-insensitive: Chunked is chunked" {
	cpm_start
	run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	assert_line "CONTENT_LENGTH=3"
}

@test "an invalid Host or userinfo in an absolute-form target is 400 (RFC 9112 3.2)" {
	cpm_start
	for req in "GET /env.sh HTTP/1.1\r\nHost: evil.com:99/../x\r\n\r\n" \
		"GET http://u@h/env.sh HTTP/1.1\r\nHost: h\r\n\r\n" \
		"GET /env.sh HTTP/1.1\r\nHost: u@h\r\n\r\n" \
		"GET /env.sh HTTP/1.1\r\nHost: [::1\r\n\r\n" \
		"GET /env.sh HTTP/1.0\r\nHost: a b\r\n\r\n"; do
		run raw "$req"
		assert_line --regexp '^HTTP/1.1 400'
		refute_line --partial "SERVER_NAME="
	done
	# valid ones still reach the script
	run raw "GET /env.sh HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line "SERVER_NAME=[::1]"
	assert_line "HTTP_HOST=[::1]:8080"
	run raw "GET /env.sh HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
}

@test "a PATH_INFO near the request-line limit fits the CGI environment" {
	cpm_start
	long=$(head -c 8150 /dev/zero | tr '\0' p)
	run curl -s -w '%{http_code}\n' "$(url "/env.sh/$long")"
	assert_line 200
	assert_line "PATH_INFO=/$long"
	assert_line "PATH_TRANSLATED=$APPS/$long"
	refute_output --partial "environment"
}

@test "CONTENT_TYPE comes with a body only" {
	cpm_start
	run raw "GET /env.sh HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
	refute_line --partial "CONTENT_TYPE="
	refute_line --partial "HTTP_CONTENT_TYPE="
	run raw "POST /env.sh HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
	assert_line "CONTENT_TYPE=text/plain"
	assert_line "CONTENT_LENGTH=2"
}

@test "a script's Status: 1xx is 502, not a final response" {
	cpm_start
	for st in 100 101 199; do
		run raw "GET /status.sh?$st HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
		assert_line --regexp '^HTTP/1.1 502'
		refute_line --regexp "^HTTP/1.1 $st"
		refute_line --partial "status body"
	done
	run raw "GET /status.sh?200 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
}

@test "chunked framing lines end in CRLF; trailer names are tokens" {
	cpm_start
	for body in "3\nabc\r\n0\r\n\r\n" "3\r\nabc\n0\r\n\r\n" "3\r\nabc\r\n0\n\r\n" "3\r\nabc\r\n0\r\nT: 1\n\r\n" \
		"3\r\nabc\r\n0\r\n\n" "3\r\nabc\r\n0\r\nX : 1\r\n\r\n" "3\r\nabc\r\n0\r\n folded: 1\r\n\r\n" \
		"3\r\nabc\r\n0\r\nX(y): 1\r\n\r\n"; do
		run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n$body"
		assert_line --regexp '^HTTP/1.1 400'
		refute_line --regexp '^HTTP/1.1 200'
	done
	run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line "CONTENT_LENGTH=3"
}

@test "a 16 KiB field name is 431; header_field raises it" {
	cpm_start
	name=$(head -c 16384 /dev/zero | tr '\0' n)
	run raw "GET /env.sh HTTP/1.1\r\nHost: a\r\nX-$name: v\r\nConnection: close\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 431'
	v=$(head -c 8000 /dev/zero | tr '\0' v)
	run raw "GET /env.sh HTTP/1.1\r\nHost: a\r\nX-V: $v\r\nConnection: close\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
}

@test "a route's server_name is SERVER_NAME whatever the Host" {
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{ "listen": ["127.0.0.1:$CPM_PORT"], "workers": 1, "error_log": "$BATS_TEST_TMPDIR/error.log",
  "routes": [ { "prefix": "/", "backend": "apps", "server_name": "pinned.test" } ],
  "backends": { "apps": { "type": "cgi", "root": "$APPS" } } }
JSON
	cpm_start
	run raw "GET /env.sh HTTP/1.1\r\nHost: evil.test:99\r\nConnection: close\r\n\r\n"
	assert_line "SERVER_NAME=pinned.test"
	assert_line "HTTP_HOST=evil.test:99"
}

@test "a chunk declaring more than limits.body is 413 before its data" {
	cpm_config '"limits": {"body": "1K"}'
	cpm_start
	run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" 2
	assert_line --regexp '^HTTP/1.1 413'
	run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n400\r\n$(head -c 1024 /dev/zero | tr '\0' x)\r\n0\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line "CONTENT_LENGTH=1024"
}
