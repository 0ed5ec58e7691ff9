#!/usr/bin/env bats
# A pool whose processes die at start (a crash loop) is down: after 2
# quick deaths in a row with none running, workers answer its requests
# with 502 at once, naming the reason, instead of queueing them for a
# 503/504; the master starts no more processes than before (no scale-up)
# and keeps trying with its backoff, one process at a time; one that lives
# 1 s brings the pool up again.
load helpers

setup() {
	VERSION_FILE=$BATS_TEST_TMPDIR/version
	echo v1 >"$VERSION_FILE"
}

# down_config 'MEMBERS': pool "php" at /app with MEMBERS, the status page
down_config() {
	CPM_PORT=${CPM_PORT:-$(free_port)}
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": 2,
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member)
  "routes": [ { "prefix": "/app", "backend": "php" }, { "prefix": "/status", "backend": "status" } ],
  "backends": {
    "php": { "type": "fastcgi", "queue_timeout": 30, "timeout": 30, $1 },
    "status": { "type": "status" }
  }
}
JSON
}

# pool_field EXPR: EXPR of the status JSON's row of pool php (p)
pool_field() {
	curl -sf "$(url /status)" | python3 -c '
import json, sys
p = [p for p in json.load(sys.stdin)["pools"] if p["name"] == "php"][0]
print(eval(sys.argv[1]))' "$1"
}

is_down() {
	[ "$(pool_field 'p["state"]')" = down ]
}

REASON='no process running \(crash loop: last exit code [0-9]+, [0-9]+ restarts, next try in [0-9]+\.[0-9] s\)'

@test "/bin/false: the pool is down, a request gets 502 at once with the reason; no scale-up" {
	down_config '"command": ["/bin/false"], "min": 1, "max": 3'
	cpm_start
	within 3 is_down
	run pool_field 'p["reason"]'
	assert_output --regexp "^${REASON/code \[0-9\]+/code 1}$"
	# at once, and the log line names the request and the reason
	run curl -s -o /dev/null -w '%{http_code} %{time_total}' "$(url /app/page?x=1)"
	assert_output --regexp '^502 0\.0[0-9]+$'
	grep -qE "\[error\] cpm\[[0-9]+\]: 127\.0\.0\.1:[0-9]+ \"GET /app/page\?x=1\" id=[0-9a-f]+: pool php: $REASON$" "$CPM_LOG"
	grep -qE "\[error\] cpm\[$CPM_PID\]: pool php: $REASON$" "$CPM_LOG"
	# a burst: all 502 at once, and no process more than one at a time
	run python3 - "$CPM_PORT" <<'PY'
import http.client, sys, threading, time
codes, t0 = [], time.time()
def get():
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=20)
    c.request("GET", "/app")
    codes.append(c.getresponse().status)
ts = [threading.Thread(target=get) for _ in range(20)]
for t in ts: t.start()
for t in ts: t.join()
print(sorted(set(codes)), len(codes), time.time() - t0 < 1)
PY
	assert_output "[502] 20 True"
	sleep 1
	! grep -q "requests are waiting; starting process" "$CPM_LOG"
	! grep -qE "pool php\[[1-3]\]: started pid" "$CPM_LOG"
	# the master says it once
	run grep -c "cpm\[$CPM_PID\]: pool php: no process running" "$CPM_LOG"
	assert_output 1
}

@test "requests already waiting for a process get 502 as soon as the pool is down" {
	# each process lives 0.3 s without accepting: the first request waits
	# in its socket, the second in the worker's queue (timeouts 30 s)
	down_config '"command": ["/bin/sh", "-c", "sleep 0.3; exit 3"], "processes": 1'
	sed -i 's/"workers": 2/"workers": 1/' "$BATS_TEST_TMPDIR/cpm.json"
	cpm_start
	start=$(date +%s%N)
	curl -s -o /dev/null -w '%{http_code}' "$(url /app/a)" >"$BATS_TEST_TMPDIR/a" &
	a=$!
	curl -s -o /dev/null -w '%{http_code}' "$(url /app/b)" >"$BATS_TEST_TMPDIR/b" &
	b=$!
	wait $a $b
	ms=$((($(date +%s%N) - start) / 1000000))
	run cat "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
	assert_output 502502
	# two 0.3 s lives and a 0.2 s backoff: down after about 0.8 s
	[ "$ms" -lt 3000 ] || {
		echo "took $ms ms" >&2
		false
	}
	# one line each, with the reason: the one whose connection waited in
	# the socket of the dead process, and the one in the worker's queue
	run grep -cE "\"GET /app/[ab]\" id=[0-9a-f]+: fastcgi php \(unix:[^)]*\): connection closed before END_REQUEST; pool php: $REASON$" "$CPM_LOG"
	assert_output 1
	run grep -cE "\"GET /app/[ab]\" id=[0-9a-f]+: pool php: $REASON$" "$CPM_LOG"
	assert_output 1
	grep -qE "pool php: no process running \(crash loop: last exit code 3, 2 restarts" "$CPM_LOG"
}

@test "a Perl app with a missing module: down with the exit code and Perl's message; 502 at once" {
	printf '#!/usr/bin/perl\nuse Nonexistent::Module;\n' >"$BATS_TEST_TMPDIR/app.pl"
	chmod +x "$BATS_TEST_TMPDIR/app.pl"
	down_config "\"command\": [\"$BATS_TEST_TMPDIR/app.pl\"], \"processes\": 2"
	cpm_start
	within 5 is_down
	run curl -s -o /dev/null -w '%{http_code} %{time_total}' "$(url /app)"
	assert_output --regexp '^502 0\.0[0-9]+$'
	run pool_field 'p["state"], p["reason"]'
	assert_output --regexp "^\('down', '${REASON/code \[0-9\]+/code 2}'\)$"
	grep -q "pool php\[[01]\] pid [0-9]*: Can't locate Nonexistent/Module.pm" "$CPM_LOG"
	# never more than the 2 processes of the pool, one at a time while down
	run grep -oE "pool php\[[0-9]+\]: started" "$CPM_LOG"
	refute_output --partial "php[2]"
}

@test "a pool that is down comes up again once its app is fixed, without a reload" {
	echo broken >"$VERSION_FILE"
	down_config "\"command\": [\"$ROOT/t/apps-fcgi/version.pl\"], \"processes\": 1,
		\"env\": { \"VERSION_FILE\": \"$VERSION_FILE\" }"
	cpm_start
	within 5 is_down
	run curl -s -o /dev/null -w '%{http_code}' "$(url /app)"
	assert_output 502
	echo v3 >"$VERSION_FILE"
	within 8 eval '[ "$(pool_field "p[\"state\"]")" = up ]'
	run curl -s -w 'status=%{http_code}' "$(url /app)"
	assert_line --index 0 --regexp '^version=v3 pid=[0-9]+$'
	assert_line --index 1 status=200
	grep -qE "pool php: up again \(pid [0-9]+ has run [0-9]+ ms\)$" "$CPM_LOG"
	run pool_field 'p["reason"]'
	assert_output None
	# a reload of a pool that is down tries at once
	echo broken >"$VERSION_FILE"
	kill -HUP "$CPM_PID"
	within 5 grep -q "pool php: restart stopped" "$CPM_LOG"
	run curl -s -w 'status=%{http_code}' "$(url /app)"
	assert_line --index 0 --regexp '^version=v3 pid=[0-9]+$'
	assert_line --index 1 status=200
}

@test "the reason's 'next try in' is the time left when it is read, not when the pool went down" {
	down_config '"command": ["/bin/false"], "min": 1, "max": 1'
	cpm_start
	# once the backoff is long (2 s or more), no try can happen between
	# two reads 0.6 s apart: the second must say about 0.6 s less
	next_try() { pool_field 'p["reason"]' | sed -nE 's/.*next try in ([0-9]+\.[0-9]) s\)$/\1/p'; }
	long_wait() { is_down && [ "$(next_try | tr -d .)" -ge 20 ]; }
	within 20 long_wait
	local a b
	a=$(next_try | tr -d .)
	sleep 0.6
	b=$(next_try | tr -d .)
	# tenths of a second: 0.6 s less, give or take 0.2
	[ $((a - b)) -ge 4 ] && [ $((a - b)) -le 8 ] || { echo "next try: $a then $b (tenths)"; false; }
	# a request's log line says the same as the status page
	curl -s -o /dev/null "$(url /app/x)"
	local logged
	logged=$(grep -oE '"GET /app/x" id=[0-9a-f]+: pool php: .*next try in [0-9]+\.[0-9] s\)$' "$CPM_LOG" | tail -1 |
		sed -nE 's/.*next try in ([0-9]+\.[0-9]) s\)$/\1/p' | tr -d .)
	[ "$logged" -le "$b" ] || { echo "logged $logged after $b"; false; }
}
