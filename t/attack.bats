#!/usr/bin/env bats
# Defects an attack review found in this session's changes, each with its
# reproduction; each test failed before its fix (the comments say what the
# code did then).

load helpers

# the helpers' teardown, run after undoing what a test here mounted
eval "helpers_$(declare -f teardown)"
teardown() {
	if [ -n "${SMALL:-}" ]; then
		cpm_stop
		umount "$SMALL" || true
	fi
	helpers_teardown
}

# conn.c's header says every request is logged "exactly once" by
# request_end; worker.c's exits after graceful_timeout (and on TERM/INT)
# call _exit with connections still open, so a request cut there never
# reaches the access log: it vanishes.
@test "a request cut at graceful_timeout still gets its access-log line" {
	cpm_config '"graceful_timeout": 1'
	cpm_start
	pidf=$BATS_TEST_TMPDIR/pid
	curl -s -m 10 -o /dev/null "$(url "/pid_sleep.sh?$pidf")" &
	curl_pid=$!
	within 3 test -s "$pidf"
	kill -QUIT "$CPM_PID"
	wait_exit "$CPM_PID" 4
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	wait "$curl_pid" || true
	grep -q "graceful_timeout, 1 connection(s) cut" "$CPM_LOG"
	run grep -c '"GET /pid_sleep.sh' "$BATS_TEST_TMPDIR/access.log"
	assert_output 1
}

# backends/cgi.c end_if_complete -> detach_output(r, 1): once a response
# has reached its Content-Length the program runs on and its stdout is read
# and dropped as fast as it writes, until its timeout (60 s by default).
# A program that keeps writing after its response (here: yes) holds a
# worker near a whole CPU with no client left (measured: 373 ticks in 5 s,
# 75%, on a loaded 2-core machine; an idle worker uses none).
@test "a program writing on after its Content-Length response does not spin the worker" {
	mkdir -p "$BATS_TEST_TMPDIR/apps"
	printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n"\nexec yes\n' \
		>"$BATS_TEST_TMPDIR/apps/cl_then_yes.sh"
	chmod +x "$BATS_TEST_TMPDIR/apps/cl_then_yes.sh"
	CPM_WORKERS=1 CPM_ROOT=$BATS_TEST_TMPDIR/apps cpm_config
	cpm_start
	run curl -s -m 3 "$(url /cl_then_yes.sh)"
	assert_output ok
	w=$(workers_of "$CPM_PID")
	sleep 0.5
	before=$(cpu_ticks "$w")
	sleep 3
	used=$(($(cpu_ticks "$w") - before))
	echo "worker $w: $used ticks in 3 s" >&3
	# the program is still running: stop it (its own process group)
	for g in $(cgi_groups_of "$CPM_PID"); do kill -KILL -- "-$g"; done
	[ "$used" -lt "$(getconf CLK_TCK)" ] # under a third of a CPU over 3 s
}

# conn.c out_put: when spill_put fails after writing part of the bytes to
# the temporary file (spill_put advances spill_w on each partial pwrite),
# out_put puts all of them in memory as well if the file was empty before
# (the file_busy test is only on the earlier state). The client gets the
# bytes from memory, then the partial copy from the file after them: with
# a Content-Length response the duplicate lands after it, in front of the
# next pipelined response. Made here with a full TMPDIR (a 1 MiB tmpfs
# with 8 KiB left): 8192 stray bytes between the two responses.
@test "a temporary file that fills up mid-write does not duplicate response bytes" {
	SMALL=$BATS_TEST_TMPDIR/small
	mkdir -p "$SMALL" "$BATS_TEST_TMPDIR/apps"
	mount -t tmpfs -o size=1m tmpfs "$SMALL"
	avail=$(df -B1 --output=avail "$SMALL" | tail -1)
	head -c $((avail - 8192)) /dev/zero >"$SMALL/fill"
	# head and body in one write, so that cpm reads them at once
	printf '#!/usr/bin/env python3\nimport os\nos.write(1, b"Content-Length: 20000\\r\\n\\r\\n" + b"B" * 20000)\n' \
		>"$BATS_TEST_TMPDIR/apps/b20k.sh"
	printf '#!/bin/sh\nprintf "Content-Length: 6\\r\\n\\r\\nfixed\\n"\n' >"$BATS_TEST_TMPDIR/apps/fixed.sh"
	chmod +x "$BATS_TEST_TMPDIR/apps/b20k.sh" "$BATS_TEST_TMPDIR/apps/fixed.sh"
	# a 4 KiB memory share: the 20000 bytes go to the file
	CPM_WORKERS=1 CPM_ROOT=$BATS_TEST_TMPDIR/apps cpm_config '' '"response_buffer": 4096'
	TMPDIR=$SMALL cpm_start
	python3 "$ROOT/t/rawhttp.py" "$CPM_PORT" \
		'GET /b20k.sh HTTP/1.1\r\nHost: a\r\n\r\nGET /fixed.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' 3 \
		>"$BATS_TEST_TMPDIR/out"
	grep -q "writing a response to a temporary file: No space left on device" "$CPM_LOG"
	# the 20000 bytes at most once (a response cut for want of space would
	# be acceptable; a byte twice is not), and nothing between the two
	# responses
	run python3 -c '
import sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\r\n\r\n") + 4
rest = d[i + 20000 :]
print(d.replace(b"Bad", b"").count(b"B"), rest == b"" or rest.startswith(b"HTTP/1.1 "))' "$BATS_TEST_TMPDIR/out"
	assert_output "20000 True"
}

# cpm.json(5), fastcgi timeout: "time during which the server waits for
# cpm (its output held because the client is slower and the response
# buffers are full) does not count". backends/fastcgi.c only sets
# r->paused (body_out) and leaves r->timeout running (the cgi backend
# stops its timer in hold_output): a pool process streaming to a slow
# client (response_temp_max 0 here; X-Accel-Buffering: no does the same,
# as for server-sent events) is killed at timeout and the response cut.
# Measured: 2,883,704 of 10 MiB, "pid N did not answer within 2000 ms;
# killing it".
@test "a pool process waiting for a slow client is not killed at timeout" {
	gcc -O2 -o "$BATS_TEST_TMPDIR/big" "$ROOT/t/apps-fcgi/big.c" -lfcgi
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"], "workers": 1, $(user_member)
  "access_log": "$BATS_TEST_TMPDIR/access.log", "error_log": "$BATS_TEST_TMPDIR/error.log",
  "routes": [ { "prefix": "/", "backend": "big" } ],
  "backends": { "big": { "type": "fastcgi", "command": ["$BATS_TEST_TMPDIR/big"], "processes": 1,
                         "timeout": 2, "response_temp_max": 0 } }
}
JSON
	cpm_start
	run python3 - "$CPM_PORT" <<'PY'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
time.sleep(4)  # slower than the backend's timeout, then read it all
out = b""
s.settimeout(10)
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    out += d
body = out[out.find(b"\r\n\r\n") + 4 :]
print("complete" if body.endswith(b"0\r\n\r\n") else "cut after %d bytes" % len(out))
PY
	assert_output complete
	run grep -c "did not answer within" "$CPM_LOG"
	assert_output 0
}

# backends/fastcgi.c on_socket/on_end: a connection is kept only if
# "nothing came after the answer", but that is checked only within the
# read that brought END_REQUEST (i < n). When END_REQUEST ends exactly at
# the end of a 32 KiB read, what the application sent after it stays in
# the socket; the pipelined next request takes the kept connection in the
# same turn, kept_conn_closed sees readable data as "alive", and the new
# request's decoder (same request id 1) takes the stale STDOUT as the
# start of its own answer: one client's bytes in another's response.
@test "bytes an application sends after END_REQUEST never reach the next request" {
	cat >"$BATS_TEST_TMPDIR/stale.py" <<'PY'
import os, socket, struct, sys
path = sys.argv[1]
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(16)
def rec(t, rid, c):
    return struct.pack(">BBHHBB", 1, t, rid, len(c), 0, 0) + c
def query(d):
    i = 0
    while i < len(d):
        ls = []
        for _ in range(2):
            if d[i] < 128:
                ls.append(d[i]); i += 1
            else:
                ls.append(struct.unpack(">I", d[i : i + 4])[0] & 0x7FFFFFFF); i += 4
        k, v = d[i : i + ls[0]], d[i + ls[0] : i + ls[0] + ls[1]]
        i += ls[0] + ls[1]
        if k == b"QUERY_STRING":
            return v
    return b""
def serve(conn):
    buf, p = b"", b""
    while True:
        while len(buf) >= 8:
            _, t, rid, cl, pl, _ = struct.unpack(">BBHHBB", buf[:8])
            if len(buf) < 8 + cl + pl:
                break
            c, buf = buf[8 : 8 + cl], buf[8 + cl + pl :]
            if t == 1:
                p = b""
            elif t == 4:
                p += c
            elif t == 5 and cl == 0:
                qs = query(p)
                head = b"Content-Type: text/plain\r\n\r\n"
                body = (b"response for " + qs + b"\n").ljust(32736 - len(head), b".")
                # the answer ends exactly at 32 KiB, then a stray record
                out = rec(6, rid, head + body) + rec(6, rid, b"") + rec(3, rid, b"\0" * 8)
                conn.sendall(out + rec(6, rid, b"Content-Type: text/plain\r\n\r\nLEAKED-from-" + qs + b"\n"))
        d = conn.recv(65536)
        if not d:
            return
        buf += d
while True:
    c, _ = srv.accept()
    try:
        serve(c)
    except OSError:
        pass
    c.close()
PY
	python3 "$BATS_TEST_TMPDIR/stale.py" "$BATS_TEST_TMPDIR/s" &
	app=$!
	within 5 test -S "$BATS_TEST_TMPDIR/s"
	cpm_config '' ''
	sed -i "s|\"routes\": \[|\"routes\": [ { \"prefix\": \"/st\", \"backend\": \"st\" },|; s|\"backends\": {|\"backends\": { \"st\": { \"type\": \"fastcgi\", \"address\": \"unix:$BATS_TEST_TMPDIR/s\", \"script\": \"/x\", \"keep_conn\": 1 },|" "$BATS_TEST_TMPDIR/cpm.json"
	cpm_start
	raw 'GET /st?A HTTP/1.1\r\nHost: a\r\n\r\nGET /st?B HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' 3 >"$BATS_TEST_TMPDIR/out"
	kill "$app"
	wait "$app" 2>/dev/null || true
	# what each response carried, in order
	run grep -a -o -e "LEAKED-from-[AB]" -e "response for [AB]" "$BATS_TEST_TMPDIR/out"
	assert_output "response for A
response for B"
}
