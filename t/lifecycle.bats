#!/usr/bin/env bats
# The master: signals, worker supervision, recycling, pidfile.
load helpers

worker_pid() { # worker_pid N: pid of "cpm: worker N"
	ps -o pid=,args= --ppid "$CPM_PID" | awk -v t="cpm: worker $1" '{p=$1; $1=""; sub(/^ /,"")} $0==t {print p}'
}

nworkers() { # "cpm: worker" children of the master, retiring ones included
	workers_of "$CPM_PID" | wc -l
}

has_workers() { # has_workers N
	[ "$(nworkers)" -eq "$1" ]
}

log_count() { # log_count PATTERN N: N lines of the error log match
	[ "$(grep -c -- "$1" "$CPM_LOG")" -eq "$2" ]
}

lines_in() { # lines_in FILE N
	[ "$(wc -l <"$1")" -eq "$2" ]
}

mark_is() { # mark_is VALUE: /env.sh sees CPM_MARK=VALUE
	[ "$(curl -s "$(url /env.sh)" | grep '^CPM_MARK=')" = "CPM_MARK=$1" ]
}

# set_listen PORT...: the config listens on 127.0.0.1:PORT for each
set_listen() {
	local l
	l=$(printf '"127.0.0.1:%s", ' "$@")
	sed -i "s|^  \"listen\": .*|  \"listen\": [${l%, }],|" "$BATS_TEST_TMPDIR/cpm.json"
}

answers() { # answers PORT
	[ "$(curl -s -m 2 "http://127.0.0.1:$1/ex/hello.sh")" = "Hello, world!" ]
}

refused() { # refused PORT: connect() is refused (curl exit status 7)
	local rc=0
	curl -s -m 2 -o /dev/null "http://127.0.0.1:$1/ex/hello.sh" || rc=$?
	[ "$rc" -eq 7 ]
}

listen_inode() { # listen_inode PORT: inode of the socket listening on 127.0.0.1:PORT
	awk -v a="$(printf '0100007F:%04X' "$1")" '$2 == a && $4 == "0A" {print $10}' /proc/net/tcp
}

@test "a worker killed with SIGKILL is replaced" {
	cpm_start
	old=$(worker_pid 0)
	[ -n "$old" ]
	kill -KILL "$old"
	within 3 bash -c "p=\$(ps -o pid=,args= --ppid $CPM_PID | awk '/cpm: worker 0\$/ {print \$1}'); [ -n \"\$p\" ] && [ \"\$p\" != $old ]"
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
	within 3 test -s "$pidf"
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
	within 3 test -s "$pidf"
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
	within 3 test -s "$pidf"
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
	within 3 eval '[ -n "$(worker_pid 0)" ]'
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

@test "HUP, TTIN, TTOU, USR1 and WINCH do not stop the master" {
	cpm_start
	# one at a time: standard signals pending together arrive in number order
	for s in HUP TTIN TTOU USR1 WINCH HUP; do
		kill -"$s" "$CPM_PID"
		sleep 0.2
	done
	run kill -0 "$CPM_PID"
	assert_success
	within 3 has_workers 2
	run curl -s "$(url /ex/hello.sh)"
	assert_output "Hello, world!"
}

@test "HUP with a changed config: the same master, new workers running it" {
	cpm_config '' '"env": {"CPM_MARK": "one"}'
	cpm_start
	run curl -s "$(url /env.sh)"
	assert_line CPM_MARK=one
	before=$(workers_of "$CPM_PID" | sort)
	[ "$(wc -w <<<"$before")" -eq 2 ]
	cpm_config '' '"env": {"CPM_MARK": "two"}'
	kill -HUP "$CPM_PID"
	within 3 mark_is two
	run kill -0 "$CPM_PID"
	assert_success
	# the old generation exits (no connection holds it), two new workers
	# are children of the same master
	for k in $before; do
		within 3 gone "$k"
	done
	within 3 has_workers 2
	after=$(workers_of "$CPM_PID" | sort)
	assert_equal "$(comm -12 <(echo "$before") <(echo "$after"))" ""
	run grep -E "reloaded .*/cpm\.json: generation 1, 2 worker" "$CPM_LOG"
	assert_success
	run curl -s "$(url /env.sh)"
	assert_line CPM_MARK=two
}

@test "HUP with a broken config changes nothing and logs FILE:LINE:COL" {
	cpm_config '' '"env": {"CPM_MARK": "one"}'
	cpm_start
	before=$(workers_of "$CPM_PID" | sort)
	cf=$BATS_TEST_TMPDIR/cpm.json
	# a JSON syntax error
	printf '{\n  "workers": 3,,\n}\n' >"$cf"
	kill -HUP "$CPM_PID"
	within 3 log_count 'reload failed' 1
	run grep -F "reload failed, keeping the running configuration: $cf:2:" "$CPM_LOG"
	assert_success
	assert_output --regexp "configuration: .*/cpm\.json:2:[0-9]+: "
	# valid JSON with an invalid value, and a change that must not apply
	CPM_WORKERS=0 cpm_config '' '"env": {"CPM_MARK": "two"}'
	kill -HUP "$CPM_PID"
	within 3 log_count 'reload failed' 2
	run grep -F "reload failed, keeping the running configuration: $cf:3:" "$CPM_LOG"
	assert_success
	assert_output --regexp "configuration: .*/cpm\.json:3:[0-9]+: workers: expected an integer between 1 and 1024$"
	sleep 0.3
	assert_equal "$(workers_of "$CPM_PID" | sort)" "$before"
	run curl -s "$(url /env.sh)"
	assert_line CPM_MARK=one
	refute_line CPM_MARK=two
	run log_count 'reloaded' 0
	assert_success
}

@test "10 HUPs under load, every 3rd with a broken config: no request fails" {
	cpm_start
	stop=$BATS_TEST_TMPDIR/stop
	# 2 threads with a new connection per request, 2 on keep-alive ones
	python3 "$ROOT/t/hammer.py" "$CPM_PORT" /ex/hello.sh "$stop" 15 2 2 \
		>"$BATS_TEST_TMPDIR/load" 2>"$BATS_TEST_TMPDIR/load.err" &
	load=$!
	sleep 0.5
	for i in $(seq 10); do
		if [ $((i % 3)) -eq 0 ]; then
			printf '{ "workers": 2,, }\n' >"$BATS_TEST_TMPDIR/cpm.json"
		else
			cpm_config '' "\"env\": {\"CPM_MARK\": \"$i\"}"
		fi
		kill -HUP "$CPM_PID"
		sleep 0.4
	done
	sleep 0.5
	touch "$stop"
	wait "$load"
	cat "$BATS_TEST_TMPDIR/load" "$BATS_TEST_TMPDIR/load.err" # shown on failure
	eval "$(tail -n 1 "$BATS_TEST_TMPDIR/load")"
	assert_equal "$refused" 0
	assert_equal "$failed" 0
	assert_equal "$bad_status" 0
	assert_equal "$bad_body" 0
	assert_equal "$ok" "$requests"
	[ "$requests" -ge 50 ]
	# keep-alive connections carried several requests each, and the
	# reloads closed them (after a last response with Connection: close)
	[ "$ka_connections" -ge 8 ]
	[ "$ka_requests" -ge $((2 * ka_connections)) ]
	run log_count 'reloaded ' 7
	assert_success
	run log_count 'reload failed' 3
	assert_success
	# every retired worker exits once its connections are done
	within 3 has_workers 2
}

@test "HUP adds and removes listen addresses; an unchanged one keeps its socket" {
	b=$(free_port)
	c=$(free_port)
	cpm_config
	set_listen "$CPM_PORT" "$b"
	cpm_start
	run answers "$b"
	assert_success
	run refused "$c"
	assert_success
	inode=$(listen_inode "$CPM_PORT")
	[ -n "$inode" ]
	stop=$BATS_TEST_TMPDIR/stop
	python3 "$ROOT/t/hammer.py" "$CPM_PORT" /ex/hello.sh "$stop" 15 1 1 \
		>"$BATS_TEST_TMPDIR/load" 2>"$BATS_TEST_TMPDIR/load.err" &
	load=$!
	sleep 0.3
	set_listen "$CPM_PORT" "$c"
	kill -HUP "$CPM_PID"
	within 3 answers "$c"
	within 3 refused "$b"
	run listen_inode "$b"
	assert_output ""
	assert_equal "$(listen_inode "$CPM_PORT")" "$inode"
	sleep 0.3
	touch "$stop"
	wait "$load"
	cat "$BATS_TEST_TMPDIR/load" "$BATS_TEST_TMPDIR/load.err" # shown on failure
	eval "$(tail -n 1 "$BATS_TEST_TMPDIR/load")"
	assert_equal "$refused" 0
	assert_equal "$failed" 0
	assert_equal "$ok" "$requests"
	[ "$requests" -ge 10 ]
}

@test "HUP: the same address written another way keeps its socket" {
	cpm_config
	cpm_start
	inode=$(listen_inode "$CPM_PORT")
	[ -n "$inode" ]
	# a host name for 127.0.0.1 ("localhost" on Debian)
	grep -q '^127\.0\.0\.1[[:space:]]' /etc/hosts || skip "no 127.0.0.1 line in /etc/hosts"
	name=$(awk '$1 == "127.0.0.1" {print $2; exit}' /etc/hosts)
	[ "$(getent ahostsv4 "$name" | awk 'NR == 1 {print $1}')" = 127.0.0.1 ]
	[ "$(getent ahosts "$name" | awk 'NR == 1 {print $1}')" = 127.0.0.1 ] || skip "$name resolves to IPv6 first"
	sed -i "s|^  \"listen\": .*|  \"listen\": [\"$name:$CPM_PORT\"],|" "$BATS_TEST_TMPDIR/cpm.json"
	kill -HUP "$CPM_PID"
	within 3 grep -q "reloaded" "$CPM_LOG"
	assert_equal "$(listen_inode "$CPM_PORT")" "$inode"
	run grep -c "closing listener" "$CPM_LOG"
	assert_output 0
	run answers "$CPM_PORT"
	assert_success
}

@test "TTIN adds a worker, TTOU retires the highest-numbered one, never below 1" {
	cpm_start
	kill -TTIN "$CPM_PID"
	within 3 has_workers 3
	[ -n "$(worker_pid 2)" ]
	kill -TTOU "$CPM_PID"
	within 3 has_workers 2
	[ -z "$(worker_pid 2)" ]
	[ -n "$(worker_pid 1)" ]
	kill -TTOU "$CPM_PID"
	within 3 has_workers 1
	[ -n "$(worker_pid 0)" ]
	kill -TTOU "$CPM_PID"
	sleep 0.5
	run nworkers
	assert_output 1
	[ -n "$(worker_pid 0)" ]
	run curl -s "$(url /ex/hello.sh)"
	assert_output "Hello, world!"
}

@test "WINCH retires every worker but keeps the master and its listeners; HUP restarts them" {
	cpm_start
	kids=$(workers_of "$CPM_PID")
	kill -WINCH "$CPM_PID"
	within 3 has_workers 0
	for k in $kids; do
		run gone "$k"
		assert_success
	done
	sleep 0.5
	run nworkers
	assert_output 0 # and none is started again
	run kill -0 "$CPM_PID"
	assert_success
	# the listener is still open: a request waits in its backlog...
	curl -s -m 10 -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$(url /ex/hello.sh)" >"$BATS_TEST_TMPDIR/code" &
	curl_pid=$!
	sleep 0.5
	run kill -0 "$curl_pid"
	assert_success
	# ...and is answered once HUP has started workers again
	kill -HUP "$CPM_PID"
	wait "$curl_pid" || true
	assert_equal "$(cat "$BATS_TEST_TMPDIR/code")" 200
	assert_equal "$(cat "$BATS_TEST_TMPDIR/body")" "Hello, world!"
	within 3 has_workers 2
	run curl -s "$(url /ex/hello.sh)"
	assert_output "Hello, world!"
}

@test "USR1 reopens the logs: no line lost or duplicated across a rotation" {
	cpm_start
	d=$BATS_TEST_TMPDIR
	for i in $(seq 5); do
		curl -s -o /dev/null "$(url /ex/hello.sh)"
	done
	within 3 lines_in "$d/access.log" 5
	mv "$d/access.log" "$d/access.log.1"
	mv "$d/error.log" "$d/error.log.1"
	kill -USR1 "$CPM_PID"
	within 3 test -e "$d/error.log" # the master has reopened its logs
	sleep 0.5                       # and relayed USR1 to the workers
	for i in $(seq 3); do
		curl -s -o /dev/null "$(url /stderr.sh)" # the worker logs its stderr
	done
	kill -TTIN "$CPM_PID" # the master logs this
	within 3 lines_in "$d/access.log" 3
	within 3 log_count 'TTIN: 3 worker' 1
	within 3 log_count 'something went sideways' 3
	sleep 0.3 # nothing more arrives, in either file
	run lines_in "$d/access.log.1" 5
	assert_success
	run grep -c 'GET /ex/hello.sh ' "$d/access.log.1"
	assert_output 5
	run lines_in "$d/access.log" 3
	assert_success
	run grep -c 'GET /stderr.sh ' "$d/access.log"
	assert_output 3
	run grep -c 'USR1: reopening logs' "$d/error.log.1"
	assert_output 1
	run grep -c -e 'something went sideways' -e 'TTIN' "$d/error.log.1"
	assert_output 0
	run log_count 'something went sideways' 3
	assert_success
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
	within 3 eval '[ -n "$(worker_pid 0)" ]'
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
	within 3 test -s "$pidf"
	kill -KILL "$(worker_pid 0)"
	for i in $(seq 40); do group_gone "$(cat "$pidf")" && break; sleep 0.05; done
	run group_gone "$(cat "$pidf")"
	assert_success
	wait "$curl_pid" || true
}

@test "a burst of connections is shared by the workers" {
	CPM_WORKERS=2 cpm_config
	cpm_start
	workers=$(workers_of "$CPM_PID")
	# three bursts of 32 connections opened at once, each answered once
	# and held open; counted per worker while they are all open
	for round in 1 2 3; do
		python3 - "$CPM_PORT" "$BATS_TEST_TMPDIR/hold$round" <<'PY' &
import os, socket, sys, time
port, flag = int(sys.argv[1]), sys.argv[2]
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
for s in socks:
    s.sendall(b"GET /ex/hello HTTP/1.1\r\nHost: a\r\n\r\n")
for s in socks:
    assert b"200 OK" in s.recv(4096)
open(flag, "w").close()
while os.path.exists(flag):
    time.sleep(0.05)
PY
		py=$!
		within 10 test -e "$BATS_TEST_TMPDIR/hold$round"
		counts=""
		for w in $workers; do
			counts="$counts $(ss -tnpH state established "( sport = :$CPM_PORT )" | grep -c "pid=$w,")"
		done
		echo "round $round: connections per worker:$counts" >&3
		rm -f "$BATS_TEST_TMPDIR/hold$round"
		wait "$py"
		for n in $counts; do
			[ "$n" -ge 10 ]
		done
		sleep 0.5
	done
}
