#!/usr/bin/env bats
# CGI edge cases beyond cgi.bats: the process a script starts in, the
# response-header rules, TERM-then-KILL, bodies the script ignores,
# back-pressure on a slow reader.
load helpers

code() { curl -s -o /dev/null -w '%{http_code}' "$(url "$1")"; }

@test "a script starts with an empty signal mask, no ignored signals, in its own process group" {
	cpm_start
	run curl -s "$(url /sigstate.sh)"
	assert_line "SigBlk=0000000000000000"
	assert_line "pgrp_is_pid=yes"
	# signals 1..31; glibc's posix_spawn leaves its internal signals 32 and
	# 33 ignored and offers no way to reset them, so those are not checked
	ign=$(sed -n 's/^SigIgn=//p' <<<"$output")
	[ -n "$ign" ]
	assert_equal "$(printf '%x' $((0x$ign & 0x7fffffff)))" 0
}

@test "cpm's own environment does not leak into scripts" {
	export CPM_TEST_SECRET=leaked
	cpm_start
	run curl -s "$(url /env.sh)"
	assert_line "GATEWAY_INTERFACE=CGI/1.1"
	refute_output --partial "CPM_TEST_SECRET"
	refute_line --regexp '^(HOME|BATS_[A-Z_]*)='
}

@test "a header block over 32K is 502" {
	cpm_start
	run code /big_header.sh
	assert_output 502
}

@test "a header name with invalid characters is 502" {
	cpm_start
	run code /bad_name.sh
	assert_output 502
}

@test "a header block with bare LF endings is accepted" {
	cpm_start
	run curl -si "$(url /lf_header.sh)"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line --regexp '^X-Lf: yes'
	assert_line "lf body"
}

@test "Status outside 100..599 is 502" {
	cpm_start
	run code '/status.sh?099%20Low'
	assert_output 502
	run code '/status.sh?600%20High'
	assert_output 502
	run code '/status.sh?599%20Edge'
	assert_output 599
}

@test "a Location with an explicit Status is passed through, not followed" {
	cpm_start
	run curl -si "$(url /status_location.sh)"
	assert_line --regexp '^HTTP/1.1 301'
	assert_line --regexp '^Location: /env.sh'
	refute_output --partial "GATEWAY_INTERFACE"
}

@test "an internal redirect of a POST re-dispatches as GET without the body" {
	cpm_start
	run curl -s --data 'payload=1' "$(url /redirect_local.sh)"
	assert_line "REQUEST_METHOD=GET"
	assert_line "SCRIPT_NAME=/env.sh"
	refute_line --partial "CONTENT_LENGTH="
}

@test "a script that ignores TERM is killed with KILL after the timeout" {
	CPM_CGI_TIMEOUT=1 cpm_config
	cpm_start
	pidf=$BATS_TEST_TMPDIR/pid
	run curl -s -m 5 -o /dev/null -w '%{http_code} %{time_total}' "$(url "/ignore_term.sh?$pidf")"
	assert_output --regexp '^504 1\.' # the client does not wait for the KILL
	pid=$(cat "$pidf")
	for i in $(seq 70); do group_gone "$pid" && break; sleep 0.1; done
	run group_gone "$pid"
	assert_success
}

@test "a script that does not read a 1 MB body still answers" {
	cpm_start
	head -c 1048576 /dev/zero >"$BATS_TEST_TMPDIR/body"
	run timeout 5 curl -s --data-binary @"$BATS_TEST_TMPDIR/body" "$(url /ex/hello.sh)"
	assert_success
	assert_output "Hello, world!"
	# and the worker is still fine
	run curl -s "$(url /ex/hello.sh)"
	assert_output "Hello, world!"
}

@test "the body limit is exact: limit bytes pass, one more is 413" {
	cpm_config '"limits": {"body": "1K"}'
	cpm_start
	run curl -s --data-binary @<(head -c 1024 /dev/zero) "$(url /echo_body.sh)"
	assert_line "CONTENT_LENGTH=1024"
	run curl -s -o /dev/null -w '%{http_code}' --data-binary @<(head -c 1025 /dev/zero) "$(url /echo_body.sh)"
	assert_output 413
}

@test "a slow reader does not make the worker buffer the whole response" {
	CPM_WORKERS=1 cpm_config
	cpm_start
	worker=$(pgrep -P "$CPM_PID" -f 'cpm: worker')
	run python3 - "$CPM_PORT" "$worker" <<'PY'
import socket, sys, time
def rss(pid):
    for l in open("/proc/%s/status" % pid):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
before = rss(sys.argv[2])
s.sendall(b"GET /big.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
time.sleep(2)                      # read nothing while the script writes 10 MB
during = rss(sys.argv[2])
n = 0
s.settimeout(5)
while True:
    d = s.recv(1 << 20)
    if not d: break
    n += len(d)
print("grew_kb=%d received=%d" % (during - before, n))
sys.exit(0 if during - before < 4096 and n > 10485760 else 1)
PY
	assert_success
}

@test "fifty pipelined requests in one write are answered in order" {
	cpm_start
	req=""
	for i in $(seq 200 249); do req="$req""GET /status.sh?$i HTTP/1.1\r\nHost: a\r\n\r\n"; done
	req="$req""GET /status.sh?250 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	run raw "$req" 5
	codes=$(grep -o '^HTTP/1.1 2[0-9][0-9]' <<<"$output" | cut -d' ' -f2 | tr '\n' ' ')
	assert_equal "$codes" "$(seq 200 250 | tr '\n' ' ')"
	assert_line "<EOF>"
}

@test "rlimits and no_new_privs apply to CGI programs; cpu kills a spinning one" {
	cpm_config "" '"rlimits": {"cpu": 1, "as": "256M", "nofile": 32, "nproc": 500}, "no_new_privs": true'
	cpm_start
	run curl -s "$(url /limits.sh)"
	assert_line "nofile=32 as=262144 cpu=1 nproc=500"
	assert_line "no_new_privs=1"
	# the CPU limit ends it (SIGKILL at the hard limit) long before the
	# 10 s timeout; the head was sent, so the client sees a cut response
	start=$(date +%s%N)
	run curl -s -m 8 "$(url /limits.sh?spin)"
	end=$(date +%s%N)
	[ $(((end - start) / 1000000)) -lt 5000 ]
	for _ in $(seq 60); do
		grep -q "limits.sh\[[0-9]*\]: killed by signal 9" "$CPM_LOG" && break
		sleep 0.05
	done
	grep -q "limits.sh\[[0-9]*\]: killed by signal 9" "$CPM_LOG"
}

@test "without rlimits a CGI program keeps the worker's limits and may gain privileges" {
	cpm_start
	run curl -s "$(url /limits.sh)"
	assert_line "nofile=$(ulimit -n) as=unlimited cpu=unlimited nproc=$(ulimit -u)"
	assert_line "no_new_privs=0"
}

@test "a small body that has all arrived waits in the queue past client_timeout and is answered" {
	CPM_WORKERS=1
	cpm_config '"client_timeout": 1' '"max_concurrent": 1, "queue_timeout": 10'
	cpm_start
	curl -s -m 10 "$(url /sleep.sh?3)" >/dev/null &
	holder=$!
	sleep 0.3
	# the body is complete at once; the request then waits ~3 s for the slot
	run curl -s -m 10 --data-binary 0123456789 "$(url /echo_body.sh)"
	wait "$holder"
	assert_line "CONTENT_LENGTH=10"
	assert_line "sha=$(printf 0123456789 | sha256sum | cut -d' ' -f1)"
	run grep -c "client stalled" "$CPM_LOG"
	assert_output 0
}
