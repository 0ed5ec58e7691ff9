#!/usr/bin/env bats
load helpers
bats_require_minimum_version 1.5.0

@test "-v prints the version" {
	run "$CPM" -v
	assert_success
	assert_output --regexp '^cpm [0-9]+\.[0-9]+'
}

@test "-h prints usage to stdout and exits 0" {
	run "$CPM" -h
	assert_success
	assert_output --partial "usage: cpm"
}

@test "bad usage exits 2" {
	run "$CPM" --no-such-option
	assert_equal "$status" 2
	run "$CPM" -w 0
	assert_equal "$status" 2
	run "$CPM" -b nonsense -t -c "$ROOT/etc/cpm.json"
	assert_equal "$status" 2
}

@test "-t accepts the default config" {
	dir=$(examples_copy)
	cd "$dir"
	run "$CPM" -t -c etc/cpm.json
	rm -rf "$dir"
	assert_success
	assert_output "cpm: configuration etc/cpm.json is ok"
}

@test "-b replaces listen and -w sets the worker count" {
	cpm_config
	CPM_PORT=$(free_port)
	cpm_start -b "127.0.0.1:$CPM_PORT" -w 3
	run curl -s "$(url /env.sh)"
	assert_success
	assert_line "SERVER_PORT=$CPM_PORT"
	run bash -c "pgrep -P $CPM_PID -f 'cpm: worker' | wc -l"
	assert_output 3
}

@test "--cgi DIR serves a directory without a config file" {
	CPM_PORT=$(free_port)
	dir=$(examples_copy) # as root, the CGI programs run as nobody
	"$CPM" --cgi "$dir/examples" -b "127.0.0.1:$CPM_PORT" >"$BATS_TEST_TMPDIR/stderr.log" 2>&1 &
	CPM_PID=$!
	for i in $(seq 50); do curl -s -o /dev/null "$(url /hello.sh)" && break; sleep 0.1; done
	run curl -s "$(url /hello.sh)"
	rm -rf "$dir"
	assert_output "Hello, world!"
}

@test "a unix socket listener serves requests" {
	sock=$BATS_TEST_TMPDIR/cpm.sock
	cpm_config
	sed -i "s|\"127.0.0.1:$CPM_PORT\"|\"127.0.0.1:$CPM_PORT\", \"unix:$sock\"|" "$BATS_TEST_TMPDIR/cpm.json"
	cpm_start
	run curl -s --unix-socket "$sock" http://localhost/ex/hello.sh
	assert_output "Hello, world!"
	cpm_stop
	[ ! -e "$sock" ]
}

@test "the master and workers carry process titles" {
	cpm_start
	run ps -o args= -p "$CPM_PID"
	assert_output "cpm: master"
	run bash -c "ps -o args= --ppid $CPM_PID | sort"
	assert_line "cpm: worker 0"
	assert_line "cpm: worker 1"
}

@test "a port already in use is a startup error, exit 1" {
	cpm_start
	run "$CPM" -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_equal "$status" 1
	assert_output --partial "Address already in use"
}

@test "no arguments and no /etc/cpm/cpm.json: how to start, exit 2" {
	[ -e /etc/cpm/cpm.json ] && skip "/etc/cpm/cpm.json exists here"
	cd "$BATS_TEST_TMPDIR"
	run --separate-stderr "$CPM"
	assert_equal "$status" 2
	[ -z "$output" ]
	[[ "$stderr" == *"cpm: no configuration: /etc/cpm/cpm.json does not exist"* ]]
	[[ "$stderr" == *"cpm: start with -c FILE (a configuration file) or --cgi DIR (serve the executables in DIR at /)"* ]]
}

@test "--cgi DIR with -c FILE is refused with the reason, exit 2" {
	for args in "--cgi /tmp -c /etc/x.json" "-c /etc/x.json --cgi /tmp"; do
		run --separate-stderr "$CPM" $args
		assert_equal "$status" 2
		assert_equal "$stderr" "cpm: --cgi serves one directory without a configuration file; give -c FILE or --cgi DIR, not both"
	done
}
