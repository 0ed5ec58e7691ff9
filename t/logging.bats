#!/usr/bin/env bats
# The error log under hostile input: what a client or a program writes is
# escaped (no forged line, no terminal escape), a program flooding stderr
# is rate limited with a count of what was dropped, and USR1 reopens the
# logs for workers that dropped privileges.
load helpers

setup_file() {
	build_fcgi_apps flood || return 1
}

# the shared teardown, kept as helpers_teardown
eval "$(declare -f teardown | sed '1s/^teardown/helpers_teardown/')"

setup() {
	WORLD_DIR=
}

teardown() {
	local rc=0
	helpers_teardown || rc=1
	[ -z "$WORLD_DIR" ] || rm -rf "$WORLD_DIR"
	return $rc
}

# clean_log FILE: every line is printable ASCII and starts with a timestamp
# of this run (a forged line would start with the client's "2026-01-01")
clean_log() {
	LC_ALL=C grep -n '[^[:print:]]' "$1" && return 1
	LC_ALL=C grep -nv '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9:.]*Z \[[a-z]*\] cpm\[[0-9]*\]: ' "$1" && return 1
	! grep -n '^2026-01-01T00:00:00.000Z' "$1"
}

# flood_total FILE WHAT: lines logged containing WHAT plus the counts of
# every "N lines suppressed" line with prefix PREFIX (global)
flood_total() {
	local logged dropped
	logged=$(grep -c -- "$2" "$1")
	dropped=$(grep -F -- "$PREFIX" "$1" | grep -oE ': [0-9]+ lines? suppressed$' | grep -oE '[0-9]+' |
		awk '{s += $1} END {print s + 0}')
	echo $((logged + dropped))
}

size_of() { stat -c %s "$1"; }

@test "a decoded path with %0a, %1b and a fake log prefix cannot forge an error log line" {
	cpm_start
	fake='%0a2026-01-01T00:00:00.000Z%20[error]%20cpm[1]:%20forged%1b[2J%1b]0;owned%07%c2%9b%5c'
	run raw "GET /short_body.sh/x${fake} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	assert_line --partial 'HTTP/1.1 200'
	within 3 grep -q 'response shorter than its Content-Length' "$CPM_LOG"
	run grep -F 'response shorter' "$CPM_LOG"
	assert_output --partial '"GET /short_body.sh/x%0a2026-01-01T00:00:00.000Z%20[error]'
	run clean_log "$CPM_LOG"
	assert_success
}

@test "raw bytes above 0x7f in a request line are escaped in the error log" {
	cpm_start
	run raw "GET /short_body.sh/\xc2\x9b[2J\xff HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	assert_line --partial 'HTTP/1.1 200'
	within 3 grep -q 'response shorter than its Content-Length' "$CPM_LOG"
	run grep -F 'response shorter' "$CPM_LOG"
	assert_output --partial '"GET /short_body.sh/\xc2\x9b[2J\xff" id='
	run clean_log "$CPM_LOG"
	assert_success
}

@test "a CGI program flooding stderr: the burst, a count of the rest, a small log, cpm still answers" {
	cpm_start
	run curl -s -m 20 "$(url /stderr_flood.sh)"
	assert_output flooded
	within 5 grep -q 'lines suppressed$' "$CPM_LOG"
	# 200,000 lines of ~80 bytes were written: the log keeps the burst
	[ "$(size_of "$CPM_LOG")" -lt 65536 ]
	PREFIX="cgi stderr_flood.sh["
	run flood_total "$CPM_LOG" ': flood line [0-9]*$'
	assert_output 200000
	run grep -c ': flood line [0-9]*$' "$CPM_LOG"
	[ "$output" -ge 99 ] # the burst of 100, the first line included
	# the first line was escaped, not cut or forged
	grep -qF ': evil\x1b[31m\x0d2026-01-01T00:00:00.000Z [error] cpm[1]: forged' "$CPM_LOG"
	run clean_log "$CPM_LOG"
	assert_success
	run curl -s -m 3 "$(url /ex/hello.sh)"
	assert_output 'Hello, world!'
}

# pool_flood_config: /app served by a pool of one t/apps-fcgi/flood
# process, /ex/ by the examples
pool_flood_config() {
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": 2,
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member)
  "routes": [{ "prefix": "/app", "backend": "flood" }, { "prefix": "/ex/", "backend": "examples" }],
  "backends": {
    "flood": { "type": "fastcgi", "command": ["$BATS_FILE_TMPDIR/flood"], "processes": 1 },
    "examples": { "type": "cgi", "root": "$ROOT/examples" }
  }
}
JSON
}

@test "a pool process flooding its stderr pipe: the master keeps the burst and counts the rest" {
	pool_flood_config
	cpm_start
	run curl -s -m 20 "$(url '/app?pipe')"
	assert_output 'ok pipe'
	[ "$(size_of "$CPM_LOG")" -lt 65536 ]
	# the process lives on: the count comes with its next line, once
	# logging has resumed (a second's worth of lines refilled)
	sleep 1.2
	run curl -s -m 3 "$(url '/app?one')"
	assert_output 'ok one'
	within 3 grep -q 'one line after the flood$' "$CPM_LOG"
	run grep -E '\]: pool flood\[0\] pid [0-9]+: [0-9]+ lines suppressed$' "$CPM_LOG"
	assert_success
	PREFIX="pool flood[0] pid"
	run flood_total "$CPM_LOG" ': pipe flood [0-9]*$'
	assert_output 200000
	[ "$(size_of "$CPM_LOG")" -lt 65536 ]
	run clean_log "$CPM_LOG"
	assert_success
	run curl -s -m 3 "$(url /ex/hello.sh)"
	assert_output 'Hello, world!'
}

@test "a FastCGI request flooding FCGI_STDERR: the burst, a count of the rest, a small log" {
	pool_flood_config
	cpm_start
	run curl -s -m 20 "$(url '/app?fcgi')"
	assert_output 'ok fcgi'
	within 3 grep -q ': fastcgi flood id=[0-9a-f]*: [0-9]* lines suppressed$' "$CPM_LOG"
	PREFIX="fastcgi flood id="
	run flood_total "$CPM_LOG" ': fcgi flood [0-9]*$'
	assert_output 200000
	[ "$(size_of "$CPM_LOG")" -lt 65536 ]
	run clean_log "$CPM_LOG"
	assert_success
	run curl -s -m 3 "$(url '/app?one')"
	assert_output 'ok one'
}

# world_config DIR: user nobody, logs in DIR/logs (mode 0755, root's),
# CGI scripts in DIR/apps; DIR and all above it are searchable by nobody
world_config() {
	local d=$1
	mkdir -m 755 "$d/logs" "$d/apps"
	cp "$APPS/stderr.sh" "$d/apps/"
	chmod 755 "$d/apps/stderr.sh"
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": 2,
  "user": "nobody",
  "access_log": "$d/logs/access.log",
  "error_log": "$d/logs/error.log",
  "routes": [{ "prefix": "/", "backend": "apps" }],
  "backends": { "apps": { "type": "cgi", "root": "$d/apps" } }
}
JSON
}

# count_in FILE WHAT N: FILE has N lines containing WHAT
count_in() {
	[ "$(grep -c -- "$2" "$1" 2>/dev/null)" = "$3" ]
}

sideways() {
	local i
	for i in $(seq "$1"); do
		curl -s -o /dev/null -m 3 "$(url /stderr.sh)"
	done
}

@test "USR1 with user nobody: workers reopen logs in a root-only directory; nothing lands in the rotated files" {
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	WORLD_DIR=$(mktemp -d /tmp/cpm-test-XXXXXX)
	chmod 755 "$WORLD_DIR"
	world_config "$WORLD_DIR"
	l=$WORLD_DIR/logs
	CPM_LOG=$l/error.log
	cpm_start
	assert_equal "$(ps -o user= --ppid "$CPM_PID" | sort -u)" nobody
	sideways 2
	within 3 count_in "$l/error.log" 'something went sideways' 2
	within 3 count_in "$l/access.log" 'GET /stderr.sh ' 2
	mv "$l/access.log" "$l/access.log.1"
	mv "$l/error.log" "$l/error.log.1"
	kill -USR1 "$CPM_PID"
	within 3 test -e "$l/error.log" # the master has reopened its logs
	sleep 0.5                        # and relayed USR1 to the workers
	sideways 3
	within 3 count_in "$l/error.log" 'something went sideways' 3
	within 3 count_in "$l/access.log" 'GET /stderr.sh ' 3
	# USR1 again without a rotation: the same files, still writable
	kill -USR1 "$CPM_PID"
	sleep 0.5
	sideways 1
	within 3 count_in "$l/error.log" 'something went sideways' 4
	within 3 count_in "$l/access.log" 'GET /stderr.sh ' 4
	sleep 0.3 # nothing more arrives in the rotated files
	run count_in "$l/error.log.1" 'something went sideways' 2
	assert_success
	run count_in "$l/access.log.1" 'GET /stderr.sh ' 2
	assert_success
	run grep -h 'reopening logs failed' "$l/error.log" "$l/error.log.1"
	assert_failure
	# the directory stays root's
	assert_equal "$(stat -c '%U %a' "$l")" "root 755"
}
