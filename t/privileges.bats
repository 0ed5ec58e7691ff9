#!/usr/bin/env bats
# Started as root without "user", cpm runs its workers, CGI programs and
# pools as nobody; "user": "root" insists; what nobody cannot reach is a
# configuration error at start and on HUP. These tests need root (as the
# suite does) and use directories under /tmp that nobody can reach: the
# checkout's own directories may not be.
load helpers

setup() {
	[ "$(id -u)" = 0 ] || {
		echo "t/privileges.bats needs root" >&2
		return 1
	}
	NOBODY=$(id -u nobody)
	PD=$(mktemp -d /tmp/cpm-priv.XXXXXX)
	chmod 0755 "$PD"
	mkdir "$PD/cgi"
	printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho "uid=$(id -u)"\n' >"$PD/cgi/id.sh"
	chmod 0755 "$PD/cgi/id.sh"
	[ -x "$ROOT/examples/counter" ] || make -s -C "$ROOT" examples/counter >/dev/null
	cp "$ROOT/examples/counter" "$PD/counter"
	# a directory nobody cannot search, with what cpm would need inside
	SECRET=$(mktemp -d /tmp/cpm-secret.XXXXXX)
	chmod 0700 "$SECRET"
	mkdir "$SECRET/cgi"
	cp "$PD/counter" "$SECRET/counter"
	CPM_PORT=$(free_port)
	CPM_LOG=$PD/error.log
}

teardown() {
	local master=${CPM_PID:-} pools=""
	[ -z "$master" ] || pools=$(pgrep -P "$master" -f "/counter" || true)
	cpm_stop
	local p rc=0
	for p in $pools; do
		within 5 gone "$p" || { echo "pool process $p survived" >&2; kill -KILL "$p"; rc=1; }
	done
	if grep -sE "runtime error|AddressSanitizer" "$PD"/stderr.log "$PD"/error.log* >&2; then
		rc=1
	fi
	rm -rf "$PD" "$SECRET"
	return $rc
}

# priv_config [TOP-LEVEL MEMBERS] [CGI ROOT] [POOL COMMAND]: $PD/cpm.json,
# "/" -> a cgi backend, "/fcgi" -> a pool; no "user" unless TOP has one
priv_config() {
	local top=${1:-}
	[ -n "$top" ] && top="$top,"
	cat >"$PD/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": 2,
  "access_log": "$PD/access.log",
  "error_log": "$PD/error.log",
  $top
  "routes": [ { "prefix": "/fcgi", "backend": "pool" }, { "prefix": "/", "backend": "cgi" } ],
  "backends": {
    "cgi": { "type": "cgi", "root": "${2:-$PD/cgi}" },
    "pool": { "type": "fastcgi", "command": ["${3:-$PD/counter}"], "processes": 1 }
  }
}
JSON
}

priv_start() {
	"$CPM" -c "$PD/cpm.json" >>"$PD/stderr.log" 2>&1 &
	CPM_PID=$!
	within 5 curl -sf -o /dev/null "$(url /id.sh)" || {
		cat "$PD/stderr.log" "$PD/error.log" >&2
		return 1
	}
}

# the users ps shows for the master's children called NAME*
users_of() {
	local p
	for p in $(pgrep -P "$CPM_PID" -f "$1"); do
		ps -o user= -p "$p"
	done | sort -u
}

@test "as root without user: workers, CGI programs and pool processes run as nobody" {
	priv_config
	priv_start
	assert_equal "$(ps -o user= -p "$CPM_PID")" root
	within 3 eval '[ "$(pgrep -c -P "$CPM_PID" -f "cpm: worker")" = 2 ]'
	assert_equal "$(users_of "cpm: worker")" nobody
	assert_equal "$(users_of "/counter")" nobody
	run curl -s "$(url /id.sh)"
	assert_output "uid=$NOBODY"
	# the workers, as nobody, reach the pool's socket
	run curl -s "$(url /fcgi)"
	assert_output --regexp '^count=1 pid=[0-9]+ uri=/fcgi$'
	run grep -c 'started as root without "user": workers, CGI programs and pools run as nobody' "$PD/error.log"
	assert_output 1
}

@test "user root insists: workers, CGI programs and pools run as root, with a warning" {
	priv_config '"user": "root"'
	priv_start
	within 3 eval '[ "$(pgrep -c -P "$CPM_PID" -f "cpm: worker")" = 2 ]'
	assert_equal "$(users_of "cpm: worker")" root
	assert_equal "$(users_of "/counter")" root
	run curl -s "$(url /id.sh)"
	assert_output "uid=0"
	run grep -c '"user": "root": workers, CGI programs and pools run as root' "$PD/error.log"
	assert_output 1
}

@test "USR1: workers running as nobody reopen the logs the master reopened" {
	priv_config
	priv_start
	mv "$PD/access.log" "$PD/access.log.1"
	mv "$PD/error.log" "$PD/error.log.1"
	kill -USR1 "$CPM_PID"
	within 3 test -f "$PD/access.log"
	# every worker has reopened: each request lands in the new file
	sleep 0.5
	for i in 1 2 3 4 5 6; do curl -s -o /dev/null "$(url "/id.sh?n=$i")"; done
	within 3 eval '[ "$(grep -c "GET /id.sh?n=" "$PD/access.log")" = 6 ]'
	run grep -c "GET /id.sh?n=" "$PD/access.log.1"
	assert_output 0
	run grep "reopening logs failed" "$PD/error.log" "$PD/error.log.1"
	assert_failure
	assert_equal "$(stat -c %U "$PD/access.log")" nobody
}

@test "group without user is a configuration error at the group key" {
	priv_config '"group": "root"'
	run "$CPM" -t -c "$PD/cpm.json"
	assert_equal "$status" 1
	assert_output --partial "cpm.json:6:3: group: \"group\" needs \"user\""
}

@test "a CGI root nobody cannot reach stops startup, naming the key, path, user and directory" {
	priv_config "" "$SECRET/cgi"
	run timeout 5 "$CPM" -c "$PD/cpm.json"
	assert_equal "$status" 1
	assert_output --regexp "cpm.json:9:[0-9]+: backends\.cgi\.root: $SECRET/cgi is not reachable by user nobody \(search permission denied on $SECRET\)"
	# the same as "user": "root": fine
	priv_config '"user": "root"' "$SECRET/cgi"
	run "$CPM" -t -c "$PD/cpm.json"
	assert_success
}

@test "a pool command nobody cannot reach stops startup; so does a pool user's" {
	priv_config "" "" "$SECRET/counter"
	run timeout 5 "$CPM" -c "$PD/cpm.json"
	assert_equal "$status" 1
	assert_output --regexp "cpm.json:10:[0-9]+: backends\.pool\.command\[0\]: $SECRET/counter is not reachable by user nobody \(search permission denied on $SECRET\)"
	# workers as root, the pool as nobody: checked as the pool's user
	chmod 0711 "$SECRET"
	chmod 0700 "$SECRET/counter"
	priv_config '"user": "root"' "" "$SECRET/counter"
	sed -i 's|"processes": 1|"processes": 1, "user": "nobody"|' "$PD/cpm.json"
	run "$CPM" -t -c "$PD/cpm.json"
	assert_equal "$status" 1
	assert_output --partial "backends.pool.command[0]: $SECRET/counter is not reachable by user nobody (execute permission denied on $SECRET/counter)"
}

@test "--cgi DIR as root: a directory nobody cannot reach is an error" {
	run "$CPM" -t --cgi "$SECRET/cgi"
	assert_equal "$status" 1
	assert_output --partial "--cgi: root: $SECRET/cgi is not reachable by user nobody (search permission denied on $SECRET)"
}

@test "HUP with a root nobody cannot reach keeps the running configuration" {
	priv_config
	priv_start
	cp "$PD/cpm.json" "$PD/good.json"
	priv_config "" "$SECRET/cgi"
	kill -HUP "$CPM_PID"
	within 3 grep -q "reload failed, keeping the running configuration: .*backends\.cgi\.root: $SECRET/cgi is not reachable by user nobody" "$PD/error.log"
	run curl -s "$(url /id.sh)"
	assert_output "uid=$NOBODY"
	run grep -c "reloaded " "$PD/error.log"
	assert_output 0
}

@test "a log directory nobody cannot search is a warning: workers could not reopen the log on USR1" {
	priv_config
	sed -i "s|\"error_log\": \"$PD/error.log\"|\"error_log\": \"$SECRET/error.log\"|" "$PD/cpm.json"
	run "$CPM" -t -c "$PD/cpm.json"
	assert_success
	assert_output --partial "error_log: $SECRET is not reachable by user nobody (search permission denied on $SECRET): the workers cannot reopen $SECRET/error.log on USR1"
}

@test "HUP to another user: the new workers reach the pool sockets made for the old one" {
	priv_config
	priv_start
	run curl -s "$(url /fcgi)"
	assert_output --regexp '^count=1 '
	priv_config '"user": "daemon"'
	kill -HUP "$CPM_PID"
	within 5 grep -q "reloaded " "$PD/error.log"
	within 5 eval '[ "$(curl -s "$(url /id.sh)")" = "uid=$(id -u daemon)" ]'
	within 5 eval '[ "$(users_of "cpm: worker")" = daemon ]'
	run curl -s "$(url /fcgi)"
	assert_output --regexp '^count=[0-9]+ pid=[0-9]+ uri=/fcgi$'
	assert_equal "$(users_of "/counter")" daemon
}
