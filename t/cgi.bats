#!/usr/bin/env bats
load helpers

setup() {
	CPM_CGI_TIMEOUT=${CPM_CGI_TIMEOUT:-10}
}

@test "SCRIPT_NAME and PATH_INFO split at the first executable" {
	cpm_start
	run curl -s "$(url /sub/info.sh/a/b%20c?x=%41)"
	assert_line "SCRIPT_NAME=/sub/info.sh"
	assert_line "PATH_INFO=/a/b c"
	assert_line "PATH_TRANSLATED=$APPS/a/b c"
	assert_line "QUERY_STRING=x=%41"
	assert_line "SCRIPT_FILENAME=$APPS/sub/info.sh"
}

@test "the script runs in its own directory" {
	cpm_start
	run curl -s "$(url /sub/info.sh)"
	assert_line "PWD=$APPS/sub"
	assert_line "PATH_INFO="
}

@test "a missing script is 404, a non-executable file 403" {
	cpm_start
	run curl -s -o /dev/null -w '%{http_code}' "$(url /nope.sh)"
	assert_output 404
	run curl -s -o /dev/null -w '%{http_code}' "$(url /not_exec.txt)"
	assert_output 403
	run curl -s -o /dev/null -w '%{http_code}' "$(url /sub/)"
	assert_output 404
}

@test "traversal in any encoding never leaves root" {
	cpm_start
	for p in "/../etc/passwd" "/%2e%2e/etc/passwd" "/sub/%2E%2E/env.sh" "/sub%2finfo.sh" "/.%2e/x" "/%252e%252e/x"; do
		run raw "GET $p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
		assert_line --regexp '^HTTP/1.1 (400|403|404)'
		refute_output --partial "root:"
	done
}

@test "dotfiles and dot directories are never served" {
	cpm_start
	run curl -s -o /dev/null -w '%{http_code}' "$(url /.hidden/secret.sh)"
	assert_output 404
}

@test "a symlink out of root is refused, one inside root is followed" {
	root=$BATS_TEST_TMPDIR/root
	mkdir -p "$root" "$BATS_TEST_TMPDIR/outside"
	cp "$APPS/env.sh" "$root/env.sh"
	cp "$APPS/env.sh" "$BATS_TEST_TMPDIR/outside/env.sh"
	ln -s ../outside "$root/out"
	ln -s "$BATS_TEST_TMPDIR/outside/env.sh" "$root/abs.sh"
	ln -s env.sh "$root/inside.sh"
	CPM_ROOT=$root cpm_config
	cpm_start
	run curl -s -o /dev/null -w '%{http_code}' "$(url /out/env.sh)"
	assert_output 403
	run curl -s -o /dev/null -w '%{http_code}' "$(url /abs.sh)"
	assert_output 403
	run curl -s "$(url /inside.sh)"
	assert_line "GATEWAY_INTERFACE=CGI/1.1"
}

@test "the environment has the RFC 3875 variables" {
	cpm_start
	run curl -s -H 'Content-Type: text/x-test' -u user:pw --data 'abc' "$(url /env.sh/extra?a=b)"
	for v in GATEWAY_INTERFACE=CGI/1.1 "SERVER_SOFTWARE=cpm/" SERVER_NAME=127.0.0.1 "SERVER_PORT=$CPM_PORT" \
		SERVER_PROTOCOL=HTTP/1.1 REQUEST_METHOD=POST SCRIPT_NAME=/env.sh PATH_INFO=/extra \
		QUERY_STRING=a=b REMOTE_ADDR=127.0.0.1 "REMOTE_PORT=" CONTENT_TYPE=text/x-test CONTENT_LENGTH=3 \
		AUTH_TYPE=Basic "REQUEST_URI=/env.sh/extra?a=b" "SCRIPT_FILENAME=$APPS/env.sh" "DOCUMENT_ROOT=$APPS" \
		PATH=/usr/local/bin:/usr/bin:/bin; do
		assert_line --partial "$v"
	done
	refute_line --partial HTTP_AUTHORIZATION
}

@test "httpoxy: Proxy is not passed; names with underscores are dropped" {
	cpm_start
	run curl -s -H 'Proxy: http://evil:1' -H 'X_Forwarded_For: spoof' -H 'X-Forwarded-For: real' "$(url /env.sh)"
	refute_line --partial HTTP_PROXY
	assert_line "HTTP_X_FORWARDED_FOR=real"
	refute_line --partial spoof
}

@test "env and pass_env reach the script" {
	export CPM_TEST_PASSED=from-outside
	cpm_config "" '"env": {"APP_MODE": "test"}, "pass_env": ["CPM_TEST_PASSED"]'
	cpm_start
	run curl -s "$(url /env.sh)"
	assert_line "APP_MODE=test"
	assert_line "CPM_TEST_PASSED=from-outside"
}

@test "a script sees only fds 0, 1 and 2" {
	cpm_start
	run curl -s --data 'x' "$(url /fds.pl)"
	assert_line --regexp '^fd 0 pipe:'
	assert_line --regexp '^fd 1 pipe:'
	assert_line --regexp '^fd 2 pipe:'
	[ "$(grep -c '^fd ' <<<"$output")" -eq 3 ]
	run curl -s "$(url /fds.pl)"
	assert_line "fd 0 /dev/null"
	[ "$(grep -c '^fd ' <<<"$output")" -eq 3 ]
}

@test "stderr lines reach the error log tagged with script, pid and request id" {
	cpm_start
	curl -s "$(url /stderr.sh)" >/dev/null
	sleep 0.3
	run cat "$CPM_LOG"
	assert_line --regexp '\[warn\] cpm\[[0-9]+\]: cgi stderr.sh\[[0-9]+\] id=[0-9a-f]{32}: something went sideways$'
}

@test "output streams: the first line arrives before the script ends" {
	cpm_start
	run python3 - "$CPM_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /stream.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
t0 = time.time(); buf = b""
while b"one" not in buf:
    buf += s.recv(4096)
t1 = time.time() - t0
while True:
    d = s.recv(4096)
    if not d: break
    buf += d
t2 = time.time() - t0
print("first=%.2f all=%.2f" % (t1, t2))
sys.exit(0 if t1 < 0.8 and t2 >= 0.9 and b"two" in buf else 1)
PY
	assert_success
}

@test "a script that exits before its header is 502" {
	cpm_start
	run curl -s -o /dev/null -w '%{http_code}' "$(url /exit_early.sh)"
	assert_output 502
	grep -q "exit_early.sh.*before sending a header" "$CPM_LOG"
}

@test "an invalid header line is 502, and so is a CR inside a value" {
	cpm_start
	run curl -s -o /dev/null -w '%{http_code}' "$(url /badheader.sh)"
	assert_output 502
	run curl -si "$(url /crlf_inject.sh)"
	assert_line --regexp '^HTTP/1.1 502'
	refute_output --partial "Set-Cookie"
}

@test "Status is passed through; an invalid one is 502" {
	cpm_start
	run curl -si "$(url '/status.sh?404%20Gone%20Away')"
	assert_line --regexp '^HTTP/1.1 404 Gone Away'
	assert_output --partial "status body"
	run curl -s -o /dev/null -w '%{http_code}' "$(url '/status.sh?999')"
	assert_output 502
	run curl -s -o /dev/null -w '%{http_code}' "$(url '/status.sh?abc')"
	assert_output 502
}

@test "a local Location redirects internally, an absolute one is a 302" {
	cpm_start
	run curl -si "$(url /redirect_local.sh)"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line "QUERY_STRING=via=redirect"
	assert_line "SCRIPT_NAME=/env.sh"
	assert_line "REQUEST_METHOD=GET"
	run curl -si "$(url /redirect_abs.sh)"
	assert_line --regexp '^HTTP/1.1 302'
	assert_line --regexp '^Location: http://example.com/elsewhere'
	run curl -s -o /dev/null -w '%{http_code}' "$(url /redirect_loop.sh)"
	assert_output 500
}

@test "a script that writes before reading its body does not deadlock" {
	cpm_start
	head -c 1048576 /dev/zero >"$BATS_TEST_TMPDIR/body"
	run timeout 10 curl -s --data-binary @"$BATS_TEST_TMPDIR/body" "$(url /write_first.sh)"
	assert_success
	assert_line "read=1048576"
}

@test "a 10 MB response arrives whole" {
	cpm_start
	run bash -c "curl -s '$(url /big.sh)' | sha256sum"
	want=$(head -c 10485760 /dev/zero | tr '\0' a | sha256sum)
	assert_output "$want"
}

@test "a script over its timeout is killed and the client gets 504" {
	CPM_CGI_TIMEOUT=1 cpm_config
	cpm_start
	pidf=$BATS_TEST_TMPDIR/pid
	run curl -s -o /dev/null -w '%{http_code} %{time_total}' "$(url "/pid_sleep.sh?$pidf")"
	assert_output --regexp '^504 1\.'
	pid=$(cat "$pidf")
	sleep 0.3
	refute kill -0 "$pid" # (a bare "! cmd" never fails a bats test)
	grep -q "pid_sleep.sh\[$pid\]: timeout" "$CPM_LOG"
}

@test "a timeout after the header closes the connection" {
	CPM_CGI_TIMEOUT=1 cpm_config
	cpm_start
	run curl -s "$(url /hang_after_head.sh)"
	assert_equal "$status" 18 # partial file: the body was cut, never presented as complete
	assert_output --partial started
}

@test "a client that disconnects gets its script killed" {
	cpm_start
	pidf=$BATS_TEST_TMPDIR/pid
	curl -s -m 1 "$(url "/pid_sleep.sh?$pidf")" || true
	sleep 0.5
	pid=$(cat "$pidf")
	refute kill -0 "$pid" # (a bare "! cmd" never fails a bats test)
	grep -q "client gone" "$CPM_LOG"
}

@test "max_concurrent: excess requests queue, then get 503 with Retry-After" {
	CPM_WORKERS=1 cpm_config "" '"max_concurrent": 1, "queue": 1, "queue_timeout": 1'
	cpm_start
	curl -s -o "$BATS_TEST_TMPDIR/a" -w '%{http_code}' "$(url '/sleep.sh?2')" >"$BATS_TEST_TMPDIR/a.code" &
	a=$!
	sleep 0.3
	curl -s -o /dev/null -w '%{http_code}' "$(url '/sleep.sh?0')" >"$BATS_TEST_TMPDIR/b.code" &
	b=$!
	sleep 0.2
	run curl -si "$(url '/sleep.sh?0')"
	assert_line --regexp '^HTTP/1.1 503'
	assert_line --regexp '^Retry-After: [0-9]+'
	wait "$a" "$b" # not a bare wait: cpm itself is a child of this shell
	assert_equal "$(cat "$BATS_TEST_TMPDIR/b.code")" 503 # waited 1 s in the queue
	assert_equal "$(cat "$BATS_TEST_TMPDIR/a.code")" 200
	run curl -s "$(url '/sleep.sh?0')"
	assert_output slept
}

@test "a queued request runs when a slot frees" {
	CPM_WORKERS=1 cpm_config "" '"max_concurrent": 1, "queue": 5, "queue_timeout": 5'
	cpm_start
	curl -s "$(url '/sleep.sh?1')" >"$BATS_TEST_TMPDIR/a" &
	a=$!
	sleep 0.2
	run curl -s -w ' %{http_code}' "$(url '/sleep.sh?0')"
	assert_output "slept
 200"
	wait "$a"
}

@test "a queued request whose client leaves gives up its place in the queue" {
	CPM_WORKERS=1 cpm_config "" '"max_concurrent": 1, "queue": 1, "queue_timeout": 5'
	cpm_start
	curl -s "$(url '/sleep.sh?1.5')" >"$BATS_TEST_TMPDIR/a" &
	a=$!
	sleep 0.3
	# takes the one queue place, then leaves while still queued
	curl -s -m 0.3 "$(url '/sleep.sh?0')" || true
	sleep 0.2
	# its place is free again: this one waits and runs, no 503
	run curl -s -w ' %{http_code}' "$(url '/sleep.sh?0')"
	assert_output "slept
 200"
	wait "$a"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/a")" slept
	refute grep -q "queue full" "$CPM_LOG"
}

@test "no zombies are left behind" {
	cpm_start
	for i in $(seq 20); do curl -s "$(url /ex/hello.sh)" >/dev/null; done
	curl -s -m 0.5 "$(url /sleep.sh?5)" >/dev/null || true
	sleep 0.5
	for w in $(workers_of "$CPM_PID"); do
		run bash -c "ps -o stat= --ppid $w | grep -c Z"
		assert_output 0
	done
}
