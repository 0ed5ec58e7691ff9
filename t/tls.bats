#!/usr/bin/env bats
# TLS listeners, end to end: a throwaway CA made with the openssl CLI, the
# real cpm, and real clients (curl, openssl s_client, git, python's ssl,
# testssl.sh). Most tests share one cpm started by setup_file (one worker,
# a plain and a TLS listener, header_timeout 1 s); the reload, upgrade,
# privilege and cpm -t tests start their own.
load helpers
load tls_helpers

# the shared teardown (what a test's own cpm leaves), kept as helpers_teardown
eval "$(declare -f teardown | sed '1s/^teardown/helpers_teardown/')"

setup_file() {
	export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
	[ -x "$ROOT/examples/hello" ] || make -s -C "$ROOT" examples/hello >/dev/null
	[ -x "$ROOT/examples/counter" ] || make -s -C "$ROOT" examples/counter >/dev/null
	export PKI=$BATS_FILE_TMPDIR/pki
	pki_make "$PKI"
	local d=$BATS_FILE_TMPDIR
	# PHP through a php-cgi pool: what PHP makes of the FastCGI params
	mkdir -p "$d/php"
	cat >"$d/php/tls.php" <<'PHP'
<?php
header('Content-Type: text/plain');
echo "HTTPS=", var_export($_SERVER['HTTPS'] ?? null, true),
	" REQUEST_SCHEME=", $_SERVER['REQUEST_SCHEME'] ?? '-',
	" SERVER_PORT=", $_SERVER['SERVER_PORT'] ?? '-', "\n";
PHP
	# a repository for git clone and push: 20 commits and a 2 MB blob
	local src=$d/src i
	git init -q -b master "$src"
	head -c 2000000 /dev/urandom >"$src/blob.bin"
	git -C "$src" add blob.bin
	for i in $(seq 20); do
		echo "line $i" >>"$src/log.txt"
		git -C "$src" add log.txt
		git -C "$src" -c user.name=Tester -c user.email=t@example.org commit -q -m "commit number $i"
	done
	mkdir -p "$d/git"
	git clone -q --bare "$src" "$d/git/repo.git"
	htpasswd -B -b -c "$d/htpasswd" alice 's3cret pass' 2>/dev/null
	# a static file of 6 MB
	mkdir -p "$d/www"
	head -c 6000000 /dev/urandom >"$d/www/big.bin"
	S_PLAIN=$(free_port)
	S_TLS=$(free_port)
	while [ "$S_TLS" = "$S_PLAIN" ]; do S_TLS=$(free_port); done
	cat >"$d/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$S_PLAIN",
             { "address": "127.0.0.1:$S_TLS",
               "tls": { "certificate": "$PKI/a.pem", "key": "$PKI/a.key",
                        "certificates": [ { "certificate": "$PKI/b.pem", "key": "$PKI/b.key" } ] } }],
  "workers": 1,
  "header_timeout": "1s",
  "access_log": "$d/access.log",
  "error_log": "$d/error.log", $(user_member)
  "routes": [
    { "prefix": "/fcgi/counter", "backend": "counter" },
    { "prefix": "/static/", "backend": "files" },
    { "prefix": "/git-rw", "backend": "git",
      "auth": { "basic": { "realm": "git", "user_file": "$d/htpasswd" } } },
    { "prefix": "/git", "backend": "git" },
    { "prefix": "/", "suffix": [".php"], "backend": "php" },
    { "prefix": "/", "backend": "examples" }
  ],
  "backends": {
    "examples": { "type": "cgi", "root": "$ROOT/examples" },
    "files": { "type": "static", "root": "$d/www" },
    "counter": { "type": "fastcgi", "command": ["$ROOT/examples/counter"], "processes": 1 },
    "php": { "type": "fastcgi", "command": ["/usr/bin/php-cgi"], "root": "$d/php", "min": 1, "max": 2,
             "env": { "PHP_FCGI_CHILDREN": "0", "PHP_FCGI_MAX_REQUESTS": "0" } },
    "git": { "type": "cgi", "script": "/usr/lib/git-core/git-http-backend", "timeout": 60,
             "pass_authorization": false,
             "env": { "GIT_PROJECT_ROOT": "$d/git", "GIT_HTTP_EXPORT_ALL": "1" } }
  }
}
JSON
	# fd 3 closed: bats waits for what holds it
	"$CPM" -c "$d/cpm.json" >>"$d/stderr.log" 2>&1 3>&- &
	S_PID=$!
	export S_PID S_PLAIN S_TLS S_LOG=$d/error.log
	wait_listening "$S_TLS" "$S_PID" && return 0
	echo "the shared cpm did not start:" >&2
	cat "$d/stderr.log" "$d/error.log" >&2 2>/dev/null
	return 1
}

teardown_file() {
	stop_pid "${S_PID:-}"
	shared_log_clean
}

# shared_log_clean: the shared cpm's logs show no sanitizer report and no
# worker killed by a crash signal
shared_log_clean() {
	! grep -sE "runtime error|AddressSanitizer|worker [0-9]+ \(pid [0-9]+\) killed by signal (4|6|7|8|11) " \
		"$BATS_FILE_TMPDIR/stderr.log" "$BATS_FILE_TMPDIR/error.log" >&2
}

teardown() {
	local rc=0
	helpers_teardown || rc=1
	shared_log_clean || rc=1
	return $rc
}

# s [CURL ARGS...] PATH: curl, verifying against the test CA, to the shared
# TLS listener as https://localhost:PORT
s() {
	local path=${*: -1}
	curl -sS --cacert "$PKI/ca.pem" "${@:1:$#-1}" "https://localhost:$S_TLS$path"
}

# ---- requests over TLS ----

@test "https: a CGI program, a FastCGI application and a POST body, verified against the test CA" {
	run s /hello.sh
	assert_success
	assert_output "Hello, world!"
	# the certificate's IP address works too
	run curl -sS --cacert "$PKI/ca.pem" "https://127.0.0.1:$S_TLS/hello"
	assert_success
	assert_output "Hello from C"
	run s /fcgi/counter
	assert_success
	assert_output --regexp '^count=[0-9]+ pid=[0-9]+ uri=/fcgi/counter$'
	# 300 KB each way through a CGI program
	head -c 225000 /dev/urandom | base64 -w 0 >"$BATS_TEST_TMPDIR/body"
	run s -H 'Content-Type: text/plain' --data-binary "@$BATS_TEST_TMPDIR/body" /form.sh
	assert_success
	assert_line "CONTENT_LENGTH=300000"
	assert_line "$(cat "$BATS_TEST_TMPDIR/body")"
	# the same with Expect: 100-continue (the interim answer goes through TLS)
	s -v -H 'Expect: 100-continue' -H 'Content-Type: text/plain' --data-binary "@$BATS_TEST_TMPDIR/body" \
		-o "$BATS_TEST_TMPDIR/out" /form.sh 2>"$BATS_TEST_TMPDIR/verbose"
	grep -q "^< HTTP/1.1 100 Continue" "$BATS_TEST_TMPDIR/verbose"
	grep -qxFf "$BATS_TEST_TMPDIR/body" "$BATS_TEST_TMPDIR/out"
	# the certificate really is checked: without the CA curl refuses it
	run curl -sS "https://localhost:$S_TLS/hello.sh"
	assert_equal "$status" 60
	# and the plain listener of the same cpm speaks plain HTTP
	run curl -sS "http://127.0.0.1:$S_PLAIN/hello.sh"
	assert_output "Hello, world!"
}

@test "backends see HTTPS=on, REQUEST_SCHEME=https and the TLS port; on the plain listener no HTTPS and http" {
	run s /env.pl
	assert_success
	assert_line "HTTPS=on"
	assert_line "REQUEST_SCHEME=https"
	assert_line "SERVER_PORT=$S_TLS"
	run curl -sS "http://127.0.0.1:$S_PLAIN/env.pl"
	assert_success
	assert_line "REQUEST_SCHEME=http"
	assert_line "SERVER_PORT=$S_PLAIN"
	refute_line --regexp '^HTTPS='
	# PHP (php-cgi, FastCGI params)
	run s /tls.php
	assert_success
	assert_output "HTTPS='on' REQUEST_SCHEME=https SERVER_PORT=$S_TLS"
	run curl -sS "http://127.0.0.1:$S_PLAIN/tls.php"
	assert_output "HTTPS=NULL REQUEST_SCHEME=http SERVER_PORT=$S_PLAIN"
}

@test "SNI: b.test and *.b.test get b.test's certificate, no name or an unknown one the default" {
	# curl verifies the names: each request only works with b's certificate
	run curl -sS --cacert "$PKI/ca.pem" --resolve "b.test:$S_TLS:127.0.0.1" "https://b.test:$S_TLS/hello.sh"
	assert_success
	assert_output "Hello, world!"
	run curl -sS --cacert "$PKI/ca.pem" --resolve "x.b.test:$S_TLS:127.0.0.1" "https://x.b.test:$S_TLS/hello.sh"
	assert_success
	assert_output "Hello, world!"
	# an unknown name gets the default certificate, which is not for it
	run curl -sS --cacert "$PKI/ca.pem" --resolve "nosuch.test:$S_TLS:127.0.0.1" "https://nosuch.test:$S_TLS/hello.sh"
	assert_equal "$status" 60
	assert_output --partial "nosuch.test"
	assert_equal "$(presented "$S_TLS" b.test)" "serial=2001 subject=CN=b.test"
	assert_equal "$(presented "$S_TLS" x.b.test)" "serial=2001 subject=CN=b.test"
	assert_equal "$(presented "$S_TLS" nosuch.test)" "serial=1001 subject=CN=localhost"
	assert_equal "$(presented "$S_TLS")" "serial=1001 subject=CN=localhost"
	assert_equal "$(presented "$S_TLS" localhost)" "serial=1001 subject=CN=localhost"
}

@test "TLS 1.0 and 1.1 are refused by the server, TLS 1.2 and 1.3 work, ALPN picks http/1.1" {
	local v
	for v in -tls1 -tls1_1; do
		# SECLEVEL=0: this client offers the old version; the refusal is
		# the server's alert, and no certificate was sent
		run openssl s_client -connect "127.0.0.1:$S_TLS" "$v" -cipher 'DEFAULT@SECLEVEL=0' </dev/null
		assert_failure
		assert_output --partial "alert"
		assert_output --partial "no peer certificate available"
	done
	run s -v --tlsv1.2 --tls-max 1.2 /hello.sh
	assert_success
	assert_line --regexp '^\* SSL connection using TLSv1\.2 / ECDHE-ECDSA-'
	assert_line "Hello, world!"
	run s -v --tlsv1.3 /hello.sh
	assert_success
	assert_line --regexp '^\* SSL connection using TLSv1\.3 / TLS_'
	assert_line "* ALPN: server accepted http/1.1"
	assert_line "Hello, world!"
	run openssl s_client -connect "127.0.0.1:$S_TLS" -alpn h2,http/1.1 </dev/null
	assert_line "ALPN protocol: http/1.1"
	# the RSA certificate (b.test) with TLS 1.2: an ECDHE-RSA suite
	run curl -sS -v --cacert "$PKI/ca.pem" --tls-max 1.2 --resolve "b.test:$S_TLS:127.0.0.1" "https://b.test:$S_TLS/hello.sh"
	assert_success
	assert_line --regexp '^\* SSL connection using TLSv1\.2 / ECDHE-RSA-'
}

@test "TLS 1.2 renegotiation is refused; a TLS 1.3 key update is answered and the connection goes on" {
	# s_client reads "R" (renegotiate) and "K" (key update, asking the
	# server for one too) from its input, between two requests
	local get='GET /hello.sh HTTP/1.1\r\nHost: localhost\r\n\r\n'
	local last='GET /hello.sh HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
	run bash -c "(printf '$get'; sleep 0.3; echo R; sleep 0.3; printf '$last'; sleep 0.5) |
		timeout 5 openssl s_client -connect 127.0.0.1:$S_TLS -servername localhost -tls1_2 2>&1"
	assert_output --partial "RENEGOTIATING"
	assert_output --partial "no renegotiation"
	assert_equal "$(grep -c '^HTTP/1.1 200 OK' <<<"$output")" 1
	run bash -c "(printf '$get'; sleep 0.3; echo K; sleep 0.3; printf '$last'; sleep 0.5) |
		timeout 5 openssl s_client -connect 127.0.0.1:$S_TLS -servername localhost -tls1_3 -msg 2>&1"
	assert_line "KEYUPDATE"
	assert_line "<<< TLS 1.3, Handshake [length 0005], KeyUpdate"
	assert_equal "$(grep -c '^HTTP/1.1 200 OK' <<<"$output")" 2
	run s /hello.sh
	assert_output "Hello, world!"
}

@test "plain HTTP on the TLS port: 400 in plain text, closed at once, and cpm serves on" {
	local t0 t1 n400
	n400=$(grep -c '"GET /hello.sh HTTP/1.1" 400 ' "$BATS_FILE_TMPDIR/access.log" || true)
	t0=$(date +%s%N)
	run raw_http "$S_TLS" 'GET /hello.sh HTTP/1.1\r\nHost: localhost\r\n\r\n' 5
	t1=$(date +%s%N)
	assert_line --index 0 --regexp '^HTTP/1\.1 400 '
	assert_output --regexp "[Tt]he plain HTTP request was sent to an HTTPS port"
	assert_equal "${lines[-1]}" "<EOF>"
	[ $(((t1 - t0) / 1000000)) -lt 2000 ]
	# it has its access-log line, with the request line
	within 3 eval '[ "$(grep -c "\"GET /hello.sh HTTP/1.1\" 400 " "$BATS_FILE_TMPDIR/access.log")" -eq $((n400 + 1)) ]'
	run s /hello.sh
	assert_output "Hello, world!"
}

@test "a stalled handshake or half a record is cut after header_timeout (1 s); the one worker serves others and does not spin" {
	local w cpu0
	w=$(workers_of "$S_PID")
	[ "$(wc -w <<<"$w")" -eq 1 ]
	cpu0=$(cpu_ticks "$w")
	run python3 - "$S_TLS" "$PKI/ca.pem" <<'PY'
import socket, ssl, sys, threading, time
port, ca = int(sys.argv[1]), sys.argv[2]
# a real ClientHello, made in memory
ctx = ssl.create_default_context(cafile=ca)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
o = ctx.wrap_bio(inc, out, server_hostname="localhost")
try:
    o.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = out.read()
res = {}

def stall(name, first, trickle):
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    s.sendall(first)
    s.settimeout(0.2)
    rest = list(trickle)
    while time.monotonic() - t0 < 6:
        try:
            if s.recv(4096) == b"":
                break
        except socket.timeout:
            if rest:
                try:
                    s.sendall(bytes([rest.pop(0)]))
                except OSError:
                    break
        except OSError:
            break
    res[name] = time.monotonic() - t0

def half_record(name):
    # a complete handshake, then half the record of a request
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    c = ctx.wrap_bio(i, o, server_hostname="localhost")
    while True:
        try:
            c.do_handshake()
            break
        except ssl.SSLWantReadError:
            s.sendall(o.read())
            i.write(s.recv(65536))
    s.sendall(o.read())
    c.write(b"GET /hello.sh HTTP/1.1\r\nHost: localhost\r\n\r\n")
    rec = o.read()
    s.sendall(rec[: len(rec) // 2])
    s.settimeout(6)
    try:
        while s.recv(4096):  # a session ticket, an alert, then the end
            pass
    except OSError:
        pass
    res[name] = time.monotonic() - t0

ts = [threading.Thread(target=stall, args=a) for a in
      (("nothing", b"", b""), ("half", hello[: len(hello) // 2], b""),
       ("trickle", hello[:1], hello[1:]))]
ts.append(threading.Thread(target=half_record, args=("record",)))
for t in ts:
    t.start()
# meanwhile: full requests, each on a new connection
served = []
for i in range(4):
    time.sleep(0.2)
    t0 = time.monotonic()
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 3), server_hostname="localhost")
    s.sendall(b"GET /hello.sh HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    ok = data.startswith(b"HTTP/1.1 200 ") and b"Hello, world!\n" in data
    served.append((ok, time.monotonic() - t0))
for t in ts:
    t.join()
for k in ("nothing", "half", "trickle", "record"):
    print("%s %.2f" % (k, res[k]))
for ok, t in served:
    print("served %s %.2f" % (ok, t))
PY
	echo "$output"
	assert_success
	local name t
	while read -r name t; do
		case $name in
		nothing | half | trickle | record)
			# cut, and not before the timeout
			python3 -c "import sys; t = float(sys.argv[1]); sys.exit(not 0.8 <= t <= 2.5)" "$t"
			;;
		esac
	done <<<"$output"
	assert_equal "$(grep -c '^[a-z]* [0-9.]*$' <<<"$output")" 4
	assert_equal "$(grep -c '^served True ' <<<"$output")" 4
	while read -r name ok t; do
		python3 -c "import sys; sys.exit(not float(sys.argv[1]) < 0.5)" "$t"
	done < <(grep '^served' <<<"$output")
	# the worker waited: well under the ~1.5 s the stalls took (4 CGI
	# requests cost a few ticks; a worker spinning on a stall, 100+)
	local used=$(($(cpu_ticks "$w") - cpu0))
	echo "worker CPU: $used ticks"
	[ "$used" -lt 40 ]
}

@test "close_notify ends every response the server closes (python ssl sees no ragged EOF)" {
	run python3 - "$S_TLS" "$PKI/ca.pem" <<'PY'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
for what, req in (
        ("cgi", b"GET /hello.sh HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        ("fastcgi", b"GET /fcgi/counter HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        ("http/1.0", b"GET /hello.sh HTTP/1.0\r\n\r\n"),
        ("error", b"GET /hello.sh HTTP/1.1\r\n\r\n"),  # no Host: 400, closed
        ("404", b"GET /nosuch HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")):
    raw = socket.create_connection(("127.0.0.1", port), 3)
    # ragged EOFs raise instead of reading as the end
    s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    s.sendall(req)
    data = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        end = "close_notify"
    except ssl.SSLEOFError as e:
        end = "ragged EOF: %r" % e
    print("%s %s %s" % (what, data.split(b"\r\n", 1)[0].decode(), end))
PY
	echo "$output"
	assert_success
	assert_line --regexp '^cgi HTTP/1\.1 200 OK close_notify$'
	assert_line --regexp '^fastcgi HTTP/1\.1 200 OK close_notify$'
	assert_line --regexp '^http/1\.0 HTTP/1\.[01] 200 OK close_notify$'
	assert_line --regexp '^error HTTP/1\.1 400 .* close_notify$'
	assert_line --regexp '^404 HTTP/1\.1 404 .* close_notify$'
}

@test "static files over TLS: 6 MB intact to a fast and a slow reader, a range; the log says how files are sent" {
	local big=$BATS_FILE_TMPDIR/www/big.bin
	run s -o "$BATS_TEST_TMPDIR/got" -w '%{http_code} %{size_download}' /static/big.bin
	assert_output "200 6000000"
	cmp "$BATS_TEST_TMPDIR/got" "$big"
	run s -r 1000000-1000099 -o "$BATS_TEST_TMPDIR/part" -w '%{http_code}' /static/big.bin
	assert_output 206
	cmp "$BATS_TEST_TMPDIR/part" <(tail -c +1000001 "$big" | head -c 100)
	# a reader that stops for 0.5 s, then now and then: 6 MB is more than
	# the server's socket buffer (tcp_wmem at most 4 MB) and the client's
	# (64 KB, fixed), so the server's writes wait for room
	run python3 - "$S_TLS" "$PKI/ca.pem" "$big" <<'PY'
import hashlib, socket, ssl, sys, time
port, ca, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
raw = socket.create_connection(("127.0.0.1", port), 10)
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data, n, paused = b"", 0, False
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
    n += len(d)
    if not paused and len(data) > 65536:
        paused = True
        time.sleep(0.5)
    if n > 1000000:
        n = 0
        time.sleep(0.1)
body = data.split(b"\r\n\r\n", 1)[1]
print(data.split(b"\r\n", 1)[0].decode(), len(body),
      hashlib.sha256(body).hexdigest() == hashlib.sha256(open(path, "rb").read()).hexdigest())
PY
	assert_success
	assert_output "HTTP/1.1 200 OK 6000000 True"
	grep -qE "tls: (kernel TLS sends files|no kernel TLS \(.*\): files are read and encrypted by OpenSSL)" "$S_LOG"
}

@test "one TLS connection: pipelined requests in one record, a request in 1-byte records, keep-alive reuse" {
	run python3 - "$S_TLS" "$PKI/ca.pem" <<'PY'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
def conn():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 5), server_hostname="localhost")
    return s
def read_all(s):
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            return data
        data += d
# three requests in one write (one TLS record): three answers, in order
s = conn()
s.sendall(b"GET /hello.sh HTTP/1.1\r\nHost: localhost\r\n\r\n"
          b"GET /fcgi/counter HTTP/1.1\r\nHost: localhost\r\n\r\n"
          b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data = read_all(s)
print("pipelined", data.count(b"HTTP/1.1 200 OK"), b"Hello, world!" in data,
      b"uri=/fcgi/counter" in data, b"Hello from C" in data,
      data.index(b"Hello, world!") < data.index(b"uri=/fcgi/counter") < data.index(b"Hello from C"))
# a request written one byte per TLS record
s = conn()
for b in b"GET /hello.sh HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n":
    s.sendall(bytes([b]))
data = read_all(s)
print("bytewise", data.split(b"\r\n", 1)[0].decode(), b"Hello, world!" in data)
PY
	echo "$output"
	assert_success
	assert_line "pipelined 3 True True True True"
	assert_line "bytewise HTTP/1.1 200 OK True"
	# curl: five requests, one connection
	run s -v "https://localhost:$S_TLS/hello.sh" "https://localhost:$S_TLS/fcgi/counter" \
		"https://localhost:$S_TLS/hello" "https://localhost:$S_TLS/hello.sh" /hello.sh
	assert_success
	assert_equal "$(grep -c '^Hello, world!$' <<<"$output")" 3
	assert_equal "$(grep -c 'Re-using existing connection' <<<"$output")" 4
}

@test "git clone over https through git-http-backend, and a push with credentials" {
	export GIT_SSL_CAINFO=$PKI/ca.pem
	local head c=$BATS_TEST_TMPDIR/clone
	head=$(git -C "$BATS_FILE_TMPDIR/git/repo.git" rev-parse master)
	run git clone -q "https://localhost:$S_TLS/git/repo.git" "$c"
	assert_success
	assert_equal "$(git -C "$c" rev-parse HEAD)" "$head"
	assert_equal "$(git -C "$c" rev-list --count HEAD)" 20
	assert_equal "$(sha256sum <"$c/blob.bin")" "$(sha256sum <"$BATS_FILE_TMPDIR/src/blob.bin")"
	run git -C "$c" fsck --full --strict
	assert_success
	grep -q '"POST /git/repo.git/git-upload-pack HTTP/1.1" 200 ' "$BATS_FILE_TMPDIR/access.log"
	# a push: a new commit with 1 MB more, through the authenticated route
	head -c 1000000 /dev/urandom >"$c/more.bin"
	git -C "$c" add more.bin
	git -C "$c" -c user.name=Tester -c user.email=t@example.org commit -q -m "pushed over https"
	local mine
	mine=$(git -C "$c" rev-parse HEAD)
	run git -C "$c" push "https://alice:wrong@localhost:$S_TLS/git-rw/repo.git" master
	assert_failure
	assert_equal "$(git -C "$BATS_FILE_TMPDIR/git/repo.git" rev-parse master)" "$head"
	run git -C "$c" push "https://alice:s3cret%20pass@localhost:$S_TLS/git-rw/repo.git" master
	assert_success
	assert_equal "$(git -C "$BATS_FILE_TMPDIR/git/repo.git" rev-parse master)" "$mine"
	# without the CA git refuses the server
	run env -u GIT_SSL_CAINFO git clone -q "https://localhost:$S_TLS/git/repo.git" "$BATS_TEST_TMPDIR/clone2"
	assert_failure
	assert_output --partial "certificate"
}

# ---- a cpm of the test's own ----

# tls_config [TLS MEMBERS] [TOP MEMBERS]: $BATS_TEST_TMPDIR/cpm.json with a
# TLS listener on $CPM_PORT (certificate cert.pem, key key.pem in the
# test's directory, relative paths) and a plain one on $PLAIN_PORT, 2
# workers, examples at /
tls_config() {
	CPM_PORT=${CPM_PORT:-$(free_port)}
	PLAIN_PORT=${PLAIN_PORT:-$(free_port)}
	local tls=${1:-} top=${2:-}
	[ -z "$tls" ] || tls=", $tls"
	[ -z "$top" ] || top="$top,"
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": [ { "address": "127.0.0.1:$CPM_PORT",
                "tls": { "certificate": "cert.pem", "key": "key.pem" $tls } },
              "127.0.0.1:$PLAIN_PORT" ],
  "workers": 2,
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member "$top") $top
  "routes": [ { "prefix": "/", "backend": "examples" } ],
  "backends": { "examples": { "type": "cgi", "root": "$ROOT/examples" } }
}
JSON
}

# use_cert NAME [KEY]: $PKI/NAME.pem and NAME.key (or KEY.key) become the
# test's cert.pem and key.pem, each replaced at once (rename)
use_cert() {
	cp "$PKI/$1.pem" "$BATS_TEST_TMPDIR/cert.pem.new"
	cp "$PKI/${2:-$1}.key" "$BATS_TEST_TMPDIR/key.pem.new"
	mv "$BATS_TEST_TMPDIR/cert.pem.new" "$BATS_TEST_TMPDIR/cert.pem"
	mv "$BATS_TEST_TMPDIR/key.pem.new" "$BATS_TEST_TMPDIR/key.pem"
}

@test "HUP with a renewed certificate under load: the next connections get the new serial, no request fails" {
	use_cert a
	tls_config
	cpm_start
	serial_is "$CPM_PORT" 1001
	stop=$BATS_TEST_TMPDIR/stop
	tls_load "$CPM_PORT" "$PKI/ca.pem" /hello.sh "$stop" 20 >"$BATS_TEST_TMPDIR/load.json" 2>&1 3>&- &
	load=$!
	sleep 0.7
	use_cert a2
	kill -HUP "$CPM_PID"
	within 5 grep -q "reloaded " "$CPM_LOG"
	within 5 serial_is "$CPM_PORT" 1002
	# from then on every new connection gets it
	local i
	for i in 1 2 3 4 5; do
		serial_is "$CPM_PORT" 1002
	done
	sleep 0.7
	touch "$stop"
	wait "$load"
	run cat "$BATS_TEST_TMPDIR/load.json"
	echo "$output"
	assert_equal "$(jq .failed <<<"$output")" 0
	[ "$(jq .ok <<<"$output")" -ge 50 ]
	# both certificates were seen by the loop's new connections
	[ "$(jq '.fresh_serials["1001"]' <<<"$output")" -ge 5 ]
	[ "$(jq '.fresh_serials["1002"]' <<<"$output")" -ge 5 ]
	run grep -c "reload failed" "$CPM_LOG"
	assert_output 0
}

@test "HUP with a key that does not match: the old certificate is still served, the error names the key file" {
	use_cert a
	tls_config
	cpm_start
	before=$(workers_of "$CPM_PID" | sort)
	use_cert a2 a # the new certificate, the old key
	kill -HUP "$CPM_PID"
	within 5 grep -q "reload failed" "$CPM_LOG"
	run grep "reload failed" "$CPM_LOG"
	assert_output --regexp "reload failed, keeping the running configuration: $BATS_TEST_TMPDIR/cpm.json:[0-9]+:[0-9]+: listen\[0\]\.tls\.(key|certificate): $BATS_TEST_TMPDIR/key\.pem: "
	serial_is "$CPM_PORT" 1001
	run curl -sS --cacert "$PKI/ca.pem" "https://localhost:$CPM_PORT/hello.sh"
	assert_output "Hello, world!"
	assert_equal "$(workers_of "$CPM_PID" | sort)" "$before"
	# a missing key file: the same
	rm "$BATS_TEST_TMPDIR/key.pem"
	kill -HUP "$CPM_PID"
	within 5 eval '[ "$(grep -c "reload failed" "$CPM_LOG")" = 2 ]'
	run grep "reload failed" "$CPM_LOG"
	assert_line --index 1 --regexp "listen\[0\]\.tls\.key: $BATS_TEST_TMPDIR/key\.pem: .*No such file or directory"
	serial_is "$CPM_PORT" 1001
	run grep -c "reloaded " "$CPM_LOG"
	assert_output 0
}

@test "HUP turns a plain listener into a TLS one on the same address, and back" {
	use_cert a
	CPM_PORT=$(free_port)
	plain_config() {
		cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{ "listen": [ $1 ], "workers": 2, $(user_member)
  "access_log": "$BATS_TEST_TMPDIR/access.log", "error_log": "$BATS_TEST_TMPDIR/error.log",
  "routes": [ { "prefix": "/", "backend": "examples" } ],
  "backends": { "examples": { "type": "cgi", "root": "$ROOT/examples" } } }
JSON
	}
	local tls="{ \"address\": \"127.0.0.1:$CPM_PORT\", \"tls\": { \"certificate\": \"cert.pem\", \"key\": \"key.pem\" } }"
	plain_config "\"127.0.0.1:$CPM_PORT\""
	cpm_start
	run curl -sS "http://127.0.0.1:$CPM_PORT/hello.sh"
	assert_output "Hello, world!"
	plain_config "$tls"
	kill -HUP "$CPM_PID"
	within 5 eval '[ "$(grep -c "reloaded " "$CPM_LOG")" = 1 ]'
	within 5 eval '[ "$(curl -sS --cacert "$PKI/ca.pem" "https://localhost:$CPM_PORT/hello.sh")" = "Hello, world!" ]'
	run curl -sS "http://127.0.0.1:$CPM_PORT/hello.sh"
	assert_output --partial "plain HTTP request was sent to an HTTPS port"
	plain_config "\"127.0.0.1:$CPM_PORT\""
	kill -HUP "$CPM_PID"
	within 5 eval '[ "$(grep -c "reloaded " "$CPM_LOG")" = 2 ]'
	within 5 eval '[ "$(curl -sS "http://127.0.0.1:$CPM_PORT/hello.sh")" = "Hello, world!" ]'
	run curl -sS --cacert "$PKI/ca.pem" "https://localhost:$CPM_PORT/hello.sh"
	assert_failure
}

@test "cpm -t: a key that does not match and a missing file are errors naming the file; an expired certificate is a warning with its date" {
	local c=$BATS_TEST_TMPDIR/cpm.json
	use_cert a
	tls_config
	run "$CPM" -t -c "$c"
	assert_success
	use_cert a other
	run "$CPM" -t -c "$c"
	assert_equal "$status" 1
	assert_line --regexp "^cpm: $c:[0-9]+:[0-9]+: listen\[0\]\.tls\.key: $BATS_TEST_TMPDIR/key\.pem: the key does not match the certificate $BATS_TEST_TMPDIR/cert\.pem$"
	rm "$BATS_TEST_TMPDIR/cert.pem"
	run "$CPM" -t -c "$c"
	assert_equal "$status" 1
	assert_line --regexp "^cpm: $c:[0-9]+:[0-9]+: listen\[0\]\.tls\.certificate: $BATS_TEST_TMPDIR/cert\.pem: .*No such file or directory"
	# a missing file in "certificates" (SNI)
	use_cert a
	tls_config '"certificates": [ { "certificate": "nosuch.pem", "key": "key.pem" } ]'
	run "$CPM" -t -c "$c"
	assert_equal "$status" 1
	assert_line --regexp "^cpm: $c:[0-9]+:[0-9]+: listen\[0\]\.tls\.certificates\[0\]\.certificate: $BATS_TEST_TMPDIR/nosuch\.pem: "
	# a key with a passphrase: an error at once, never a prompt (script
	# gives cpm a terminal OpenSSL could prompt on)
	tls_config
	use_cert a
	openssl pkey -in "$PKI/a.key" -aes256 -passout pass:secret -out "$BATS_TEST_TMPDIR/key.pem"
	run script -qec "timeout 5 $CPM -t -c $c" /dev/null </dev/null
	assert_equal "$status" 1
	assert_output --regexp "cpm: $c:[0-9]+:[0-9]+: listen\[0\]\.tls\.key: $BATS_TEST_TMPDIR/key\.pem: the key is encrypted"
	# expired in February 2025: a warning naming the file and the date
	tls_config
	use_cert expired a
	run "$CPM" -t -c "$c"
	assert_success
	assert_output --partial "$BATS_TEST_TMPDIR/cert.pem"
	assert_output --regexp "(Feb +1 00:00:00 2025|2025-02-01)"
	assert_output --partial "expired"
}

@test "a full chain is served whole; a chain out of order is a cpm -t error; a leaf without its intermediate a warning" {
	local c=$BATS_TEST_TMPDIR/cpm.json
	use_cert c-full c
	tls_config
	run "$CPM" -t -c "$c"
	assert_success
	cpm_start
	# the client has the root only: the server must send the intermediate
	run curl -sS --cacert "$PKI/ca.pem" "https://localhost:$CPM_PORT/hello.sh"
	assert_success
	assert_output "Hello, world!"
	run openssl s_client -connect "127.0.0.1:$CPM_PORT" -servername localhost -showcerts </dev/null
	assert_equal "$(grep -c 'BEGIN CERTIFICATE' <<<"$output")" 2
	cpm_stop
	# the intermediate first, the leaf after it
	cat "$PKI/int.pem" "$PKI/c.pem" >"$BATS_TEST_TMPDIR/cert.pem"
	run "$CPM" -t -c "$c"
	assert_equal "$status" 1
	assert_line --regexp "^cpm: $c:[0-9]+:[0-9]+: listen\[0\]\.tls\.(certificate|key): $BATS_TEST_TMPDIR/cert\.pem: .*not issued by"
	# the leaf alone: cpm cannot tell a missing intermediate from a
	# private CA, so it warns, naming the issuer
	use_cert c
	run "$CPM" -t -c "$c"
	assert_success
	assert_output --partial "$BATS_TEST_TMPDIR/cert.pem: the chain ends with an issuer (/CN=cpm test intermediate) that is not among this machine's trusted CAs"
	# the leaf and the root: a complete chain, no warning
	cat "$PKI/a.pem" "$PKI/ca.pem" >"$BATS_TEST_TMPDIR/cert.pem"
	cp "$PKI/a.key" "$BATS_TEST_TMPDIR/key.pem"
	run "$CPM" -t -c "$c"
	assert_success
	refute_output --partial "trusted CAs"
}

@test "protocols, ciphers and ciphersuites are what the listener negotiates" {
	use_cert a
	tls_config '"protocols": ["TLSv1.3"], "ciphersuites": "TLS_CHACHA20_POLY1305_SHA256"'
	cpm_start
	run curl -sS -v --cacert "$PKI/ca.pem" --tls-max 1.2 "https://localhost:$CPM_PORT/hello.sh"
	assert_failure
	run curl -sS -v --cacert "$PKI/ca.pem" "https://localhost:$CPM_PORT/hello.sh"
	assert_success
	assert_line "* SSL connection using TLSv1.3 / TLS_CHACHA20_POLY1305_SHA256"
	cpm_stop
	tls_config '"protocols": ["TLSv1.2"], "ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256"'
	cpm_start
	run curl -sS -v --cacert "$PKI/ca.pem" --tlsv1.3 "https://localhost:$CPM_PORT/hello.sh"
	assert_failure
	run curl -sS -v --cacert "$PKI/ca.pem" "https://localhost:$CPM_PORT/hello.sh"
	assert_success
	assert_line "* SSL connection using TLSv1.2 / ECDHE-ECDSA-AES128-GCM-SHA256"
	cpm_stop
	# older versions are not accepted in the configuration
	tls_config '"protocols": ["TLSv1.1", "TLSv1.2"]'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_equal "$status" 1
	assert_line --regexp "listen\[0\]\.tls\.protocols\[0\]: expected \"TLSv1\.2\" or \"TLSv1\.3\""
	# a cipher list OpenSSL knows nothing of
	tls_config '"ciphers": "NO-SUCH-CIPHER"'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_equal "$status" 1
	assert_line --regexp "listen\[0\]\.tls"
}

@test "names: explicit server names and a wildcard choose a certificate; a bad name is a cpm -t error" {
	use_cert a
	cp "$PKI/b.pem" "$PKI/b.key" "$BATS_TEST_TMPDIR/"
	tls_config '"certificates": [ { "certificate": "b.pem", "key": "b.key", "names": ["alias.test", "*.wild.test"] } ]'
	cpm_start
	assert_equal "$(presented "$CPM_PORT" alias.test)" "serial=2001 subject=CN=b.test"
	assert_equal "$(presented "$CPM_PORT" x.wild.test)" "serial=2001 subject=CN=b.test"
	# a wildcard is one label: neither the bare name nor two labels
	assert_equal "$(presented "$CPM_PORT" wild.test)" "serial=1001 subject=CN=localhost"
	assert_equal "$(presented "$CPM_PORT" a.b.wild.test)" "serial=1001 subject=CN=localhost"
	# names are case-insensitive
	assert_equal "$(presented "$CPM_PORT" ALIAS.Test)" "serial=2001 subject=CN=b.test"
	cpm_stop
	tls_config '"certificates": [ { "certificate": "b.pem", "key": "b.key", "names": ["a*.test"] } ]'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_equal "$status" 1
	assert_line --regexp "listen\[0\]\.tls\.certificates\[0\]\.names\[0\]: expected a server name"
}

@test "redirect_http: 308 to the https URL (the first TLS listener's port, or the origin given), a POST's body skipped" {
	use_cert a
	CPM_PORT=$(free_port)
	local r1 r2
	r1=$(free_port)
	r2=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": [ "127.0.0.1:$r1" ,
              { "address": "127.0.0.1:$r2", "redirect_http": "https://example.org:8443" },
              { "address": "127.0.0.1:$CPM_PORT", "tls": { "certificate": "cert.pem", "key": "key.pem" } },
              { "address": "[::1]:$r1", "redirect_http": true } ],
  "workers": 1,
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member)
  "routes": [ { "prefix": "/", "backend": "examples" } ],
  "backends": { "examples": { "type": "cgi", "root": "$ROOT/examples" } }
}
JSON
	sed -i "s|\"127.0.0.1:$r1\" ,|{ \"address\": \"127.0.0.1:$r1\", \"redirect_http\": true },|" "$BATS_TEST_TMPDIR/cpm.json"
	cpm_start
	run curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$r1/hello.sh?a=1&b=%20"
	assert_output "308 https://127.0.0.1:$CPM_PORT/hello.sh?a=1&b=%20"
	run curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H "Host: www.example.org:$r1" "http://127.0.0.1:$r1/x/"
	assert_output "308 https://www.example.org:$CPM_PORT/x/"
	run curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$r2/p?q"
	assert_output "308 https://example.org:8443/p?q"
	if python3 -c "import socket; socket.create_connection(('::1', $r1), 1)" 2>/dev/null; then
		run curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "http://[::1]:$r1/v6"
		assert_output "308 https://[::1]:$CPM_PORT/v6"
	fi
	# following it lands on the TLS listener
	run curl -sS -L --cacert "$PKI/ca.pem" "http://localhost:$r1/hello.sh"
	assert_output "Hello, world!"
	# a POST with a body, then a GET on the same connection: the body is
	# not taken for the next request
	run raw_http "$r1" 'POST /form.sh HTTP/1.1\r\nHost: h\r\nContent-Length: 30\r\n\r\nGET /evil HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n' 3
	assert_line --index 0 --regexp '^HTTP/1\.1 308 '
	refute_output --partial "/evil"
	assert_equal "${lines[-1]}" "<EOF>"
	local n
	n=$(grep -c '^HTTP/1\.1 ' <<<"$output")
	if [ "$n" = 2 ]; then
		assert_output --partial "Location: https://h:$CPM_PORT/second"
	else
		# or the connection closed after the first answer
		assert_equal "$n" 1
		assert_output --partial "Connection: close"
	fi
	# a redirect on a TLS listener is a configuration error
	sed -i "s|\"tls\": { \"certificate\"|\"redirect_http\": true, &|" "$BATS_TEST_TMPDIR/cpm.json"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_equal "$status" 1
	assert_output --partial "redirect_http is for a plain listener"
}

@test "session resumption across workers and across a HUP: TLS 1.2 and 1.3 tickets and the TLS 1.2 session cache" {
	use_cert a
	# max_connections 1: a worker holding a connection accepts no other,
	# so the test can choose which worker a connection reaches
	tls_config "" '"max_connections": 1'
	cpm_start
	within 5 eval '[ "$(workers_of "$CPM_PID" | wc -l)" -eq 2 ]'
	run python3 - "$CPM_PORT" "$PKI/ca.pem" "$CPM_PID" "$CPM_LOG" <<'PY'
import os, re, signal, socket, ssl, subprocess, sys, time
port, ca, master, log = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]

def worker_of(sock):
    # the process holding the server end of this connection
    lport = sock.getsockname()[1]
    out = subprocess.run(["ss", "-tnpH", "state", "established",
                          "( sport = :%d and dport = :%d )" % (port, lport)],
                         capture_output=True, text=True).stdout
    m = re.search(r"pid=(\d+)", out)
    return m.group(1) if m else "?"

def get(ctx, session=None):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 3), server_hostname="localhost",
                        session=session)
    s.sendall(b"GET /hello.sh HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while b"0\r\n\r\n" not in data:
        d = s.recv(4096)
        if not d:
            break
        data += d
    if not data.startswith(b"HTTP/1.1 200 "):
        raise Exception("no 200: %r" % data[:80])
    return s

kept = []
for name, version, tickets in (("TLSv1.2-tickets", ssl.TLSVersion.TLSv1_2, True),
                               ("TLSv1.2-session-cache", ssl.TLSVersion.TLSv1_2, False),
                               ("TLSv1.3-tickets", ssl.TLSVersion.TLSv1_3, True)):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ctx.maximum_version = version
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    for i in range(3):
        hold = get(ctx)
        first = get(ctx)  # on the other worker
        sess = first.session
        hold.close()
        time.sleep(0.1)
        again = get(ctx, sess)  # first's worker is full: on hold's
        print(name, "made-by", worker_of(first), "resumed-by", worker_of(again),
              "reused" if again.session_reused else "full-handshake")
        again.close()
        first.close()
        time.sleep(0.1)
    kept.append((name, ctx, sess))

# the keys and the cache outlive a reload: the new workers resume too
os.kill(master, signal.SIGHUP)
end = time.time() + 5
while "reloaded " not in open(log).read() and time.time() < end:
    time.sleep(0.05)
time.sleep(0.3)
for name, ctx, sess in kept:
    s = get(ctx, sess)
    print(name, "after-HUP", worker_of(s), "-", "reused" if s.session_reused else "full-handshake")
    s.close()
PY
	echo "$output"
	assert_success
	[ "${#lines[@]}" -eq 12 ]
	local name made w1 resumed w2 how
	while read -r name made w1 resumed w2 how; do
		# two different workers (of the first generation)
		[ "$w1" != "$w2" ]
	done < <(grep made-by <<<"$output")
	# after the HUP: served by a worker of the new generation
	local now
	now=$(workers_of "$CPM_PID")
	while read -r name made w1 resumed how; do
		grep -qx "$w1" <<<"$now"
		if grep -q "made-by $w1 \|resumed-by $w1 " <<<"$output"; then
			echo "worker $w1 is of the first generation" >&2
			return 1
		fi
	done < <(grep after-HUP <<<"$output")
	assert_equal "$(grep -c ' reused$' <<<"$output")" 12
}

@test "session_timeout is the ticket lifetime (1 day by default); session_tickets false issues none" {
	use_cert a
	tls_config
	cpm_start
	run openssl s_client -connect "127.0.0.1:$CPM_PORT" -tls1_2 </dev/null
	assert_success
	assert_line --partial "TLS session ticket lifetime hint: 86400 (seconds)"
	cpm_stop
	tls_config '"session_timeout": "5m"'
	cpm_start
	run openssl s_client -connect "127.0.0.1:$CPM_PORT" -tls1_2 </dev/null
	assert_success
	assert_line --partial "TLS session ticket lifetime hint: 300 (seconds)"
	cpm_stop
	tls_config '"session_tickets": false'
	cpm_start
	run openssl s_client -connect "127.0.0.1:$CPM_PORT" -tls1_2 </dev/null
	assert_success
	assert_line --regexp '^ +Protocol +: TLSv1\.2$'
	refute_output --partial "TLS session ticket"
}

@test "access log: \$scheme, \$ssl_protocol, \$ssl_cipher, \$ssl_server_name, \$ssl_session_reused; json has scheme and ssl_*" {
	use_cert a
	tls_config "" '"access_log_format": "$scheme|$ssl_protocol|$ssl_cipher|$ssl_server_name|$ssl_session_reused|$request"'
	cpm_start
	curl -sS --cacert "$PKI/ca.pem" --tlsv1.3 "https://localhost:$CPM_PORT/hello.sh" >/dev/null
	curl -sS "http://127.0.0.1:$PLAIN_PORT/hello.sh" >/dev/null
	# a resumed TLS 1.2 session, no SNI
	openssl s_client -connect "127.0.0.1:$CPM_PORT" -tls1_2 -sess_out "$BATS_TEST_TMPDIR/sess" </dev/null >/dev/null 2>&1
	printf 'GET /hello.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
		openssl s_client -connect "127.0.0.1:$CPM_PORT" -tls1_2 -noservername -ign_eof -quiet \
			-sess_in "$BATS_TEST_TMPDIR/sess" >/dev/null 2>&1
	within 3 eval '[ "$(wc -l <"$BATS_TEST_TMPDIR/access.log")" -ge 3 ]'
	run cat "$BATS_TEST_TMPDIR/access.log"
	assert_line --regexp '^https\|TLSv1\.3\|TLS_[A-Z0-9_]+\|localhost\|\.\|GET /hello\.sh HTTP/1\.1$'
	assert_line --regexp '^http\|-\|-\|-\|-\|GET /hello\.sh HTTP/1\.1$'
	assert_line --regexp '^https\|TLSv1\.2\|ECDHE-ECDSA-[A-Z0-9-]+\|-\|r\|GET /hello\.sh HTTP/1\.1$'
	cpm_stop
	: >"$BATS_TEST_TMPDIR/access.log"
	tls_config "" '"access_log_format": "json"'
	cpm_start
	curl -sS --cacert "$PKI/ca.pem" --tlsv1.3 "https://localhost:$CPM_PORT/hello.sh" >/dev/null
	within 3 test -s "$BATS_TEST_TMPDIR/access.log"
	run jq -r '"\(.scheme) \(.ssl_protocol) \(.ssl_cipher)"' "$BATS_TEST_TMPDIR/access.log"
	assert_output --regexp '^https TLSv1\.3 TLS_[A-Z0-9_]+$'
}

@test "a key readable by root only, workers as nobody: the master loads it, https works" {
	[ "$(id -u)" = 0 ] || skip "needs root (to run the workers as nobody)"
	local top
	top=$(mktemp -d /tmp/cpm-tls.XXXXXX)
	chmod 0755 "$top"
	mkdir "$top/cgi" "$top/tls"
	printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho "uid=$(id -u)"\n' >"$top/cgi/id.sh"
	chmod 0755 "$top/cgi/id.sh"
	cp "$PKI/a.pem" "$top/tls/cert.pem"
	cp "$PKI/a.key" "$top/tls/key.pem"
	chown root:root "$top/tls/key.pem"
	chmod 0600 "$top/tls/key.pem"
	chmod 0700 "$top/tls"
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": [ { "address": "127.0.0.1:$CPM_PORT",
                "tls": { "certificate": "$top/tls/cert.pem", "key": "$top/tls/key.pem" } } ],
  "workers": 2,
  "access_log": "$top/access.log",
  "error_log": "$top/error.log",
  "routes": [ { "prefix": "/", "backend": "cgi" } ],
  "backends": { "cgi": { "type": "cgi", "root": "$top/cgi" } }
}
JSON
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_success
	cpm_start
	CPM_LOG=$top/error.log
	run curl -sS --cacert "$PKI/ca.pem" "https://localhost:$CPM_PORT/id.sh"
	assert_success
	assert_output "uid=$(id -u nobody)"
	local w
	for w in $(workers_of "$CPM_PID"); do
		assert_equal "$(ps -o user= -p "$w")" nobody
		# no worker holds the key file open
		run ls -l "/proc/$w/fd"
		refute_output --partial "$top/tls/key.pem"
	done
	# a HUP reloads it the same way
	kill -HUP "$CPM_PID"
	within 5 grep -q "reloaded " "$top/error.log"
	run curl -sS --cacert "$PKI/ca.pem" "https://localhost:$CPM_PORT/id.sh"
	assert_output "uid=$(id -u nobody)"
	cpm_stop
	cp "$top/error.log" "$BATS_TEST_TMPDIR/error.log" # for teardown's checks
	rm -rf "$top"
}

@test "USR2 upgrade: the new master serves the TLS listener with the same certificate" {
	use_cert a
	PF=$BATS_TEST_TMPDIR/cpm.pid
	tls_config "" "\"pidfile\": \"$PF\""
	CPM_LOG=$BATS_TEST_TMPDIR/error.log
	"$CPM" -c "$BATS_TEST_TMPDIR/cpm.json" >>"$BATS_TEST_TMPDIR/stderr.log" 2>&1 3>&- &
	CPM_PID=$!
	within 5 serial_is "$CPM_PORT" 1001
	old=$CPM_PID
	kill -USR2 "$old"
	new_master() { NEW=$(cat "$PF" 2>/dev/null) && [ -n "$NEW" ] && [ "$NEW" != "$old" ] &&
		[ "$(workers_of "$NEW" | wc -l)" -eq 2 ]; }
	within 5 new_master
	kill -WINCH "$old"
	within 5 eval '[ -z "$(workers_of "$old")" ]'
	kill -QUIT "$old"
	wait_exit "$old" 5
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=$NEW # not our child: helpers_teardown stops it by pid
	run curl -sS --cacert "$PKI/ca.pem" "https://localhost:$CPM_PORT/env.pl"
	assert_success
	assert_line "HTTPS=on"
	serial_is "$CPM_PORT" 1001
	run curl -sS "http://127.0.0.1:$PLAIN_PORT/hello.sh"
	assert_output "Hello, world!"
}

# ---- a TLS scanner ----

@test "testssl.sh finds nothing rated HIGH or CRITICAL" {
	command -v testssl >/dev/null || {
		echo "testssl is missing: install testssl.sh" >&2
		return 1
	}
	pki_scanner_cert "$PKI"
	use_cert t
	tls_config
	cpm_start
	local json=$BATS_TEST_TMPDIR/testssl.json
	run testssl --quiet --color 0 --warnings off --add-ca "$PKI/ca.pem" --jsonfile "$json" \
		-p -s -P -S -U --ip 127.0.0.1 "https://localhost:$CPM_PORT/hello.sh"
	echo "$output" >"$BATS_TEST_TMPDIR/testssl.txt"
	[ -s "$json" ]
	run jq -r '.[] | select(.severity == "HIGH" or .severity == "CRITICAL") | "\(.severity) \(.id): \(.finding)"' "$json"
	echo "$output"
	assert_output ""
	# what was run: the protocols, ciphers and vulnerabilities were tested
	run jq -r '.[].id' "$json"
	assert_line TLS1_1
	assert_line TLS1_3
	assert_line heartbleed
	assert_line secure_client_renego
	assert_line cert_chain_of_trust
}
