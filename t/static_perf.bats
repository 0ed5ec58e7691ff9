#!/usr/bin/env bats
# The static backend's fast path for small files (issue 14), with the real
# cpm: a worker keeps small files open between requests, and each request
# stats the path again, so whatever happens to a file is seen by the very
# next request; what stays open is bounded; and a 4 KiB file costs the
# syscalls it should (strace counts them on the worker).
load helpers

# A tree under /tmp that nobody (the workers' user here) can read, and
# outside/ next to the root.
setup() {
	D=$(mktemp -d /tmp/cpm-static-perf.XXXXXX)
	chmod 0755 "$D"
	W=$D/www
	mkdir -p "$W/sub" "$D/outside/sub"
	printf 'version one\n' >"$W/a.txt"
	printf 'in sub\n' >"$W/sub/s.txt"
	printf 'outside copy\n' >"$D/outside/sub/s.txt"
	printf 'secret outside\n' >"$D/outside/secret.txt"
	head -c 4096 /dev/urandom >"$W/4k.bin"
	head -c 100000 /dev/urandom >"$W/big.bin"
	chmod -R a+rX "$D"
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": 1,
  "user": "nobody",
  "access_log": null,
  "error_log": "$BATS_TEST_TMPDIR/error.log",
  "routes": [ { "prefix": "/", "backend": "files" } ],
  "backends": { "files": { "type": "static", "root": "$W" } }
}
JSON
}

# helpers' teardown (cpm stopped, nothing left behind, no crash), then the tree
eval "helpers_$(declare -f teardown)"
teardown() {
	helpers_teardown
	local rc=$?
	rm -rf "${D:?}"
	return $rc
}

body() { curl -s --path-as-is "$(url "$1")"; }
code() { curl -s --path-as-is -o /dev/null -w '%{http_code}' "$(url "$1")"; }

# held NAME: the worker has NAME open
held() { ls -l "/proc/$(workers_of "$CPM_PID")/fd" | grep -q -- "$1"; }

@test "a kept small file: rewritten, renamed over, truncated, chmod'ed, deleted, a link out of root: the next request sees it" {
	cpm_start
	[ "$(body /a.txt)" = "version one" ]
	held "$W/a.txt" # the cache is in use: what follows tests it
	[ "$(body /a.txt)" = "version one" ]
	etag() { curl -sI "$(url /a.txt)" | tr -d '\r' | sed -n 's/^ETag: //Ip'; }
	e1=$(etag)
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $e1" "$(url /a.txt)")" = 304 ]
	# rewritten in place, same size: new bytes, a new ETag, the old one no 304
	sleep 0.01
	printf 'version two\n' >"$W/a.txt"
	[ "$(body /a.txt)" = "version two" ]
	[ "$(etag)" != "$e1" ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $e1" "$(url /a.txt)")" = 200 ]
	# renamed over
	printf 'version three, longer\n' >"$W/a.new"
	mv "$W/a.new" "$W/a.txt"
	[ "$(body /a.txt)" = "version three, longer" ]
	[ "$(curl -sI "$(url /a.txt)" | tr -d '\r' | sed -n 's/^Content-Length: //Ip')" = 22 ]
	# truncated
	: >"$W/a.txt"
	[ "$(code /a.txt)" = 200 ]
	[ -z "$(body /a.txt)" ]
	printf 'four\n' >"$W/a.txt"
	[ "$(body /a.txt)" = "four" ]
	# unreadable for the workers' user, then readable again
	chmod 0600 "$W/a.txt"
	[ "$(code /a.txt)" = 403 ]
	chmod 0644 "$W/a.txt"
	[ "$(body /a.txt)" = "four" ]
	# a directory on the path the workers can no longer search
	[ "$(body /sub/s.txt)" = "in sub" ]
	chmod 0700 "$W/sub"
	[ "$(code /sub/s.txt)" = 403 ]
	chmod 0755 "$W/sub"
	[ "$(body /sub/s.txt)" = "in sub" ]
	# the directory swapped for a link out of root (to a copy): refused
	mv "$W/sub" "$W/sub.old"
	ln -s "$D/outside/sub" "$W/sub"
	[ "$(code /sub/s.txt)" = 403 ]
	# the file swapped for a link out of root: refused
	ln -sf "$D/outside/secret.txt" "$W/a.txt"
	[ "$(code /a.txt)" = 403 ]
	run body /a.txt
	refute_output --partial secret
	# deleted
	rm "$W/a.txt"
	[ "$(code /a.txt)" = 404 ]
	! held "$W/a.txt"
}

@test "what a worker keeps open is bounded: 64 small files at most, none over 16 KiB" {
	for i in $(seq 200); do printf 'file %d\n' "$i" >"$W/f$i.txt"; done
	chmod a+r "$W"/f*.txt
	cpm_start
	worker=$(workers_of "$CPM_PID")
	before=$(ls "/proc/$worker/fd" | wc -l)
	for i in $(seq 200); do
		[ "$(body "/f$i.txt")" = "file $i" ]
	done
	[ "$(body /big.bin | wc -c)" = 100000 ]
	kept=$(ls -l "/proc/$worker/fd" | grep -c "$W/f")
	[ "$kept" -ge 1 ]
	[ "$kept" -le 64 ]
	! held "$W/big.bin"
	[ $(($(ls "/proc/$worker/fd" | wc -l) - before)) -le 64 ]
	# every file still right after the evictions
	for i in 1 77 200; do
		[ "$(body "/f$i.txt")" = "file $i" ]
	done
}

@test "a 4 KiB file over keep-alive: read, stat, pread and one write of head and body a request in the worker, no open, no sendfile" {
	command -v strace >/dev/null || {
		echo "strace is needed" >&2
		false
	}
	cpm_start
	worker=$(workers_of "$CPM_PID")
	[ "$(body /4k.bin | wc -c)" = 4096 ] # opened once, kept
	strace -f -c -o "$BATS_TEST_TMPDIR/strace.txt" -p "$worker" &
	st=$!
	sleep 0.5
	# 200 requests, one at a time, on one connection; every response whole
	python3 - "$CPM_PORT" "$W/4k.bin" <<'PY'
import socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
want = open(path, "rb").read()
s = socket.create_connection(("127.0.0.1", port))
buf = b""
for i in range(200):
    s.sendall(b"GET /4k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    while True:
        h = buf.find(b"\r\n\r\n")
        if h >= 0 and len(buf) >= h + 4 + 4096:
            break
        d = s.recv(65536)
        assert d, "closed"
        buf += d
    head, body = buf[:h].decode(), buf[h + 4:h + 4 + 4096]
    assert head.startswith("HTTP/1.1 200"), head
    assert body == want, "body %d differs" % i
    buf = buf[h + 4 + 4096:]
PY
	sleep 0.2
	kill -INT "$st"
	wait "$st" || true
	cat "$BATS_TEST_TMPDIR/strace.txt" >&2
	# strace -c: % time, seconds, usecs/call, calls, [errors], name
	calls() { awk -v n="$1" '$NF == n {print $4}' "$BATS_TEST_TMPDIR/strace.txt"; }
	# what the allocator maps is left out (a sanitizer build's maps a lot)
	total=$(awk '$NF == "total" {t = $4} $NF ~ /^(mmap|munmap|madvise|brk)$/ {m += $4} END {print t - m}' \
		"$BATS_TEST_TMPDIR/strace.txt")
	[ -n "$total" ] && [ "$total" -ge 200 ]
	# read, stat, pread, write, and epoll_wait (one client waits for each
	# answer, so the worker sleeps between requests); a few for the
	# connection (accept4, setsockopt, epoll_ctl, the first one's close)
	[ "$total" -le $((200 * 5 + 10)) ]
	[ "$(calls newfstatat)" -eq 200 ] && [ "$(calls pread64)" -eq 200 ] && [ "$(calls write)" -eq 200 ]
	[ -z "$(calls sendfile)" ] && [ -z "$(calls sendto)" ] && [ -z "$(calls openat2)" ] && [ -z "$(calls openat)" ]
	[ "$(calls close)" -le 1 ]
}
