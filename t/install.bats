#!/usr/bin/env bats
# make install: what it installs, and that the installed cpm serves with
# the installed configuration.
load helpers

setup() {
	# under /tmp and open to all: the installed config runs the examples as
	# nobody (no "user"), who must reach them
	INST=$(mktemp -d /tmp/cpm-install.XXXXXX)
	chmod 0755 "$INST"
}

eval "$(declare -f teardown | sed '1s/^teardown/helpers_teardown/')"

teardown() {
	local rc=0
	helpers_teardown || rc=1
	rm -rf "$INST"
	return $rc
}

@test "make install DESTDIR= installs the binary, man pages, examples, units and /etc/cpm/cpm.json" {
	run make -s -C "$ROOT" install DESTDIR="$INST/root" PREFIX=/usr
	assert_success
	run sh -c "cd '$INST/root' && find . -type f | sort"
	assert_output "./etc/cpm/cpm.json
./usr/bin/cpm
./usr/lib/systemd/system/cpm.service
./usr/lib/systemd/system/cpm.socket
./usr/share/cpm/cpm.json
./usr/share/cpm/examples/counter
./usr/share/cpm/examples/counter.pl
./usr/share/cpm/examples/env.pl
./usr/share/cpm/examples/form.sh
./usr/share/cpm/examples/hello
./usr/share/cpm/examples/hello.sh
./usr/share/cpm/examples/index.sh
./usr/share/cpm/examples/stream.sh
./usr/share/man/man5/cpm.json.5
./usr/share/man/man8/cpm.8"
	# the unit runs the installed binary with the installed config
	run grep -E '^Exec' "$INST/root/usr/lib/systemd/system/cpm.service"
	assert_output "ExecStart=/usr/bin/cpm -c /etc/cpm/cpm.json
ExecReload=/usr/bin/cpm -s reload -c /etc/cpm/cpm.json"
	# the config names nothing in the source tree, only installed paths
	run grep -c "$ROOT" "$INST/root/etc/cpm/cpm.json"
	assert_output 0
	grep -q '"root": "/usr/share/cpm/examples"' "$INST/root/etc/cpm/cpm.json"
	grep -q '"listen": \["127.0.0.1:8000"\]' "$INST/root/etc/cpm/cpm.json"
	# an existing /etc/cpm/cpm.json is never overwritten
	echo '{ "mine": 1 }' >"$INST/root/etc/cpm/cpm.json"
	run make -s -C "$ROOT" install DESTDIR="$INST/root" PREFIX=/usr
	assert_success
	assert_output --partial "kept $INST/root/etc/cpm/cpm.json"
	assert_equal "$(cat "$INST/root/etc/cpm/cpm.json")" '{ "mine": 1 }'
}

@test "the installed cpm serves the installed config: examples, a pool, /status, and -s reload" {
	run make -s -C "$ROOT" install PREFIX="$INST/usr" SYSCONFDIR="$INST/etc" RUNSTATEDIR="$INST/run"
	assert_success
	mkdir "$INST/run"
	local cfg=$INST/etc/cpm/cpm.json
	run "$INST/usr/bin/cpm" -t -c "$cfg"
	assert_success
	# the one thing changed: a free port instead of 8000
	CPM_PORT=$(free_port)
	sed -i "s/127.0.0.1:8000/127.0.0.1:$CPM_PORT/" "$cfg"
	"$INST/usr/bin/cpm" -c "$cfg" >"$BATS_TEST_TMPDIR/stderr.log" 2>&1 3>&- &
	CPM_PID=$!
	within 10 curl -sf -o /dev/null "$(url /hello.sh)"
	run curl -s -o /dev/null -w '%{http_code}' "$(url /)"
	assert_output 200
	run curl -s "$(url /hello)"
	assert_output --partial "Hello"
	within 10 curl -sf -o /dev/null "$(url /fcgi/counter)"
	run curl -s -o /dev/null -w '%{http_code}' "$(url /status)"
	assert_output 200
	# started as root without "user": the workers run as nobody
	run ps -o user= -p "$(workers_of "$CPM_PID" | paste -sd,)"
	assert_output "nobody
nobody"
	[ -S "$INST/run/cpm.ctl" ]
	run "$INST/usr/bin/cpm" -s reload -c "$cfg"
	assert_success
	assert_output --partial "cpm: reloaded $cfg"
	run "$INST/usr/bin/cpm" -s quit -c "$cfg"
	assert_success
	wait_exit "$CPM_PID" 10
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	[ ! -e "$INST/run/cpm.ctl" ]
	[ ! -e "$INST/run/cpm.pid" ]
}
