#!/usr/bin/env bats
# HUP (and pools_restart) replaces the processes of every pool one at a
# time: a new process starts, lives through its probation, takes requests,
# then an old one drains and stops; no request fails. "reload": "keep"
# opts out; new code that dies at start stops the restart. The apps read
# their version from a file at start: t/apps-fcgi/version.pl (Perl FCGI)
# and t/apps-fcgi/version.c (libfcgi; a TERM kills it mid-request).
load helpers

setup_file() {
	build_fcgi_apps version
}

setup() {
	VERSION_FILE=$BATS_TEST_TMPDIR/version
	echo v1 >"$VERSION_FILE"
	APP_CMD=$ROOT/t/apps-fcgi/version.pl
}

# version_config 'MEMBERS': pool "php" of $APP_CMD at /app, with MEMBERS
version_config() {
	CPM_PORT=${CPM_PORT:-$(free_port)}
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": ${CPM_WORKERS:-2},
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member)
  "routes": [ { "prefix": "/app", "backend": "php" }, { "prefix": "/status", "backend": "status" } ],
  "backends": {
    "php": { "type": "fastcgi", "command": ["$APP_CMD"],
             "env": { "VERSION_FILE": "$VERSION_FILE" } $1 },
    "status": { "type": "status" }
  }
}
JSON
}

# live_pids: the running processes of pool php, sorted, as the status page says
live_pids() {
	curl -sf "$(url /status)" | python3 -c '
import json, sys
d = json.load(sys.stdin)
p = [p for p in d["pools"] if p["name"] == "php"][0]
print(" ".join(str(x) for x in sorted(x["pid"] for x in p["processes"] if x["pid"] > 0)))'
}

# versions N: N requests, one line each: "STATUS version=V pid=P"
versions() {
	local i
	for i in $(seq "$1"); do
		curl -s -w '%{http_code} ' -o "$BATS_TEST_TMPDIR/body" "$(url /app)"
		cat "$BATS_TEST_TMPDIR/body"
	done
}

# none_of "PIDS" "OTHERS": no pid of PIDS is in OTHERS
none_of() {
	local p
	for p in $1; do
		[[ " $2 " != *" $p "* ]] || return 1
	done
}

# load_during VERSION TEXT: 6 clients (half on keep-alive connections;
# POSTs, which are never sent twice, and GETs; ?sleep=5: 5 ms in version.c) send
# requests to /app; 0.5 s in, VERSION goes to the version file and the
# master gets a HUP; 0.5 s after TEXT shows in the log, they stop. Prints
# "ok=N bad=N failed=N v1=PIDS v2=PIDS" (how many processes answered with
# each version), then the first errors.
load_during() {
	python3 - "$CPM_PORT" "$CPM_PID" "$VERSION_FILE" "$CPM_LOG" "$1" "$2" <<'PY'
import http.client, os, re, signal, sys, threading, time
port, master, vfile, log, version, until = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
lock = threading.Lock()
res = dict(ok=0, bad=0, failed=0)
seen, errors, stop = {}, [], threading.Event()
def client(keep, post):
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            if post:
                conn.request("POST", "/app?sleep=5", body=b"x" * 100)
            else:
                conn.request("GET", "/app?sleep=5")
            r = conn.getresponse()
            body = r.read().decode()
            m = re.fullmatch(r"version=(v\d) pid=(\d+)\n", body)
            with lock:
                if r.status == 200 and m:
                    res["ok"] += 1
                    seen.setdefault(m.group(1), set()).add(m.group(2))
                else:
                    res["bad"] += 1
                    errors.append("%d %r" % (r.status, body))
            if not keep or r.getheader("Connection", "") == "close":
                conn.close()
                conn = None
        except Exception as e:
            with lock:
                res["failed"] += 1
                errors.append(repr(e))
            conn = None
threads = [threading.Thread(target=client, args=(i % 2 == 0, i % 3 != 0)) for i in range(6)]
for t in threads: t.start()
time.sleep(0.5)
with open(vfile, "w") as f: f.write(version + "\n")
os.kill(master, signal.SIGHUP)
end = time.time() + 20
while time.time() < end and until not in open(log).read():
    time.sleep(0.1)
time.sleep(0.5)
stop.set()
for t in threads: t.join()
print("ok=%(ok)d bad=%(bad)d failed=%(failed)d" % res, " ".join("%s=%d" % (v, len(seen[v])) for v in sorted(seen)))
for e in errors[:5]: print(e)
PY
}

@test "HUP under load: each process is replaced one at a time by one running the new code; no request fails" {
	APP_CMD=$BATS_FILE_TMPDIR/version
	version_config ', "processes": 3'
	cpm_start
	within 3 eval '[ "$(live_pids | wc -w)" = 3 ]'
	old=$(live_pids)
	run load_during v2 "pool php: restarted ("
	# every request answered by v1 or v2, three processes of each
	assert_line --index 0 --regexp '^ok=[0-9]+ bad=0 failed=0 v1=3 v2=3$'
	ok=${lines[0]#ok=}
	[ "${ok%% *}" -gt 100 ]
	grep -q "pool php: restarting 3 process(es) one at a time$" "$CPM_LOG"
	grep -q "pool php: restarted (3 of 3)$" "$CPM_LOG"
	run grep -c "pool php\[[0-3]\]: stopping pid [0-9]* (replaced by a new one)$" "$CPM_LOG"
	assert_output 3
	# one at a time: each old process stops after a new one has started,
	# and never more than 4 (3 + the spare) run
	run awk '/pool php\[[0-3]\]: started pid/ {s++} /\(replaced by a new one\)$/ {d++; if (d > s - 3) bad = 1} END {print s, bad + 0}' "$CPM_LOG"
	assert_output "6 0"
	new=$(live_pids)
	assert_equal "$(wc -w <<<"$new")" 3
	none_of "$new" "$old"
	for p in $old; do
		within 3 eval '! kill -0 '"$p"' 2>/dev/null'
	done
	run versions 6
	refute_output --partial v1
	assert_equal "$(grep -c '^200 version=v2 pid=' <<<"$output")" 6
}

@test "HUP: a pool with \"reload\": \"keep\" keeps its processes and their code" {
	version_config ', "processes": 2, "reload": "keep"'
	cpm_start
	within 3 eval '[ "$(live_pids | wc -w)" = 2 ]'
	old=$(live_pids)
	echo v2 >"$VERSION_FILE"
	kill -HUP "$CPM_PID"
	within 5 grep -q "reloaded .*generation 1" "$CPM_LOG"
	# one line for the pool
	run grep -cE "pool php: (kept|restart|replaced|removed)" "$CPM_LOG"
	assert_output 1
	grep -q "pool php: kept$" "$CPM_LOG"
	run versions 4
	assert_equal "$(grep -c '^200 version=v1 pid=' <<<"$output")" 4
	sleep 1.2
	assert_equal "$(live_pids)" "$old"
	! grep -q "restarting" "$CPM_LOG"
}

@test "HUP with new code that dies at start: the restart stops, the old processes go on serving" {
	version_config ', "processes": 2'
	cpm_start
	within 3 eval '[ "$(live_pids | wc -w)" = 2 ]'
	old=$(live_pids)
	# under load: the new process is on probation, no request reaches it
	run load_during broken "pool php: restart stopped"
	assert_line --index 0 --regexp '^ok=[0-9]+ bad=0 failed=0 v1=2$'
	grep -q "pool php: restart stopped: the new process exited with code 1 within 0\.[0-9] s; 2 old process(es) keep serving$" "$CPM_LOG"
	grep -q "version.pl: this version is broken; exiting" "$CPM_LOG"
	# no other try, the old ones stay
	sleep 1.2
	run grep -c "pool php\[[0-2]\]: started pid" "$CPM_LOG"
	assert_output 3
	assert_equal "$(live_pids)" "$old"
	run versions 4
	assert_equal "$(grep -c '^200 version=v1 pid=' <<<"$output")" 4
	# fixed: the next HUP replaces them
	echo v3 >"$VERSION_FILE"
	kill -HUP "$CPM_PID"
	within 8 grep -q "pool php: restarted (2 of 2)$" "$CPM_LOG"
	run versions 4
	assert_equal "$(grep -c '^200 version=v3 pid=' <<<"$output")" 4
	none_of "$(live_pids)" "$old"
}

@test "HUP that changes a pool during its rolling restart: the restart is dropped, the old pool stops, 2 processes in all" {
	version_config ', "processes": 2'
	cpm_start
	within 3 eval '[ "$(live_pids | wc -w)" = 2 ]'
	old=$(live_pids)
	kill -HUP "$CPM_PID"
	within 3 grep -q "pool php: restarting 2 process(es) one at a time" "$CPM_LOG"
	version_config ', "processes": 2, "reload": "keep", "env": { "VERSION_FILE": "'"$VERSION_FILE"'", "X": "1" }'
	sed -i 's/"env": { "VERSION_FILE": "[^"]*" } ,/ /' "$BATS_TEST_TMPDIR/cpm.json"
	kill -HUP "$CPM_PID"
	within 3 grep -q "pool php: replaced (env changed)" "$CPM_LOG"
	# the old pool closes once its workers are gone: 2 processes in all
	within 8 grep -q "pool php: closed" "$CPM_LOG"
	for p in $old; do
		within 3 eval '! kill -0 '"$p"' 2>/dev/null'
	done
	sleep 1.5
	run ps -o pid= --ppid "$CPM_PID" -o args=
	assert_equal "$(grep -c version.pl <<<"$output")" 2
	run grep -c "pool php: restarted (" "$CPM_LOG"
	assert_output 0
}

@test "HUP while a request has run longer than 60 s (timeout 120 s): it completes on its old process" {
	# the drain of a busy process had a fixed limit of 60 s since its
	# request began: a longer request that its pool's timeout allows was
	# cut by a TERM (502) as soon as a reload drained its process
	APP_CMD=$BATS_FILE_TMPDIR/version
	version_config ', "processes": 1, "timeout": 120'
	cpm_start
	within 3 eval '[ "$(live_pids | wc -w)" = 1 ]'
	old=$(live_pids)
	curl -s -m 100 -w ' %{http_code}' "$(url '/app?sleep=64000')" >"$BATS_TEST_TMPDIR/long" &
	long=$!
	sleep 61
	echo v2 >"$VERSION_FILE"
	kill -HUP "$CPM_PID"
	within 5 grep -q "pool php\[[0-1]\]: stopping pid $old (replaced by a new one)" "$CPM_LOG"
	wait "$long"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/long")" "version=v1 pid=$old
 200"
	within 5 grep -q "pool php: restarted (1 of 1)$" "$CPM_LOG"
	run versions 2
	assert_equal "$(grep -c '^200 version=v2 pid=' <<<"$output")" 2
}
