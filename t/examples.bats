#!/usr/bin/env bats
# The shipped examples, served by the shipped etc/cpm.json (only the listen
# address is overridden with -b), from a copy that nobody, the default user
# as root, can reach (see examples_copy).
load helpers

setup_file() {
	[ -x "$ROOT/examples/hello" ] || make -s -C "$ROOT" examples/hello >/dev/null
	[ -x "$ROOT/examples/counter" ] || make -s -C "$ROOT" examples/counter >/dev/null
	EXAMPLES_COPY=$(examples_copy)
	export EXAMPLES_COPY
}

teardown_file() {
	rm -rf "$EXAMPLES_COPY"
}

setup() {
	cd "$EXAMPLES_COPY"
	CPM_PORT=$(free_port)
	CPM_LOG=$BATS_TEST_TMPDIR/stderr.log
	"$CPM" -c etc/cpm.json -b "127.0.0.1:$CPM_PORT" >"$CPM_LOG" 2>&1 &
	CPM_PID=$!
	local i
	for i in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$CPM_PORT),0.2)" 2>/dev/null && return 0
		kill -0 "$CPM_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$CPM_LOG" >&2
	return 1
}

@test "examples: hello.sh says hello in text/plain" {
	run curl -si "$(url /hello.sh)"
	assert_line --regexp '^HTTP/1.1 200 OK'
	assert_line --regexp '^Content-Type: text/plain'
	assert_line "Hello, world!"
}

@test "examples: the C program hello answers" {
	run curl -si "$(url /hello)"
	assert_line --regexp '^HTTP/1.1 200 OK'
	assert_line --regexp '^Content-Type: text/plain'
	assert_line "Hello from C"
}

@test "examples: env.pl lists the CGI environment sorted" {
	run curl -s "$(url /env.pl/x?q=1)"
	assert_success
	assert_line "GATEWAY_INTERFACE=CGI/1.1"
	assert_line "SCRIPT_NAME=/env.pl"
	assert_line "PATH_INFO=/x"
	assert_line "QUERY_STRING=q=1"
	assert_line "DOCUMENT_ROOT=$EXAMPLES_COPY/examples"
	names=$(cut -d= -f1 <<<"$output")
	assert_equal "$names" "$(LC_ALL=C sort <<<"$names")"
}

@test "examples: form.sh GET shows a form posting to itself" {
	run curl -si "$(url /form.sh)"
	assert_line --regexp '^Content-Type: text/html'
	assert_output --regexp '<form method="post" action="/form.sh"'
}

@test "examples: form.sh POST echoes method, type, length and body" {
	run curl -s --data 'name=cpm&x=1' "$(url /form.sh)"
	assert_line "REQUEST_METHOD=POST"
	assert_line "CONTENT_TYPE=application/x-www-form-urlencoded"
	assert_line "CONTENT_LENGTH=12"
	assert_line "name=cpm&x=1"
}

@test "examples: / runs the index script, which links to the others" {
	run curl -si "$(url /)"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line --regexp '^Content-Type: text/html'
	for a in hello.sh hello env.pl form.sh stream.sh fcgi/counter fcgi/perl status; do
		assert_output --partial "href=\"/$a\""
	done
}

@test "examples: the counter pool keeps counting in the same process" {
	run curl -s "$(url /fcgi/counter)" "$(url /fcgi/counter)" "$(url /fcgi/counter)"
	assert_line --index 0 --regexp '^count=1 pid=[0-9]+ uri=/fcgi/counter$'
	pid=$(sed -n '1s/.* pid=\([0-9]*\) .*/\1/p' <<<"$output")
	assert_line --index 2 "count=3 pid=$pid uri=/fcgi/counter"
}

@test "examples: the Perl FCGI pool answers and counts" {
	run curl -s "$(url /fcgi/perl/a)" "$(url /fcgi/perl/b)"
	assert_line --index 0 --regexp '^Perl says hello: count=1 pid=[0-9]+ uri=/fcgi/perl/a$'
	assert_line --index 1 --regexp '^Perl says hello: count=2 pid=[0-9]+ uri=/fcgi/perl/b$'
}

@test "examples: /status lists the two pools" {
	run curl -s "$(url /status)"
	assert_output --partial '"name":"counter"'
	assert_output --partial '"name":"perl"'
}

@test "examples: stream.sh lines arrive one by one, as written" {
	# Each line is stamped with the time it reached the client.
	run bash -c "curl -sN '$(url /stream.sh)' | while IFS= read -r l; do echo \"\$(date +%s.%N) \$l\"; done"
	assert_success
	[ "$(wc -l <<<"$output")" -eq 5 ]
	assert_line --regexp ' line 1$'
	assert_line --regexp ' line 5$'
	# the first line arrived at least 3 s before the last one
	python3 - "$output" <<'PY'
import sys
t = [float(l.split()[0]) for l in sys.argv[1].splitlines()]
sys.exit(0 if t[-1] - t[0] >= 3.0 else 1)
PY
}

@test "examples: the access log goes to stderr with the default config" {
	curl -s -o /dev/null "$(url /hello.sh)"
	sleep 0.2
	run cat "$CPM_LOG"
	assert_line --regexp '"GET /hello.sh HTTP/1.1" 200 14 "-" "curl/'
	assert_line --regexp '\[info\] cpm\[[0-9]+\]: '
}
