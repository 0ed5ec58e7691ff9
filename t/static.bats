#!/usr/bin/env bats
# The static backend, with the real cpm, curl and raw sockets: types,
# validators, conditional and range requests, precompressed files,
# directories, index and fallback redirects into CGI routes, what must
# stay outside the root, and what one worker holds while it sends 1 GiB.
load helpers

# A tree: www/ is the root; outside/ is next to it and must never be served.
setup() {
	W=$BATS_TEST_TMPDIR/www
	mkdir -p "$W/sub" "$W/empty" "$W/app" "$W/list/dir" "$BATS_TEST_TMPDIR/outside" "$BATS_TEST_TMPDIR/front"
	printf 'hello world\n' >"$W/hello.txt"
	printf 'body { color: red }\n' >"$W/style.css"
	printf '<p>sub</p>\n' >"$W/sub/index.html"
	printf 'secret outside\n' >"$BATS_TEST_TMPDIR/outside/secret.txt"
	printf 'dot\n' >"$W/.hidden"
	head -c 3000 /dev/urandom >"$W/big.js"
	gzip -9 -k "$W/big.js"
	printf 'BROTLI-BYTES' >"$W/big.js.br"
	printf 'x\n' >"$W/data.weird"
	ln -s "$BATS_TEST_TMPDIR/outside/secret.txt" "$W/out-link.txt"
	ln -s hello.txt "$W/in-link.txt"
	# a CGI script inside the static tree: run through the CGI route, never sent
	cat >"$W/app/index.sh" <<'SH'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "RAN method=$REQUEST_METHOD uri=$REQUEST_URI query=$QUERY_STRING script=$SCRIPT_NAME"
echo "body=$(cat)"
SH
	chmod +x "$W/app/index.sh"
	cp "$W/app/index.sh" "$BATS_TEST_TMPDIR/front/front.sh"
	# listing: names that need escaping, and a dotfile
	: >"$W/list/a&b<c>.txt"
	: >"$W/list/q\"uote.txt"
	: >"$W/list/.secret"
}

# static_config [static backend members]: "files" (static, root www) at /,
# "app" (cgi) at /app/index.sh, "front" (cgi) at /front.sh
static_config() {
	CPM_PORT=$(free_port)
	local extra=${1:-}
	[ -n "$extra" ] && extra=", $extra"
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": 1,
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member)
  "routes": [
    { "prefix": "/app/index.sh", "backend": "app" },
    { "prefix": "/front.sh", "backend": "front" },
    { "prefix": "/", "backend": "files" }
  ],
  "backends": {
    "files": { "type": "static", "root": "$W" $extra },
    "app": { "type": "cgi", "root": "$W/app", "index": ["index.sh"] },
    "front": { "type": "cgi", "root": "$BATS_TEST_TMPDIR/front", "index": ["front.sh"] }
  }
}
JSON
}

hdr() { # hdr NAME: the value of header NAME in $output (curl -si / -sI)
	printf '%s\n' "$output" | tr -d '\r' | sed -n "s/^$1: //Ip" | head -1
}

code() { curl -s --path-as-is -o /dev/null -w '%{http_code}' "$@"; }

@test "a file: Content-Type from mime.types, Last-Modified, a strong ETag, Content-Length; HEAD has the same head and no body" {
	static_config
	cpm_start
	run curl -si "$(url /style.css)"
	assert_line --partial "HTTP/1.1 200 OK"
	[ "$(hdr Content-Type)" = "text/css" ]
	[ "$(hdr Content-Length)" = 20 ]
	[ "$(hdr Accept-Ranges)" = bytes ]
	[ "$(hdr Last-Modified)" = "$(TZ=GMT date -r "$W/style.css" '+%a, %d %b %Y %H:%M:%S GMT')" ]
	etag=$(hdr ETag)
	[[ "$etag" =~ ^\"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+\"$ ]]
	assert_line "body { color: red }"
	get_head=$(printf '%s\n' "$output" | tr -d '\r' | sed '/^$/q' | grep -v '^Date:')
	run curl -sI "$(url /style.css)"
	[ "$(printf '%s\n' "$output" | tr -d '\r' | sed '/^$/q' | grep -v '^Date:')" = "$get_head" ]
	run raw "HEAD /style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	assert_line --partial "Content-Length: 20"
	refute_output --partial "color"
	assert_line "<EOF>"
	# an extension mime.types does not know, and none at all
	run curl -si "$(url /data.weird)"
	[ "$(hdr Content-Type)" = "application/octet-stream" ]
	# the ETag changes with the file
	printf 'body { color: blue }\n' >"$W/style.css"
	run curl -si "$(url /style.css)"
	[ "$(hdr ETag)" != "$etag" ]
}

@test "mime_types names another table; the first type listed for an extension wins" {
	printf 'application/x-first weird\napplication/x-second weird\ntext/css css\n' >"$BATS_TEST_TMPDIR/types"
	static_config "\"mime_types\": \"$BATS_TEST_TMPDIR/types\""
	cpm_start
	run curl -si "$(url /data.weird)"
	[ "$(hdr Content-Type)" = "application/x-first" ]
	run curl -si "$(url /hello.txt)"
	[ "$(hdr Content-Type)" = "application/octet-stream" ]
}

@test "If-None-Match and If-Modified-Since give 304 with the validators; a changed file gives 200; If-Match that fails gives 412" {
	static_config '"cache_control": "max-age=60"'
	cpm_start
	run curl -si "$(url /hello.txt)"
	etag=$(hdr ETag)
	lm=$(hdr Last-Modified)
	[ "$(hdr Cache-Control)" = "max-age=60" ]
	run curl -si -H "If-None-Match: \"nope\", $etag" "$(url /hello.txt)"
	assert_line --partial "HTTP/1.1 304 Not Modified"
	[ "$(hdr ETag)" = "$etag" ]
	[ "$(hdr Cache-Control)" = "max-age=60" ]
	[ -z "$(hdr Content-Length)" ]
	refute_line "hello world"
	run curl -si -H "If-Modified-Since: $lm" "$(url /hello.txt)"
	assert_line --partial "HTTP/1.1 304 Not Modified"
	# If-None-Match decides when both are sent
	run curl -si -H 'If-None-Match: "other"' -H "If-Modified-Since: $lm" "$(url /hello.txt)"
	assert_line --partial "HTTP/1.1 200 OK"
	# an older date: modified since
	run curl -si -H "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT" "$(url /hello.txt)"
	assert_line --partial "HTTP/1.1 200 OK"
	assert_line "hello world"
	# the file changes: the old tag no longer matches
	sleep 0.01
	printf 'hello again\n' >"$W/hello.txt"
	run curl -si -H "If-None-Match: $etag" "$(url /hello.txt)"
	assert_line --partial "HTTP/1.1 200 OK"
	assert_line "hello again"
	run code -H 'If-Match: "nope"' "$(url /hello.txt)"
	assert_output 412
}

@test "Range: one range is 206 with Content-Range; past the end is 416 with bytes */LEN; several get the whole file; If-Range" {
	static_config
	cpm_start
	run curl -si -H 'Range: bytes=6-10' "$(url /hello.txt)"
	assert_line --partial "HTTP/1.1 206 Partial Content"
	[ "$(hdr Content-Range)" = "bytes 6-10/12" ]
	[ "$(hdr Content-Length)" = 5 ]
	[ "$(curl -s -H 'Range: bytes=6-10' "$(url /hello.txt)")" = world ]
	[ "$(curl -s -H 'Range: bytes=-6' "$(url /hello.txt)")" = world ]
	[ "$(curl -s -H 'Range: bytes=6-' "$(url /hello.txt)")" = world ]
	cmp <(curl -s -H 'Range: bytes=100-2099' "$(url /big.js)") <(tail -c +101 "$W/big.js" | head -c 2000)
	run curl -si -H 'Range: bytes=12-' "$(url /hello.txt)"
	assert_line --partial "HTTP/1.1 416 Range Not Satisfiable"
	[ "$(hdr Content-Range)" = "bytes */12" ]
	run curl -si -H 'Range: bytes=0-1,4-5' "$(url /hello.txt)"
	assert_line --partial "HTTP/1.1 200 OK"
	assert_line "hello world"
	# If-Range with the current tag applies the range; with another, or a weak one, the whole file
	run curl -si "$(url /hello.txt)"
	etag=$(hdr ETag)
	lm=$(hdr Last-Modified)
	run code -H 'Range: bytes=0-4' -H "If-Range: $etag" "$(url /hello.txt)"
	assert_output 206
	run code -H 'Range: bytes=0-4' -H "If-Range: $lm" "$(url /hello.txt)"
	assert_output 206
	run code -H 'Range: bytes=0-4' -H 'If-Range: "old"' "$(url /hello.txt)"
	assert_output 200
	run code -H 'Range: bytes=0-4' -H "If-Range: W/$etag" "$(url /hello.txt)"
	assert_output 200
	# HEAD: the same 206 head, no body
	run curl -sI -H 'Range: bytes=6-10' "$(url /hello.txt)"
	assert_line --partial "HTTP/1.1 206"
	[ "$(hdr Content-Length)" = 5 ]
}

@test "precompressed: FILE.br / FILE.gz for clients that accept them, with Content-Encoding, Vary and their own ETag" {
	static_config
	cpm_start
	run curl -si "$(url /big.js)"
	plain_etag=$(hdr ETag)
	[ "$(hdr Vary)" = "Accept-Encoding" ]
	[ -z "$(hdr Content-Encoding)" ]
	cmp <(curl -s "$(url /big.js)") "$W/big.js"
	run curl -si -H 'Accept-Encoding: gzip' "$(url /big.js)"
	[ "$(hdr Content-Encoding)" = gzip ]
	[ "$(hdr Content-Type)" = "text/javascript" ]
	[ "$(hdr Vary)" = "Accept-Encoding" ]
	gz_etag=$(hdr ETag)
	[ "$gz_etag" != "$plain_etag" ]
	cmp <(curl -s -H 'Accept-Encoding: gzip' "$(url /big.js)" | gunzip) "$W/big.js"
	run curl -s -H 'Accept-Encoding: gzip, br' "$(url /big.js)"
	assert_output BROTLI-BYTES
	run curl -si -H 'Accept-Encoding: gzip, br;q=0' "$(url /big.js)"
	[ "$(hdr Content-Encoding)" = gzip ]
	# the variant's tag validates the variant only
	run code -H 'Accept-Encoding: gzip' -H "If-None-Match: $gz_etag" "$(url /big.js)"
	assert_output 304
	run code -H "If-None-Match: $gz_etag" "$(url /big.js)"
	assert_output 200
	# a file with no variant is served as is
	run curl -si -H 'Accept-Encoding: gzip, br' "$(url /hello.txt)"
	[ -z "$(hdr Content-Encoding)" ]
	assert_line "hello world"
}

@test "precompressed: false serves only the file asked for" {
	static_config '"precompressed": false'
	cpm_start
	run curl -si -H 'Accept-Encoding: gzip, br' "$(url /big.js)"
	[ -z "$(hdr Content-Encoding)" ]
	[ -z "$(hdr Vary)" ]
}

@test "directories: 301 to the trailing slash keeping the query, the index file, 403 without one, 405 for other methods on files" {
	static_config
	cpm_start
	run curl -si "$(url '/sub?a=1&b=2')"
	assert_line --partial "HTTP/1.1 301"
	[ "$(hdr Location)" = "/sub/?a=1&b=2" ]
	run curl -s "$(url /sub/)"
	assert_output "<p>sub</p>"
	run code "$(url /empty/)"
	assert_output 403
	run curl -si -X POST -d x "$(url /hello.txt)"
	assert_line --partial "HTTP/1.1 405"
	[ "$(hdr Allow)" = "GET, HEAD" ]
	run code -X DELETE "$(url /hello.txt)"
	assert_output 405
}

@test "long header values from the configuration (Cache-Control, a type from mime_types) arrive whole, not dropped" {
	long="max-age=60, $(printf 'x%.0s' $(seq 1 1500))"
	printf 'text/x-%s weird\n' "$(printf 'y%.0s' $(seq 1 1200))" >"$BATS_TEST_TMPDIR/mime.types"
	static_config "\"cache_control\": \"$long\", \"mime_types\": \"$BATS_TEST_TMPDIR/mime.types\""
	cpm_start
	run curl -si "$(url /data.weird)"
	assert_line --partial "HTTP/1.1 200"
	[ "$(hdr Cache-Control)" = "$long" ]
	[ "$(hdr Content-Type)" = "text/x-$(printf 'y%.0s' $(seq 1 1200))" ]
	[ -n "$(hdr ETag)" ]
	[ -n "$(hdr Last-Modified)" ]
}

@test "a directory's 301 never points at another host: slashes merged, the path percent-encoded" {
	static_config
	mkdir -p "$W/evil.example" "$W/back\\slash"
	cpm_start
	run curl -si --path-as-is "$(url '//evil.example?q=1')"
	assert_line --partial "HTTP/1.1 301"
	[ "$(hdr Location)" = "/evil.example/?q=1" ]
	run curl -si --path-as-is "$(url '///sub')"
	[ "$(hdr Location)" = "/sub/" ]
	run curl -si --path-as-is "$(url '/back%5Cslash')"
	[ "$(hdr Location)" = "/back%5Cslash/" ]
}

@test "autoindex lists a directory: names HTML-escaped and percent-encoded, dotfiles left out" {
	static_config '"autoindex": true'
	cpm_start
	run curl -si "$(url /list/)"
	assert_line --partial "HTTP/1.1 200"
	[ "$(hdr Content-Type)" = "text/html; charset=utf-8" ]
	assert_output --partial '<a href="a%26b%3Cc%3E.txt">a&amp;b&lt;c&gt;.txt</a>'
	assert_output --partial '<a href="q%22uote.txt">q&quot;uote.txt</a>'
	assert_output --partial '<a href="dir/">dir/</a>'
	refute_output --partial secret
	refute_output --partial '<c>'
}

@test "index is an internal redirect through the routes: the CGI script runs (never its source), with the method, body and the client's REQUEST_URI" {
	static_config '"index": ["index.sh", "index.html"]'
	cpm_start
	run curl -s "$(url '/app/?x=1')"
	assert_line "RAN method=GET uri=/app/?x=1 query=x=1 script=/app/index.sh/index.sh"
	refute_output --partial '#!/bin/sh'
	run curl -s -X POST --data-binary 'posted-body' "$(url /app/)"
	assert_line "RAN method=POST uri=/app/ query= script=/app/index.sh/index.sh"
	assert_line "body=posted-body"
	# a directory whose index file the same static backend serves
	run curl -s "$(url /sub/)"
	assert_output "<p>sub</p>"
}

@test "fallback: a front controller sees the client's path and query in REQUEST_URI and the query in QUERY_STRING; files still win" {
	static_config '"fallback": "/front.sh"'
	cpm_start
	run curl -s "$(url '/pretty/url/here?page=2&s=x')"
	assert_line "RAN method=GET uri=/pretty/url/here?page=2&s=x query=page=2&s=x script=/front.sh/front.sh"
	run curl -s -X POST --data-binary 'form' "$(url /not/a/file)"
	assert_line "RAN method=POST uri=/not/a/file query= script=/front.sh/front.sh"
	assert_line "body=form"
	run curl -s "$(url /hello.txt)"
	assert_output "hello world"
	# dotfiles and traversal are refused before any fallback
	run code "$(url /.hidden)"
	assert_output 404
}

@test "fallback that is itself missing is 404, not a redirect loop" {
	static_config '"fallback": "/missing.php"'
	cpm_start
	run code "$(url /nothing)"
	assert_output 404
	run grep -c "local redirects" "$BATS_TEST_TMPDIR/error.log"
	assert_output 0
}

@test "nothing outside the root: .., %2e%2e, encoded slashes, dotfiles, a symlink out (beneath), a non-regular file" {
	static_config
	cpm_start
	for p in /../outside/secret.txt /%2e%2e/outside/secret.txt /sub/%2E%2E/%2e%2e/outside/secret.txt \
		/..%2foutside%2fsecret.txt /sub%2f..%2f..%2foutside/secret.txt /.hidden /sub/../.hidden /%2ehidden; do
		run curl -s --path-as-is "$(url "$p")"
		refute_output --partial "secret outside"
		refute_output --partial "dot"
		run code "$(url "$p")"
		[[ "$output" == 4?? ]] || { echo "$p: $output"; false; }
	done
	run raw "GET /../outside/secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	refute_output --partial "secret outside"
	run code "$(url /out-link.txt)"
	assert_output 403
	run curl -s "$(url /in-link.txt)"
	assert_output "hello world"
	mkfifo "$W/fifo"
	run code --max-time 3 "$(url /fifo)"
	assert_output 403
}

@test "symlinks: follow serves a link out of the root" {
	static_config '"symlinks": "follow"'
	cpm_start
	run curl -s "$(url /out-link.txt)"
	assert_output "secret outside"
	run code "$(url /../outside/secret.txt)"
	[[ "$output" == 4?? ]]
}

@test "cpm -t checks every key of a static backend and names FILE:LINE:COL" {
	CPM_PORT=1
	check() { # check BACKEND-MEMBERS EXPECTED-MESSAGE
		printf '{%s\n"routes": [{"prefix": "/", "backend": "f"}],\n"backends": {"f": {"type": "static", %s}}}\n' "$(user_member)" "$1" \
			>"$BATS_TEST_TMPDIR/c.json"
		run "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
		[ "$status" -ne 0 ]
		[[ "$output" == *"c.json:3:"*"$2"* ]] || { echo "got: $output"; false; }
	}
	check "\"root\": \"$W\", \"symlinks\": \"always\"" 'backends.f.symlinks: expected "beneath" or "follow"'
	check "\"root\": \"$W\", \"fallback\": \"index.php\"" 'backends.f.fallback: expected a local path'
	check "\"root\": \"$W\", \"fallback\": \"/i.php?x=1\"" 'backends.f.fallback: expected a local path'
	check "\"root\": \"$W\", \"index\": [\"../x\"]" 'backends.f.index[0]: expected a file name'
	check "\"root\": \"$W\", \"autoindex\": 1" 'backends.f.autoindex: expected true or false'
	check "\"root\": \"$W\", \"precompressed\": \"yes\"" 'backends.f.precompressed: expected true or false'
	check "\"root\": \"$W\", \"cache_control\": \"a\\nb\"" 'backends.f.cache_control: expected a header value'
	check "\"root\": \"$W\", \"mime_types\": \"/nonexistent/types\"" 'backends.f.mime_types: /nonexistent/types'
	check "\"root\": \"$W\", \"colour\": 1" 'backends.f.colour: unknown key'
	check "\"root\": \"$W/nope\"" 'backends.f.root: cannot use'
	check "\"index\": []" 'backends.f: missing key "root"'
	printf '{%s "routes": [{"prefix": "/", "backend": "f"}], "backends": {"f": {"type": "static", "root": "%s", "index": ["index.html"], "autoindex": true, "symlinks": "follow", "precompressed": false, "cache_control": "no-cache", "fallback": "/index.php", "mime_types": "/etc/mime.types"}}}\n' "$(user_member)" "$W" >"$BATS_TEST_TMPDIR/c.json"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
	assert_success
}

worker_rss_kb() {
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

@test "a 1 GiB file goes out with sendfile to a slow-ish reader: the worker's RSS stays bounded and every byte arrives" {
	f=$W/huge.bin
	truncate -s 1G "$f"
	# marks at known places, so the bytes checked are not only zeros
	head -c 65536 /dev/urandom | dd of="$f" bs=65536 seek=0 conv=notrunc status=none
	head -c 65536 /dev/urandom | dd of="$f" bs=65536 seek=8191 conv=notrunc status=none
	head -c 65536 /dev/urandom | dd of="$f" bs=65536 seek=16383 conv=notrunc status=none
	want=$(sha256sum "$f" | cut -d' ' -f1)
	static_config
	cpm_start
	worker=$(workers_of "$CPM_PID")
	[ -n "$worker" ]
	before=$(worker_rss_kb "$worker")
	run python3 - "$CPM_PORT" "$worker" <<'PY'
import hashlib, socket, sys, time
port, worker = int(sys.argv[1]), sys.argv[2]
def rss():
    for l in open("/proc/%s/status" % worker):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
head, body = buf.split(b"\r\n\r\n", 1)
h = hashlib.sha256(body)
n = len(body)
peak = rss()
i = 0
while True:
    d = s.recv(262144)
    if not d:
        break
    h.update(d)
    n += len(d)
    i += 1
    if i < 200:
        time.sleep(0.005)  # slow for the first MBs: the worker must wait, not buffer
    if i % 256 == 0:
        peak = max(peak, rss())
print(head.split(b"\r\n")[0].decode())
print("bytes", n)
print("sha256", h.hexdigest())
print("peak_rss_kb", peak)
PY
	echo "$output"
	assert_line "HTTP/1.1 200 OK"
	assert_line "bytes 1073741824"
	assert_line "sha256 $want"
	peak=$(printf '%s\n' "$output" | sed -n 's/^peak_rss_kb //p')
	echo "RSS before $before kB, peak $peak kB"
	[ "$peak" -lt 20480 ]
	[ "$peak" -lt $((before + 10240)) ]
}

@test "the worker's open descriptors are the same after many requests, aborted downloads included" {
	truncate -s 64M "$W/mid.bin"
	static_config '"fallback": "/front.sh"'
	cpm_start
	worker=$(workers_of "$CPM_PID")
	etag=$(curl -sI "$(url /hello.txt)" | tr -d '\r' | sed -n 's/^ETag: //Ip')
	# round 0 fills the worker's cache of small files (bounded: see
	# t/static_perf.bats); from then on nothing more may stay open
	for i in $(seq 0 20); do
		[ "$i" = 1 ] && before=$(ls "/proc/$worker/fd" | wc -l)
		curl -s -o /dev/null "$(url /hello.txt)" "$(url /big.js)" "$(url /nothing)" "$(url /sub/)" "$(url /empty/)"
		curl -s -o /dev/null -H 'Range: bytes=1-2' "$(url /hello.txt)" -H "If-None-Match: $etag" "$(url /hello.txt)"
		curl -s -o /dev/null -H 'Accept-Encoding: gzip' "$(url /big.js)" -I "$(url /big.js)"
		curl -s -o /dev/null -H 'Range: bytes=99-' "$(url /hello.txt)"
		curl -s -o /dev/null -X POST -d x "$(url /hello.txt)"
	done
	# clients that leave in the middle of a file
	for i in $(seq 10); do
		python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /mid.bin HTTP/1.1\r\nHost: x\r\n\r\n")
s.recv(100000)
s.close()' "$CPM_PORT"
	done
	fds() { [ "$(ls "/proc/$worker/fd" | wc -l)" -eq "$before" ]; }
	within 5 fds || { ls -l "/proc/$worker/fd"; false; }
	run grep -c "mid.bin" <(ls -l "/proc/$worker/fd")
	assert_output 0
}

@test "pipelined requests: each file follows the whole of the one before, keep-alive kept" {
	static_config
	cpm_start
	run raw "GET /style.css HTTP/1.1\r\nHost: x\r\n\r\nHEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\nGET /style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	[ "$(printf '%s\n' "$output" | grep -o 'HTTP/1.1 [0-9]*' | wc -l)" = 4 ]
	[[ "$output" =~ HTTP/1.1\ 200.*Content-Length:\ 20.*color.*HTTP/1.1\ 200.*Content-Length:\ 12.*HTTP/1.1\ 206.*hello.*HTTP/1.1\ 200.*color ]]
	# the bytes of the first file are all there, before the second head
	python3 - "$CPM_PORT" "$W/big.js" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /big.js HTTP/1.1\r\nHost: x\r\n\r\nGET /big.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
want = open(sys.argv[2], "rb").read()
h1, rest = data.split(b"\r\n\r\n", 1)
assert rest[:len(want)] == want, "first body"
h2, body2 = rest[len(want):].split(b"\r\n\r\n", 1)
assert h2.startswith(b"HTTP/1.1 200"), h2[:40]
assert body2 == want, "second body"
PY
}

@test "an index redirect hands a streamed request body (larger than body_buffer) to the CGI script whole" {
	static_config '"index": ["index.sh"]'
	cpm_start
	head -c 300000 /dev/zero | tr '\0' a >"$BATS_TEST_TMPDIR/post"
	run curl -s --max-time 10 -X POST --data-binary @"$BATS_TEST_TMPDIR/post" "$(url /app/)"
	assert_success
	assert_line --partial "RAN method=POST uri=/app/"
	[ "$(printf '%s\n' "$output" | sed -n 's/^body=//p' | tr -d '\n' | wc -c)" = 300000 ]
}
