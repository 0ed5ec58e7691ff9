#!/usr/bin/env bats
# The fastcgi backend against real FastCGI servers: the libfcgi apps of
# t/apps-fcgi run under spawn-fcgi, and t/apps-fcgi/fake.py for the
# END_REQUEST statuses libfcgi cannot send.
load helpers

FCGI_APPS="echo big slow stderr crash"

setup_file() {
	command -v spawn-fcgi >/dev/null || {
		echo "spawn-fcgi is missing: install spawn-fcgi" >&2
		return 1
	}
	build_fcgi_apps $FCGI_APPS
}

setup() {
	FCGI_PIDS=()
	# unix socket paths are limited to 108 bytes: keep them short
	SOCKDIR=$(mktemp -d /tmp/cpm-fcgi.XXXXXX)
}

# the teardown of helpers.bash, kept as helpers_teardown
eval "$(declare -f teardown | sed '1s/^teardown/helpers_teardown/')"

teardown() {
	local rc=0 p
	helpers_teardown || rc=1
	# every app started here dies with the test; spawn-fcgi -n execs the
	# app in its own process, so its pid is the app's
	for p in "${FCGI_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
		! kill -0 "$p" 2>/dev/null || { echo "FastCGI app $p survived" >&2; rc=1; }
	done
	rm -rf "$SOCKDIR"
	return $rc
}

# fcgi_unix APP: run APP under spawn-fcgi on a new unix socket; sets ADDR.
fcgi_unix() {
	local sock=$SOCKDIR/$1.${#FCGI_PIDS[@]}.sock
	spawn-fcgi -n -s "$sock" -- "$BATS_FILE_TMPDIR/$1" >>"$BATS_TEST_TMPDIR/spawn.log" 2>&1 3>&- &
	FCGI_PIDS+=($!)
	ADDR=unix:$sock
	local i
	for i in $(seq 100); do
		[ -S "$sock" ] && return 0
		sleep 0.05
	done
	echo "spawn-fcgi did not create $sock" >&2
	cat "$BATS_TEST_TMPDIR/spawn.log" >&2
	return 1
}

# fcgi_tcp APP: the same on a free TCP port of 127.0.0.1; sets ADDR.
fcgi_tcp() {
	local port
	port=$(free_port)
	spawn-fcgi -n -a 127.0.0.1 -p "$port" -- "$BATS_FILE_TMPDIR/$1" >>"$BATS_TEST_TMPDIR/spawn.log" 2>&1 3>&- &
	FCGI_PIDS+=($!)
	ADDR=127.0.0.1:$port
	local i
	for i in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "spawn-fcgi did not listen on $port" >&2
	cat "$BATS_TEST_TMPDIR/spawn.log" >&2
	return 1
}

# fake_fcgi MODE [LOG]: t/apps-fcgi/fake.py on a new unix socket; sets ADDR.
fake_fcgi() {
	local sock=$SOCKDIR/fake.${#FCGI_PIDS[@]}.sock
	python3 "$ROOT/t/apps-fcgi/fake.py" "$sock" "$@" >>"$BATS_TEST_TMPDIR/spawn.log" 2>&1 3>&- &
	FCGI_PIDS+=($!)
	ADDR=unix:$sock
	local i
	for i in $(seq 100); do
		[ -S "$sock" ] && return 0
		sleep 0.05
	done
	echo "fake.py did not create $sock" >&2
	return 1
}

# fcgi_config 'BACKEND MEMBERS' [PREFIX]: cpm.json routing PREFIX (default
# /app) to the fastcgi backend "php" with those members besides the type.
fcgi_config() {
	CPM_PORT=${CPM_PORT:-$(free_port)}
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": ${CPM_WORKERS:-2},
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member)
  "routes": [ { "prefix": "${2:-/app}", "backend": "php" } ],
  "backends": {
    "php": { "type": "fastcgi", $1 }
  }
}
JSON
}

# a refused TCP address: a port nobody listens on
dead_tcp() {
	echo "127.0.0.1:$(free_port)"
}

@test "GET through a fastcgi backend with a fixed script" {
	fcgi_unix echo
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/app.php\""
	cpm_start
	run curl -si "$(url /app)"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line --regexp '^Content-Type: text/plain'
	assert_line --regexp '^Server: cpm/'
	assert_line "GATEWAY_INTERFACE=CGI/1.1"
	assert_line "REQUEST_METHOD=GET"
	assert_line "body-length=0"
}

@test "script mode: SCRIPT_NAME is the route prefix, PATH_INFO the rest, SCRIPT_FILENAME fixed" {
	fcgi_unix echo
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/app.php\""
	cpm_start
	run curl -s "$(url '/app/a/b%20c?x=%41&y')"
	assert_line "SCRIPT_NAME=/app"
	assert_line "PATH_INFO=/a/b c"
	assert_line "QUERY_STRING=x=%41&y"
	assert_line "SCRIPT_FILENAME=/srv/www/app.php"
	assert_line "REQUEST_URI=/app/a/b%20c?x=%41&y"
	run curl -s "$(url /app)"
	assert_line "SCRIPT_NAME=/app"
	assert_line "PATH_INFO="
	assert_line "QUERY_STRING="
	refute_line --partial "PATH_TRANSLATED="
}

@test "the app gets the RFC 3875 variables, env, pass_env and path" {
	export CPM_TEST_PASSED=from-outside
	fcgi_unix echo
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/app.php\", \"env\": {\"APP_MODE\": \"test\"},
		\"pass_env\": [\"CPM_TEST_PASSED\"], \"path\": \"/opt/bin:/bin\""
	cpm_start
	run curl -s -H 'Content-Type: text/x-test' -u user:pw --data 'abc' "$(url /app/extra?a=b)"
	for v in GATEWAY_INTERFACE=CGI/1.1 "SERVER_SOFTWARE=cpm/" SERVER_NAME=127.0.0.1 "SERVER_PORT=$CPM_PORT" \
		SERVER_PROTOCOL=HTTP/1.1 REQUEST_METHOD=POST REMOTE_ADDR=127.0.0.1 "REMOTE_PORT=" \
		CONTENT_TYPE=text/x-test CONTENT_LENGTH=3 AUTH_TYPE=Basic; do
		assert_line --partial "$v"
	done
	assert_line "APP_MODE=test"
	assert_line "CPM_TEST_PASSED=from-outside"
	assert_line "PATH=/opt/bin:/bin"
	assert_line "body-length=3"
	# pass_authorization is on by default for fastcgi (as nginx, for php-fpm)
	assert_line "HTTP_AUTHORIZATION=Basic dXNlcjpwdw=="
}

@test "root mode splits the path at the first regular file, executable or not" {
	root=$BATS_TEST_TMPDIR/www
	mkdir -p "$root/sub/dir"
	echo '<?php' >"$root/sub/page.php"
	echo '<?php' >"$root/sub/index.php"
	chmod 644 "$root/sub/page.php" "$root/sub/index.php"
	root=$(realpath "$root")
	fcgi_unix echo
	fcgi_config "\"address\": \"$ADDR\", \"root\": \"$root\", \"index\": [\"index.php\"]" /php
	cpm_start
	run curl -s "$(url '/php/sub/page.php/x/y?q=1')"
	assert_line "SCRIPT_NAME=/php/sub/page.php"
	assert_line "PATH_INFO=/x/y"
	assert_line "PATH_TRANSLATED=$root/x/y"
	assert_line "SCRIPT_FILENAME=$root/sub/page.php"
	assert_line "DOCUMENT_ROOT=$root"
	assert_line "QUERY_STRING=q=1"
	run curl -s "$(url /php/sub/)"
	assert_line "SCRIPT_NAME=/php/sub/index.php"
	assert_line "SCRIPT_FILENAME=$root/sub/index.php"
	assert_line "PATH_INFO="
	run curl -s -o /dev/null -w '%{http_code}' "$(url /php/sub/nope.php)"
	assert_output 404
	run curl -s -o /dev/null -w '%{http_code}' "$(url /php/sub/dir/)"
	assert_output 404
	run curl -s -o /dev/null -w '%{http_code}' "$(url /php/sub/%2e%2e/%2e%2e/etc/passwd)"
	assert_output 404
}

@test "root mode: the root directory itself gets its index file" {
	root=$BATS_TEST_TMPDIR/www
	mkdir -p "$root/sub/dir"
	echo '<?php' >"$root/index.php"
	root=$(realpath "$root")
	fcgi_unix echo
	fcgi_config "\"address\": \"$ADDR\", \"root\": \"$root\", \"index\": [\"index.php\"]" /php
	cpm_start
	for _ in 1 2 3 4; do
		run curl -s "$(url /php/)"
		assert_line "SCRIPT_FILENAME=$root/index.php"
		assert_line "PATH_INFO="
	done
}

@test "script and root together: script is SCRIPT_FILENAME, root only DOCUMENT_ROOT" {
	root=$(realpath "$BATS_TEST_TMPDIR")
	fcgi_unix echo
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/app.php\", \"root\": \"$root\""
	cpm_start
	run curl -s "$(url /app/not/a/file)"
	assert_line "SCRIPT_FILENAME=/srv/www/app.php"
	assert_line "SCRIPT_NAME=/app"
	assert_line "PATH_INFO=/not/a/file"
	assert_line "DOCUMENT_ROOT=$root"
}

@test "a 1 MB POST body arrives intact" {
	head -c 1048576 /dev/urandom >"$BATS_TEST_TMPDIR/body"
	want=$(sha256sum <"$BATS_TEST_TMPDIR/body" | cut -d' ' -f1)
	fcgi_unix echo
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/app.php\""
	cpm_start
	run curl -s --data-binary @"$BATS_TEST_TMPDIR/body" "$(url /app)"
	assert_line "CONTENT_LENGTH=1048576"
	assert_line "body-length=1048576"
	assert_line "body-sha256=$want"
}

@test "a chunked request body held in memory arrives intact with its CONTENT_LENGTH" {
	head -c 30000 /dev/urandom >"$BATS_TEST_TMPDIR/body"
	want=$(sha256sum <"$BATS_TEST_TMPDIR/body" | cut -d' ' -f1)
	fcgi_unix echo
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/app.php\""
	cpm_start
	run curl -s -H 'Transfer-Encoding: chunked' --data-binary @"$BATS_TEST_TMPDIR/body" "$(url /app)"
	assert_line "CONTENT_LENGTH=30000"
	assert_line "body-length=30000"
	assert_line "body-sha256=$want"
}

@test "a chunked request body spooled to a file (over body_buffer) arrives intact" {
	head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/body"
	want=$(sha256sum <"$BATS_TEST_TMPDIR/body" | cut -d' ' -f1)
	fcgi_unix echo
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/app.php\""
	cpm_start
	run curl -s -H 'Transfer-Encoding: chunked' --data-binary @"$BATS_TEST_TMPDIR/body" "$(url /app)"
	assert_line "CONTENT_LENGTH=300000"
	assert_line "body-length=300000"
	assert_line "body-sha256=$want"
}

@test "a 10 MB response arrives intact" {
	fcgi_unix big
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/big\""
	cpm_start
	want=$(head -c 10485760 /dev/zero | tr '\0' a | sha256sum)
	run bash -c "curl -s '$(url /app)' | sha256sum"
	assert_output "$want"
	# a slower reader: cpm stops reading from the app while the client lags
	run bash -c "curl -s --limit-rate 20M '$(url /app)' | sha256sum"
	assert_output "$want"
}

@test "a TCP address works like a unix one" {
	fcgi_tcp echo
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/app.php\""
	cpm_start
	run curl -s "$(url /app/tcp)"
	assert_line "PATH_INFO=/tcp"
}

@test "addresses are used round-robin" {
	fcgi_unix echo
	a=$ADDR
	fcgi_tcp echo
	b=$ADDR
	CPM_WORKERS=1 fcgi_config "\"address\": [\"$a\", \"$b\"], \"script\": \"/srv/www/app.php\""
	cpm_start
	for _ in 1 2 3 4; do
		curl -s "$(url /app)" | grep '^app-pid='
	done >"$BATS_TEST_TMPDIR/pids"
	run sort -u "$BATS_TEST_TMPDIR/pids"
	assert_equal "${#lines[@]}" 2
}

@test "failover: a refused address is skipped and the next one answers" {
	fcgi_unix echo
	CPM_WORKERS=1 fcgi_config "\"address\": [\"$(dead_tcp)\", \"unix:$SOCKDIR/missing.sock\", \"$ADDR\"],
		\"script\": \"/srv/www/app.php\""
	cpm_start
	for _ in 1 2 3 4 5 6; do
		run curl -s -o /dev/null -w '%{http_code}' "$(url /app)"
		assert_output 200
	done
	grep -qE "fastcgi php: connect 127\.0\.0\.1:[0-9]+: Connection refused" "$CPM_LOG"
	grep -q "fastcgi php: connect unix:$SOCKDIR/missing.sock: No such file or directory" "$CPM_LOG"
}

@test "all addresses refuse: 502" {
	fcgi_config "\"address\": [\"$(dead_tcp)\", \"unix:$SOCKDIR/missing.sock\"], \"script\": \"/srv/www/app.php\""
	cpm_start
	run curl -s -o /dev/null -w '%{http_code}' "$(url /app)"
	assert_output 502
	grep -q "fastcgi php.*no address accepts connections" "$CPM_LOG"
}

@test "the app exits before answering: 502" {
	fcgi_unix crash
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/crash\""
	cpm_start
	run curl -s -o /dev/null -w '%{http_code}' "$(url '/app?early')"
	assert_output 502
	grep -q "fastcgi php (unix:$SOCKDIR/.*): connection closed before END_REQUEST" "$CPM_LOG"
}

@test "the app exits after its header: the response is cut, never complete" {
	fcgi_unix crash
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/crash\""
	cpm_start
	run curl -s "$(url /app)"
	assert_equal "$status" 18 # partial file: no last chunk
	assert_output --partial partial
}

@test "stderr lines reach the error log as fastcgi NAME id=ID: LINE" {
	fcgi_unix stderr
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/stderr\""
	cpm_start
	run curl -s "$(url /app)"
	assert_output ok
	sleep 0.2
	run cat "$CPM_LOG"
	assert_line --regexp '\[warn\] cpm\[[0-9]+\]: fastcgi php id=[0-9a-f]{32}: something went sideways in /app$'
}

@test "an app slower than timeout gets 504 after about timeout" {
	fcgi_unix slow
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/slow\", \"timeout\": 1"
	cpm_start
	run curl -s -o /dev/null -w '%{http_code} %{time_total}' "$(url '/app?5')"
	assert_output --regexp '^504 1\.'
	grep -q "fastcgi php (unix:.*): timeout" "$CPM_LOG"
}

@test "an app within timeout answers" {
	fcgi_unix slow
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/slow\", \"timeout\": 3"
	cpm_start
	run curl -s "$(url '/app?1')"
	assert_output "slept 1"
}

@test "httpoxy: Proxy is not passed through FastCGI; names with underscores are dropped" {
	fcgi_unix echo
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/srv/www/app.php\""
	cpm_start
	run curl -s -H 'Proxy: http://evil:1' -H 'X_Forwarded_For: spoof' -H 'X-Forwarded-For: real' "$(url /app)"
	refute_line --partial HTTP_PROXY
	refute_line --partial evil
	assert_line "HTTP_X_FORWARDED_FOR=real"
	refute_line --partial spoof
}

@test "END_REQUEST overloaded or cannot multiplex: 503; unknown role: 502" {
	fake_fcgi overloaded
	over=$ADDR
	fake_fcgi cant_mpx
	mpx=$ADDR
	fake_fcgi unknown_role
	role=$ADDR
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member)
  "access_log": null,
  "routes": [ { "prefix": "/over", "backend": "over" }, { "prefix": "/mpx", "backend": "mpx" },
              { "prefix": "/role", "backend": "role" } ],
  "backends": {
    "over": { "type": "fastcgi", "address": "$over", "script": "/x" },
    "mpx": { "type": "fastcgi", "address": "$mpx", "script": "/x" },
    "role": { "type": "fastcgi", "address": "$role", "script": "/x" }
  }
}
JSON
	cpm_start
	run curl -s -o /dev/null -w '%{http_code}' "$(url /over)"
	assert_output 503
	run curl -s -o /dev/null -w '%{http_code}' "$(url /mpx)"
	assert_output 503
	run curl -s -o /dev/null -w '%{http_code}' "$(url /role)"
	assert_output 502
}

@test "a client that disconnects makes cpm close the app connection" {
	fake_fcgi hold "$BATS_TEST_TMPDIR/closed"
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/x\""
	cpm_start
	curl -s -m 1 "$(url /app)" || true
	sleep 0.5
	run cat "$BATS_TEST_TMPDIR/closed"
	assert_output closed
	grep -q "fastcgi php: client gone, aborting the request" "$CPM_LOG"
}

@test "cpm -t: a fastcgi backend needs an address and a script or a root" {
	CPM_PORT=1
	fcgi_config "\"script\": \"/x\""
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --partial 'backends.php: needs "command" (cpm runs the application) or "address" (it runs elsewhere)'
	fcgi_config "\"address\": \"unix:/run/x.sock\""
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --partial 'needs "script"'
	fcgi_config "\"address\": \"nowhere\", \"script\": \"/x\""
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --partial 'backends.php.address: expected'
	fcgi_config "\"address\": \"unix:/run/x.sock\", \"script\": \"x\""
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --partial 'backends.php.script: expected an absolute path'
	fcgi_config "\"address\": [\"unix:/run/x.sock\", \"127.0.0.1:9000\"], \"root\": \"/\", \"timeout\": \"5s\""
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_success
}

# established unix connections to socket $1 (ss shows the peer side too)
conns_to() {
	ss -xH state connected 2>/dev/null | grep -c -- " $1 " || true
}

@test "keep_conn: one connection carries a worker's requests; a connection the server closed is replaced" {
	fcgi_unix echo
	local sock=${ADDR#unix:}
	CPM_WORKERS=1
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/x\", \"keep_conn\": 1"
	cpm_start
	local i
	for i in 1 2 3 4 5; do
		run curl -s "$(url /app)"
		assert_line "REQUEST_METHOD=GET"
	done
	# one kept connection, open between requests
	assert_equal "$(conns_to "$sock")" 1
	# the server goes away and comes back on the same socket: the kept
	# connection is dead; the next request goes out on a new one
	kill -KILL "${FCGI_PIDS[0]}"
	wait "${FCGI_PIDS[0]}" 2>/dev/null || true
	rm -f "$sock"
	spawn-fcgi -n -s "$sock" -- "$BATS_FILE_TMPDIR/echo" >>"$BATS_TEST_TMPDIR/spawn.log" 2>&1 3>&- &
	FCGI_PIDS+=($!)
	for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
	run curl -s -w '%{http_code}' "$(url /app)"
	assert_line "REQUEST_METHOD=GET"
	assert_line --partial "200"
}

@test "without keep_conn no connection stays open between requests" {
	fcgi_unix echo
	CPM_WORKERS=1
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/x\""
	cpm_start
	run curl -s "$(url /app)"
	assert_line "REQUEST_METHOD=GET"
	sleep 0.2
	assert_equal "$(conns_to "${ADDR#unix:}")" 0
}

@test "keep_conn is for external servers only, and at most 1024" {
	CPM_PORT=1
	fcgi_config "\"command\": [\"/bin/true\"], \"keep_conn\": 1"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --partial 'backends.php.keep_conn: only for an external server (a pool always keeps its connections)'
	fcgi_config "\"address\": \"unix:/x.sock\", \"script\": \"/x\", \"keep_conn\": 2000"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --partial 'backends.php.keep_conn: expected an integer between 0 and 1024'
}

# awkward_fcgi: t/apps-fcgi/awkward.py on a new unix socket; sets ADDR.
awkward_fcgi() {
	local sock=$SOCKDIR/awkward.${#FCGI_PIDS[@]}.sock
	python3 "$ROOT/t/apps-fcgi/awkward.py" "$sock" >>"$BATS_TEST_TMPDIR/spawn.log" 2>&1 3>&- &
	FCGI_PIDS+=($!)
	ADDR=unix:$sock
	local i
	for i in $(seq 100); do
		[ -S "$sock" ] && return 0
		sleep 0.05
	done
	echo "awkward.py did not create $sock" >&2
	return 1
}

# split_check QUERY...: fetch /app?QUERY for each argument (h=, b= as
# awkward.py takes them) and print one line per response that is not a
# 200 with exactly the b bytes awkward.py sends, then "checked N"
split_check() {
	python3 - "$CPM_PORT" "$@" <<'PY'
import hashlib, http.client, sys
port, bad = int(sys.argv[1]), 0
for q in sys.argv[2:]:
    kv = dict(p.partition("=")[::2] for p in q.split("&"))
    want = bytes((i * 7 + 3) % 251 for i in range(int(kv.get("b", "0"))))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/app?" + q)
    r = c.getresponse()
    try:
        got = r.read()
    except http.client.IncompleteRead as e:
        got = e.partial + b"<incomplete>"
    c.close()
    if r.status != 200 or len(got) != len(want) or hashlib.sha256(got).digest() != hashlib.sha256(want).digest():
        bad += 1
        print("%s: %d, %d bytes" % (q, r.status, len(got)))
print("checked %d" % (len(sys.argv) - 2))
PY
}

@test "a response split anywhere across STDOUT records and writes arrives whole" {
	awkward_fcgi
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/x\""
	cpm_start
	local qs=() c
	# one record boundary at every byte of the header block and around its end
	for c in $(seq 1 50); do qs+=("h=40&b=1000&rec=$c"); done
	# two boundaries close together, padding, the head ending a record
	for c in $(seq 20 45); do qs+=("h=40&b=1000&rec=$c,$((c + 1)),$((c + 3))&pad=5"); done
	# a write per byte, and odd-sized writes across records with padding
	qs+=("h=40&b=3000&wr=1" "h=40&b=3000&rec=7,39,40,41,2000&wr=3&pad=7" "h=100&b=70000&rec=99,100&wr=4096")
	# a 1-byte record per write over the header block and past it, with
	# pauses between the writes
	qs+=("h=40&b=200&rec=$(seq -s, 1 60)" "h=40&b=200&rec=$(seq -s, 30 50)&pause=10")
	# the review's case: the header line, a pause, then the empty line and 40,000 bytes
	qs+=("h=28&b=40000&rec=26&pause=100" "h=28&b=40000&rec=27&pause=100" "h=28&b=40000&rec=26,28&pause=50")
	run split_check "${qs[@]}"
	assert_output "checked ${#qs[@]}"
}

@test "a header block near the 32 KiB limit loses no byte; one past it is a 502" {
	awkward_fcgi
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/x\""
	cpm_start
	local qs=() h c
	for h in 32700 32767 32768; do
		for c in 26 16000 $((h - 2)) $((h - 1)) $h $((h + 1)) 32769 40000; do
			qs+=("h=$h&b=40000&rec=$c")
		done
		qs+=("h=$h&b=40000&rec=26&pause=100" "h=$h&b=40000&wr=5000")
	done
	run split_check "${qs[@]}"
	assert_output "checked ${#qs[@]}"
	run curl -s -o /dev/null -w '%{http_code}' "$(url '/app?h=32769&b=10')"
	assert_output 502
	run curl -s -o /dev/null -w '%{http_code}' "$(url '/app?h=40000&b=10&rec=26&pause=50')"
	assert_output 502
}

@test "keep_conn: END_REQUEST padding that comes in a later write does not spoil the next request" {
	awkward_fcgi
	CPM_WORKERS=1
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/x\", \"keep_conn\": 1"
	cpm_start
	# curl sends the second request on its connection at once, while the
	# padding of the first END_REQUEST is still on its way
	run curl -s -o /dev/null -o /dev/null -o /dev/null -w '%{http_code}\n' "$(url '/app?b=10&endpad=300')" "$(url '/app?b=10&endpad=300')" \
		"$(url '/app?b=10')"
	assert_output "200
200
200"
	run split_check "b=100&endpad=200" "b=100&endpad=0&pad=3" "b=100"
	assert_output "checked 3"
}

# worker_ticks: CPU clock ticks the workers of cpm have used
worker_ticks() {
	local w t=0
	for w in $(workers_of "$CPM_PID"); do
		t=$((t + $(cpu_ticks "$w")))
	done
	echo $t
}

@test "the app closes while its slow client holds the response: no spinning, the response completes" {
	awkward_fcgi
	CPM_WORKERS=1
	fcgi_config "\"address\": \"$ADDR\", \"script\": \"/x\""
	cpm_start
	# The client takes nothing for 1.5 s. cpm's TCP send queue to it holds
	# about 2.8 MB here, cpm then pauses the app's connection, and when
	# the rest fits into cpm's buffer and the app's socket, the app writes
	# it all and closes: HUP while paused. Sizes around that point.
	local n spent
	for n in 3100000 3300000 3500000; do
		SLOW_N=$n python3 - "$CPM_PORT" >"$BATS_TEST_TMPDIR/slow.out" <<'PY' &
import os, socket, sys, time
N = int(os.environ["SLOW_N"])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /app?b=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % N)
time.sleep(1.5)
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
head, _, body = data.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
out, i = [], 0
while True:
    j = body.index(b"\r\n", i)
    k = int(body[i:j], 16)
    if k == 0:
        break
    out.append(body[j + 2 : j + 2 + k])
    i = j + 4 + k
out = b"".join(out)
print(len(out), out == bytes((i * 7 + 3) % 251 for i in range(N)))
PY
		local client=$!
		sleep 0.4
		local t0
		t0=$(worker_ticks)
		sleep 1
		spent=$(($(worker_ticks) - t0))
		wait "$client"
		run cat "$BATS_TEST_TMPDIR/slow.out"
		assert_output "HTTP/1.1 200 OK
$n True"
		# a worker polling a pending HUP burns the whole second
		[ "$spent" -lt 20 ] || { echo "$n: the worker used $spent ticks while the client was paused" >&2; false; }
	done
}

@test "a host name in address is resolved when the config is loaded; an unknown one is a positioned error" {
	fcgi_tcp echo
	fcgi_config "\"address\": \"localhost:${ADDR##*:}\", \"script\": \"/x\""
	cpm_start
	run curl -s "$(url /app/name)"
	assert_line "PATH_INFO=/name"
	cpm_stop
	fcgi_config "\"address\": [\"unix:/x.sock\", \"no-such-host.invalid:9000\"], \"script\": \"/x\""
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp "cpm\.json:8:[0-9]+: backends\.php\.address\[1\]: cannot resolve no-such-host\.invalid:9000: "
}
