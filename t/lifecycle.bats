#!/usr/bin/env bats
# The master: signals, worker supervision, recycling, pidfile.
load helpers

# wait_exit PID SECONDS: wait for cpm (a child of this shell: do not call
# it under `run`) to exit within SECONDS; sets EXIT_STATUS (or "running").
wait_exit() {
	local pid=$1 i
	EXIT_STATUS=running
	for i in $(seq $(($2 * 20))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && return 0
	EXIT_STATUS=0
	wait "$pid" || EXIT_STATUS=$?
}

# wait_for CMD...: retry a command for up to 3 s
wait_for() {
	local i
	for i in $(seq 60); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# gone PID: the process has exited (a zombie counts: once cpm is gone its
# children are reparented to pid 1, which may not reap them here)
gone() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "${st#Z}" != "$st" ]
}

# group_gone PGID: no live process is left in the process group (a CGI
# program runs in its own group, so this covers what the script forked)
group_gone() {
	! ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'
}

worker_pid() { # worker_pid N: pid of "cpm: worker N"
	ps -o pid=,args= --ppid "$CPM_PID" | awk -v t="cpm: worker $1" '{p=$1; $1=""; sub(/^ /,"")} $0==t {print p}'
}

@test "a worker killed with SIGKILL is replaced" {
	cpm_start
	old=$(worker_pid 0)
	[ -n "$old" ]
	kill -KILL "$old"
	wait_for bash -c "p=\$(ps -o pid=,args= --ppid $CPM_PID | awk '/cpm: worker 0\$/ {print \$1}'); [ -n \"\$p\" ] && [ \"\$p\" != $old ]"
	new=$(worker_pid 0)
	refute [ "$new" = "$old" ]
	run bash -c "ps -o args= --ppid $CPM_PID | grep -c '^cpm: worker'"
	assert_output 2
	run curl -s "$(url /ex/hello.sh)"
	assert_output "Hello, world!"
	run grep -E "worker 0 \(pid $old\)" "$CPM_LOG"
	assert_success
}

@test "QUIT lets an in-flight request finish, then the master exits 0" {
	cpm_start
	curl -s -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$(url /sleep.sh?1)" >"$BATS_TEST_TMPDIR/code" &
	curl_pid=$!
	sleep 0.3
	kill -QUIT "$CPM_PID"
	wait_exit "$CPM_PID" 5
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	wait "$curl_pid"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/code")" 200
	assert_equal "$(cat "$BATS_TEST_TMPDIR/body")" slept
}

@test "QUIT closes an idle keep-alive connection at once" {
	cpm_config '"keepalive": 30'
	cpm_start
	# one request on a kept-alive connection, then wait for the server to close it
	python3 - "$CPM_PORT" >"$BATS_TEST_TMPDIR/out" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /length.sh HTTP/1.1\r\nHost: a\r\n\r\n")
s.settimeout(10)
t0 = time.time(); buf = b""
while True:
    d = s.recv(4096)
    if not d: break
    buf += d
print("200" if b" 200 " in buf else "no-200", "closed-after=%.1f" % (time.time() - t0))
PY
	py=$!
	sleep 0.5
	kill -QUIT "$CPM_PID"
	wait_exit "$CPM_PID" 3
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	wait "$py"
	run cat "$BATS_TEST_TMPDIR/out"
	assert_output --regexp '^200 closed-after=[0-2]\.'
}

@test "QUIT kills requests still running after graceful_timeout" {
	cpm_config '"graceful_timeout": 1'
	cpm_start
	pidf=$BATS_TEST_TMPDIR/pid
	curl -s -m 10 -o /dev/null "$(url "/pid_sleep.sh?$pidf")" &
	curl_pid=$!
	wait_for test -s "$pidf"
	kill -QUIT "$CPM_PID"
	start=$(date +%s%N)
	wait_exit "$CPM_PID" 4
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	elapsed=$((($(date +%s%N) - start) / 1000000))
	[ "$elapsed" -ge 800 ] # it did wait for the request
	sleep 0.2
	run group_gone "$(cat "$pidf")"
	assert_success
	wait "$curl_pid" || true
}

@test "TERM stops at once and kills running CGI programs" {
	cpm_start
	pidf=$BATS_TEST_TMPDIR/pid
	curl -s -m 10 -o /dev/null "$(url "/pid_sleep.sh?$pidf")" &
	curl_pid=$!
	wait_for test -s "$pidf"
	kill -TERM "$CPM_PID"
	wait_exit "$CPM_PID" 2
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	sleep 0.2
	run group_gone "$(cat "$pidf")"
	assert_success
	wait "$curl_pid" || true
}

@test "INT is a fast stop too" {
	cpm_start
	pidf=$BATS_TEST_TMPDIR/pid
	curl -s -m 10 -o /dev/null "$(url "/pid_sleep.sh?$pidf")" &
	curl_pid=$!
	wait_for test -s "$pidf"
	kill -INT "$CPM_PID"
	wait_exit "$CPM_PID" 2
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	sleep 0.2
	run group_gone "$(cat "$pidf")"
	assert_success
	wait "$curl_pid" || true
}

@test "workers exit with the master; none is left behind" {
	cpm_start
	kids=$(workers_of "$CPM_PID")
	[ "$(wc -w <<<"$kids")" -eq 2 ]
	kill -TERM "$CPM_PID"
	wait_exit "$CPM_PID" 2
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	sleep 0.1
	for k in $kids; do
		run gone "$k"
		assert_success
	done
}

@test "max_requests recycles a worker without failing a request" {
	CPM_WORKERS=1 cpm_config '"max_requests": 3'
	cpm_start
	first=$(worker_pid 0)
	for i in $(seq 10); do
		run curl -s -o /dev/null -w '%{http_code}' "$(url /length.sh)"
		assert_output 200
	done
	# a keep-alive run across the recycling point too
	run curl -s -w '%{http_code}\n' $(for i in $(seq 7); do echo "$(url /length.sh)"; done)
	[ "$(grep -c '^200$' <<<"$output")" -eq 7 ]
	[ "$(grep -c '^fixed$' <<<"$output")" -eq 7 ]
	wait_for test -n "$(worker_pid 0)"
	last=$(worker_pid 0)
	refute [ "$first" = "$last" ]
}

@test "the pidfile is written at start and removed at exit" {
	pf=$BATS_TEST_TMPDIR/cpm.pid
	cpm_config "\"pidfile\": \"$pf\""
	cpm_start
	run cat "$pf"
	assert_output "$CPM_PID"
	cpm_stop
	[ ! -e "$pf" ]
}

@test "HUP is ignored in 0.1: same master, same workers, still serving" {
	cpm_start
	before=$(workers_of "$CPM_PID" | sort)
	kill -HUP "$CPM_PID"
	sleep 0.5
	run kill -0 "$CPM_PID"
	assert_success
	assert_equal "$(workers_of "$CPM_PID" | sort)" "$before"
	run curl -s "$(url /ex/hello.sh)"
	assert_output "Hello, world!"
}

@test "TTIN, TTOU, USR1, USR2 and WINCH do not stop the server" {
	cpm_start
	for s in TTIN TTOU USR1 USR2 WINCH; do
		kill -"$s" "$CPM_PID"
	done
	sleep 0.3
	run kill -0 "$CPM_PID"
	assert_success
	run curl -s "$(url /ex/hello.sh)"
	assert_output "Hello, world!"
}

@test "a worker whose heartbeat stops is killed after timeout and replaced" {
	CPM_WORKERS=1 cpm_config '"timeout": 1'
	cpm_start
	old=$(worker_pid 0)
	[ -n "$old" ]
	kill -STOP "$old"
	# killed within timeout (+ a check interval, bounded at 4 s), then a new
	# worker 0 serves
	for i in $(seq 80); do gone "$old" && break; sleep 0.05; done
	run gone "$old"
	assert_success
	wait_for test -n "$(worker_pid 0)"
	run curl -s -m 3 "$(url /ex/hello.sh)"
	assert_output "Hello, world!"
	refute [ "$(worker_pid 0)" = "$old" ]
}

@test "the CGI programs of a worker killed with SIGKILL do not outlive it" {
	CPM_WORKERS=1 cpm_config
	cpm_start
	pidf=$BATS_TEST_TMPDIR/pid
	curl -s -m 5 -o /dev/null "$(url "/pid_sleep.sh?$pidf")" &
	curl_pid=$!
	wait_for test -s "$pidf"
	kill -KILL "$(worker_pid 0)"
	for i in $(seq 40); do group_gone "$(cat "$pidf")" && break; sleep 0.05; done
	run group_gone "$(cat "$pidf")"
	assert_success
	wait "$curl_pid" || true
}
