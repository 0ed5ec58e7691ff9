#!/usr/bin/env bats
# Startup details: the default config path, listen address forms, where
# -t writes, log settings.
load helpers
bats_require_minimum_version 1.5.0

@test "without -c, etc/cpm.json in the current directory is not read, /etc/cpm/cpm.json is" {
	cd "$BATS_TEST_TMPDIR"
	mkdir etc
	printf '{"routes": [{"prefix": "/", "backend": "s"}], "backends": {"s": {"type": "cgi", "root": "/tmp"}}}\n' >etc/cpm.json
	run "$CPM" -t
	refute_output --partial "configuration etc/cpm.json"
	assert_output --partial "/etc/cpm/cpm.json"
	if [ ! -e /etc/cpm/cpm.json ]; then
		assert_equal "$status" 2
		assert_output --partial "etc/cpm.json here is not read without -c (give -c etc/cpm.json)"
	fi
	# nor when cpm starts (not only -t)
	[ -e /etc/cpm/cpm.json ] || {
		run timeout 5 "$CPM"
		assert_equal "$status" 2
		assert_output --partial "cpm: no configuration: /etc/cpm/cpm.json does not exist"
	}
}

@test "-t: ok goes to stdout, an error to stderr only" {
	dir=$(examples_copy)
	cd "$dir"
	run --separate-stderr "$CPM" -t -c "$dir/etc/cpm.json"
	rm -rf "$dir"
	assert_success
	[ -n "$output" ]
	[ -z "$stderr" ]
	printf '{"wokers": 1}\n' >"$BATS_TEST_TMPDIR/bad.json"
	run --separate-stderr "$CPM" -t -c "$BATS_TEST_TMPDIR/bad.json"
	assert_equal "$status" 1
	[ -z "$output" ]
	[[ "$stderr" == *"bad.json:1:2: wokers: unknown key"* ]]
}

@test "the error location is FILE:LINE:COL: PATH: MESSAGE for a nested key" {
	cat >"$BATS_TEST_TMPDIR/c.json" <<'JSON'
{
  "routes": [{"prefix": "/", "backend": "s"}],
  "backends": {
    "s": {"type": "cgi", "root": "/tmp", "max_concurrent": 1, "bogus": true}
  }
}
JSON
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
	assert_equal "$status" 1
	assert_output --regexp "c.json:4:[0-9]+: backends\.s\.bogus: "
}

@test "a route prefix must start with /" {
	printf '{"routes": [{"prefix": "cgi", "backend": "s"}], "backends": {"s": {"type": "cgi", "root": "/tmp"}}}\n' >"$BATS_TEST_TMPDIR/c.json"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
	assert_equal "$status" 1
	assert_output --regexp "c.json:1:[0-9]+: routes\[0\]\.prefix: "
}

@test "a missing CGI root stops startup with exit 1, not only -t" {
	port=$(free_port)
	printf '{"listen": ["127.0.0.1:%s"], "routes": [{"prefix": "/", "backend": "s"}], "backends": {"s": {"type": "cgi", "root": "/does/not/exist"}}}\n' "$port" >"$BATS_TEST_TMPDIR/c.json"
	run timeout 5 "$CPM" -c "$BATS_TEST_TMPDIR/c.json"
	assert_equal "$status" 1
	assert_output --partial "/does/not/exist"
}

@test "-b :PORT listens on all IPv4 addresses" {
	cpm_config
	port=$(free_port)
	CPM_PORT=$port
	cpm_start -b ":$port"
	run curl -s "http://127.0.0.1:$port/ex/hello.sh"
	assert_output "Hello, world!"
	run grep -E "listening on (0\.0\.0\.0|\*)?:$port" "$CPM_LOG" "$BATS_TEST_TMPDIR/stderr.log"
	assert_success
}

@test "-b [::1]:PORT listens on IPv6" {
	python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null || skip "no IPv6 loopback"
	cpm_config
	port=$(free_port)
	"$CPM" -c "$BATS_TEST_TMPDIR/cpm.json" -b "[::1]:$port" >"$BATS_TEST_TMPDIR/stderr.log" 2>&1 &
	CPM_PID=$!
	for i in $(seq 50); do curl -s -o /dev/null "http://[::1]:$port/ex/hello.sh" && break; sleep 0.1; done
	run curl -s "http://[::1]:$port/env.sh"
	assert_line "REMOTE_ADDR=::1"
	assert_line "SERVER_PORT=$port"
}

@test "log_level warn drops info lines but keeps script stderr" {
	cpm_config '"log_level": "warn"'
	cpm_start
	curl -s -o /dev/null "$(url /stderr.sh)"
	sleep 0.3
	run cat "$CPM_LOG"
	refute_output --partial "[info]"
	assert_output --partial "something went sideways"
}

@test "access_log null writes no access log" {
	cpm_config
	sed -i 's|"access_log": "[^"]*"|"access_log": null|' "$BATS_TEST_TMPDIR/cpm.json"
	cpm_start
	run curl -s "$(url /ex/hello.sh)"
	assert_output "Hello, world!"
	sleep 0.2
	[ ! -s "$BATS_TEST_TMPDIR/access.log" ]
	run grep -h '"GET /ex/hello.sh' "$CPM_LOG" "$BATS_TEST_TMPDIR/stderr.log"
	assert_failure
}

@test "error log lines carry an ISO time, a level and the pid" {
	cpm_start
	run head -1 "$CPM_LOG"
	assert_output --regexp '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z \[(debug|info|warn|error)\] cpm\[[0-9]+\]: '
}

@test "without -c and without etc/cpm.json, /etc/cpm/cpm.json is used" {
	[ -e /etc/cpm/cpm.json ] && skip "/etc/cpm/cpm.json exists here"
	cd "$BATS_TEST_TMPDIR"
	run "$CPM" -t
	assert_equal "$status" 2
	assert_output --partial "/etc/cpm/cpm.json"
}

@test "-b is repeatable: every address is served" {
	cpm_config
	p1=$(free_port)
	p2=$(free_port)
	CPM_PORT=$p1
	cpm_start -b "127.0.0.1:$p1" -b "127.0.0.1:$p2"
	run curl -s "http://127.0.0.1:$p1/ex/hello.sh"
	assert_output "Hello, world!"
	run curl -s "http://127.0.0.1:$p2/env.sh"
	assert_line "SERVER_PORT=$p2"
}

@test "out-of-range and ill-typed values are errors" {
	for bad in '"workers": 0' '"workers": 1025' '"backlog": 0' '"log_level": "loud"' '"listen": ["nonsense"]' '"listen": "127.0.0.1:1"' '"max_requests": -1'; do
		printf '{%s, "routes": [{"prefix": "/", "backend": "s"}], "backends": {"s": {"type": "cgi", "root": "/tmp"}}}\n' "$bad" >"$BATS_TEST_TMPDIR/c.json"
		run "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
		assert_equal "$status" 1
		assert_output --regexp "c.json:1:[0-9]+: (workers|backlog|log_level|listen|listen\[0\]|max_requests): "
	done
}

@test "a backend of unknown type is an error" {
	printf '{"routes": [{"prefix": "/", "backend": "s"}], "backends": {"s": {"type": "php", "root": "/tmp"}}}\n' >"$BATS_TEST_TMPDIR/c.json"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
	assert_equal "$status" 1
	assert_output --regexp "c.json:1:[0-9]+: backends\.s\.type: "
}

@test "routes and backends are required" {
	printf '{"workers": 1}\n' >"$BATS_TEST_TMPDIR/c.json"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
	assert_equal "$status" 1
	assert_output --regexp 'missing key "(routes|backends)"'
}

@test "the path key sets the scripts' PATH" {
	cpm_config "" '"path": "/opt/x/bin:/bin"'
	cpm_start
	run curl -s "$(url /env.sh)"
	assert_line "PATH=/opt/x/bin:/bin"
}

@test "a bad option value is bad usage: usage to stderr, exit 2" {
	for args in "-w abc" "-w 0" "-b nonsense"; do
		run --separate-stderr "$CPM" $args -t -c "$ROOT/etc/cpm.json"
		assert_equal "$status" 2
		[ -z "$output" ]
		[[ "$stderr" == *"usage: cpm"* ]] || { echo "no usage on stderr for $args: $stderr"; return 1; }
	done
}
