#!/usr/bin/env bats
# The access log: one line per request whatever happened to it, request
# ids (from the client when well-formed, else made by cpm) that reach the
# backends and the error log, and access_log_format: combined, json and
# templates of named fields, with a CGI program's resource usage (wait4).
load helpers

setup_file() {
	build_fcgi_apps echo slow || return 1
}

# log_config [top-level members]: cgi apps at / (timeout 1 s), /one/
# (max_concurrent 1, no queue), /q/ (max_concurrent 1 with a queue), a
# deny list, Basic auth, a pool of t/apps-fcgi/echo (prints its params) at /app, static
# files at /static/; JSON access log unless the members say otherwise.
log_config() {
	CPM_PORT=${CPM_PORT:-$(free_port)}
	local top=${1:-}
	[ -n "$top" ] || top='"access_log_format": "json"'
	mkdir -p "$BATS_TEST_TMPDIR/files"
	echo "static text" >"$BATS_TEST_TMPDIR/files/a.txt"
	htpasswd -cbB -C 5 "$BATS_TEST_TMPDIR/htpasswd" alice secret 2>/dev/null
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": 1,
  "graceful_timeout": 1,
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log",
  $top,
  $(user_member)
  "routes": [
    { "prefix": "/one/", "backend": "one" },
    { "prefix": "/q/", "backend": "q" },
    { "prefix": "/denied/", "backend": "apps", "deny": ["all"] },
    { "prefix": "/sec/", "backend": "apps",
      "auth": {"basic": {"realm": "r", "user_file": "$BATS_TEST_TMPDIR/htpasswd"}} },
    { "prefix": "/app", "backend": "pool" },
    { "prefix": "/static/", "backend": "files" },
    { "prefix": "/", "backend": "apps" }
  ],
  "backends": {
    "apps": { "type": "cgi", "root": "$BATS_TEST_TMPDIR/cgi", "timeout": 1 },
    "one": { "type": "cgi", "root": "$BATS_TEST_TMPDIR/cgi", "max_concurrent": 1, "queue": 0 },
    "q": { "type": "cgi", "root": "$BATS_TEST_TMPDIR/cgi", "max_concurrent": 1, "queue": 5, "queue_timeout": 10 },
    "pool": { "type": "fastcgi", "command": ["$BATS_FILE_TMPDIR/echo"], "processes": 1 },
    "files": { "type": "static", "root": "$BATS_TEST_TMPDIR/files" }
  }
}
JSON
	# t/apps, pid.sh: prints its pid ($$: the process cpm spawned), and
	# hold.sh: touches held, sleeps the seconds its query starts with
	cp -a "$APPS" "$BATS_TEST_TMPDIR/cgi"
	printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho "pid=$$"\n' >"$BATS_TEST_TMPDIR/cgi/pid.sh"
	cat >"$BATS_TEST_TMPDIR/cgi/hold.sh" <<SH
#!/bin/sh
touch "$BATS_TEST_TMPDIR/held"
sleep "\${QUERY_STRING%%&*}"
printf 'Content-Type: text/plain\r\n\r\nheld\n'
SH
	chmod +x "$BATS_TEST_TMPDIR/cgi/pid.sh" "$BATS_TEST_TMPDIR/cgi/hold.sh"
}

# hold_bg PATH: GET PATH (hold.sh) in the background (pid in HOLD_PID),
# return once the program runs
hold_bg() {
	rm -f "$BATS_TEST_TMPDIR/held"
	curl -s -m 10 -o /dev/null "$(url "$1")" &
	HOLD_PID=$!
	within 3 test -e "$BATS_TEST_TMPDIR/held"
}

ALOG() { cat "$BATS_TEST_TMPDIR/access.log"; }

# jcheck PYTHON: run PYTHON with L, the access log's lines parsed as JSON
# (every line must parse), and by(s), the lines whose target contains s
jcheck() {
	python3 -c '
import json, sys
L = [json.loads(l) for l in open(sys.argv[1])]
def by(s): return [l for l in L if l["target"] and s in l["target"]]
'"$1" "$BATS_TEST_TMPDIR/access.log"
}

@test "every request gets exactly one access-log line with its status, whatever happened" {
	log_config
	cpm_start
	u() { url "$1"; }
	curl -s -o /dev/null "$(u '/env.sh?c=ok')"
	# the client leaves before the response head: 499
	raw 'GET /hold.sh?2&c=gone HTTP/1.1\r\nHost: a\r\n\r\n' 0.3 >/dev/null
	# ... in the middle of the body: the status sent, the bytes that got out
	python3 - "$CPM_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /stream.sh?c=midbody HTTP/1.1\r\nHost: a\r\n\r\n")
got = b""
while b"one\n" not in got:
    got += s.recv(4096)
s.close()
PY
	curl -s -o /dev/null "$(u '/hold.sh?5&c=timeout')"                  # 504
	curl -s -o /dev/null "$(u '/badheader.sh?c=badgw')"                  # 502
	curl -s -o /dev/null "$(u '/redirect_local.sh?c=redir')"             # one line, not two
	curl -s -o /dev/null "$(u '/denied/env.sh?c=deny')"                  # 403
	curl -s -o /dev/null "$(u '/sec/env.sh?c=noauth')"                   # 401
	curl -s -o /dev/null "$(u '/nothere.sh?c=404')"                      # 404
	# a full queue: one runs, the next is refused at once
	hold_bg '/one/hold.sh?1&c=busy'
	curl -s -o /dev/null "$(u '/one/env.sh?c=full')"                     # 503
	wait "$HOLD_PID"
	raw 'GET /env.sh?c=400 HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n' >/dev/null
	raw "GET /env.sh?c=414$(head -c 9000 /dev/zero | tr '\0' x) HTTP/1.1\r\nHost: a\r\n\r\n" >/dev/null
	raw "GET /env.sh?c=431 HTTP/1.1\r\nHost: a\r\nX-Big: $(head -c 40000 /dev/zero | tr '\0' y)\r\n\r\n" >/dev/null
	# a request cut by a graceful stop (graceful_timeout 1 s; /q/ has the
	# default timeout)
	hold_bg '/q/hold.sh?3&c=cut'
	kill -QUIT "$CPM_PID"
	wait_exit "$CPM_PID" 5
	CPM_PID=
	wait "$HOLD_PID" || true
	run jcheck '
cases = {"c=ok": 200, "c=gone": 499, "c=midbody": 200, "c=timeout": 504, "c=badgw": 502,
         "c=redir": 200, "c=deny": 403, "c=noauth": 401, "c=404": 404, "c=busy": 200, "c=full": 503,
         "c=400": 400, "c=cut": 499}
for k, st in cases.items():
    got = [(l["status"], l["target"][:40]) for l in by(k)]
    print(k, got)
    assert len(got) == 1 and got[0][0] == st, (k, got)
mid = by("c=midbody")[0]
assert mid["body_bytes_sent"] == 4 and mid["bytes_sent"] > 4, mid
assert by("c=gone")[0]["bytes_sent"] == 0
# a request line or a head too long to parse: one line each, no request
# to show, what was read counted
for st in (414, 431):
    got = [l for l in L if l["status"] == st]
    assert len(got) == 1 and got[0]["target"] is None and got[0]["request_length"] > 8192, got
assert len(L) == len(cases) + 2, len(L)
print("ok")'
	assert_success
	assert_line ok
}

@test "json: CGI, pool and static lines carry pid, times, bytes and the CGI's resource usage" {
	log_config
	cpm_start
	cgi_pid=$(curl -s "$(url /pid.sh)" | sed -n 's/^pid=//p')
	pool_pid=$(curl -s "$(url /app)" | sed -n 's/^app-pid=//p')
	[ -n "$cgi_pid" ] && [ -n "$pool_pid" ]
	curl -s -o /dev/null "$(url /static/a.txt)"
	# request_length: the head and the body as they came, framing included
	python3 - "$CPM_PORT" "$BATS_TEST_TMPDIR" <<'PY'
import socket, sys
for q in (b"posted", b"chunked"):
    body = b"Content-Length: 12\r\n\r\ntwelve bytes" if q == b"posted" else \
        b"Transfer-Encoding: chunked\r\n\r\n5\r\ntwelv\r\n7\r\ne bytes\r\n0\r\n\r\n"
    req = b"POST /env.sh?" + q + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + body
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(req)
    while s.recv(65536):
        pass
    print(len(req), file=open(sys.argv[2] + "/" + q.decode(), "w"))
PY
	# behind max_concurrent 1: the second waits for the first's slot
	hold_bg '/q/hold.sh?1&first'
	curl -s -o /dev/null "$(url '/q/env.sh?second')"
	wait "$HOLD_PID"
	within 3 eval '[ "$(wc -l <"$BATS_TEST_TMPDIR/access.log")" -ge 7 ]'
	run jcheck '
c, p, s, b, q = by("/pid.sh")[0], by("/app")[0], by("/static/")[0], by("posted")[0], by("second")[0]
assert c["upstream_pid"] == '"$cgi_pid"', c
assert c["backend"] == "apps" and c["status"] == 200 and c["method"] == "GET" and c["protocol"] == "HTTP/1.1", c
assert c["cgi_maxrss"] > 0 and c["cgi_cpu_user"] >= 0 and c["cgi_cpu_sys"] >= 0, c
assert c["cgi_cpu_user"] + c["cgi_cpu_sys"] > 0, c
assert c["upstream_time"] > 0 and c["request_time"] >= c["upstream_time"], c
assert c["bytes_sent"] > c["body_bytes_sent"] == len("pid=%d\n" % c["upstream_pid"]), c
assert len(c["request_id"]) == 32 and c["user_agent"].startswith("curl/"), c
assert p["upstream_pid"] == '"$pool_pid"' and p["backend"] == "pool", p
assert p["cgi_maxrss"] is None and p["cgi_cpu_user"] is None, p
assert s["upstream_pid"] is None and s["upstream_time"] is None and s["cgi_maxrss"] is None, s
assert s["backend"] == "files" and s["body_bytes_sent"] == len("static text\n"), s
assert b["request_length"] == '"$(cat "$BATS_TEST_TMPDIR/posted")"' and b["method"] == "POST", b
ch = by("chunked")[0]
assert ch["request_length"] == '"$(cat "$BATS_TEST_TMPDIR/chunked")"' and ch["status"] == 200, ch
assert q["queue_time"] > 0.5 and q["status"] == 200, q
assert by("first")[0]["queue_time"] == 0, by("first")
print("ok")'
	assert_success
	assert_line ok
}

@test "a CGI program that runs on after its response: the response is not delayed, the line waits for its usage" {
	log_config
	cpm_start
	start=$(date +%s%N)
	run curl -s "$(url "/after_response.sh?$BATS_TEST_TMPDIR/done")"
	assert_output early
	[ $(($(date +%s%N) - start)) -lt 800000000 ]
	# no line while the program runs (it is not reaped yet) ...
	[ ! -s "$BATS_TEST_TMPDIR/access.log" ]
	# ... then one, with its usage, once it has exited
	within 4 test -s "$BATS_TEST_TMPDIR/access.log"
	run jcheck '
l = by("after_response")[0]
assert len(L) == 1 and l["status"] == 200 and l["cgi_maxrss"] > 0, l
print("ok")'
	assert_line ok
}

@test "a template: named fields, nginx names for the headers, \$\$ and \${name}" {
	log_config '"access_log_format": "$request_id|$status|$upstream_pid|$bytes_sent|$body_bytes_sent|$http_user_agent|${method}x|$$|$cgi_maxrss|$backend"'
	cpm_start
	pid=$(curl -s -A 'agent "q"' -H 'X-Request-Id: tpl-1' "$(url /pid.sh)" | sed -n 's/^pid=//p')
	curl -s -o /dev/null "$(url /static/a.txt)"
	within 3 eval '[ "$(wc -l <"$BATS_TEST_TMPDIR/access.log")" -ge 2 ]'
	run cat "$BATS_TEST_TMPDIR/access.log"
	assert_line --regexp "^tpl-1\|200\|$pid\|[0-9]+\|$((${#pid} + 5))\|agent \\\\x22q\\\\x22\|GETx\|\\$\|[1-9][0-9]*\|apps$"
	assert_line --regexp '^[0-9a-f]{32}\|200\|-\|[0-9]+\|12\|curl/[^|]*\|GETx\|\$\|-\|files$'
}

@test "cpm -t refuses an unknown field in a template with file:line:col" {
	log_config '"access_log_format": "$remote_addr \"$request\" $nope"'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	# line 7 of the file; column of the '$' of $nope (the value starts at
	# col 24, its escaped quotes count two columns each)
	assert_output --partial "cpm.json:7:51: access_log_format: unknown field \"\$nope\""
	log_config '"access_log_format": "ok then $"'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --partial "cpm.json:7:33: access_log_format: a '\$' without a field name"
	log_config '"access_log_format": "json"'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_success
}

@test "the request id reaches a CGI, a pool app, the access log and the error-log line of a failing request" {
	log_config
	cpm_start
	run curl -s "$(url /env.sh)"
	cgi_id=$(sed -n 's/^HTTP_X_REQUEST_ID=//p' <<<"$output")
	[[ "$cgi_id" =~ ^[0-9a-f]{32}$ ]]
	run curl -s "$(url /app)"
	pool_id=$(sed -n 's/^HTTP_X_REQUEST_ID=//p' <<<"$output")
	[[ "$pool_id" =~ ^[0-9a-f]{32}$ ]]
	[ "$pool_id" != "$cgi_id" ]
	curl -s -o /dev/null "$(url '/hold.sh?5&timeout')"
	within 3 eval '[ "$(wc -l <"$BATS_TEST_TMPDIR/access.log")" -ge 3 ]'
	run jcheck '
print(by("/env.sh")[0]["request_id"], by("/app")[0]["request_id"])'
	assert_output "$cgi_id $pool_id"
	tid=$(jcheck 'print(by("timeout")[0]["request_id"])')
	[[ "$tid" =~ ^[0-9a-f]{32}$ ]]
	grep -q "127\.0\.0\.1:[0-9]* \"GET /hold.sh?5&timeout\" id=$tid: cgi hold.sh\[[0-9]*\]: timeout after 1000 ms" "$CPM_LOG"
	within 3 grep -q "cgi hold.sh\[[0-9]*\]: killed by signal 15 (id=$tid)" "$CPM_LOG"
}

@test "a client's well-formed X-Request-Id is used; an ill-formed one is replaced, and the app sees one" {
	log_config
	cpm_start
	run curl -s -H 'X-Request-Id: Abc.1_2-3' "$(url '/env.sh?good')"
	assert_line 'HTTP_X_REQUEST_ID=Abc.1_2-3'
	long=$(head -c 65 /dev/zero | tr '\0' a)
	for bad in "$long" 'has space' 'semi;colon' 'quote"d'; do
		run curl -s -H "X-Request-Id: $bad" "$(url "/env.sh?bad")"
		[ "$(grep -c '^HTTP_X_REQUEST_ID=' <<<"$output")" -eq 1 ]
		assert_line --regexp '^HTTP_X_REQUEST_ID=[0-9a-f]{32}$'
	done
	# 64 characters are accepted
	run curl -s -H "X-Request-Id: ${long:1}" "$(url '/env.sh?good64')"
	assert_line "HTTP_X_REQUEST_ID=${long:1}"
	# a tab (control characters are refused by the parser), and two of the header
	run raw 'GET /env.sh?ctl HTTP/1.1\r\nHost: a\r\nX-Request-Id: a\tb\r\nConnection: close\r\n\r\n'
	assert_line --regexp '^HTTP_X_REQUEST_ID=[0-9a-f]{32}.?$'
	run raw 'GET /env.sh?two HTTP/1.1\r\nHost: a\r\nX-Request-Id: one\r\nX-Request-Id: two\r\nConnection: close\r\n\r\n'
	assert_line --regexp '^HTTP_X_REQUEST_ID=[0-9a-f]{32}.?$'
	# the pool app too
	run curl -s -H 'X-Request-Id: from-client' "$(url /app)"
	assert_line 'HTTP_X_REQUEST_ID=from-client'
	within 3 eval '[ "$(wc -l <"$BATS_TEST_TMPDIR/access.log")" -ge 9 ]'
	run jcheck '
print(by("good")[0]["request_id"], by("/app")[0]["request_id"], len(set(l["request_id"] for l in L)))'
	assert_output "Abc.1_2-3 from-client 9"
}

@test "the worker that gives up on a hung pool process names the request and the pid it asks the master to kill" {
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"], "workers": 1, $(user_member)
  "access_log": "$BATS_TEST_TMPDIR/access.log", "error_log": "$BATS_TEST_TMPDIR/error.log",
  "access_log_format": "json",
  "routes": [ { "prefix": "/app", "backend": "slow" } ],
  "backends": { "slow": { "type": "fastcgi", "command": ["$BATS_FILE_TMPDIR/slow"], "processes": 1, "timeout": 1 } }
}
JSON
	cpm_start
	run curl -s -o /dev/null -w '%{http_code}' -H 'X-Request-Id: hung-1' "$(url '/app?30')"
	assert_output 504
	within 3 test -s "$BATS_TEST_TMPDIR/access.log"
	pid=$(jcheck 'l = by("/app?30")[0]; assert l["status"] == 504 and l["request_id"] == "hung-1"; print(l["upstream_pid"])')
	[ "$pid" -gt 1 ]
	grep -q "127\.0\.0\.1:[0-9]* \"GET /app?30\" id=hung-1: fastcgi slow: pool process $pid did not answer within 1000 ms; asking the master to kill it" "$CPM_LOG"
}
