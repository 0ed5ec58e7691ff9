#!/usr/bin/env bats
# cpm -s COMMAND [ARG]: the master's control socket (reload with its
# outcome, reopen, quit, stop, restart-pool NAME).
load helpers

eval "$(declare -f teardown | sed '1s/^teardown/helpers_teardown/')"

setup() {
	CPM_PORT=$(free_port)
	CFG=$BATS_TEST_TMPDIR/cpm.json
	PF=$BATS_TEST_TMPDIR/cpm.pid
	SOCK=$BATS_TEST_TMPDIR/cpm.ctl # next to the pidfile: cpm.pid -> cpm.ctl
	CTL_PIDS=""
	CTL_DIR="" # a directory outside the test's, removed at the end
}

teardown() {
	local p rc=0
	for p in $CTL_PIDS; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	# a master started by USR2 is not our child: by its pidfile
	p=$(cat "$PF" 2>/dev/null || true)
	if [ -n "$p" ] && [ "$p" != "${CPM_PID:-}" ] && ! gone "$p"; then
		kill -QUIT "$p" 2>/dev/null || true
		within 5 gone "$p" || { echo "master $p survived QUIT" >&2; kill -KILL "$p"; rc=1; }
	fi
	helpers_teardown || rc=1
	[ -z "$CTL_DIR" ] || rm -rf "$CTL_DIR"
	return $rc
}

# ctl_config [extra top-level members] [extra routes]: a pidfile (so a
# control socket at $SOCK), a pool "counter" of 2 at /counter, / = t/apps
ctl_config() {
	local top=${1:-} routes=${2:-}
	[ -n "$top" ] && top="$top,"
	cat >"$CFG" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": 2,
  "pidfile": "$PF",
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member "$top")
  $top
  "routes": [ $routes
    { "prefix": "/counter", "backend": "counter" },
    { "prefix": "/", "backend": "apps" }
  ],
  "backends": {
    "apps": { "type": "cgi", "root": "$APPS" },
    "examples": { "type": "cgi", "root": "$ROOT/examples" },
    "counter": { "type": "fastcgi", "command": ["$ROOT/examples/counter"], "processes": 2 }
  }
}
JSON
}

# ctl_start: the master in the background as $CPM_PID (bats' fd 3 closed:
# a master started by USR2 would inherit it)
ctl_start() {
	[ -f "$CFG" ] || ctl_config
	CPM_LOG=$BATS_TEST_TMPDIR/error.log
	"$CPM" -c "$CFG" >>"$BATS_TEST_TMPDIR/stderr.log" 2>&1 3>&- &
	CPM_PID=$!
	within 5 test -S "$SOCK" || { cat "$BATS_TEST_TMPDIR/stderr.log" "$CPM_LOG" >&2; return 1; }
	within 5 curl -sf -o /dev/null "$(url /counter)"
}

ctl() { "$CPM" -s "$@" -c "$CFG"; }

# pool_pids: the master's children that are not workers (the pool), sorted
pool_pids() {
	ps -o pid= --ppid "$CPM_PID" | tr -d ' ' | grep -vxF -f <(workers_of "$CPM_PID"; echo x) | sort
}

nfds() { ls "/proc/$1/fd" | wc -l; }

# upgrade OLD: USR2 to OLD; sets NEW once the new master has written the
# pidfile and taken the control socket over
upgrade() {
	NEW=
	kill -USR2 "$1"
	new_master() { NEW=$(cat "$PF" 2>/dev/null) && [ -n "$NEW" ] && [ "$NEW" != "$1" ]; }
	within 5 new_master "$1"
	within 5 grep -q "cpm\[$NEW\]: control socket $SOCK" "$CPM_LOG"
}

@test "-s reload picks up a new route and says the reload succeeded" {
	ctl_start
	run curl -s -o /dev/null -w '%{http_code}' "$(url /ex/hello.sh)"
	assert_output 404
	ctl_config "" '{ "prefix": "/ex/", "backend": "examples" },'
	run ctl reload
	assert_success
	assert_output "cpm: reloaded $CFG: generation 1, 2 worker(s)"
	within 5 eval '[ "$(curl -s "$(url /ex/hello.sh)")" = "Hello, world!" ]'
	grep -q "control: \"reload\" from pid [0-9]* uid 0" "$CPM_LOG"
	# the answer ends with EOF: no worker started by the reload holds the
	# connection open
	run python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(3); s.sendall(b"reload\n")
d = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    d += b
print(d.decode().strip())' "$SOCK"
	assert_success
	assert_output "ok reloaded $CFG: generation 2, 2 worker(s)"
}

@test "-s reload with a broken config prints file:line:col, exits 1, and the old config serves" {
	ctl_start
	ctl_config '"workers_typo": 3'
	run ctl reload
	assert_failure 1
	assert_output "cpm: reload failed, keeping the running configuration: $CFG:7:3: workers_typo: unknown key"
	# a file that is not even JSON is reported by the client itself: the
	# path of the socket is in it
	echo '{ "listen": [' >"$CFG"
	run ctl reload
	assert_failure 1
	assert_line --index 0 --regexp "^cpm: $CFG:2:0: "
	assert_line --index 1 "cpm: the master was not asked"
	run curl -s -o /dev/null -w '%{http_code}' "$(url /status.sh?201)"
	assert_output 201
	kill -0 "$CPM_PID"
}

@test "-s restart-pool NAME replaces that pool's processes; an unknown NAME exits 1" {
	ctl_start
	local before after
	before=$(pool_pids)
	[ "$(wc -l <<<"$before")" -eq 2 ]
	run ctl restart-pool counter
	assert_success
	assert_output "cpm: restarting pool counter"
	changed() {
		after=$(pool_pids)
		[ "$(wc -l <<<"$after")" -eq 2 ] && [ -z "$(comm -12 <(echo "$before") <(echo "$after"))" ]
	}
	within 5 changed
	within 5 curl -sf -o /dev/null "$(url /counter)"
	run ctl restart-pool nope
	assert_failure 1
	assert_output 'cpm: no pool named "nope"'
	run ctl restart-pool
	assert_failure 2
	assert_output --partial "restart-pool needs an argument"
	run "$CPM" -s frobnicate -c "$CFG"
	assert_failure 2
	assert_output --partial 'unknown command "frobnicate"'
}

@test "-s quit stops gracefully: the request in flight completes" {
	ctl_start
	curl -s -m 10 "$(url /sleep.sh?1)" >"$BATS_TEST_TMPDIR/slow.out" 3>&- &
	local c=$!
	CTL_PIDS="$c"
	within 3 eval '[ -n "$(cgi_groups_of "$CPM_PID")" ]'
	run ctl quit
	assert_success
	assert_output "cpm: graceful stop begun (master pid $CPM_PID)"
	wait "$c"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/slow.out")" "slept"
	wait_exit "$CPM_PID" 5
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	[ ! -e "$SOCK" ]
}

@test "-s stop is the fast stop" {
	ctl_start
	run ctl stop
	assert_success
	assert_output --partial "fast stop begun"
	wait_exit "$CPM_PID" 5
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
}

@test "-s with no master running says so and exits 1" {
	ctl_config
	run ctl reload
	assert_failure 1
	assert_output "cpm: cannot reach the master at $SOCK: No such file or directory (is cpm running?)"
	# without a pidfile or "control" there is no socket to find
	sed -i '/"pidfile"/d' "$CFG"
	run ctl reload
	assert_failure 1
	assert_line --index 0 --partial 'no control socket: set "control"'
}

@test "a stale control socket does not stop a new start; a live one does" {
	ctl_config
	python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$SOCK"
	[ -S "$SOCK" ]
	run ctl reload
	assert_failure 1
	assert_output "cpm: cannot reach the master at $SOCK: Connection refused (is cpm running?)"
	ctl_start
	run ctl reload
	assert_success
	# a second master with a config naming the same socket is refused
	sed -e "s|$PF|$BATS_TEST_TMPDIR/other.pid|" -e "s|127.0.0.1:$CPM_PORT|127.0.0.1:$(free_port)|" \
		-e "s|^  \"workers\"|  \"control\": \"$SOCK\", \"workers\"|" "$CFG" >"$BATS_TEST_TMPDIR/other.json"
	run "$CPM" -c "$BATS_TEST_TMPDIR/other.json"
	assert_failure 1
	assert_output --partial "control socket $SOCK: another cpm master answers there"
	run ctl reload
	assert_success
}

@test "after a USR2 upgrade and the old master's exit, -s reaches the new master" {
	ctl_start
	local old=$CPM_PID new
	upgrade "$old"
	new=$NEW
	run ctl reopen
	assert_success
	grep -q "cpm\[$new\]: control: \"reopen\"" "$CPM_LOG"
	kill -QUIT "$old"
	wait_exit "$old" 10
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	[ -S "$SOCK" ]
	run ctl reload
	assert_success
	assert_output --partial "cpm: reloaded $CFG"
	grep -q "cpm\[$new\]: control: \"reload\"" "$CPM_LOG"
	# and the new master removes it when it stops
	run ctl quit
	assert_success
	within 10 gone "$new"
	[ ! -e "$SOCK" ]
}

@test "a rolled-back USR2 upgrade gives the socket back to the old master" {
	ctl_start
	local old=$CPM_PID new
	upgrade "$old"
	new=$NEW
	kill -QUIT "$new"
	within 10 gone "$new"
	within 5 eval '[ "$(cat "$PF")" = "$old" ]'
	run ctl reopen
	assert_success
	grep -q "cpm\[$old\]: control: \"reopen\"" "$CPM_LOG"
}

@test "the control socket is mode 0600, owned by the user who started cpm" {
	ctl_start
	assert_equal "$(stat -c '%a %u' "$SOCK")" "600 $(id -u)"
	# a control key names another path
	cpm_stop
	ctl_config "\"control\": \"$BATS_TEST_TMPDIR/ctl/here.sock\""
	mkdir -m 0700 "$BATS_TEST_TMPDIR/ctl"
	SOCK=$BATS_TEST_TMPDIR/ctl/here.sock ctl_start
	run ctl reopen
	assert_success
	assert_output "cpm: logs reopened"
}

@test "a reload that changes \"control\" moves the socket" {
	ctl_start
	ctl_config "\"control\": \"$BATS_TEST_TMPDIR/moved.ctl\""
	# cpm -s reload would look for the new path: HUP
	kill -HUP "$CPM_PID"
	within 5 test -S "$BATS_TEST_TMPDIR/moved.ctl"
	[ -S "$BATS_TEST_TMPDIR/moved.ctl" ]
	[ ! -e "$SOCK" ]
	run ctl reopen
	assert_success
	assert_output "cpm: logs reopened"
}

@test "a peer of another uid is refused even if the socket's mode lets it in" {
	CTL_DIR=$(mktemp -d /tmp/cpm-ctl.XXXXXX)
	chmod 0755 "$CTL_DIR"
	SOCK=$CTL_DIR/cpm.ctl
	ctl_config "\"control\": \"$SOCK\""
	ctl_start
	chmod 0666 "$SOCK"
	run setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
print(s.recv(100).decode().strip())' "$SOCK"
	assert_output "error permission denied"
	grep -q "control: refused pid [0-9]* uid $(id -u nobody)" "$CPM_LOG"
	kill -0 "$CPM_PID"
}

@test "a silent or flooding client neither blocks the master nor leaks a descriptor" {
	ctl_start
	local before i
	# after a first reload the pool has its spare position's socket open
	# too (positions keep their sockets): that is the steady count
	ctl reload >/dev/null
	within 10 grep -q "pool counter: restarted (2 of 2)" "$CPM_LOG"
	before=$(nfds "$CPM_PID")
	# one connects and says nothing: the master answers others meanwhile
	python3 -c 'import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(4)' \
		"$SOCK" 3>&- &
	CTL_PIDS="$!"
	sleep 0.2
	local t0=$SECONDS
	run ctl reopen
	assert_success
	[ $((SECONDS - t0)) -le 1 ]
	# a line too long is refused
	run python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"x" * 5000)
print(s.recv(100).decode().strip())' "$SOCK"
	assert_output "error command line too long"
	within 5 grep -q "sent no command within 2000 ms; dropped" "$CPM_LOG"
	for i in $(seq 50); do
		case $((i % 3)) in
		0) ctl reopen >/dev/null ;;
		1) ! ctl restart-pool nope 2>/dev/null ;;
		2) ctl reload >/dev/null ;;
		esac
	done
	# a reload restarts the pools one process at a time: the spare
	# position's socket and pipe are open until the last old one is gone
	within 20 eval '[ "$(nfds "$CPM_PID")" = "$before" ]'
	# the listening socket is the master's alone: no worker inherited it
	run ss -xlp
	# (ss shows the name it was bound at before the rename onto $SOCK)
	assert_line --regexp "$SOCK(\.[0-9]+\.tmp)? .*pid=$CPM_PID,"
	local w
	for w in $(workers_of "$CPM_PID"); do
		refute_line --regexp "$SOCK(\.[0-9]+\.tmp)? .*pid=$w,"
	done
}

# lowest_free_fd PID: the descriptor number the process's next open gets
lowest_free_fd() {
	ls "/proc/$1/fd" | sort -n | awk 'BEGIN {n = 0} $1 == n {n++} END {print n}'
}

@test "out of descriptors, the master pauses accepting instead of spinning, then answers" {
	ctl_start
	local n t0 t1 soft hard
	n=$(lowest_free_fd "$CPM_PID")
	read -r soft hard < <(prlimit --pid "$CPM_PID" --nofile --noheadings -o SOFT,HARD)
	prlimit --pid "$CPM_PID" --nofile="$n:$hard"
	"$CPM" -s reopen -c "$CFG" >"$BATS_TEST_TMPDIR/ctl.out" 2>&1 3>&- &
	local c=$!
	CTL_PIDS="$c"
	within 5 grep -q "control: accept: Too many open files; not accepting for 1000 ms" "$CPM_LOG"
	t0=$(cpu_ticks "$CPM_PID")
	sleep 2
	t1=$(cpu_ticks "$CPM_PID")
	# a spinning loop burns ~200 ticks in 2 s; paused, a few at most
	[ $((t1 - t0)) -le 20 ]
	kill -0 "$c"
	prlimit --pid "$CPM_PID" --nofile="$soft:$hard"
	wait "$c"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/ctl.out")" "cpm: logs reopened"
}
