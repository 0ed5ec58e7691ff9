#!/usr/bin/env bats
# The status backend's metrics: per-backend counters and histograms in the
# scoreboard (they outlive workers and reloads), pool and CGI gauges, and
# the Prometheus text checked by promtool (Debian package prometheus).
load helpers

setup_file() {
	build_fcgi_apps flaky || return 1
}

setup() {
	command -v promtool >/dev/null || {
		echo "promtool is missing: apt-get install prometheus" >&2
		return 1
	}
}

# metrics_config [top-level members] [pool members]: /status, /py (the
# flaky FastCGI app, a pool "py"), / (t/apps: a cgi backend "apps" running
# one program at a time per worker, others queued)
metrics_config() {
	CPM_PORT=${CPM_PORT:-$(free_port)}
	local top=${1:-} pool=${2:-'"processes": 1'}
	[ -n "$top" ] && top="$top,"
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": ${CPM_WORKERS:-1},
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member "$top")
  $top
  "routes": [
    { "prefix": "/status", "backend": "status" },
    { "prefix": "/py", "backend": "py" },
    ${EXTRA_ROUTE:-}
    { "prefix": "/", "backend": "apps" }
  ],
  "backends": {
    "status": { "type": "status" },
    "py": { "type": "fastcgi", "command": ["$BATS_FILE_TMPDIR/flaky"], $pool },
    ${EXTRA_BACKEND:-}
    "apps": { "type": "cgi", "root": "$APPS", "max_concurrent": 1, "queue": 4, "queue_timeout": 10 }
  }
}
JSON
}

prom() { curl -s -m 3 "$(url '/status?format=prometheus')"; }

# val 'NAME{LABELS}' [FILE]: the value of that sample (from FILE, or a
# fresh scrape); fails if there is no such sample
val() {
	local src=${2:-}
	if [ -z "$src" ]; then
		src=$BATS_TEST_TMPDIR/scrape
		prom >"$src"
	fi
	awk -v k="$1" '$1 == k { print $2; found = 1 } END { exit !found }' "$src"
}

# promtool_ok FILE: promtool check metrics accepts FILE and says nothing
promtool_ok() {
	run promtool check metrics <"$1"
	assert_success
	assert_output ""
}

# histograms_consistent FILE: for every backend, each histogram's +Inf
# bucket equals its _count, buckets never go down, and the duration and
# wait _count equal the backend's cpm_requests_total over all classes
histograms_consistent() {
	python3 - "$1" <<'PY'
import re, sys
s = {}
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    k, v = line.rsplit(" ", 1)
    s[k] = float(v)
req = {}
for k, v in s.items():
    m = re.match(r'cpm_requests_total\{backend="(.*)",class=".*"\}$', k)
    if m:
        req[m.group(1)] = req.get(m.group(1), 0) + v
bad = []
for b, n in req.items():
    for h in ("cpm_request_duration_seconds", "cpm_request_wait_seconds"):
        count = s['%s_count{backend="%s"}' % (h, b)]
        buckets = [(k, v) for k, v in s.items() if k.startswith('%s_bucket{backend="%s",' % (h, b))]
        inf = s['%s_bucket{backend="%s",le="+Inf"}' % (h, b)]
        vals = [v for k, v in buckets]
        if count != n or inf != count or vals != sorted(vals) or len(vals) != 13:
            bad.append((b, h, n, count, inf, vals))
if bad:
    print(bad)
    sys.exit(1)
PY
}

@test "metrics: promtool accepts the Prometheus text after a CGI 200, a 404, a 400, a FastCGI 502 and a queued request; the counts are the requests made" {
	metrics_config
	cpm_start
	for i in 1 2 3; do curl -s -m 3 -o /dev/null "$(url '/status.sh?200')"; done
	for i in 1 2; do curl -s -m 3 -o /dev/null "$(url /no-such-script)"; done
	run raw "GET / HTTP/1.1\r\nHost: a\r\nBad header\r\n\r\n"
	assert_output --partial "HTTP/1.1 400 "
	run curl -s -m 5 -o /dev/null -w '%{http_code}' "$(url '/py?crash')"
	assert_output 502
	run curl -s -m 5 -o /dev/null -w '%{http_code}' "$(url '/py?x')"
	assert_output 200
	# two programs for a backend that runs one at a time: one waits
	curl -s -m 5 -o "$BATS_TEST_TMPDIR/s1" "$(url '/sleep.sh?1')" &
	p1=$!
	curl -s -m 5 -o "$BATS_TEST_TMPDIR/s2" "$(url '/sleep.sh?1')" &
	p2=$!
	within 3 eval '[ "$(val "cpm_cgi_queued{backend=\"apps\"}")" = 1 ]'
	prom >"$BATS_TEST_TMPDIR/during"
	assert_equal "$(val 'cpm_cgi_running{backend="apps"}' "$BATS_TEST_TMPDIR/during")" 1
	promtool_ok "$BATS_TEST_TMPDIR/during"
	wait $p1 $p2
	assert_equal "$(cat "$BATS_TEST_TMPDIR/s1" "$BATS_TEST_TMPDIR/s2")" "$(printf 'slept\nslept')"

	prom >"$BATS_TEST_TMPDIR/after"
	curl -s -m 3 "$(url /status)" >"$BATS_TEST_TMPDIR/after.json"
	promtool_ok "$BATS_TEST_TMPDIR/after"
	f=$BATS_TEST_TMPDIR/after
	assert_equal "$(val 'cpm_requests_total{backend="apps",class="2xx"}' "$f")" 5
	assert_equal "$(val 'cpm_requests_total{backend="apps",class="4xx"}' "$f")" 2
	assert_equal "$(val 'cpm_requests_total{backend="(none)",class="4xx"}' "$f")" 1
	assert_equal "$(val 'cpm_requests_total{backend="py",class="2xx"}' "$f")" 1
	assert_equal "$(val 'cpm_requests_total{backend="py",class="5xx"}' "$f")" 1
	assert_equal "$(val 'cpm_backend_errors_total{backend="py",code="502"}' "$f")" 1
	assert_equal "$(val 'cpm_backend_errors_total{backend="apps",code="502"}' "$f")" 0
	# the status requests before this one (the waits above, "during")
	[ "$(val 'cpm_requests_total{backend="status",class="2xx"}' "$f")" -ge 2 ]
	assert_equal "$(val 'cpm_request_duration_seconds_count{backend="apps"}' "$f")" 7
	# the queued program waited about a second for its slot, no other did
	assert_equal "$(val 'cpm_request_wait_seconds_bucket{backend="apps",le="0.5"}' "$f")" 6
	assert_equal "$(val 'cpm_request_wait_seconds_bucket{backend="apps",le="2.5"}' "$f")" 7
	assert_equal "$(val 'cpm_request_duration_seconds_bucket{backend="apps",le="0.5"}' "$f")" 5
	assert_equal "$(val 'cpm_cgi_running{backend="apps"}' "$f")" 0
	assert_equal "$(val 'cpm_cgi_queued{backend="apps"}' "$f")" 0
	run histograms_consistent "$f"
	assert_success
	assert_equal "$(val 'cpm_workers{state="ready"}' "$f")" 1
	assert_equal "$(val 'cpm_pool_up{pool="py"}' "$f")" 1
	# no sample carries a pid
	run grep -c 'pid=' "$f"
	assert_output 0
	# every family has its HELP and TYPE
	run python3 -c '
import sys
fam = set(); meta = {}
for l in open(sys.argv[1]):
    p = l.split()
    if l.startswith("# "):
        meta.setdefault(p[2], set()).add(p[1])
    elif p:
        n = p[0].split("{")[0]
        for suf in ("_bucket", "_sum", "_count"):
            if n.endswith(suf) and n[: -len(suf)] in meta:
                n = n[: -len(suf)]
        fam.add(n)
print(sorted(f for f in fam if meta.get(f) != {"HELP", "TYPE"}))' "$f"
	assert_output "[]"
	# the JSON has the same numbers
	run python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
b = {x["name"]: x for x in d["backends"]}
print(b["apps"]["requests"]["2xx"], b["apps"]["requests"]["4xx"], b["py"]["errors"]["502"],
      b["apps"]["duration_seconds"]["count"], b["apps"]["wait_seconds"]["buckets"][6], b["(none)"]["requests"]["total"],
      d["requests"]["total"] == sum(x["requests"]["total"] for x in d["backends"]), d["pools"][0]["up"])' \
		"$BATS_TEST_TMPDIR/after.json"
	assert_output "5 2 1 7 [0.5, 6] 1 True True"
}

@test "metrics: counters go on across a worker replaced by max_requests and across HUP; a new backend gets its own" {
	metrics_config '"max_requests": 4'
	cpm_start
	w1=$(workers_of "$CPM_PID")
	for i in 1 2 3 4 5 6; do curl -s -m 3 -o /dev/null "$(url '/status.sh?200')"; done
	# the first worker served 4 and was replaced
	within 3 eval '[ -n "$(workers_of "$CPM_PID")" ] && [ "$(workers_of "$CPM_PID")" != "$w1" ]'
	assert_equal "$(val 'cpm_requests_total{backend="apps",class="2xx"}')" 6
	assert_equal "$(val 'cpm_request_duration_seconds_count{backend="apps"}')" 6
	w2=$(workers_of "$CPM_PID")
	EXTRA_ROUTE='{ "prefix": "/more/", "backend": "more" },' \
		EXTRA_BACKEND="\"more\": { \"type\": \"cgi\", \"root\": \"$APPS\" }," metrics_config '"max_requests": 4'
	kill -HUP "$CPM_PID"
	within 5 eval '[ -n "$(workers_of "$CPM_PID")" ] && ! grep -qw "$w2" <<<"$(workers_of "$CPM_PID")"'
	curl -s -m 3 -o /dev/null "$(url '/status.sh?200')"
	run curl -s -m 3 -o /dev/null -w '%{http_code}' "$(url '/more/status.sh?201')"
	assert_output 201
	prom >"$BATS_TEST_TMPDIR/p"
	assert_equal "$(val 'cpm_config_generation' "$BATS_TEST_TMPDIR/p")" 1
	assert_equal "$(val 'cpm_requests_total{backend="apps",class="2xx"}' "$BATS_TEST_TMPDIR/p")" 7
	assert_equal "$(val 'cpm_request_duration_seconds_count{backend="apps"}' "$BATS_TEST_TMPDIR/p")" 7
	assert_equal "$(val 'cpm_requests_total{backend="more",class="2xx"}' "$BATS_TEST_TMPDIR/p")" 1
	promtool_ok "$BATS_TEST_TMPDIR/p"
	run histograms_consistent "$BATS_TEST_TMPDIR/p"
	assert_success
}

@test "metrics: pool processes each in one state; a hung request is a 504, a kill and a restart" {
	metrics_config "" '"processes": 2, "timeout": 2'
	cpm_start
	within 3 eval '[ "$(val "cpm_pool_processes{pool=\"py\",state=\"idle\"}")" = 2 ]'
	curl -s -m 5 -o /dev/null "$(url '/py?sleep=1500')" &
	p=$!
	within 3 eval '[ "$(val "cpm_pool_processes{pool=\"py\",state=\"busy\"}")" = 1 ]'
	f=$BATS_TEST_TMPDIR/scrape
	# the same scrape: busy is not also counted as idle
	assert_equal "$(val 'cpm_pool_processes{pool="py",state="idle"}' "$f")" 1
	assert_equal "$(val 'cpm_pool_processes{pool="py",state="draining"}' "$f")" 0
	assert_equal "$(val 'cpm_pool_processes{pool="py",state="down"}' "$f")" 0
	assert_equal "$(val 'cpm_pool_waiting_workers{pool="py"}' "$f")" 0
	assert_equal "$(val 'cpm_pool_starts_total{pool="py"}' "$f")" 2
	wait $p
	# past the timeout: 504, the process is killed and started again
	run curl -s -m 8 -o /dev/null -w '%{http_code}' "$(url '/py?sleep=5000')"
	assert_output 504
	within 5 eval '[ "$(val "cpm_pool_restarts_total{pool=\"py\"}")" = 1 ]'
	prom >"$f"
	assert_equal "$(val 'cpm_pool_kills_total{pool="py"}' "$f")" 1
	assert_equal "$(val 'cpm_pool_starts_total{pool="py"}' "$f")" 3
	assert_equal "$(val 'cpm_backend_errors_total{backend="py",code="504"}' "$f")" 1
	assert_equal "$(val 'cpm_requests_total{backend="py",class="2xx"}' "$f")" 1
	assert_equal "$(val 'cpm_pool_crash_loops_total{pool="py"}' "$f")" 0
	promtool_ok "$f"
}

@test "metrics: a backend name with a quote and a backslash is one escaped label that promtool accepts" {
	EXTRA_ROUTE='{ "prefix": "/odd/", "backend": "a\"b\\c" },'
	EXTRA_BACKEND='"a\"b\\c": { "type": "cgi", "root": "'"$APPS"'" },'
	metrics_config
	cpm_start
	run curl -s -o /dev/null -w '%{http_code}' "$(url /odd/env.sh)"
	assert_output 200
	prom >"$BATS_TEST_TMPDIR/scrape"
	run promtool check metrics <"$BATS_TEST_TMPDIR/scrape"
	assert_success
	# (not val: awk -v would take the backslashes as escapes)
	run grep -cxF 'cpm_requests_total{backend="a\"b\\c",class="2xx"} 1' "$BATS_TEST_TMPDIR/scrape"
	assert_output 1
	run curl -s "$(url /status)"
	python3 -c 'import json, sys; d = json.loads(sys.argv[1]); assert any(b["name"] == "a\"b\\c" for b in d["backends"]), d' "$output"
}

@test "metrics: TLS handshakes counted full, resumed and failed, across both workers" {
	CPM_PORT=$(free_port)
	TLS_PORT=$(free_port)
	d=$BATS_TEST_TMPDIR
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" \
		-days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
	cat >"$d/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT",
             {"address": "127.0.0.1:$TLS_PORT", "tls": {"certificate": "cert.pem", "key": "key.pem"}}],
  "workers": 2, "header_timeout": 1,
  "access_log": "$d/access.log", "error_log": "$d/error.log", $(user_member "")
  "routes": [{ "prefix": "/status", "backend": "status" }],
  "backends": { "status": { "type": "status" } }
}
JSON
	cpm_start
	# 3 full handshakes, then 4 resumed with the first session's ticket
	for i in 1 2 3; do
		curl -sf --cacert "$d/cert.pem" -o /dev/null "https://localhost:$TLS_PORT/status"
	done
	# (a request each: a TLS 1.3 ticket comes after the handshake)
	req='GET /status HTTP/1.0\r\n\r\n'
	printf "$req" | openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername localhost -ign_eof \
		-sess_out "$d/sess" >/dev/null 2>&1
	for i in 1 2 3 4; do
		run sh -c "printf '$req' | openssl s_client -connect 127.0.0.1:$TLS_PORT -servername localhost -ign_eof \
			-sess_in $d/sess"
		assert_line --partial "Reused, TLSv1.3"
	done
	# failed: TLS 1.1, garbage instead of a ClientHello, one that stalls
	run openssl s_client -connect "127.0.0.1:$TLS_PORT" -tls1_1 </dev/null
	assert_failure
	python3 - "$TLS_PORT" <<'PY'
import socket, sys, time
p = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", p)); s.sendall(b"\x16\x03\x01\x00\x05garbage"); s.settimeout(3)
try:
    s.recv(100)
except OSError:
    pass
s = socket.create_connection(("127.0.0.1", p)); s.sendall(b"\x16\x03\x01"); s.settimeout(3)
t = time.time()
assert s.recv(100) == b"" and time.time() - t < 2.5, "a stalled handshake must be cut by header_timeout (1 s)"
PY
	f=$d/scrape
	within 3 eval '[ "$(val "cpm_tls_handshakes_total{result=\"failed\"}")" = 3 ]'
	prom >"$f"
	assert_equal "$(val 'cpm_tls_handshakes_total{result="full"}' "$f")" 4
	assert_equal "$(val 'cpm_tls_handshakes_total{result="resumed"}' "$f")" 4
	promtool_ok "$f"
	run curl -s "$(url /status)"
	python3 -c 'import json, sys; t = json.loads(sys.argv[1])["tls"]; assert t == {"handshakes": 8, "resumed": 4, "failed": 3}, t' "$output"
	grep -q "TLS handshake not complete within header_timeout" "$d/error.log"
}
