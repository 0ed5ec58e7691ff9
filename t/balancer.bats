#!/usr/bin/env bats
# Two cpm instances behind Debian's haproxy on loopback, with the configs
# the README's "Running several instances" shows: etc/instances/ (cpm) and
# etc/haproxy/ (haproxy), only ports and paths changed here. The client
# behind PROXY v2 and behind X-Forwarded-For, health checks, and rolling
# restarts under a constant load counted by t/loadgen.py.
# BALANCER_RESULTS=FILE: the load generator's summaries are appended there.

load helpers

setup_file() {
	command -v haproxy >/dev/null || {
		echo "haproxy is missing: apt-get install haproxy" >&2
		return 1
	}
	command -v jq >/dev/null || {
		echo "jq is missing: apt-get install jq" >&2
		return 1
	}
}

setup() {
	T=$BATS_TEST_TMPDIR
	declare -gA PORT PID
	PORT[a]=$(free_port)
	PORT[b]=$(free_port)
	HAP_PORT=$(free_port)
	HAP_PID=
	LOAD_PID=
}

# inst_config NAME MODE [JQ]: $T/NAME.json from etc/instances/NAME.json
# (MODE proxy) or xff-NAME.json (MODE xff): its port, t/apps as the CGI
# root, logs in $T, "user" as the suite wants it, then the jq filter JQ
inst_config() {
	local n=$1 src=$ROOT/etc/instances/$1.json
	[ "$2" = proxy ] || src=$ROOT/etc/instances/$2-$1.json
	jq --arg addr "127.0.0.1:${PORT[$n]}" --arg apps "$APPS" --arg t "$T" --arg n "$n" --arg user "$CPM_USER" \
		'.listen[0] |= (if type == "object" then .address = $addr else $addr end)
		| .backends.app.root = $apps
		| .error_log = "\($t)/\($n)-error.log" | .access_log = "\($t)/\($n)-access.log"
		| if $user != "" then .user = $user else . end
		| '"${3:-.}" "$src" >"$T/$n.json"
}

# inst_start NAME: start cpm with $T/NAME.json, PID[NAME], wait for its port
inst_start() {
	local n=$1
	"$CPM" -c "$T/$n.json" >>"$T/$n-stderr.log" 2>&1 &
	PID[$n]=$!
	wait_listening "${PORT[$n]}" "${PID[$n]}" && return 0
	echo "cpm $n did not start:" >&2
	cat "$T/$n-stderr.log" "$T/$n-error.log" >&2 2>/dev/null
	return 1
}

# hap_start MODE: haproxy -db with etc/haproxy/cpm-MODE.cfg, HAP_PID; waits
# until it has seen both instances up
hap_start() {
	export HAPROXY_BIND=127.0.0.1:$HAP_PORT CPM_A=127.0.0.1:${PORT[a]} CPM_B=127.0.0.1:${PORT[b]}
	export HAPROXY_STATS=$T/haproxy.sock
	HAP_CFG=$ROOT/etc/haproxy/cpm-$1.cfg
	haproxy -c -q -f "$HAP_CFG"
	# fd 3 is bats' output: a daemon holding it would hold up the suite
	haproxy -db -f "$HAP_CFG" >>"$T/haproxy.log" 2>&1 3>&- &
	HAP_PID=$!
	wait_listening "$HAP_PORT" "$HAP_PID" || {
		cat "$T/haproxy.log" >&2
		return 1
	}
	within 5 hap_is a UP && within 5 hap_is b UP || {
		echo "haproxy does not see both instances up:" >&2
		cat "$T/haproxy.log" >&2
		return 1
	}
}

# hap_stat PROXY SERVER FIELD...: fields of a row of haproxy's "show stat"
# (its stats socket), by column name, summed (SERVER "BACKEND" for the
# backend's own row); a text field is printed as it is
hap_stat() {
	python3 - "$HAPROXY_STATS" "$@" <<'PY'
import csv, io, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
rows = list(csv.reader(io.StringIO(data.decode().lstrip("# "))))
head = rows[0]
for r in rows[1:]:
    if len(r) > 1 and r[0] == sys.argv[2] and r[1] == sys.argv[3]:
        v = [r[head.index(f)] for f in sys.argv[4:]]
        print(v[0] if len(v) == 1 and not v[0].isdigit() else sum(int(x or 0) for x in v))
PY
}

# hap_state SERVER: its status (UP, DOWN, "UP 1/2"...)
hap_state() {
	hap_stat cpm "$1" status
}

# hap_retries: requests the backend retried or redispatched
hap_retries() {
	hap_stat cpm BACKEND wretr wredis
}

hap_is() { # hap_is SERVER STATE
	[ "$(hap_state "$1")" = "$2" ]
}

# via ARGS...: curl through haproxy from 127.0.0.5, the path last
via() {
	local path=${*: -1}
	curl -s -m 5 --interface 127.0.0.5 "${@:1:$#-1}" "http://127.0.0.1:$HAP_PORT$path"
}

# direct NAME ARGS...: curl to instance NAME, the path last
direct() {
	local n=$1 path=${*: -1}
	shift
	curl -s -m 5 "${@:1:$#-1}" "http://127.0.0.1:${PORT[$n]}$path"
}

teardown() {
	local rc=0 n w kids=""
	[ -z "$LOAD_PID" ] || { kill "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" 2>/dev/null; }
	if [ -n "$HAP_PID" ]; then
		kill -TERM "$HAP_PID" 2>/dev/null || true
		wait "$HAP_PID" 2>/dev/null || true
	fi
	for n in a b; do
		[ -n "${PID[$n]:-}" ] || continue
		kids="$kids $(workers_of "${PID[$n]}")"
		# INT: a fast stop, drain_delay would hold up the suite
		kill -INT "${PID[$n]}" 2>/dev/null || true
	done
	for n in a b; do
		stop_pid "${PID[$n]:-}"
	done
	for w in $kids; do
		! kill -0 "$w" 2>/dev/null || { echo "worker $w survived" >&2; kill -KILL "$w"; rc=1; }
	done
	if grep -sE "runtime error|AddressSanitizer" "$T"/*-stderr.log "$T"/*-error.log >&2; then
		rc=1
	fi
	if grep -sE "worker [0-9]+ \(pid [0-9]+\) killed by signal (4|6|7|8|11) " "$T"/*-error.log >&2; then
		rc=1
	fi
	return $rc
}

# json FILE EXPR: jq -r on the load generator's summary
json() {
	jq -r "$2" "$1"
}

# seen_after FILE SERVER TIME: the load generator saw SERVER answer after TIME
seen_after() {
	[ -f "$1" ] && jq -e --arg s "$2" --argjson t "$3" '(.last_seen[$s] // 0) > $t' "$1" >/dev/null
}

sent_at_least() { # sent_at_least FILE N
	[ -f "$1" ] && jq -e --argjson n "$2" '.sent >= $n' "$1" >/dev/null
}

# rolling NAME SIGNAL: under t/loadgen.py's load through haproxy, stop A
# with SIGNAL, wait for it to exit, start it again, wait until haproxy has
# it up; then B. Asserts no failed request, enough sent, and both served
# after their restart.
rolling() {
	local label=$1 sig=$2 n up
	local status=$T/load.json stop=$T/load.stop
	declare -A t_up
	python3 "$ROOT/t/loadgen.py" "$HAP_PORT" --clients ${LOAD_CLIENTS:-4} --source 127.0.0.5 --expect REMOTE_ADDR=127.0.0.5 --duration 60 --stop-file "$stop" --status "$status" \
		>"$T/load.out" 2>"$T/load.err" 3>&- &
	LOAD_PID=$!
	within 5 sent_at_least "$status" 20
	for n in a b; do
		kill "-$sig" "${PID[$n]}"
		# haproxy takes it out while it drains
		within 3 hap_is "$n" DOWN
		kill -0 "${PID[$n]}"
		wait_exit "${PID[$n]}" 10
		[ "$EXIT_STATUS" = 0 ]
		PID[$n]=
		inst_start "$n"
		within 5 hap_is "$n" UP
		t_up[$n]=$(date +%s.%N)
	done
	within 5 seen_after "$status" "${PORT[a]}" "${t_up[a]}"
	within 5 seen_after "$status" "${PORT[b]}" "${t_up[b]}"
	touch "$stop"
	wait "$LOAD_PID"
	LOAD_PID=
	local out=$T/load.out
	# requests haproxy had to try again (retries and redispatches after a
	# failed connect): its own counters, wretr + wredis of the backend, from
	# the stats socket (its log may drop lines under load: it writes to
	# stderr without blocking)
	local retried line
	retried=$(hap_retries)
	line="$label: sent $(json "$out" .sent) ok $(json "$out" .ok) failed $(json "$out" .failed) by_server $(jq -c .by_server "$out") haproxy_retried $retried"
	echo "# $line" >&3
	[ -z "${BALANCER_RESULTS:-}" ] || echo "$line" >>"$BALANCER_RESULTS"
	if [ "$(json "$out" .failed)" != 0 ]; then
		echo "failures:" >&2
		jq -c '.failures[]' "$out" >&2
		echo "haproxy log:" >&2
		grep -v ' 200 ' "$T/haproxy.log" | tail -40 >&2
		return 1
	fi
	[ "$(json "$out" .sent)" -gt 200 ]
	# drain_delay took each instance out before it closed its port: no
	# connect failed and no request was redispatched
	[ "$retried" = 0 ]
	[ "$(json "$out" .ok)" = "$(json "$out" .sent)" ]
	seen_after "$out" "${PORT[a]}" "${t_up[a]}"
	seen_after "$out" "${PORT[b]}" "${t_up[b]}"
}

@test "PROXY v2 from haproxy: the CGI and the access log see the client 127.0.0.5 and its port; health checks pass; a connection without the header gets no answer and a log line" {
	inst_config a proxy
	inst_config b proxy
	inst_start a
	inst_start b
	hap_start proxy
	local i seen="" out lport
	for i in 1 2; do
		out=$(via -w 'LOCAL_PORT=%{local_port}\n' /client.sh)
		lport=$(sed -n 's/^LOCAL_PORT=//p' <<<"$out")
		grep -qx "REMOTE_ADDR=127.0.0.5" <<<"$out"
		grep -qx "REMOTE_PORT=$lport" <<<"$out"
		grep -qx "HTTPS=" <<<"$out"
		grep -qx "REQUEST_SCHEME=http" <<<"$out"
		seen="$seen $(sed -n 's/^SERVER_PORT=//p' <<<"$out")"
	done
	# round robin: one request each
	[[ "$seen" == *" ${PORT[a]}"* ]]
	[[ "$seen" == *" ${PORT[b]}"* ]]
	# the access log: the peer (haproxy) first, then the client
	grep -qE '^127\.0\.0\.1 127\.0\.0\.5:[0-9]+ .*"GET /client.sh HTTP/1.1" 200' "$T/a-access.log"
	grep -qE '^127\.0\.0\.1 127\.0\.0\.5:[0-9]+ .*"GET /client.sh HTTP/1.1" 200' "$T/b-access.log"
	# haproxy's checks (PROXY v2 LOCAL) answered 200: both stayed up
	hap_is a UP
	hap_is b UP
	grep -qE '"GET /healthz HTTP/1.[01]" 200' "$T/a-access.log"
	# PROXY v1 (curl --haproxy-protocol) straight to A
	run direct a --interface 127.0.0.5 --haproxy-protocol /client.sh
	assert_line "REMOTE_ADDR=127.0.0.5"
	# no header: closed without an answer, and logged
	run raw_http "${PORT[a]}" 'GET /client.sh HTTP/1.1\r\nHost: a\r\n\r\n' 2
	refute_output --partial "HTTP/"
	assert_line --regexp '^<(EOF|RESET)>$'
	within 2 grep -qi "proxy" "$T/a-error.log"
	grep -i "proxy" "$T/a-error.log" >&3
}

@test "health and drain on a PROXY listener: haproxy takes A out while it still serves; a slow request finishes; then the port closes" {
	inst_config a proxy '.drain_delay = "2s"'
	inst_config b proxy
	inst_start a
	inst_start b
	hap_start proxy
	run direct a --haproxy-protocol -i /healthz
	assert_output --partial "HTTP/1.1 200"
	assert_line --regexp '^ok'
	direct a --haproxy-protocol -o "$T/slow.out" -w '%{http_code}' /sleep.sh?3 >"$T/slow.code" &
	local slow=$!
	within 2 grep -q 'GET /healthz' "$T/a-access.log"
	kill -QUIT "${PID[a]}"
	within 2 eval 'direct a --haproxy-protocol /healthz | grep -q draining'
	run direct a --haproxy-protocol -i /healthz
	assert_output --partial "HTTP/1.1 503"
	assert_output --partial "Connection: close"
	# haproxy sees the 503s and takes A out, while A still takes work
	within 2 hap_is a DOWN
	hap_is b UP
	run direct a --haproxy-protocol -i /client.sh
	assert_output --partial "HTTP/1.1 200"
	assert_output --partial "Connection: close"
	# everything through haproxy now goes to B
	for i in 1 2 3 4; do
		run via /client.sh
		assert_line "SERVER_PORT=${PORT[b]}"
	done
	# after the delay A's port closes; the slow request still completes
	within 5 eval '! direct a --haproxy-protocol /healthz'
	wait "$slow"
	[ "$(cat "$T/slow.code")" = 200 ]
	grep -q slept "$T/slow.out"
	wait_exit "${PID[a]}" 5
	[ "$EXIT_STATUS" = 0 ]
	PID[a]=
}

@test "rolling restart under load behind PROXY v2, stopped with QUIT: no failed request" {
	inst_config a proxy
	inst_config b proxy
	inst_start a
	inst_start b
	hap_start proxy
	rolling "PROXY v2, QUIT" QUIT
}

@test "rolling restart under load behind PROXY v2, \"sigterm\": \"graceful\" and TERM: no failed request" {
	inst_config a proxy '.sigterm = "graceful"'
	inst_config b proxy '.sigterm = "graceful"'
	inst_start a
	inst_start b
	hap_start proxy
	rolling "PROXY v2, sigterm graceful + TERM" TERM
}

@test "X-Forwarded-For from a trusted haproxy sets the client; spoofed headers through haproxy or from an untrusted peer change nothing" {
	inst_config a xff
	inst_config b xff
	inst_start a
	inst_start b
	hap_start xff
	local i
	for i in 1 2; do
		run via /client.sh
		assert_line "REMOTE_ADDR=127.0.0.5"
		assert_line "HTTPS="
		assert_line "REQUEST_SCHEME=http"
	done
	# haproxy appends to the client's X-Forwarded-For: the right-most
	# untrusted address is still the client; the client's
	# X-Forwarded-Proto is replaced by haproxy's
	run via -H "X-Forwarded-For: 6.6.6.6" -H "X-Forwarded-Proto: https" /client.sh
	assert_line "REMOTE_ADDR=127.0.0.5"
	assert_line "HTTPS="
	assert_line "REQUEST_SCHEME=http"
	# the access log: peer haproxy, client 127.0.0.5
	grep -qE '^127\.0\.0\.1 127\.0\.0\.5:[0-9]*' "$T/a-access.log"
	grep -qE '^127\.0\.0\.1 127\.0\.0\.5:[0-9]*' "$T/b-access.log"
	# straight to A from 127.0.0.5, not trusted: the headers are passed on
	# and change nothing
	run direct a --interface 127.0.0.5 -H "X-Forwarded-For: 6.6.6.6" -H "X-Forwarded-Proto: https" /client.sh
	assert_line "REMOTE_ADDR=127.0.0.5"
	assert_line "HTTP_X_FORWARDED_FOR=6.6.6.6"
	assert_line "HTTP_X_FORWARDED_PROTO=https"
	assert_line "HTTPS="
	assert_line "REQUEST_SCHEME=http"
	grep -qE '^127\.0\.0\.5 127\.0\.0\.5:[0-9]* .* http$' "$T/a-access.log"
	# from 127.0.0.1, trusted: X-Forwarded-Proto https is believed
	run direct a -H "X-Forwarded-For: 6.6.6.6" -H "X-Forwarded-Proto: https" /client.sh
	assert_line "REMOTE_ADDR=6.6.6.6"
	assert_line "HTTPS=on"
	assert_line "REQUEST_SCHEME=https"
	grep -qE '^127\.0\.0\.1 6\.6\.6\.6:[0-9]* .* https$' "$T/a-access.log"
	# trusted_proxies ["127.0.0.2"]: 127.0.0.1 is not trusted any more
	stop_pid "${PID[a]}"
	PID[a]=
	inst_config a xff '.trusted_proxies = ["127.0.0.2"]'
	inst_start a
	run direct a -H "X-Forwarded-For: 6.6.6.6" -H "X-Forwarded-Proto: https" /client.sh
	assert_line "REMOTE_ADDR=127.0.0.1"
	assert_line "HTTP_X_FORWARDED_FOR=6.6.6.6"
	assert_line "HTTPS="
}

@test "rolling restart under load behind X-Forwarded-For, stopped with QUIT: no failed request" {
	inst_config a xff
	inst_config b xff
	inst_start a
	inst_start b
	hap_start xff
	rolling "X-Forwarded-For, QUIT" QUIT
}
