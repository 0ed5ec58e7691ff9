#!/usr/bin/env bats
# The README's recipes: each etc/recipes/NAME.json runs as shipped, with
# only the port, the logs, the user (CPM_USER, as in t/apps.bats) and the
# absolute paths of its application (the fixtures in t/recipes/) changed by
# jq, against the real programs from Debian: Perl's CGI.pm, php-fpm,
# php-cgi, Plack's FCGI handler, uWSGI and Python's wsgiref.
load helpers

FIX=$ROOT/t/recipes

# recipe NAME [JQ]: etc/recipes/NAME.json with the test's port, logs and
# user, then JQ, written to $BATS_TEST_TMPDIR/cpm.json.
recipe() {
	CPM_PORT=$(free_port)
	local user='.user = $u'
	[ -n "$CPM_USER" ] || user='del(.user)'
	jq --arg port "127.0.0.1:$CPM_PORT" --arg u "$CPM_USER" --arg t "$BATS_TEST_TMPDIR" --arg fix "$FIX" \
		".listen = [\$port] | $user
		 | .access_log = \"\(\$t)/access.log\" | .error_log = \"\(\$t)/error.log\"
		 | ${2:-.}" "$ROOT/etc/recipes/$1.json" >"$BATS_TEST_TMPDIR/cpm.json"
}

# pool_pids: the master's children that are not workers (pool processes)
pool_pids() {
	ps -o pid=,args= --ppid "$CPM_PID" | awk '$2 " " $3 != "cpm: worker" { print $1 }'
}

# no_children PID...: none of them has a child process (no process
# manager of its own under cpm's pool)
no_children() {
	local p
	for p in "$@"; do
		[ -z "$(ps -o pid= --ppid "$p")" ] || {
			echo "pool process $p has children: $(ps -o pid=,args= --ppid "$p")" >&2
			return 1
		}
	done
}

# stream_times PATH: GET PATH, print the seconds until the first body byte
# and until the end, then the body (chunked framing removed by curl)
stream_times() {
	python3 - "$CPM_PORT" "$1" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t0 = time.monotonic()
s.sendall(b"GET " + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
data, first = b"", None
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
    if first is None and b"\r\n\r\n" in data and data.split(b"\r\n\r\n", 1)[1]:
        first = time.monotonic() - t0
print("%.2f %.2f" % (first, time.monotonic() - t0))
print(data.decode(errors="replace"))
PY
}

# assert_streamed: the output of stream_times shows the first part of the
# body (3 parts, a second apart) at least 1.5 s before its end: sent as
# written, not held until the application finished (the time to the first
# part is not bounded: a pool process may still be starting)
assert_streamed() {
	local first total
	read -r first total <<<"${lines[0]}"
	python3 -c "import sys; f, t = float(sys.argv[1]), float(sys.argv[2]); sys.exit(not t - f >= 1.5)" \
		"$first" "$total" || {
		echo "first part after $first s, end after $total s: not streamed" >&2
		return 1
	}
	assert_output --partial "part 1"
	assert_output --partial "part 3"
}

@test "every recipe in etc/recipes is run by this file" {
	local f name
	for f in "$ROOT"/etc/recipes/*.json; do
		name=$(basename "$f" .json)
		grep -q "^	recipe $name " "$BATS_TEST_FILENAME" || {
			echo "etc/recipes/$name.json has no test in t/recipes.bats" >&2
			return 1
		}
	done
}

# ---- a directory of Perl CGI scripts ----

@test "perl-cgi: the directory's index.pl, a CGI.pm form and a multipart upload" {
	recipe perl-cgi '.backends.perl.root = "\($fix)/cgi-bin"'
	cpm_start
	run curl -s "$(url /cgi-bin/)"
	assert_output "index.pl: try form.pl"
	run curl -s "$(url /cgi-bin/form.pl/extra)"
	assert_output --partial '<form method="post" action="/cgi-bin/form.pl"'
	assert_output --partial "SCRIPT_NAME=/cgi-bin/form.pl PATH_INFO=/extra"
	head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/up.bin"
	run curl -s --form-string 'name=<b>Ann</b>' -F "file=@$BATS_TEST_TMPDIR/up.bin" "$(url /cgi-bin/form.pl)"
	assert_output --partial "Hello, &lt;b&gt;Ann&lt;/b&gt;!"
	assert_output --partial "file up.bin: 100000 bytes"
	grep -q '"POST /cgi-bin/form.pl HTTP/1.1" 200 ' "$BATS_TEST_TMPDIR/access.log"
}

# ---- PHP: php-fpm (external) and php-cgi (a pool) ----

@test "php-fpm: index.php as the directory index, a POST, Basic credentials, files as files" {
	start_php_fpm "$BATS_TEST_TMPDIR"
	recipe php-fpm '.backends.php.address = "unix:\($t)/php.sock"
		| .backends.php.root = "\($fix)/php" | .backends.files.root = "\($fix)/php"'
	cpm_start
	run curl -s "$(url /)"
	assert_line --regexp '^sapi=fpm-fcgi pid=[0-9]+$'
	assert_line "SCRIPT_NAME=/index.php PATH_INFO="
	run curl -s -d name=Bob "$(url /index.php/a/b)"
	assert_line "SCRIPT_NAME=/index.php PATH_INFO=/a/b"
	assert_line "name=Bob"
	# the application does its own Basic auth: PHP_AUTH_USER
	run curl -s -u 'alice:pw' "$(url /index.php)"
	assert_line "user=alice"
	run curl -s -D - "$(url /style.css)"
	assert_line --regexp '^Content-Type: text/css'
	assert_line "body { font-family: sans-serif; }"
	stop_php_fpm
}

@test "php-fpm: a text file is not run as PHP through /FILE/x.php (the script must end in the route's suffix)" {
	start_php_fpm "$BATS_TEST_TMPDIR"
	recipe php-fpm '.backends.php.address = "unix:\($t)/php.sock"
		| .backends.php.root = "\($fix)/php" | .backends.files.root = "\($fix)/php"'
	cpm_start
	run curl -s -o /dev/null -w '%{http_code}' "$(url /upload.txt/x.php)"
	assert_output 404
	run curl -s "$(url /upload.txt/x.php)"
	refute_output --partial "was run as PHP"
	stop_php_fpm
}

@test "php-cgi: a pool of php-cgi processes that cpm runs, none with children of its own" {
	recipe php-cgi '.backends.php.root = "\($fix)/php" | .backends.files.root = "\($fix)/php"'
	cpm_start
	run curl -s "$(url /)"
	assert_line --regexp '^sapi=cgi-fcgi pid=[0-9]+$'
	local pid=${lines[0]#*pid=}
	# the process that answered is one of cpm's pool processes (min: 2)
	within 5 eval '[ "$(pool_pids | wc -l)" -ge 2 ]'
	pool_pids | grep -qx "$pid"
	# PHP_FCGI_CHILDREN=0: php-cgi forked no children of its own
	# shellcheck disable=SC2046
	no_children $(pool_pids)
	run curl -s -d name=Bob "$(url /index.php/a/b)"
	assert_line "SCRIPT_NAME=/index.php PATH_INFO=/a/b"
	assert_line "name=Bob"
	run curl -s -D - "$(url /style.css)"
	assert_line --regexp '^Content-Type: text/css'
	run curl -s "$(url /index.php)"
	refute_output --partial "<?php"
	# php-cgi has no security.limit_extensions: cpm's suffix check is
	# all that keeps an uploaded text file from running as PHP
	run curl -s -o /dev/null -w '%{http_code}' "$(url /upload.txt/x.php)"
	assert_output 404
	run curl -s "$(url /upload.txt/x.php)"
	refute_output --partial "was run as PHP"
	run curl -s "$(url /index.php/x.php)"
	assert_line "SCRIPT_NAME=/index.php PATH_INFO=/x.php"
}

# ---- a PSGI application: Plack's FCGI handler on fd 0 ----

@test "psgi: plackup -s FCGI on the pool's socket (no process manager of its own), a POST, a streamed response" {
	recipe psgi '.backends.psgi.cwd = "\($fix)/psgi"'
	cpm_start
	run curl -s "$(url /app/hello)"
	assert_output --regexp '^hello from PSGI, pid [0-9]+ script=/app path=/hello$'
	local pid
	pid=$(sed 's/.*pid \([0-9]*\) .*/\1/' <<<"$output")
	within 5 eval '[ "$(pool_pids | wc -l)" -eq 4 ]'
	pool_pids | grep -qx "$pid"
	# shellcheck disable=SC2046
	no_children $(pool_pids)
	run curl -s -d 'name=Ann' "$(url /app/form)"
	assert_output --regexp '^pid [0-9]+ got name=Ann \(8 bytes\)$'
	run stream_times /app/stream
	assert_streamed
}

# ---- a WSGI application: uWSGI's FastCGI on fd 0, or wsgiref as CGI ----

@test "wsgi: uWSGI speaking FastCGI on the pool's socket, a POST, a streamed response" {
	recipe wsgi '.backends.wsgi.cwd = "\($fix)/wsgi"'
	cpm_start
	run curl -s "$(url /app/hello)"
	assert_output --regexp '^hello from WSGI, pid [0-9]+ script=/app path=/hello$'
	local pid
	pid=$(sed 's/.*pid \([0-9]*\) .*/\1/' <<<"$output")
	within 5 eval '[ "$(pool_pids | wc -l)" -eq 4 ]'
	pool_pids | grep -qx "$pid"
	# shellcheck disable=SC2046
	no_children $(pool_pids)
	grep -q "uwsgi socket 0 inherited UNIX address .* fd 0" "$BATS_TEST_TMPDIR/error.log"
	run curl -s -d 'name=Ann' "$(url /app/form)"
	assert_output --regexp '^pid [0-9]+ got name=Ann \(8 bytes\)$'
	run stream_times /app/stream
	assert_streamed
	# the processes end on cpm's SIGTERM (uWSGI's exit code is 30), none
	# has to be killed
	cpm_stop
	run grep -E "pool wsgi\[[0-9]\]: pid [0-9]+ (exited|killed)" "$BATS_TEST_TMPDIR/error.log"
	assert_equal "$(grep -c exited <<<"$output")" 4
	refute_output --partial "killed"
}

@test "wsgi-cgi: the same WSGI application through wsgiref's CGIHandler, a process per request" {
	recipe wsgi-cgi '.backends.wsgi.script = "\($fix)/wsgi/app.cgi"'
	cpm_start
	run curl -s "$(url /app/hello)"
	assert_output --regexp '^hello from WSGI, pid [0-9]+ script=/app path=/hello$'
	local first=$output
	run curl -s "$(url /app/hello)"
	assert_output --regexp '^hello from WSGI, pid [0-9]+ script=/app path=/hello$'
	[ "$output" != "$first" ] # another process
	run curl -s -d 'name=Ann' "$(url /app/form)"
	assert_output --regexp '^pid [0-9]+ got name=Ann \(8 bytes\)$'
	run stream_times /app/stream
	assert_streamed
}

# ---- the README ----

@test "the README's settings table names only keys config.c accepts and cpm.json(5) documents" {
	run python3 - "$ROOT" <<'PY'
import re, sys
root = sys.argv[1]
readme = open(root + "/README.md").read()
config_c = open(root + "/manager/config.c").read()
man = open(root + "/man/cpm.json.5").read()
section = readme.split("\n## From nginx, php-fpm and gunicorn: settings and cpm keys\n", 1)[1].split("\n## ", 1)[0]
keys, bad = set(), []
for line in section.splitlines():
    if not line.startswith("| ") or line.startswith("|---"):
        continue
    cells = [c.strip() for c in line.strip("|").split(" | ")]
    if len(cells) != 2:
        bad.append("not two cells: " + line)
        continue
    if cells[1] == "cpm":
        continue
    # a key is a backquoted name or dotted path; values ("unix"), options
    # (-D) and header fields are not
    for k in re.findall(r"`([a-z_]+(?:\.[a-z_]+)*)`", cells[1]):
        keys.add(k)
        for part in k.split("."):
            if '"%s"' % part not in config_c:
                bad.append("%s: %s is not a key in manager/config.c" % (k, part))
            if not re.search(r"\b%s\b" % re.escape(part), man):
                bad.append("%s: %s is not in man/cpm.json.5" % (k, part))
print("%d keys checked" % len(keys))
print("\n".join(bad))
sys.exit(1 if bad or len(keys) < 40 else 0)
PY
	assert_success
	assert_line --regexp '^[0-9]+ keys checked$'
}

@test "the README's links to its own sections lead to a heading" {
	run python3 - "$ROOT/README.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
# GitHub's anchors: lower case, punctuation but - and _ dropped, spaces to -
slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
         for h in re.findall(r"(?m)^#+ (.*)$", text)}
links = re.findall(r"\]\(#([^)]+)\)", text)
bad = [a for a in links if a not in slugs]
print("%d links, broken: %s" % (len(links), " ".join(bad) or "none"))
sys.exit(1 if bad or not links else 0)
PY
	assert_success
}
