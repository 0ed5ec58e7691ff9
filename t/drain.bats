#!/usr/bin/env bats
# Stopping the way balancers and orchestrators stop things: the health
# backend, drain_delay, "sigterm", and cpm as PID 1 of a container.

load helpers

# drain_config DRAIN [extra top-level members]
drain_config() {
	CPM_PORT=${CPM_PORT:-$(free_port)}
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": 2,
  "drain_delay": "$1",
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log",
  $(user_member "${2:-}") ${2:+$2,}
  "routes": [
    { "prefix": "/healthz", "backend": "health" },
    { "prefix": "/", "backend": "apps" }
  ],
  "backends": {
    "health": { "type": "health" },
    "apps": { "type": "cgi", "root": "$APPS" }
  }
}
JSON
}

# refused: a connection to the port is refused at once (not left waiting)
refused() {
	python3 - "$CPM_PORT" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except ConnectionRefusedError:
    sys.exit(0)
sys.exit(1)
PY
}

@test "health: 200 ok while serving; from QUIT 503 and Connection: close for drain_delay while work is still served; then refused at once" {
	drain_config 3s
	cpm_start
	run curl -si "$(url /healthz)"
	assert_output --partial "HTTP/1.1 200"
	assert_output --partial "Cache-Control: no-store"
	assert_line --regexp '^ok'
	refute_output --partial "Connection: close"
	run curl -sI "$(url /healthz)"
	assert_output --partial "HTTP/1.1 200"
	# a slow request in flight across the whole stop
	curl -s -o "$BATS_TEST_TMPDIR/slow.out" -w '%{http_code}' "$(url /sleep.sh?4)" >"$BATS_TEST_TMPDIR/slow.code" &
	local slow=$!
	sleep 0.3
	kill -QUIT "$CPM_PID"
	within 2 eval 'curl -s "$(url /healthz)" | grep -q draining'
	run curl -si "$(url /healthz)"
	assert_output --partial "HTTP/1.1 503"
	assert_output --partial "Connection: close"
	assert_line --regexp '^draining'
	# other routes are served during the drain, and close their connection
	run curl -si "$(url /env.sh)"
	assert_output --partial "HTTP/1.1 200"
	assert_output --partial "Connection: close"
	grep -q "graceful stop: draining for 3000 ms" "$CPM_LOG"
	# after the delay the port refuses new connections at once, while
	# the slow request goes on
	within 4 refused
	kill -0 "$CPM_PID"
	wait "$slow"
	[ "$(cat "$BATS_TEST_TMPDIR/slow.code")" = 200 ]
	grep -q slept "$BATS_TEST_TMPDIR/slow.out"
	wait_exit "$CPM_PID" 5
	[ "$EXIT_STATUS" = 0 ]
	CPM_PID=
	# every request is in the access log, the 503s included
	grep -c '"GET /healthz HTTP/1.1" 503' "$BATS_TEST_TMPDIR/access.log"
	grep -q '"GET /sleep.sh?4 HTTP/1.1" 200' "$BATS_TEST_TMPDIR/access.log"
}

@test "drain: a second QUIT (or cpm -s quit) ends drain_delay; INT stops at once" {
	drain_config 60s
	cpm_start
	kill -QUIT "$CPM_PID"
	within 2 eval 'curl -s "$(url /healthz)" | grep -q draining'
	sleep 0.5
	kill -0 "$CPM_PID"
	kill -QUIT "$CPM_PID"
	wait_exit "$CPM_PID" 5
	[ "$EXIT_STATUS" = 0 ]
	grep -q "the drain ends now" "$CPM_LOG"
	CPM_PID=
	drain_config 60s "\"control\": \"$BATS_TEST_TMPDIR/ctl.sock\""
	cpm_start
	run "$CPM" -s quit -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_success
	run "$CPM" -s quit -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_success
	assert_output --partial "the drain ends now"
	wait_exit "$CPM_PID" 5
	[ "$EXIT_STATUS" = 0 ]
	CPM_PID=
	drain_config 60s
	cpm_start
	kill -QUIT "$CPM_PID"
	within 2 eval 'curl -s "$(url /healthz)" | grep -q draining'
	kill -INT "$CPM_PID"
	wait_exit "$CPM_PID" 5
	[ "$EXIT_STATUS" = 0 ]
	CPM_PID=
}

@test "drain: a worker that dies during drain_delay is replaced" {
	drain_config 20s
	cpm_start
	kill -QUIT "$CPM_PID"
	within 2 eval 'curl -s "$(url /healthz)" | grep -q draining'
	local w
	w=$(workers_of "$CPM_PID" | head -1)
	kill -KILL "$w"
	within 5 eval '[ "$(workers_of "$CPM_PID" | wc -l)" = 2 ] && ! workers_of "$CPM_PID" | grep -qx "$w"'
	run curl -s "$(url /env.sh)"
	assert_success
	assert_output --partial "GATEWAY_INTERFACE"
	kill -QUIT "$CPM_PID"
	wait_exit "$CPM_PID" 5
	[ "$EXIT_STATUS" = 0 ]
	CPM_PID=
}

@test "sigterm: fast by default (a request in flight is cut); \"graceful\" makes TERM drain and finish it" {
	drain_config 0 '"sigterm": "fast"'
	cpm_start
	curl -s -o /dev/null -w '%{http_code}' "$(url /sleep.sh?2)" >"$BATS_TEST_TMPDIR/code" &
	local slow=$!
	sleep 0.4
	kill -TERM "$CPM_PID"
	wait_exit "$CPM_PID" 5
	CPM_PID=
	wait "$slow" || true
	[ "$(cat "$BATS_TEST_TMPDIR/code")" != 200 ]

	CPM_PORT=
	drain_config 1s '"sigterm": "graceful"'
	cpm_start
	curl -s -o /dev/null -w '%{http_code}' "$(url /sleep.sh?2)" >"$BATS_TEST_TMPDIR/code" &
	slow=$!
	sleep 0.4
	kill -TERM "$CPM_PID"
	within 2 eval 'curl -s "$(url /healthz)" | grep -q draining'
	wait "$slow"
	[ "$(cat "$BATS_TEST_TMPDIR/code")" = 200 ]
	wait_exit "$CPM_PID" 5
	[ "$EXIT_STATUS" = 0 ]
	CPM_PID=
	grep -q "graceful stop: draining for 1000 ms" "$CPM_LOG"
}

@test "config: sigterm, drain_delay and the health backend are checked with file:line:column" {
	drain_config 5s '"sigterm": "slow"'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp 'cpm.json:[0-9]+:[0-9]+: sigterm: expected "fast"'
	drain_config "-1"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp 'cpm.json:[0-9]+:[0-9]+: drain_delay'
	sed -i 's/"type": "health"/"type": "health", "x": 1/' "$BATS_TEST_TMPDIR/cpm.json"
	sed -i 's/"drain_delay": "-1"/"drain_delay": 0/' "$BATS_TEST_TMPDIR/cpm.json"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp 'cpm.json:[0-9]+:[0-9]+: backends.health.x'
}

@test "PID 1: as a PID namespace's init, cpm reaps the orphans CGI programs leave" {
	[ "$(id -u)" = 0 ] || skip "unshare --pid needs root"
	command -v unshare >/dev/null || skip "no unshare"
	drain_config 0
	CPM_LOG=$BATS_TEST_TMPDIR/error.log
	unshare --pid --fork --kill-child "$CPM" -c "$BATS_TEST_TMPDIR/cpm.json" 2>>"$BATS_TEST_TMPDIR/stderr.log" &
	local outer=$!
	wait_listening "$CPM_PORT" "$outer"
	# the master: the child of unshare, PID 1 inside
	local master
	master=$(pgrep -P "$outer" | head -1)
	[ -n "$master" ]
	grep -q "running as PID 1" "$CPM_LOG"
	local i
	for i in 1 2 3 4 5 6; do
		run curl -s "$(url /orphan.sh?0.2)"
		assert_output --partial "left"
	done
	# the orphans ran under the master (their parent once orphaned) and,
	# once done, none is left as a zombie
	sleep 1
	run ps -o pid=,stat=,comm= --ppid "$master"
	refute_output --regexp ' Z'
	refute_output --partial "sleep"
	# the service still works and stops cleanly
	run curl -s "$(url /healthz)"
	assert_output "ok"
	kill -QUIT "$master"
	wait "$outer" || true
	! kill -0 "$master" 2>/dev/null
}

@test "a master killed outright (SIGKILL): its workers stop on their own, finishing what they carry, and free the port" {
	drain_config 0
	cpm_start
	local ws
	ws=$(workers_of "$CPM_PID")
	[ -n "$ws" ]
	curl -s -o "$BATS_TEST_TMPDIR/slow.out" "$(url /sleep.sh?1)" &
	local slow=$!
	sleep 0.3
	kill -KILL "$CPM_PID"
	wait "$CPM_PID" 2>/dev/null || true
	CPM_PID=
	wait "$slow"
	grep -q slept "$BATS_TEST_TMPDIR/slow.out"
	local w
	for w in $ws; do
		within 5 gone "$w"
	done
	within 3 refused
}

@test "drain: a connection accepted just before the drain ends is not an idle one: its request is answered" {
	drain_config 1s
	cpm_start
	# connect during the drain, send the request only after the workers
	# got their QUIT (the listener is closed by then)
	python3 - "$CPM_PORT" "$CPM_PID" >"$BATS_TEST_TMPDIR/late.out" <<'PY' &
import os, signal, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
os.kill(int(sys.argv[2]), signal.SIGQUIT)
time.sleep(1.6)
s.sendall(b"GET /env.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
s.settimeout(5)
data = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except ConnectionResetError:
    data += b"<RESET>"
sys.stdout.write(data.decode("latin-1"))
PY
	local late=$!
	within 4 refused
	wait "$late"
	run cat "$BATS_TEST_TMPDIR/late.out"
	assert_output --partial "HTTP/1.1 200"
	wait_exit "$CPM_PID" 5
	CPM_PID=
	grep -q '"GET /env.sh HTTP/1.1" 200' "$BATS_TEST_TMPDIR/access.log"
}
