#!/usr/bin/env bats
# Messages for common mistakes (issue 11, items 7 and 8): each says what
# is wrong and what to do, and names the request or the config location.
load helpers
bats_require_minimum_version 1.5.0

code() { curl -s -o /dev/null -w '%{http_code}' "$(url "$1")"; }

# msg_apps: a CGI directory with the usual mistakes, served at /
msg_apps() {
	local d=$BATS_TEST_TMPDIR/apps
	mkdir -p "$d"
	printf '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nok\\n"\n' >"$d/ok.sh"
	printf '#!/usr/bin/perl\nprint "Content-Type: text/plain\\n\\nnoexec\\n";\n' >"$d/noexec.pl"
	printf '#!/usr/bin/nonexistent\necho hi\n' >"$d/nointerp.sh"
	printf '#!/bin/sh\r\necho "Content-Type: text/plain"\r\necho\r\n' >"$d/crlf.sh"
	printf 'echo "Content-Type: text/plain"\necho\n' >"$d/noshebang.sh"
	printf '#!/bin/sh\necho hello\necho\necho world\n' >"$d/hello.sh"
	printf '#!/bin/sh\necho "<html><body>hi</body></html>"\n' >"$d/html.sh"
	printf '#!/bin/sh\nprintf "X-Ctl: a\\033b\\n\\nbody"\n' >"$d/ctl.sh"
	printf '#!/bin/sh\nprintf "%%0300d\\n\\n" 0\n' >"$d/long.sh"
	chmod 755 "$d"/*.sh
	chmod 644 "$d/noexec.pl"
	CPM_ROOT=$d cpm_config
}

@test "a CGI file without execute permission: 403 and a log line naming it, the client and the request" {
	msg_apps
	cpm_start
	run code /noexec.pl
	assert_output 403
	within 5 grep -q "is not executable" "$CPM_LOG"
	run grep "is not executable" "$CPM_LOG"
	assert_output --partial "cgi: $BATS_TEST_TMPDIR/apps/noexec.pl is not executable (chmod +x)"
	assert_output --partial '127.0.0.1'
	assert_output --partial 'GET /noexec.pl'
	# a missing file is still a plain 404, with no such line
	run code /nosuch.pl
	assert_output 404
	run grep -c "nosuch.pl is not executable" "$CPM_LOG"
	assert_output 0
}

@test "a missing #! interpreter is named (502), not ENOENT on the script" {
	msg_apps
	cpm_start
	run code /nointerp.sh
	assert_output 502
	within 5 grep -q "nointerp.sh" "$CPM_LOG"
	run grep "nointerp.sh" "$CPM_LOG"
	assert_output --partial "cgi: cannot run $BATS_TEST_TMPDIR/apps/nointerp.sh: interpreter /usr/bin/nonexistent not found"
	assert_output --partial 'GET /nointerp.sh'
	refute_output --partial "No such file or directory"
}

@test "a #! line with CRLF endings is named as such (502)" {
	msg_apps
	cpm_start
	run code /crlf.sh
	assert_output 502
	within 5 grep -q "crlf.sh" "$CPM_LOG"
	run grep "crlf.sh" "$CPM_LOG"
	assert_output --partial "cgi: cannot run $BATS_TEST_TMPDIR/apps/crlf.sh: #! line ends in CR (CRLF line endings): interpreter \"/bin/sh\\x0d\" not found"
}

@test "a script with no #! line is named as such (502)" {
	msg_apps
	cpm_start
	run code /noshebang.sh
	assert_output 502
	within 5 grep -q "noshebang.sh" "$CPM_LOG"
	run grep "noshebang.sh" "$CPM_LOG"
	assert_output --partial "cgi: cannot run $BATS_TEST_TMPDIR/apps/noshebang.sh: no #! line and not a binary"
}

@test "the same diagnosis when the program runs with rlimits (vfork path)" {
	msg_apps
	CPM_ROOT=$BATS_TEST_TMPDIR/apps cpm_config '' '"rlimits": {"nofile": 256}'
	cpm_start
	run code /nointerp.sh
	assert_output 502
	within 5 grep -q "nointerp.sh" "$CPM_LOG"
	run grep "nointerp.sh" "$CPM_LOG"
	assert_output --partial "nointerp.sh: interpreter /usr/bin/nonexistent not found"
}
