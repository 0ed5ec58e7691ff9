#!/usr/bin/env bats
# Operating a running cpm: binary upgrade (USR2), daemon mode, the pidfile,
# systemd socket activation and readiness, user/umask, the status backend.
load helpers

# the shared teardown (workers and CGI groups of $CPM_PID must not survive)
eval "$(declare -f teardown | sed '1s/^teardown/helpers_teardown/')"

setup() {
	CPM_PORT=$(free_port)
	PF=$BATS_TEST_TMPDIR/cpm.pid
	OPS_PIDS=""    # helper processes (python) this test started
	OPS_MASTERS="" # masters that are not children of this shell
}

teardown() {
	local rc=0 p m
	for p in $OPS_PIDS; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	# masters started by USR2 or -D: by pidfile and by what the test saw,
	# newest first (an old master renames .oldbin back when its new one exits)
	m="$OPS_MASTERS $(cat "$PF" 2>/dev/null) $(cat "$PF.oldbin" 2>/dev/null)"
	for p in $(tr ' ' '\n' <<<"$m" | awk 'NF && !seen[$0]++' | tac); do
		[ "$p" = "${CPM_PID:-}" ] && continue
		stop_master "$p" || rc=1
	done
	helpers_teardown || rc=1
	return $rc
}

# ---- local helpers ----

# ops_config [extra top-level members]: $BATS_TEST_TMPDIR/cpm.json with a
# pidfile, /status (status backend), /ex/ (examples) and / (t/apps).
# $OPS_LISTEN replaces the inside of the listen array.
ops_config() {
	local top=${1:-} listen=${OPS_LISTEN:-"\"127.0.0.1:$CPM_PORT\""}
	[ -n "$top" ] && top="$top,"
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": [$listen],
  "workers": ${CPM_WORKERS:-2},
  "pidfile": "$PF",
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member "$top")
  $top
  "routes": [
    { "prefix": "/status", "backend": "status" },
    { "prefix": "/ex/", "backend": "examples" },
    { "prefix": "/", "backend": "apps" }
  ],
  "backends": {
    "status": { "type": "status" },
    "apps": { "type": "cgi", "root": "$APPS" },
    "examples": { "type": "cgi", "root": "$ROOT/examples" }
  }
}
JSON
}

# wait_port PID: until $CPM_PORT accepts (false if PID died first, or 5 s)
wait_port() {
	local i
	for i in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$CPM_PORT),0.2)" 2>/dev/null && return 0
		[ -z "$1" ] || kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	echo "cpm did not start:" >&2
	cat "$BATS_TEST_TMPDIR/stderr.log" "$BATS_TEST_TMPDIR/error.log" >&2 2>/dev/null
	return 1
}

# ops_start [args...]: cpm -c cpm.json in the background as $CPM_PID, with
# bats' fd 3 closed (a master started by USR2 would inherit it)
ops_start() {
	[ -f "$BATS_TEST_TMPDIR/cpm.json" ] || ops_config
	CPM_LOG=$BATS_TEST_TMPDIR/error.log
	"$CPM" -c "$BATS_TEST_TMPDIR/cpm.json" "$@" >>"$BATS_TEST_TMPDIR/stderr.log" 2>&1 3>&- &
	CPM_PID=$!
	wait_port "$CPM_PID"
}

# lines_at_least FILE N: FILE has N lines or more
lines_at_least() {
	[ "$(wc -l <"$1")" -ge "$2" ]
}

is_master() {
	! gone "$1" && [ "$(ps -o args= -p "$1" 2>/dev/null)" = "cpm: master" ]
}

nworkers() { workers_of "$1" | wc -l; }
has_workers() { [ "$(nworkers "$1")" -eq "$2" ]; }
no_workers() { [ "$(nworkers "$1")" -eq 0 ]; }

# stop_master PID: QUIT a master that is not our child, KILL it and its
# workers if they are still there after 5 s (that is an error)
stop_master() {
	local pid=$1 kids k i rc=0
	is_master "$pid" || return 0
	kids=$(workers_of "$pid")
	kill -QUIT "$pid" 2>/dev/null || true
	for i in $(seq 100); do gone "$pid" && break; sleep 0.05; done
	if ! gone "$pid"; then
		echo "master $pid survived QUIT" >&2
		kill -KILL "$pid"
		rc=1
	fi
	for i in $(seq 20); do
		for k in $kids; do gone "$k" || continue 2; done
		break
	done
	for k in $kids; do
		gone "$k" || { echo "worker $k of master $pid survived" >&2; kill -KILL "$k"; rc=1; }
	done
	return $rc
}

hello() { curl -s -m 3 "$(url /ex/hello.sh)"; }

# status [QUERY]: the status document
status() { curl -s -m 3 "$(url "/status$1")"; }

# jget EXPR: evaluate a python expression over the JSON on stdin (as d)
jget() {
	python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# status_master: the master pid the status backend reports
status_master() { status | jget 'd["master"]["pid"]'; }

# new_master OLD: the pidfile names a master other than OLD, with its workers up
new_master() {
	local p
	p=$(cat "$PF" 2>/dev/null) || return 1
	[ -n "$p" ] && [ "$p" != "$1" ] && is_master "$p" && has_workers "$p" "${CPM_WORKERS:-2}"
}

# upgrade OLD: USR2 to OLD, wait for the new master; sets NEW
upgrade() {
	kill -USR2 "$1"
	within 5 new_master "$1"
	NEW=$(cat "$PF")
	OPS_MASTERS="$OPS_MASTERS $NEW"
}

# notify_listen: a unix datagram socket at $NSOCK (30 s at most); each
# datagram becomes a line of $NOUT, its newlines written as "|"
notify_listen() {
	NSOCK=$BATS_TEST_TMPDIR/notify.sock
	NOUT=$BATS_TEST_TMPDIR/notify.out
	python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(0.2)
end = time.time() + 30
with open(sys.argv[2], "w") as f:
    while time.time() < end:
        try:
            d = s.recv(4096).decode()
        except socket.timeout:
            continue
        print(d.replace("\n", "|"), file=f, flush=True)' "$NSOCK" "$NOUT" 3>&- &
	NPID=$!
	OPS_PIDS="$OPS_PIDS $NPID"
	within 3 test -S "$NSOCK"
}

# load_start SECONDS: a client loop in the background (two keep-alive
# connections, two threads opening a connection per request); its counts
# go to $BATS_TEST_TMPDIR/load.json
load_start() {
	python3 - "$CPM_PORT" "$1" >"$BATS_TEST_TMPDIR/load.json" 2>&1 3>&- <<'PY' &
import http.client, json, sys, threading, time
port, dur = int(sys.argv[1]), float(sys.argv[2])
st = {"ok": 0, "failed": 0, "refused": 0, "errors": []}
lock = threading.Lock()

def count(k, why=None):
    with lock:
        st[k] += 1
        if why and len(st["errors"]) < 10:
            st["errors"].append(why)

def one(c):
    c.request("GET", "/ex/hello.sh")
    r = c.getresponse()
    body = r.read()
    if r.status == 200 and body == b"Hello, world!\n":
        count("ok")
    else:
        count("failed", "%d %r" % (r.status, body[:60]))

def client(keepalive):
    end = time.time() + dur
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while time.time() < end:
        try:
            one(c)  # a response with Connection: close closes c; the next request reconnects
        except ConnectionRefusedError as e:
            count("refused", repr(e))
            c.close()
        except Exception as e:
            count("failed", ("keep-alive " if keepalive else "new ") + repr(e))
            c.close()
        if not keepalive:
            c.close()

ts = [threading.Thread(target=client, args=(k,)) for k in (True, True, False, False)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps(st))
PY
	LOAD_PID=$!
	OPS_PIDS="$OPS_PIDS $LOAD_PID"
}

# ---- USR2: binary upgrade ----

@test "USR2 under load: the new master takes over without a failed or refused request" {
	ops_config
	ops_start
	old=$CPM_PID
	load_start 5
	sleep 0.7
	upgrade "$old"
	assert_equal "$(cat "$PF.oldbin")" "$old"
	kill -WINCH "$old"
	within 5 no_workers "$old"
	kill -QUIT "$old"
	wait_exit "$old" 5
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	# the load goes on against the new master alone, then ends
	wait "$LOAD_PID"
	run cat "$BATS_TEST_TMPDIR/load.json"
	echo "$output"
	assert_equal "$(jget 'd["failed"], d["refused"]' <<<"$output")" "(0, 0)"
	[ "$(jget 'd["ok"]' <<<"$output")" -gt 50 ]
	# the new master serves, owns the pidfile, and no .oldbin is left
	run hello
	assert_output "Hello, world!"
	assert_equal "$(status_master)" "$NEW"
	assert_equal "$(cat "$PF")" "$NEW"
	[ ! -e "$PF.oldbin" ]
}

@test "USR2 then HUP to the old master and QUIT to the new one rolls the upgrade back" {
	ops_config
	ops_start
	old=$CPM_PID
	upgrade "$old"
	kill -WINCH "$old"
	within 5 no_workers "$old"
	assert_equal "$(status_master)" "$NEW"
	# rollback: the old master's workers come back, the new master goes
	kill -HUP "$old"
	within 5 has_workers "$old" 2
	kill -QUIT "$NEW"
	within 5 gone "$NEW"
	within 3 eval '[ "$(cat "$PF" 2>/dev/null)" = "$old" ]'
	[ ! -e "$PF.oldbin" ]
	run is_master "$old"
	assert_success
	run hello
	assert_output "Hello, world!"
	assert_equal "$(status_master)" "$old"
	run grep "the new master (pid $NEW) exited" "$CPM_LOG"
	assert_success
}

@test "a new master that cannot start gives the pidfile back to the old one" {
	ops_config
	ops_start
	old=$CPM_PID
	echo '{ "broken": ' >"$BATS_TEST_TMPDIR/cpm.json"
	kill -USR2 "$old"
	within 5 grep -q "the new master (pid [0-9]*) exited (code 1)" "$CPM_LOG"
	within 3 eval '[ "$(cat "$PF" 2>/dev/null)" = "$old" ]'
	[ ! -e "$PF.oldbin" ]
	run hello
	assert_output "Hello, world!"
	assert_equal "$(status_master)" "$old"
	# and a later USR2 (config fixed) upgrades
	ops_config
	upgrade "$old"
	assert_equal "$(cat "$PF.oldbin")" "$old"
}

@test "a unix: listener survives a USR2 upgrade" {
	sock=$BATS_TEST_TMPDIR/cpm.sock
	OPS_LISTEN="\"127.0.0.1:$CPM_PORT\", \"unix:$sock\"" ops_config
	ops_start
	old=$CPM_PID
	run curl -s -m 3 --unix-socket "$sock" http://x/ex/hello.sh
	assert_output "Hello, world!"
	upgrade "$old"
	kill -WINCH "$old"
	within 5 no_workers "$old"
	kill -QUIT "$old"
	wait_exit "$old" 5
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	[ -S "$sock" ]
	run curl -s -m 3 --unix-socket "$sock" http://x/ex/hello.sh
	assert_output "Hello, world!"
	run curl -s -m 3 --unix-socket "$sock" http://x/status
	assert_equal "$(jget 'd["master"]["pid"]' <<<"$output")" "$NEW"
	run grep -E "listen unix:$sock: inherited fd [0-9]+" "$CPM_LOG"
	assert_success
}

@test "a master started by USR2 does not daemonize again under -D" {
	ops_config
	run timeout 5 "$CPM" -D -c "$BATS_TEST_TMPDIR/cpm.json" 3>&-
	assert_success
	within 3 test -s "$PF"
	old=$(cat "$PF")
	OPS_MASTERS=$old
	within 3 has_workers "$old" 2
	upgrade "$old"
	# the new master stays the old one's child: forking again would look
	# like its death to the old master, which would take the pidfile back
	assert_equal "$(ps -o ppid= -p "$NEW" | tr -d ' ')" "$old"
	sleep 0.3
	assert_equal "$(cat "$PF")" "$NEW"
	assert_equal "$(cat "$PF.oldbin")" "$old"
	run grep "the new master (pid $NEW) exited" "$BATS_TEST_TMPDIR/error.log"
	assert_failure
	kill -WINCH "$old"
	within 5 no_workers "$old"
	kill -QUIT "$old"
	within 5 gone "$old"
	run hello
	assert_output "Hello, world!"
	assert_equal "$(cat "$PF")" "$NEW"
	[ ! -e "$PF.oldbin" ]
}

# ---- -D ----

@test "-D returns at once and the pidfile names a detached master in its own session" {
	ops_config
	start=$(date +%s%N)
	run timeout 5 "$CPM" -D -c "$BATS_TEST_TMPDIR/cpm.json" 3>&-
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_success
	assert_output ""
	[ "$elapsed" -lt 2000 ]
	within 3 test -s "$PF"
	pid=$(cat "$PF")
	OPS_MASTERS=$pid
	run is_master "$pid"
	assert_success
	# reparented to pid 1 or to a subreaper (an ancestor of this shell)
	ppid=$(ps -o ppid= -p "$pid" | tr -d ' ')
	if [ "$ppid" != 1 ]; then
		a=$$
		while [ "$a" -gt 1 ] && [ "$a" != "$ppid" ]; do a=$(ps -o ppid= -p "$a" | tr -d ' '); done
		assert_equal "$a" "$ppid"
	fi
	assert_equal "$(ps -o sid= -p "$pid" | tr -d ' ')" "$pid"
	within 3 has_workers "$pid" 2
	run hello
	assert_output "Hello, world!"
	assert_equal "$(status_master)" "$pid"
}

@test "-D reports a bind error on stderr and exits 1 without forking" {
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(20)' "$CPM_PORT" 3>&- &
	OPS_PIDS=$!
	within 3 python3 -c "import socket; socket.create_connection(('127.0.0.1',$CPM_PORT),0.2)"
	ops_config
	run timeout 5 "$CPM" -D -c "$BATS_TEST_TMPDIR/cpm.json" 3>&-
	assert_equal "$status" 1
	assert_output --partial "listen 127.0.0.1:$CPM_PORT: Address already in use"
	[ ! -e "$PF" ]
}

@test "the pidfile of a daemon is removed when it stops" {
	ops_config
	run timeout 5 "$CPM" -D -c "$BATS_TEST_TMPDIR/cpm.json" 3>&-
	assert_success
	within 3 test -s "$PF"
	pid=$(cat "$PF")
	OPS_MASTERS=$pid
	kill -QUIT "$pid"
	within 5 gone "$pid"
	[ ! -e "$PF" ]
}

# ---- pidfile ----

@test "a second start with the same pidfile exits 1: already running" {
	ops_config
	ops_start
	run timeout 5 "$CPM" -c "$BATS_TEST_TMPDIR/cpm.json" 3>&-
	assert_equal "$status" 1
	assert_output --partial "already running as pid $CPM_PID"
	assert_equal "$(cat "$PF")" "$CPM_PID"
	run hello
	assert_output "Hello, world!"
}

@test "a stale pidfile is replaced" {
	true &
	dead=$!
	wait "$dead"
	echo "$dead" >"$PF"
	ops_config
	ops_start
	within 3 eval '[ "$(cat "$PF")" = "$CPM_PID" ]'
	cpm_stop
	[ ! -e "$PF" ]
}

# ---- systemd ----

@test "systemd socket activation: LISTEN_FDS socket at fd 3 is served" {
	ops_config
	cat >"$BATS_TEST_TMPDIR/activate.py" <<'PY'
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
fd = s.detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
os.execv(sys.argv[2], sys.argv[2:])
PY
	python3 "$BATS_TEST_TMPDIR/activate.py" "$CPM_PORT" "$CPM" -c "$BATS_TEST_TMPDIR/cpm.json" \
		>>"$BATS_TEST_TMPDIR/stderr.log" 2>&1 3>&- &
	CPM_PID=$!
	CPM_LOG=$BATS_TEST_TMPDIR/error.log
	wait_port "$CPM_PID"
	# cpm could not have bound the port itself: the socket is listening
	run hello
	assert_output "Hello, world!"
	run is_master "$CPM_PID"
	assert_success
	run grep "listen 127.0.0.1:$CPM_PORT: inherited fd 3" "$CPM_LOG"
	assert_success
	run grep "systemd passed 1 listening socket" "$CPM_LOG"
	assert_success
}

@test "NOTIFY_SOCKET gets READY=1 with MAINPID, RELOADING=1 and READY=1 on HUP, STOPPING=1 on QUIT" {
	notify_listen
	ops_config
	NOTIFY_SOCKET=$NSOCK ops_start
	master=$CPM_PID
	within 3 grep -q READY "$NOUT"
	run cat "$NOUT"
	assert_output "READY=1|MAINPID=$master"
	kill -HUP "$master"
	# lines_at_least evaluates the count at each try (a "$(wc -l ...)"
	# argument would be expanded once, before the datagrams arrive)
	within 5 lines_at_least "$NOUT" 3
	kill -QUIT "$master"
	wait_exit "$master" 5
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	within 3 grep -q STOPPING "$NOUT"
	run cat "$NOUT"
	assert_output "READY=1|MAINPID=$master
RELOADING=1
READY=1
STOPPING=1"
}

# ---- user, umask ----

@test "user nobody: workers and CGI programs run as nobody, the master as root" {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	# roots nobody can reach, wherever the checkout is
	dir=$(examples_copy)
	cp "$APPS/creds.sh" "$dir/examples/"
	ops_config '"user": "nobody"'
	sed -i "s|\"root\": \"$APPS\"|\"root\": \"$dir/examples\"|; s|\"root\": \"$ROOT/examples\"|\"root\": \"$dir/examples\"|" \
		"$BATS_TEST_TMPDIR/cpm.json"
	ops_start
	within 3 has_workers "$CPM_PID" 2
	assert_equal "$(ps -o user= -p "$CPM_PID")" root
	run ps -o user= --ppid "$CPM_PID"
	assert_equal "$(sort -u <<<"$output")" nobody
	run curl -s -m 3 "$(url /creds.sh)"
	rm -rf "$dir"
	assert_output --regexp "^uid=$(id -u nobody) gid=$(id -g nobody) "
}

@test "an unknown user is a configuration error at its line and column" {
	printf '%s\n' '{
  "user": "no-such-user",
  "routes": [{"prefix": "/", "backend": "s"}],
  "backends": {"s": {"type": "cgi", "root": "/tmp"}}
}' >"$BATS_TEST_TMPDIR/c.json"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
	assert_equal "$status" 1
	assert_output --partial 'c.json:2:11: user: no such user "no-such-user"'
}

@test "umask 027 is the umask of CGI programs" {
	ops_config '"umask": "027"'
	ops_start
	run curl -s -m 3 "$(url /creds.sh)"
	assert_output --regexp " umask=0027$"
}

@test "an invalid umask is a configuration error" {
	printf '%s\n' '{
  "umask": "999",
  "routes": [{"prefix": "/", "backend": "s"}],
  "backends": {"s": {"type": "cgi", "root": "/tmp"}}
}' >"$BATS_TEST_TMPDIR/c.json"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
	assert_equal "$status" 1
	assert_output --partial 'c.json:2:12: umask: expected an octal mode'
}

# ---- status backend ----

all_ready() {
	[ "$(status | jget 'sorted(w["state"] for w in d["workers"])')" = "['ready', 'ready']" ]
}

@test "status: JSON with the master pid and its workers' pids" {
	ops_config
	ops_start
	within 3 has_workers "$CPM_PID" 2
	within 3 all_ready
	run status
	assert_success
	doc=$output
	assert_equal "$(jget 'd["master"]["pid"]' <<<"$doc")" "$CPM_PID"
	assert_equal "$(jget '" ".join(str(p) for p in sorted(w["pid"] for w in d["workers"]))' <<<"$doc")" \
		"$(workers_of "$CPM_PID" | sort -n | xargs)"
	assert_equal "$(jget 'sorted(w["slot"] for w in d["workers"])' <<<"$doc")" "[0, 1]"
	assert_equal "$(jget 'd["master"]["generation"]' <<<"$doc")" 0
	run curl -s -m 3 -o /dev/null -w '%{content_type}' "$(url /status)"
	assert_output "application/json"
}

@test "status: requests are counted by class, a status request once it is answered" {
	CPM_WORKERS=1 ops_config
	ops_start
	for i in 1 2 3 4 5; do curl -s -m 3 -o /dev/null "$(url /ex/hello.sh)"; done
	for i in 1 2 3; do curl -s -m 3 -o /dev/null "$(url /no-such-script)"; done
	run status
	assert_equal "$(jget 'd["requests"]["2xx"], d["requests"]["4xx"], d["requests"]["total"]' <<<"$output")" \
		"(5, 3, 8)"
	run status
	assert_equal "$(jget 'd["requests"]["2xx"], d["requests"]["4xx"], d["requests"]["total"]' <<<"$output")" \
		"(6, 3, 9)"
	assert_equal "$(jget 'sum(w["requests"] for w in d["workers"])' <<<"$output")" 9
}

@test "status: the generation goes up with each HUP" {
	ops_config
	ops_start
	assert_equal "$(status | jget 'd["master"]["generation"]')" 0
	kill -HUP "$CPM_PID"
	within 3 eval '[ "$(status | jget "d[\"master\"][\"generation\"]")" = 1 ]'
	kill -HUP "$CPM_PID"
	within 3 eval '[ "$(status | jget "d[\"master\"][\"generation\"]")" = 2 ]'
	run hello
	assert_output "Hello, world!"
}

@test "status: ?format=prometheus counts requests by backend and class" {
	CPM_WORKERS=1 ops_config
	ops_start
	for i in 1 2 3 4; do curl -s -m 3 -o /dev/null "$(url /ex/hello.sh)"; done
	curl -s -m 3 -o /dev/null "$(url /no-such-script)"
	run curl -s -m 3 -D "$BATS_TEST_TMPDIR/head" "$(url '/status?format=prometheus')"
	assert_line 'cpm_requests_total{backend="examples",class="2xx"} 4'
	assert_line 'cpm_requests_total{backend="apps",class="4xx"} 1'
	assert_line 'cpm_requests_total{backend="apps",class="5xx"} 0'
	assert_line 'cpm_requests_total{backend="status",class="2xx"} 0'
	assert_line '# TYPE cpm_requests_total counter'
	assert_line 'cpm_config_generation 0'
	assert_line 'cpm_workers{state="ready"} 1'
	refute_line --partial 'pid='
	run grep -i '^content-type:' "$BATS_TEST_TMPDIR/head"
	assert_output --partial "text/plain; version=0.0.4"
}

# ---- regressions: bugs found on 2026-11-23 and fixed ----

@test "an old master handing over to its new master does not notify STOPPING=1" {
	notify_listen
	ops_config
	NOTIFY_SOCKET=$NSOCK ops_start
	old=$CPM_PID
	upgrade "$old"
	kill -WINCH "$old"
	within 5 no_workers "$old"
	kill -QUIT "$old"
	wait_exit "$old" 5
	CPM_PID=
	sleep 0.3
	run cat "$NOUT"
	assert_output "READY=1|MAINPID=$old
READY=1|MAINPID=$NEW"
}

@test "USR2 to a new master is ignored while its old master runs" {
	ops_config
	ops_start
	old=$CPM_PID
	upgrade "$old"
	kill -USR2 "$NEW"
	sleep 1
	assert_equal "$(cat "$PF")" "$NEW"
	assert_equal "$(cat "$PF.oldbin")" "$old"
	run bash -c "ps -o args= --ppid $NEW | grep -c '^cpm: master'"
	assert_output 0
}

@test "a unix socket passed by systemd is left in place at exit" {
	sock=$BATS_TEST_TMPDIR/cpm.sock
	OPS_LISTEN="\"unix:$sock\"" ops_config
	cat >"$BATS_TEST_TMPDIR/activate.py" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(16)
fd = s.detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
os.execv(sys.argv[2], sys.argv[2:])
PY
	python3 "$BATS_TEST_TMPDIR/activate.py" "$sock" "$CPM" -c "$BATS_TEST_TMPDIR/cpm.json" \
		>>"$BATS_TEST_TMPDIR/stderr.log" 2>&1 3>&- &
	CPM_PID=$!
	within 3 curl -s -m 1 -o /dev/null --unix-socket "$sock" http://x/ex/hello.sh
	kill -QUIT "$CPM_PID"
	wait_exit "$CPM_PID" 5
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	[ -S "$sock" ]
}

@test "after a completed upgrade the last master removes its unix socket at exit" {
	sock=$BATS_TEST_TMPDIR/cpm.sock
	OPS_LISTEN="\"127.0.0.1:$CPM_PORT\", \"unix:$sock\"" ops_config
	ops_start
	old=$CPM_PID
	upgrade "$old"
	kill -WINCH "$old"
	within 5 no_workers "$old"
	kill -QUIT "$old"
	wait_exit "$old" 5
	CPM_PID=
	kill -QUIT "$NEW"
	within 5 gone "$NEW"
	[ ! -e "$sock" ]
}

@test "USR2 finds a relative config file after chdir" {
	ops_config "\"chdir\": \"/\""
	cd "$BATS_TEST_TMPDIR"
	"$CPM" -c cpm.json >>stderr.log 2>&1 3>&- &
	CPM_PID=$!
	CPM_LOG=$BATS_TEST_TMPDIR/error.log
	wait_port "$CPM_PID"
	old=$CPM_PID
	upgrade "$old"
	assert_equal "$(cat "$PF.oldbin")" "$old"
}
