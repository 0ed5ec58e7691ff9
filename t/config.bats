#!/usr/bin/env bats
load helpers
bats_require_minimum_version 1.5.0

check() {
	printf '%s\n' "$1" >"$BATS_TEST_TMPDIR/c.json"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
}

@test "an unknown key is an error at its line and column" {
	check '{
  "listen": ["127.0.0.1:1"],
  "wokers": 2,
  "routes": [], "backends": {}
}'
	assert_equal "$status" 1
	assert_output --partial "c.json:3:3: wokers: unknown key"
}

@test "a wrong type points at the value" {
	check '{
  "routes": [{"prefix": "/", "backend": "scripts"}],
  "backends": {
    "scripts": {
      "type": "cgi",
      "root": "/tmp",
      "timeout": "soon"
    }
  }
}'
	assert_equal "$status" 1
	assert_output --regexp "c.json:7:18: backends.scripts.timeout: expected a duration"
}

@test "a negative timeout is rejected" {
	check '{"routes": [{"prefix": "/", "backend": "s"}],
 "backends": {"s": {"type": "cgi", "root": "/tmp", "timeout": -1}}}'
	assert_equal "$status" 1
	assert_output --partial "c.json:2:63: backends.s.timeout: expected a duration (seconds, or a string such as \"500ms\", \"30s\", \"5m\", \"1h\")"
}

@test "a route to an undefined backend is an error" {
	check '{"routes": [{"prefix": "/", "backend": "nope"}],
 "backends": {"s": {"type": "cgi", "root": "/tmp"}}}'
	assert_equal "$status" 1
	assert_output --partial 'c.json:1:40: routes[0].backend: no backend named "nope"'
}

@test "a missing CGI root is an error" {
	check '{"routes": [{"prefix": "/", "backend": "s"}],
 "backends": {"s": {"type": "cgi", "root": "/does/not/exist"}}}'
	assert_equal "$status" 1
	assert_output --partial "backends.s.root: cannot use /does/not/exist: No such file or directory"
}

@test "a JSON syntax error carries line and column" {
	check '{
  "workers": 2,,
}'
	assert_equal "$status" 1
	assert_output --regexp 'c.json:2:[0-9]+: '
}

@test "a duplicate key is an error" {
	check '{"workers": 2, "workers": 3, "routes": [], "backends": {}}'
	assert_equal "$status" 1
	assert_output --partial "duplicate"
}

@test "sizes and durations accept suffixes" {
	check '{"keepalive": "1m", "header_timeout": "500ms",
 "limits": {"body": "10M", "header_size": "64K", "request_line": 4096},
 "routes": [{"prefix": "/", "backend": "s"}],
 "backends": {"s": {"type": "cgi", "root": "/tmp"}}}'
	assert_success
	check '{"limits": {"body": "10X"}, "routes": [{"prefix": "/", "backend": "s"}],
 "backends": {"s": {"type": "cgi", "root": "/tmp"}}}'
	assert_equal "$status" 1
	assert_output --partial "limits.body: expected a size"
}

@test "an unreadable config file is a clear error" {
	run "$CPM" -t -c /nonexistent.json
	assert_equal "$status" 1
	assert_output --partial "/nonexistent.json: No such file or directory"
}

@test "limits.header_field is a size between 64 bytes and 1M" {
	check '{"limits": {"header_field": "16K"}, "routes": [{"prefix": "/", "backend": "s"}],
 "backends": {"s": {"type": "cgi", "root": "/tmp"}}}'
	assert_success
	check '{"limits": {"header_field": 8},
 "routes": [{"prefix": "/", "backend": "s"}],
 "backends": {"s": {"type": "cgi", "root": "/tmp"}}}'
	assert_equal "$status" 1
	assert_output --partial "c.json:1:29: limits.header_field: size out of range (64 to 1048576 bytes)"
}

@test "a route's server_name is a host without a port" {
	check '{"routes": [{"prefix": "/", "backend": "s", "server_name": "www.example.com"}],
 "backends": {"s": {"type": "cgi", "root": "/tmp"}}}'
	assert_success
	check '{"routes": [{"prefix": "/", "backend": "s", "server_name": "www.example.com:80"}],
 "backends": {"s": {"type": "cgi", "root": "/tmp"}}}'
	assert_equal "$status" 1
	assert_output --partial "c.json:1:60: routes[0].server_name: expected a host name or IP address, without a port"
}

@test "a missing top-level key is named, with no empty key path" {
	check '{"workers": 1}'
	assert_equal "$status" 1
	assert_output "cpm: $BATS_TEST_TMPDIR/c.json:1:1: missing key \"backends\" (an object: backend name -> {\"type\": ...})"
	check '{"workers": 1, "backends": {"s": {"type": "status"}}}'
	assert_equal "$status" 1
	assert_output "cpm: $BATS_TEST_TMPDIR/c.json:1:1: missing key \"routes\" (an array: [{\"prefix\": \"/\", \"backend\": NAME}, ...])"
}

@test "umask as an integer is refused with the string it probably means" {
	check '{"umask": 22, "routes": [{"prefix": "/", "backend": "s"}], "backends": {"s": {"type": "status"}}}'
	assert_equal "$status" 1
	assert_output "cpm: $BATS_TEST_TMPDIR/c.json:1:11: umask: expected an octal mode as a string: \"022\", not 22 (JSON has no octal numbers: the integer 22 would be mode 026)"
	check '{"umask": 18, "routes": [{"prefix": "/", "backend": "s"}], "backends": {"s": {"type": "status"}}}'
	assert_equal "$status" 1
	assert_output --partial 'umask: expected an octal mode as a string, such as "022" (JSON has no octal numbers)'
	check '{"umask": "022", "routes": [{"prefix": "/", "backend": "s"}], "backends": {"s": {"type": "status"}}}'
	assert_success
}

@test "durations: ms, s, m, h and bare seconds; zero only where it means something" {
	for ok in '"timeout": "1500ms"' '"timeout": "2"' '"timeout": "1h"' '"keepalive": 0' '"keepalive": "0s"' '"lingering_time": "0ms"' '"graceful_timeout": "0s"'; do
		check "{$ok, \"routes\": [{\"prefix\": \"/\", \"backend\": \"s\"}], \"backends\": {\"s\": {\"type\": \"status\"}}}"
		assert_success
	done
	for zero in '"timeout": 0' '"header_timeout": "0s"' '"client_timeout": "0ms"'; do
		check "{$zero, \"routes\": [{\"prefix\": \"/\", \"backend\": \"s\"}], \"backends\": {\"s\": {\"type\": \"status\"}}}"
		assert_equal "$status" 1
		assert_output --partial ': expected a duration greater than 0 (this wait has no "off": every wait is bounded)'
	done
	for bad in '"timeout": 1.5' '"timeout": "5 s"' '"timeout": "1d"'; do
		check "{$bad, \"routes\": [{\"prefix\": \"/\", \"backend\": \"s\"}], \"backends\": {\"s\": {\"type\": \"status\"}}}"
		assert_equal "$status" 1
		assert_output --partial 'c.json:1:13: timeout: expected a duration (seconds, or a string such as "500ms", "30s", "5m", "1h")'
	done
}

@test "relative paths are taken from the configuration file's directory, wherever cpm starts" {
	d=$BATS_TEST_TMPDIR/site
	mkdir -p "$d/conf/logs" "$d/cgi"
	printf '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nrel ok\\n"\n' >"$d/cgi/hi.sh"
	chmod 755 "$d/cgi/hi.sh"
	CPM_PORT=$(free_port)
	cat >"$d/conf/cpm.json" <<JSON
{ "listen": ["127.0.0.1:$CPM_PORT"], $(user_member)
  "error_log": "logs/error.log", "access_log": "logs/access.log", "pidfile": "logs/cpm.pid",
  "routes": [ { "prefix": "/", "backend": "c" } ],
  "backends": { "c": { "type": "cgi", "root": "../cgi" } } }
JSON
	cd /
	run "$CPM" -t -c "$d/conf/cpm.json"
	assert_success
	# from another directory, with a relative -c
	cd "$d/conf/logs"
	"$CPM" -c ../cpm.json >>"$BATS_TEST_TMPDIR/stderr.log" 2>&1 &
	CPM_PID=$!
	CPM_LOG=$d/conf/logs/error.log
	within 5 curl -sf -o /dev/null "$(url /hi.sh)"
	run curl -s "$(url /hi.sh)"
	assert_output "rel ok"
	[ -s "$d/conf/logs/error.log" ]
	[ -s "$d/conf/logs/access.log" ]
	assert_equal "$(cat "$d/conf/logs/cpm.pid")" "$CPM_PID"
	# errors show the path as resolved
	sed -i 's|"root": "../cgi"|"root": "nosuch"|' "$d/conf/cpm.json"
	cd /
	run "$CPM" -t -c "$d/conf/cpm.json"
	assert_equal "$status" 1
	assert_output --partial "backends.c.root: cannot use $d/conf/nosuch: No such file or directory"
}

@test "-t: a log file that cannot be opened for appending and a missing pidfile directory are errors at their key" {
	tail='"routes": [{"prefix": "/", "backend": "s"}], "backends": {"s": {"type": "status"}}}'
	check "{\"error_log\": \"$BATS_TEST_TMPDIR/no/dir/error.log\", $tail"
	assert_equal "$status" 1
	assert_output "cpm: $BATS_TEST_TMPDIR/c.json:1:15: error_log: cannot create $BATS_TEST_TMPDIR/no/dir/error.log: the directory $BATS_TEST_TMPDIR/no/dir does not exist"
	check "{\"access_log\": \"$BATS_TEST_TMPDIR\", $tail"
	assert_equal "$status" 1
	assert_output "cpm: $BATS_TEST_TMPDIR/c.json:1:16: access_log: $BATS_TEST_TMPDIR is a directory"
	check "{\"pidfile\": \"$BATS_TEST_TMPDIR/run/cpm.pid\", $tail"
	assert_equal "$status" 1
	assert_output "cpm: $BATS_TEST_TMPDIR/c.json:1:13: pidfile: cannot create $BATS_TEST_TMPDIR/run/cpm.pid: the directory $BATS_TEST_TMPDIR/run does not exist"
	# nothing was created by the checks
	[ ! -e "$BATS_TEST_TMPDIR/no" ] && [ ! -e "$BATS_TEST_TMPDIR/run" ]
	check "{\"error_log\": \"$BATS_TEST_TMPDIR/new.log\", \"pidfile\": \"$BATS_TEST_TMPDIR/cpm.pid\", $tail"
	assert_success
	[ ! -e "$BATS_TEST_TMPDIR/new.log" ]
}

@test "a reload whose error_log cannot be opened keeps the running configuration, and says why" {
	cpm_start
	sed -i "s|\"error_log\": \"[^\"]*\"|\"error_log\": \"$BATS_TEST_TMPDIR/gone/error.log\"|" "$BATS_TEST_TMPDIR/cpm.json"
	kill -HUP "$CPM_PID"
	within 5 grep -q "reload failed" "$CPM_LOG"
	run grep "reload failed" "$CPM_LOG"
	assert_output --partial "reload failed, keeping the running configuration: $BATS_TEST_TMPDIR/cpm.json:"
	assert_output --partial "error_log: cannot create $BATS_TEST_TMPDIR/gone/error.log: the directory $BATS_TEST_TMPDIR/gone does not exist"
	run curl -s "$(url /env.sh)"
	assert_line "GATEWAY_INTERFACE=CGI/1.1"
}

@test "-t warns about a route an earlier one shadows completely, at its line, naming the earlier one" {
	cat >"$BATS_TEST_TMPDIR/c.json" <<'JSON'
{
  "routes": [
    { "prefix": "/", "backend": "s", "methods": ["GET"] },
    { "prefix": "/status", "backend": "s" }
  ],
  "backends": {"s": {"type": "status"}}
}
JSON
	run --separate-stderr "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
	assert_success
	assert_output "cpm: configuration $BATS_TEST_TMPDIR/c.json is ok"
	[[ "$stderr" == *"[warn] "*"$BATS_TEST_TMPDIR/c.json:4:5: routes[1]: this route is never used: routes[0] (line 3, prefix \"/\") comes first and matches every request it would (the first matching route wins: put the longer prefix first); methods, allow, deny and auth do not pass a request on to a later route"* ]] || { echo "$stderr"; return 1; }
}

@test "suffixes narrow a route: no warning unless the earlier route's suffixes cover the later one's" {
	cat >"$BATS_TEST_TMPDIR/c.json" <<'JSON'
{
  "routes": [
    { "prefix": "/w/", "suffix": [".php"], "backend": "s" },
    { "prefix": "/w/x/", "suffix": [".php", "x.cgi"], "backend": "s" },
    { "prefix": "/w/y/", "suffix": ["index.php"], "backend": "s" },
    { "prefix": "/w/", "backend": "s" },
    { "prefix": "/wx", "backend": "s" },
    { "prefix": "/w", "suffix": [".cgi"], "backend": "s" }
  ],
  "backends": {"s": {"type": "status"}}
}
JSON
	run --separate-stderr "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
	assert_success
	# used: /w/x/ (x.cgi is not .php), /w/ without suffix, /wx (not under
	# /w/), /w with .cgi ("/w" itself is not under "/w/"); /w/y/
	# index.php ends with .php: shadowed
	[[ "$stderr" != *"routes[1]:"* && "$stderr" != *"routes[3]:"* && "$stderr" != *"routes[4]:"* && "$stderr" != *"routes[5]:"* ]] || { echo "$stderr"; return 1; }
	[[ "$stderr" == *"c.json:5:5: routes[2]: this route is never used: routes[0] (line 3, prefix \"/w/\" with suffixes) comes first"* ]] || { echo "$stderr"; return 1; }
}

@test "the shipped configurations have no shadowed route" {
	d=$(examples_copy)
	for f in "$d"/etc/*.json; do
		run --separate-stderr "$CPM" -t -c "$f"
		[[ "$stderr" != *"never used"* ]] || { echo "$f: $stderr"; return 1; }
	done
	rm -rf "$d"
}

@test "a reload logs the shadowed route in the error log" {
	cpm_start
	sed -i 's|{ "prefix": "/", "backend": "apps" }|{ "prefix": "/", "backend": "apps" }, { "prefix": "/late/", "backend": "apps" }|' "$BATS_TEST_TMPDIR/cpm.json"
	kill -HUP "$CPM_PID"
	within 5 grep -q "never used" "$CPM_LOG"
	run grep "never used" "$CPM_LOG"
	assert_output --regexp 'cpm\.json:[0-9]+:[0-9]+: routes\[2\]: this route is never used: routes\[1\] \(line [0-9]+, prefix "/"\) comes first'
	# and the reload went ahead (a warning, not an error)
	within 5 grep -q "reloaded" "$CPM_LOG"
}

@test "a backend name longer than 63 bytes or with a control character is refused at its key" {
	# the scoreboard, the pools and the metrics hold 63 bytes of a name: a
	# longer pool name was cut, so a reload never found the pool again
	# (\"reload\": \"keep\" ignored, every process killed at once) and
	# cpm -s restart-pool NAME said there was no such pool
	long=$(printf 'p%.0s' $(seq 64))
	check '{"routes": [{"prefix": "/", "backend": "'"$long"'"}],
 "backends": {"'"$long"'": {"type": "fastcgi", "command": ["/bin/cat"]}}}'
	assert_equal "$status" 1
	assert_output --partial "c.json:2:15: backends.$long: a backend name has at most 63 bytes (it has 64)"
	# 63 bytes are fine
	check '{"routes": [{"prefix": "/", "backend": "'"${long:1}"'"}],
 "backends": {"'"${long:1}"'": {"type": "fastcgi", "command": ["/bin/cat"]}}}'
	assert_equal "$status" 0
	# control characters: Prometheus labels dropped them (two names, one
	# series); they have no place in a name the logs and metrics show
	check '{"routes": [{"prefix": "/", "backend": "a\u0001"}],
 "backends": {"a\u0001": {"type": "cgi", "root": "/tmp"}}}'
	assert_equal "$status" 1
	assert_output --partial "c.json:2:15: backends.a"
	assert_output --partial ": a backend name has no control characters"
}
