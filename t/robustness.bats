#!/usr/bin/env bats
# What a hostile or merely slow client must not be able to do: crash a
# worker through a request that outlived its state, spin it on a hung-up
# fd, lose response bytes, or hold a backend for as long as it takes to
# read; and what a backend must not be able to do to the next response.
load helpers

# idle_cpu_ok SECONDS: every worker of cpm used under half a CPU over SECONDS
idle_cpu_ok() {
	local w before=() after=() i=0 hz
	hz=$(getconf CLK_TCK)
	local ws=($(workers_of "$CPM_PID"))
	for w in "${ws[@]}"; do before+=("$(cpu_ticks "$w")"); done
	sleep "$1"
	for w in "${ws[@]}"; do
		after=$(cpu_ticks "$w")
		used=$((after - before[i]))
		i=$((i + 1))
		echo "worker $w: $used ticks in $1 s" >&3
		[ "$used" -lt $((hz * $1 / 2)) ] || return 1
	done
}

# closer_cpm MEMBERS: start t/apps-fcgi/closer.py (a FastCGI server that
# closes after every END_REQUEST) on a fresh unix socket (sets SOCKDIR and
# app), and write cpm.json with /closer routed to it as an external
# fastcgi backend with MEMBERS added, in front of the CGI apps
closer_cpm() {
	SOCKDIR=$(mktemp -d /tmp/cpm-closer.XXXXXX)
	python3 "$ROOT/t/apps-fcgi/closer.py" "$SOCKDIR/s" &
	app=$!
	within 5 test -S "$SOCKDIR/s"
	cpm_config
	sed -i "s|\"routes\": \[|\"routes\": [ { \"prefix\": \"/closer\", \"backend\": \"closer\" },|; s|\"backends\": {|\"backends\": { \"closer\": { \"type\": \"fastcgi\", \"address\": \"unix:$SOCKDIR/s\", \"script\": \"/closer\", $1 },|" "$BATS_TEST_TMPDIR/cpm.json"
}

@test "a bare CR after a complete request on a kept connection is 400, with nothing of the previous request" {
	cpm_start
	before=$(workers_of "$CPM_PID" | sort)
	run raw "GET /length.sh HTTP/1.1\r\nHost: a\r\nX-Big: $(head -c 6000 /dev/zero | tr '\0' x)\r\nUser-Agent: first\r\n\r\n\r\r" 3
	assert_line --regexp '^HTTP/1.1 200'
	assert_line --regexp '^HTTP/1.1 400'
	assert_line "<EOF>"
	within 3 grep -q '" 400 ' "$BATS_TEST_TMPDIR/access.log"
	run grep '" 400 ' "$BATS_TEST_TMPDIR/access.log"
	assert_output --regexp '"" 400 [0-9]+ "-" "-"'
	# the 400 line carries nothing of the first request
	refute_output --partial first
	# no worker died
	[ "$(workers_of "$CPM_PID" | sort)" = "$before" ]
}

@test "a partial second request left to header_timeout is 408 and logs no stale field" {
	cpm_config '"header_timeout": 1'
	cpm_start
	run raw "GET /length.sh HTTP/1.1\r\nHost: a\r\nUser-Agent: first\r\n\r\nGET /length.sh HTTP/1.1\r\nHost: a\r\nUser-Ag" 4
	assert_line --regexp '^HTTP/1.1 200'
	assert_line --regexp '^HTTP/1.1 408'
	within 3 grep -q '" 408 ' "$BATS_TEST_TMPDIR/access.log"
	run grep '" 408 ' "$BATS_TEST_TMPDIR/access.log"
	assert_output --regexp '"" 408 [0-9]+ "-" "-"'
}

@test "a CGI program that closed its stdin does not spin the worker while the client pauses its body" {
	cpm_start
	python3 - "$CPM_PORT" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /close_stdin.sh HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n" + b"x" * 100000)
time.sleep(6)
PY
	client=$!
	sleep 1.5 # the script has closed its stdin; the client sends nothing
	run idle_cpu_ok 2
	kill "$client" 2>/dev/null || true
	wait "$client" 2>/dev/null || true
	assert_success
}

@test "a FastCGI server that closes after END_REQUEST does not spin a worker behind a client that does not read" {
	closer_cpm '"response_temp_max": 0'
	cpm_start
	python3 - "$CPM_PORT" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /closer?150000 HTTP/1.1\r\nHost: a\r\n\r\n")
time.sleep(6)
PY
	client=$!
	sleep 1.5
	run idle_cpu_ok 2
	kill "$client" "$app" 2>/dev/null || true
	wait "$client" "$app" 2>/dev/null || true
	rm -rf "$SOCKDIR"
	assert_success
}

@test "a response that reached its Content-Length is done: logged at once, the program runs on and is not killed" {
	cpm_start
	marker=$BATS_TEST_TMPDIR/marker
	start=$(date +%s%N)
	run curl -s --max-time 5 "$(url "/after_response.sh?$marker")"
	took=$((($(date +%s%N) - start) / 1000000))
	assert_output "early"
	[ "$took" -lt 900 ]
	grep -q '"GET /after_response.sh?[^"]*" 200 6 ' "$BATS_TEST_TMPDIR/access.log"
	within 5 test -s "$marker"
	run cat "$marker"
	assert_output done
	! grep -q "killed by signal" "$CPM_LOG"
}

@test "a client that leaves early stops its program, unless ignore_client_abort" {
	cpm_start
	marker=$BATS_TEST_TMPDIR/killed
	run curl -s --max-time 0.3 "$(url "/abort_marker.sh?$marker")"
	sleep 1.5
	[ ! -e "$marker" ]
	within 3 grep -q '"GET /abort_marker.sh?[^"]*" 499 ' "$BATS_TEST_TMPDIR/access.log"
	cpm_stop

	cpm_config '' '"ignore_client_abort": true'
	cpm_start
	before=$(workers_of "$CPM_PID" | sort)
	marker=$BATS_TEST_TMPDIR/kept
	run curl -s --max-time 0.3 "$(url "/abort_marker.sh?$marker")"
	within 5 test -s "$marker"
	# its output, head included, was dropped by a worker that lives on
	sleep 0.2
	[ "$(workers_of "$CPM_PID" | sort)" = "$before" ]
	! grep -q "worker .* killed by signal" "$CPM_LOG"
}

@test "a response cpm sends while the client still sends an unread body arrives whole: lingering close" {
	cpm_start
	head -c 5242880 /dev/zero >"$BATS_TEST_TMPDIR/body"
	run bash -c "curl -s --max-time 10 --data-binary @'$BATS_TEST_TMPDIR/body' '$(url /big_noread.sh)' | wc -c"
	assert_output 1048576
}

@test "a slow client does not hold its CGI program: the response waits in cpm" {
	cpm_start
	python3 - "$CPM_PORT" "$BATS_TEST_TMPDIR/got" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /huge.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
time.sleep(2)  # read nothing for a while
n = 0
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    n += len(d)
open(sys.argv[2], "w").write(str(n))
PY
	client=$!
	# the program has written its 40 MiB (more than the kernel's socket
	# buffers hold) and is gone while the client has read nothing yet
	sleep 1.5
	[ -z "$(cgi_groups_of "$CPM_PID")" ]
	wait "$client"
	# head + 40 MiB chunked
	[ "$(cat "$BATS_TEST_TMPDIR/got")" -gt 41943040 ]
	grep -q '"GET /huge.sh HTTP/1.1" 200 41943040 ' "$BATS_TEST_TMPDIR/access.log"
}

@test "X-Accel-Buffering: no streams: the program waits for the client, and its timeout does not count that" {
	CPM_CGI_TIMEOUT=2 cpm_config
	cpm_start
	python3 - "$CPM_PORT" "$BATS_TEST_TMPDIR/got" "$BATS_TEST_TMPDIR/marker" <<'PY' &
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /big_stream.sh?" + sys.argv[3].encode() + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
time.sleep(3.5)  # longer than the program's timeout
n = 0
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    n += len(d)
open(sys.argv[2], "w").write(str(n))
PY
	client=$!
	sleep 1
	# held: still running, not done
	[ -n "$(cgi_groups_of "$CPM_PID")" ]
	[ ! -e "$BATS_TEST_TMPDIR/marker" ]
	wait "$client"
	[ "$(cat "$BATS_TEST_TMPDIR/got")" -gt 41943040 ]
	within 3 test -s "$BATS_TEST_TMPDIR/marker"
	! grep -q "timeout after" "$CPM_LOG"
	# the header is not passed on
	run curl -s -D - -o /dev/null "$(url /big_stream.sh)"
	refute_output --partial -i "x-accel-buffering"
}

@test "a small request body is read whole before its program starts" {
	cpm_start
	python3 - "$CPM_PORT" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
time.sleep(3)
PY
	client=$!
	sleep 1
	[ -z "$(cgi_groups_of "$CPM_PID")" ]
	kill "$client" 2>/dev/null || true
	wait "$client" 2>/dev/null || true
}

@test "a backend Status: 1xx is 502, and nothing after it passes for another answer" {
	cpm_start
	run raw "GET /status.sh?100 HTTP/1.1\r\nHost: a\r\n\r\nGET /status.sh?201 HTTP/1.1\r\nHost: a\r\n\r\n" 3
	codes=$(grep -o '^HTTP/1.1 [0-9]*' <<<"$output" | tr '\n' ' ')
	[ "$codes" = "HTTP/1.1 502 " ] || [ "$codes" = "HTTP/1.1 502 HTTP/1.1 201 " ]
	refute_line --regexp '^HTTP/1.1 100'
}

@test "OPTIONS * is answered by the server itself" {
	cpm_start
	run raw "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\nGET /length.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" 3
	assert_line --regexp '^HTTP/1.1 200'
	assert_output --partial $'Content-Length: 0\r'
	[ "$(grep -c '^HTTP/1.1 200' <<<"$output")" -eq 2 ]
}

@test "lingering_time and the response buffer keys are checked" {
	cpm_config '"lingering_time": "x"'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp 'cpm.json:[0-9]+:[0-9]+: lingering_time: '
	cpm_config '' '"response_buffer": 10'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp 'backends.apps.response_buffer: size out of range'
	cpm_config '"limits": {"temp_files": "-1"}'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp 'cpm.json:[0-9]+:[0-9]+: limits.temp_files: expected a size'
}

@test "a FastCGI server held by a slow client is not timed out for it" {
	closer_cpm '"timeout": 2'
	cpm_start
	run python3 - "$CPM_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /closer?41943040&stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
time.sleep(3.5)  # longer than the server's timeout, while it waits for cpm
n = 0
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    n += len(d)
print(n)
PY
	kill "$app" 2>/dev/null || true
	wait "$app" 2>/dev/null || true
	rm -rf "$SOCKDIR"
	[ "$output" -gt 41943040 ]
	! grep -q "timeout" "$CPM_LOG"
	grep -q '"GET /closer?41943040&stream HTTP/1.1" 200 41943040 ' "$BATS_TEST_TMPDIR/access.log"
}

@test "a worker that dies without stopping its CGI programs does not leave them running" {
	CPM_WORKERS=1 cpm_config
	cpm_start
	curl -s -m 10 "$(url "/pid_sleep.sh?$BATS_TEST_TMPDIR/pid")" >/dev/null &
	client=$!
	within 5 test -s "$BATS_TEST_TMPDIR/pid"
	pid=$(cat "$BATS_TEST_TMPDIR/pid")
	kill -0 "$pid"
	# as the master does to a worker that missed its heartbeat
	kill -KILL "$(workers_of "$CPM_PID")"
	within 3 gone "$pid"
	within 3 grep -q "killed 1 CGI process group(s) it left running" "$CPM_LOG"
	wait "$client" || true
}

@test "limits.temp_files caps the response files of a worker: past it, backends wait for their clients" {
	CPM_WORKERS=1 cpm_config '"limits": {"temp_files": "1M"}'
	cpm_start
	worker=$(workers_of "$CPM_PID")
	clients=()
	for i in 1 2 3; do
		python3 - "$CPM_PORT" "$BATS_TEST_TMPDIR/got$i" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /huge.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
time.sleep(3)  # read nothing for a while
n = 0
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    n += len(d)
open(sys.argv[2], "w").write(str(n))
PY
		clients+=($!)
	done
	sleep 2
	# the worker's deleted temporary files add up to about the limit
	total=$(find /proc/"$worker"/fd -lname '*(deleted)' -exec stat -L -c %s {} + 2>/dev/null | awk '{s += $1} END {print s + 0}')
	echo "temp bytes: $total" >&3
	[ "$total" -gt 0 ]
	[ "$total" -le $((1048576 + 65536)) ]
	# the programs the files could not take are still running, held
	[ -n "$(cgi_groups_of "$CPM_PID")" ]
	wait "${clients[@]}"
	for i in 1 2 3; do
		[ "$(cat "$BATS_TEST_TMPDIR/got$i")" -gt 41943040 ]
	done
}
