#!/usr/bin/env bats
# What a request costs the worker in system calls, counted with strace -c
# over 200 keep-alive requests on one connection (counts, not timings: they
# do not depend on the machine's load). A guard for the mechanisms that
# keep them down: a response leaves in one write at the end of the turn,
# a FastCGI request is written as soon as it has its connection, a kept
# connection changes owner without epoll_ctl, and reading is dropped
# lazily (loop.c).
load helpers

setup_file() {
	build_fcgi_apps slow || return 1
}

N=200

# count_syscalls OUT PATH: strace -c the worker while $N GETs of PATH go over
# one keep-alive connection (after 20 to warm up); the table goes to OUT
count_syscalls() {
	local out=$1 path=$2 worker strace_pid
	worker=$(workers_of "$CPM_PID")
	python3 - "$CPM_PORT" "$path" 20 <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for _ in range(int(sys.argv[3])):
    c.request("GET", sys.argv[2]); r = c.getresponse(); r.read(); assert r.status == 200
PY
	strace -c -o "$out" -p "$worker" 2>"$BATS_TEST_TMPDIR/strace.err" &
	strace_pid=$!
	within 5 grep -q attached "$BATS_TEST_TMPDIR/strace.err"
	python3 - "$CPM_PORT" "$path" "$N" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for _ in range(int(sys.argv[3])):
    c.request("GET", sys.argv[2]); r = c.getresponse(); r.read(); assert r.status == 200
PY
	kill -INT "$strace_pid"
	wait "$strace_pid" || true
	cat "$out" >&3
}

# calls OUT NAME: the calls column of syscall NAME (0 if absent)
calls() {
	awk -v n="$2" '$NF == n { print $4; f = 1 } END { if (!f) print 0 }' "$1"
}

# worker_total OUT: all calls but the allocator's (mmap, munmap, madvise,
# brk: under ASan its allocator maps and unmaps hundreds of times)
worker_total() {
	awk '$NF == "total" { t = $4 } $NF ~ /^(mmap|munmap|madvise|brk)$/ { m += $4 } END { print t - m }' "$1"
}

@test "a FastCGI request on a kept connection: one write and one read each way, no epoll_ctl, 7 system calls" {
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": 1,
  "access_log": null,
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member)
  "routes": [ { "prefix": "/app", "backend": "app" } ],
  "backends": { "app": { "type": "fastcgi", "command": ["$BATS_FILE_TMPDIR/slow"], "processes": 1 } }
}
JSON
	cpm_start
	count_syscalls "$BATS_TEST_TMPDIR/fcgi.txt" "/app?0"
	t=$BATS_TEST_TMPDIR/fcgi.txt
	# the client's request and the app's answer; the app's request and
	# the client's answer (head, body and last chunk together)
	[ "$(calls "$t" read)" -le $((N * 2 + 10)) ]
	[ "$(calls "$t" write)" -le $((N * 2 + 10)) ]
	[ "$(calls "$t" epoll_ctl)" -le 10 ]
	total=$(worker_total "$t")
	# and two epoll_wait (client, app) and the peek that a kept connection
	# was not closed (recvfrom): 7 a request (15 before 0.2)
	echo "total $total for $N requests" >&3
	[ "$total" -le $((N * 7 + 20)) ]
}

@test "a CGI request: the worker's side of a spawn is about 32 system calls, no getrlimit" {
	CPM_WORKERS=1 cpm_config
	cpm_start
	count_syscalls "$BATS_TEST_TMPDIR/cgi.txt" "/ex/hello"
	t=$BATS_TEST_TMPDIR/cgi.txt
	# vfork and exec: none of posix_spawn's getrlimit checks (7 a request)
	# and signal blocking around the clone (its child stack's mmap is not
	# counted: the allocator maps too, under ASan hundreds of times)
	[ "$(calls "$t" prlimit64)" -le 2 ]
	[ "$(calls "$t" rt_sigprocmask)" -le 2 ]
	total=$(worker_total "$t")
	echo "total $total for $N requests" >&3
	# about 32 a request (43.2 with posix_spawn); how the program's output
	# falls into reads and writes varies (35 seen under ASan, slower)
	[ "$total" -le $((N * 38)) ]
}
