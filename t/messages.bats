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
	printf '#!/bin/sh\necho '"'"'X" (ok)'"'"'\necho\n' >"$d/quote.sh"
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

@test "CGI output that starts with no header: 502 and the line quoted" {
	msg_apps
	cpm_start
	run code /hello.sh
	assert_output 502
	within 5 grep -q "hello.sh\[" "$CPM_LOG"
	run grep "hello.sh\[" "$CPM_LOG"
	assert_output --regexp '"GET /hello.sh" id=[0-9a-f]{32}: cgi hello.sh\['
	assert_output --partial ']: sent an invalid header: "hello" (no colon: a header line is NAME: VALUE, and the header block ends with an empty line before the body)'
	# HTML and no header block at all (the program exits): its first line
	run code /html.sh
	assert_output 502
	within 5 grep -q "html.sh\[" "$CPM_LOG"
	run grep "html.sh\[" "$CPM_LOG"
	assert_output --partial ']: sent an invalid header: "<html><body>hi</body></html>" (no colon'
	# a control character is escaped by the log; a long line is cut
	run code /ctl.sh
	assert_output 502
	run code /long.sh
	assert_output 502
	within 5 grep -q "long.sh\[" "$CPM_LOG"
	run grep "ctl.sh\[" "$CPM_LOG"
	assert_output --partial ']: sent an invalid header: "X-Ctl: a\x1bb" (a control character in the value)'
	run grep "long.sh\[" "$CPM_LOG"
	assert_output --partial ']: sent an invalid header: "0000000000000000000000000000000000000000000000000000000000000000..." (no colon'
}

@test "quotes from the client and from a program cannot close a quoted field of the error log" {
	msg_apps
	cpm_start
	# a raw '"' in the target (curl sends it as is) and one in the output
	run curl -s -o /dev/null -w '%{http_code}' "$(url '/quote.sh?"),forged')"
	assert_output 502
	within 5 grep -q "quote.sh\[" "$CPM_LOG"
	run grep "quote.sh\[" "$CPM_LOG"
	assert_output --partial '"GET /quote.sh?%22),forged" id='
	assert_output --partial ']: sent an invalid header: "X%22 (ok)" (no colon'
	# every '"' left is one of the log's own: an even number, none inside
	refute_output --partial '?"'
	refute_output --partial 'X"'
}

# fcgi_noheader SOCK: a FastCGI server that answers every request with
# "hello" and an empty line (no header)
fcgi_noheader() {
	python3 - "$1" <<'PY' >>"$BATS_TEST_TMPDIR/fcgi.log" 2>&1 3>&- &
import socket, struct, sys
srv = socket.socket(socket.AF_UNIX)
srv.bind(sys.argv[1])
srv.listen(8)
def rec(t, rid, c):
    return struct.pack(">BBHHBB", 1, t, rid, len(c), 0, 0) + c
while True:
    conn, _ = srv.accept()
    buf = b""
    while True:
        d = conn.recv(65536)
        if not d:
            break
        buf += d
        done = False
        while len(buf) >= 8:
            _, t, rid, cl, pl, _ = struct.unpack(">BBHHBB", buf[:8])
            if len(buf) < 8 + cl + pl:
                break
            buf = buf[8 + cl + pl:]
            if t == 5 and cl == 0:
                done = True
        if done:
            conn.sendall(rec(6, rid, b"hello\r\n\r\n") + rec(6, rid, b"") +
                         rec(3, rid, struct.pack(">IB3x", 0, 0)))
            break
    conn.close()
PY
	FCGI_PID=$!
}

@test "FastCGI output with no header: 502 and the line quoted (the same reader)" {
	sock=$BATS_TEST_TMPDIR/app.sock
	fcgi_noheader "$sock"
	within 5 test -S "$sock"
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{ "listen": ["127.0.0.1:$CPM_PORT"], $(user_member)
  "access_log": "$BATS_TEST_TMPDIR/access.log", "error_log": "$BATS_TEST_TMPDIR/error.log",
  "routes": [ { "prefix": "/", "backend": "app" } ],
  "backends": { "app": { "type": "fastcgi", "address": "unix:$sock", "script": "/app" } } }
JSON
	cpm_start
	run code /x
	kill "$FCGI_PID"
	wait "$FCGI_PID" 2>/dev/null || true
	assert_output 502
	within 5 grep -q "invalid header" "$CPM_LOG"
	run grep "invalid header" "$CPM_LOG"
	assert_output --regexp '"GET /x" id=[0-9a-f]{32}: fastcgi app \(unix:'
	assert_output --partial "(unix:$sock): sent an invalid header: \"hello\" (no colon"
}

@test "a binary whose dynamic loader is missing is named as such (502)" {
	msg_apps
	# /bin/true with its PT_INTERP renamed to a loader that does not exist
	python3 - "$BATS_TEST_TMPDIR/apps/noloader.cgi" <<'PY'
import re, sys
d = open("/bin/true", "rb").read()
m = re.search(rb"/lib[0-9a-z_/.-]*ld-linux[0-9a-z_.-]*\.so\.[0-9]", d)
open(sys.argv[1], "wb").write(d.replace(m.group(0), m.group(0).replace(b"ld-linux", b"xx-linux"), 1))
PY
	chmod 755 "$BATS_TEST_TMPDIR/apps/noloader.cgi"
	cpm_start
	run code /noloader.cgi
	assert_output 502
	within 5 grep -q "noloader.cgi" "$CPM_LOG"
	run grep "noloader.cgi" "$CPM_LOG"
	assert_output --partial "cgi: cannot run $BATS_TEST_TMPDIR/apps/noloader.cgi: a binary whose dynamic loader is missing (built for another system?)"
}
