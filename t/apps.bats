#!/usr/bin/env bats
# The real programs behind a cgi backend with "script": git-http-backend,
# gitweb and cgit (Debian's packages), each started from the sample
# configuration in etc/ with only its paths, port and user changed (jq), so
# the samples are what is tested.
load helpers

# One repository for every test: 200 commits and a 5 MB incompressible blob
# (a clone is a multi-megabyte response), bare under $BATS_FILE_TMPDIR/git.
setup_file() {
	export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
	local src=$BATS_FILE_TMPDIR/src i
	git init -q -b master "$src"
	head -c 5000000 /dev/urandom >"$src/blob.bin"
	for i in $(seq 200); do
		echo "line $i" >>"$src/log.txt"
		[ "$i" != 100 ] || git -C "$src" add blob.bin
		git -C "$src" add log.txt
		git -C "$src" -c user.name=Tester -c user.email=t@example.org commit -q -m "commit number $i"
	done
	mkdir -p "$BATS_FILE_TMPDIR/git"
	git clone -q --bare "$src" "$BATS_FILE_TMPDIR/git/repo.git"
}

setup() {
	export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
	# each test gets its own copy of the repository: pushes and fetches
	# change it
	GITROOT=$BATS_TEST_TMPDIR/git
	mkdir -p "$GITROOT"
	cp -a "$BATS_FILE_TMPDIR/git/repo.git" "$GITROOT/"
	HEAD=$(git -C "$GITROOT/repo.git" rev-parse master)
}

# users_file: a htpasswd file (alice, "s3cret pass", bcrypt) for the
# authenticated routes of the samples, which must exist when the
# configuration is loaded; prints the jq that points the samples at it.
users_file() {
	[ -f "$BATS_TEST_TMPDIR/htpasswd" ] ||
		htpasswd -B -b -c "$BATS_TEST_TMPDIR/htpasswd" alice 's3cret pass' 2>/dev/null
	echo "(.routes[] | select(.auth) | .auth.basic.user_file) = \"$BATS_TEST_TMPDIR/htpasswd\""
}

# sample NAME [JQ]: etc/NAME.json with the test's port, logs and user, then
# JQ, written to $BATS_TEST_TMPDIR/cpm.json.
sample() {
	CPM_PORT=$(free_port)
	local user='.user = $u'
	[ -n "$CPM_USER" ] || user='del(.user)'
	jq --arg port "127.0.0.1:$CPM_PORT" --arg u "$CPM_USER" --arg t "$BATS_TEST_TMPDIR" \
		".listen = [\$port] | $user | .workers = 2
		 | .access_log = \"\(\$t)/access.log\" | .error_log = \"\(\$t)/error.log\"
		 | $(users_file) | ${2:-.}" "$ROOT/etc/$1.json" >"$BATS_TEST_TMPDIR/cpm.json"
}

# ---- the samples themselves ----

@test "the samples are valid as shipped (only the users file is the test's)" {
	local f
	for f in git-http-backend cgit gitweb; do
		jq "$(users_file)" "$ROOT/etc/$f.json" >"$BATS_TEST_TMPDIR/$f.json"
		run "$CPM" -t -c "$BATS_TEST_TMPDIR/$f.json"
		assert_success
	done
}

# ---- git-http-backend ----

git_sample() {
	sample git-http-backend ".backends.git.env.GIT_PROJECT_ROOT = \"$GITROOT\" ${1:-}"
}

@test "git clone through git-http-backend: 200 commits and a 5 MB blob arrive intact" {
	git_sample
	cpm_start
	run git clone -q "$(url /git/repo.git)" "$BATS_TEST_TMPDIR/clone"
	assert_success
	assert_equal "$(git -C "$BATS_TEST_TMPDIR/clone" rev-parse HEAD)" "$HEAD"
	assert_equal "$(git -C "$BATS_TEST_TMPDIR/clone" rev-list --count HEAD)" 200
	assert_equal "$(sha256sum <"$BATS_TEST_TMPDIR/clone/blob.bin")" "$(sha256sum <"$BATS_FILE_TMPDIR/src/blob.bin")"
	run git -C "$BATS_TEST_TMPDIR/clone" fsck --full --strict
	assert_success
	# the smart protocol was used (not the dumb one), through the route
	grep -q '"GET /git/repo.git/info/refs?service=git-upload-pack HTTP/1.1" 200 ' "$BATS_TEST_TMPDIR/access.log"
	grep -q '"POST /git/repo.git/git-upload-pack HTTP/1.1" 200 ' "$BATS_TEST_TMPDIR/access.log"
}

@test "git fetch gets a commit made after the clone" {
	git_sample
	cpm_start
	git clone -q "$(url /git/repo.git)" "$BATS_TEST_TMPDIR/clone"
	# a new commit in the served repository
	local w=$BATS_TEST_TMPDIR/work
	git clone -q "$GITROOT/repo.git" "$w"
	echo new >"$w/new.txt"
	git -C "$w" add new.txt
	git -C "$w" -c user.name=Tester -c user.email=t@example.org commit -q -m "after the clone"
	git -C "$w" push -q origin master
	local new
	new=$(git -C "$GITROOT/repo.git" rev-parse master)
	[ "$new" != "$HEAD" ]
	run git -C "$BATS_TEST_TMPDIR/clone" fetch -q origin
	assert_success
	assert_equal "$(git -C "$BATS_TEST_TMPDIR/clone" rev-parse origin/master)" "$new"
	assert_equal "$(git -C "$BATS_TEST_TMPDIR/clone" show origin/master:new.txt)" new
}

@test "an anonymous git push is refused (no REMOTE_USER: git-http-backend answers 403)" {
	git_sample
	cpm_start
	git clone -q "$(url /git/repo.git)" "$BATS_TEST_TMPDIR/clone"
	local c=$BATS_TEST_TMPDIR/clone
	echo x >"$c/x.txt"
	git -C "$c" add x.txt
	git -C "$c" -c user.name=Tester -c user.email=t@example.org commit -q -m "anonymous"
	run git -C "$c" push origin master
	assert_failure
	assert_output --partial "403"
	grep -q '"GET /git/repo.git/info/refs?service=git-receive-pack HTTP/1.1" 403 ' "$BATS_TEST_TMPDIR/access.log"
	assert_equal "$(git -C "$GITROOT/repo.git" rev-parse master)" "$HEAD"
}

@test "git push with credentials on /git-rw (auth), wrong password 401 and no push" {
	git_sample
	grep -q '^alice:\$2y\$' "$BATS_TEST_TMPDIR/htpasswd"
	assert_equal "$(jq -r '.routes[] | select(.auth) | .auth.basic.user_file' "$BATS_TEST_TMPDIR/cpm.json")" \
		"$BATS_TEST_TMPDIR/htpasswd"
	cpm_start
	git clone -q "$(url /git/repo.git)" "$BATS_TEST_TMPDIR/clone"
	local c=$BATS_TEST_TMPDIR/clone
	echo x >"$c/x.txt"
	git -C "$c" add x.txt
	git -C "$c" -c user.name=Tester -c user.email=t@example.org commit -q -m "pushed"
	local mine
	mine=$(git -C "$c" rev-parse HEAD)
	# bare repositories keep no reflog by default: this one names the pusher
	git -C "$GITROOT/repo.git" config core.logAllRefUpdates always
	run git -C "$c" push "http://alice:wrong@127.0.0.1:$CPM_PORT/git-rw/repo.git" master
	assert_failure
	grep -q ' 401 ' "$BATS_TEST_TMPDIR/access.log"
	assert_equal "$(git -C "$GITROOT/repo.git" rev-parse master)" "$HEAD"
	run git -C "$c" push "http://alice:s3cret%20pass@127.0.0.1:$CPM_PORT/git-rw/repo.git" master
	assert_success
	assert_equal "$(git -C "$GITROOT/repo.git" rev-parse master)" "$mine"
	# git-http-backend saw REMOTE_USER (it makes the committer of the
	# reflog entry alice@http.127.0.0.1)
	grep -q "alice <alice@http.127.0.0.1>" "$GITROOT/repo.git/logs/refs/heads/master"
	grep -q '"POST /git-rw/repo.git/git-receive-pack HTTP/1.1" 200 ' "$BATS_TEST_TMPDIR/access.log"
}

@test "the git sample as shipped runs as www-data: repositories must be that user's" {
	[ "$(id -u)" = 0 ] || skip "needs root (to run as www-data)"
	id www-data >/dev/null
	# a tree www-data can reach (the test's own directory may be closed)
	local top
	top=$(mktemp -d /tmp/cpm-apps.XXXXXX)
	chmod 755 "$top"
	cp -a "$GITROOT/repo.git" "$top/mine.git"
	chown -R www-data: "$top/mine.git"
	cp -a "$GITROOT/repo.git" "$top/roots.git"
	CPM_PORT=$(free_port)
	jq --arg port "127.0.0.1:$CPM_PORT" --arg t "$top" \
		".listen = [\$port] | .access_log = \"\(\$t)/access.log\" | .error_log = \"\(\$t)/error.log\"
		 | .backends.git.env.GIT_PROJECT_ROOT = \$t | $(users_file)" \
		"$ROOT/etc/git-http-backend.json" >"$BATS_TEST_TMPDIR/cpm.json"
	assert_equal "$(jq -r .user "$BATS_TEST_TMPDIR/cpm.json")" www-data
	cpm_start
	CPM_LOG=$top/error.log
	run git clone -q "$(url /git/mine.git)" "$BATS_TEST_TMPDIR/clone"
	assert_success
	assert_equal "$(git -C "$BATS_TEST_TMPDIR/clone" rev-parse HEAD)" "$HEAD"
	# another user's repository: git refuses it (safe.directory), and says
	# so in cpm's error log
	run git clone -q "$(url /git/roots.git)" "$BATS_TEST_TMPDIR/clone2"
	assert_failure
	assert_output --partial "500"
	grep -q "cgi git-http-backend\[[0-9]*\] id=[0-9a-f]*: fatal: detected dubious ownership in repository at '$top/roots.git'" "$top/error.log"
	cpm_stop
	cp "$top/error.log" "$BATS_TEST_TMPDIR/error.log" # for teardown's checks
	rm -rf "$top"
}

# ---- gitweb ----

gitweb_sample() {
	sed "s|\"/var/lib/git\"|\"$GITROOT\"|" "$ROOT/etc/gitweb.conf" >"$BATS_TEST_TMPDIR/gitweb.conf"
	grep -q "$GITROOT" "$BATS_TEST_TMPDIR/gitweb.conf"
	sample gitweb ".backends.gitweb.env.GITWEB_CONFIG = \"$BATS_TEST_TMPDIR/gitweb.conf\""
}

@test "gitweb: the project list and a commit page" {
	gitweb_sample
	cpm_start
	run curl -sS -w '\n%{http_code} %{content_type}' "$(url /gitweb)"
	assert_success
	assert_line --partial "200 text/html; charset=utf-8"
	assert_output --partial "repo.git"
	# the static files are asked for where the static route serves them
	assert_output --partial 'href="/gitweb/static/gitweb.css"'
	run curl -sS -w '\n%{http_code}' "$(url "/gitweb/?p=repo.git;a=commit;h=$HEAD")"
	assert_success
	assert_line "200"
	assert_output --partial "$HEAD"
	assert_output --partial "commit number 200"
	# path_info URLs: PATH_INFO is what gitweb parses
	run curl -sS -w '\n%{http_code}' "$(url "/gitweb/repo.git/commit/$HEAD")"
	assert_line "200"
	assert_output --partial "$HEAD"
	assert_output --partial "commit number 200"
}

@test "gitweb: its static files through the static backend" {
	gitweb_sample
	cpm_start
	run curl -sS -o "$BATS_TEST_TMPDIR/css" -w '%{http_code} %{content_type}' "$(url /gitweb/static/gitweb.css)"
	assert_output --partial "200 text/css"
	cmp "$BATS_TEST_TMPDIR/css" /usr/share/gitweb/static/gitweb.css
}

# ---- cgit ----

cgit_sample() {
	sed "s|^scan-path=/var/lib/git$|scan-path=$GITROOT|" "$ROOT/etc/cgitrc" >"$BATS_TEST_TMPDIR/cgitrc"
	grep -q "^scan-path=$GITROOT\$" "$BATS_TEST_TMPDIR/cgitrc"
	sample cgit ".backends.cgit.env.CGIT_CONFIG = \"$BATS_TEST_TMPDIR/cgitrc\""
}

@test "cgit: the repository index and the log page" {
	cgit_sample
	cpm_start
	run curl -sS -w '\n%{http_code} %{content_type}' "$(url /cgit/)"
	assert_success
	assert_line --partial "200 text/html"
	assert_output --partial "href='/cgit/repo.git/'"
	assert_output --partial "/cgit-css/cgit.css"
	run curl -sS -w '\n%{http_code}' "$(url /cgit/repo.git/log/)"
	assert_line "200"
	assert_output --partial "commit number 200"
	assert_output --partial "commit number 151"
	run curl -sS -w '\n%{http_code}' "$(url "/cgit/repo.git/commit/?id=$HEAD")"
	assert_line "200"
	assert_output --partial "$HEAD"
	assert_output --partial "commit number 200"
	# a path cgit does not know: its own 404 page, not cpm's
	run curl -sS -o /dev/null -w '%{http_code}' "$(url /cgit/nosuch.git/)"
	assert_output "404"
}

@test "cgit: its stylesheet and logo through the static backend" {
	cgit_sample
	cpm_start
	run curl -sS -o "$BATS_TEST_TMPDIR/css" -w '%{http_code} %{content_type}' "$(url /cgit-css/cgit.css)"
	assert_output --partial "200 text/css"
	cmp "$BATS_TEST_TMPDIR/css" /usr/share/cgit/cgit.css
	run curl -sS -o /dev/null -w '%{http_code} %{content_type}' "$(url /cgit-css/cgit.png)"
	assert_output "200 image/png"
	# what a browser's cache relies on: a strong ETag, 304 on revalidation
	local etag size
	etag=$(curl -sS -D - -o /dev/null "$(url /cgit-css/cgit.css)" | tr -d '\r' | sed -n 's/^ETag: //Ip')
	[[ "$etag" == '"'*'"' ]]
	run curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$(url /cgit-css/cgit.css)"
	assert_output 304
	# ranges: 206 with the right bytes, 416 past the end
	run curl -sS -D "$BATS_TEST_TMPDIR/h" -r 10-19 "$(url /cgit-css/cgit.css)"
	assert_equal "$output" "$(head -c 20 /usr/share/cgit/cgit.css | tail -c 10)"
	size=$(stat -c %s /usr/share/cgit/cgit.css)
	grep -qi "^Content-Range: bytes 10-19/$size" "$BATS_TEST_TMPDIR/h"
	grep -q '^HTTP/1.1 206' "$BATS_TEST_TMPDIR/h"
	run curl -sS -o /dev/null -w '%{http_code}' -r "$((size + 5))-" "$(url /cgit-css/cgit.css)"
	assert_output 416
}

# ---- what a program given by "script" sees ----

# show_env.sh in the test directory: the CGI variables and its cwd
write_show_env() {
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	cat >"$BATS_TEST_TMPDIR/bin/show_env.sh" <<'SH'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
for v in SCRIPT_NAME PATH_INFO SCRIPT_FILENAME DOCUMENT_ROOT PATH_TRANSLATED QUERY_STRING REQUEST_URI; do
	eval "printf '%s=[%s]\n' $v \"\${$v-unset}\""
done
printf 'cwd=[%s]\n' "$(pwd)"
SH
	chmod 755 "$BATS_TEST_TMPDIR/bin/show_env.sh"
}

@test "script: SCRIPT_NAME is the prefix, PATH_INFO the decoded rest, cwd the program's directory" {
	write_show_env
	local s=$BATS_TEST_TMPDIR/bin/show_env.sh
	mkdir -p "$BATS_TEST_TMPDIR/docs"
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{ "listen": ["127.0.0.1:$CPM_PORT"], $(user_member)
  "access_log": "$BATS_TEST_TMPDIR/access.log", "error_log": "$BATS_TEST_TMPDIR/error.log",
  "routes": [ { "prefix": "/app/", "backend": "app" }, { "prefix": "/docs", "backend": "withroot" },
              { "prefix": "/", "backend": "top" } ],
  "backends": {
    "app": { "type": "cgi", "script": "$s" },
    "withroot": { "type": "cgi", "script": "$s", "root": "$BATS_TEST_TMPDIR/docs" },
    "top": { "type": "cgi", "script": "$s" }
  } }
JSON
	cpm_start
	run curl -sS "$(url '/app/a%20b/c%3F.git?x=1&y=%2F')"
	assert_success
	assert_line "SCRIPT_NAME=[/app]"
	assert_line "PATH_INFO=[/a b/c?.git]"
	assert_line "SCRIPT_FILENAME=[$s]"
	assert_line "DOCUMENT_ROOT=[]"
	assert_line "PATH_TRANSLATED=[unset]"
	assert_line "QUERY_STRING=[x=1&y=%2F]"
	assert_line "REQUEST_URI=[/app/a%20b/c%3F.git?x=1&y=%2F]"
	assert_line "cwd=[$BATS_TEST_TMPDIR/bin]"
	# the prefix itself, with and without its slash
	run curl -sS "$(url /app/)"
	assert_line "SCRIPT_NAME=[/app]"
	assert_line "PATH_INFO=[/]"
	# a prefix without its slash: the bare prefix is on the route too
	run curl -sS "$(url /docs)"
	assert_line "SCRIPT_NAME=[/docs]"
	assert_line "PATH_INFO=[]"
	assert_line "PATH_TRANSLATED=[unset]"
	# "root" next to "script": only DOCUMENT_ROOT (and PATH_TRANSLATED)
	run curl -sS "$(url /docs/x/y)"
	assert_line "SCRIPT_NAME=[/docs]"
	assert_line "PATH_INFO=[/x/y]"
	assert_line "SCRIPT_FILENAME=[$s]"
	assert_line "DOCUMENT_ROOT=[$BATS_TEST_TMPDIR/docs]"
	assert_line "PATH_TRANSLATED=[$BATS_TEST_TMPDIR/docs/x/y]"
	assert_line "cwd=[$BATS_TEST_TMPDIR/bin]"
	# at "/" SCRIPT_NAME is empty and PATH_INFO the whole path
	run curl -sS "$(url /z/w)"
	assert_line "SCRIPT_NAME=[]"
	assert_line "PATH_INFO=[/z/w]"
	# dot segments and encoded slashes never reach the program
	run curl -sS -o /dev/null -w '%{http_code}' --path-as-is "$(url /app/a/../../etc/passwd)"
	assert_output "404"
	run curl -sS -o /dev/null -w '%{http_code}' "$(url /app/a%2Fb)"
	assert_output "404"
}

@test "script: a program removed after the start gives 502 and a log line, not a crash" {
	write_show_env
	local s=$BATS_TEST_TMPDIR/bin/show_env.sh
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{ "listen": ["127.0.0.1:$CPM_PORT"], $(user_member)
  "access_log": "$BATS_TEST_TMPDIR/access.log", "error_log": "$BATS_TEST_TMPDIR/error.log",
  "routes": [ { "prefix": "/", "backend": "app" } ],
  "backends": { "app": { "type": "cgi", "script": "$s" } } }
JSON
	cpm_start
	run curl -sS -o /dev/null -w '%{http_code}' "$(url /x)"
	assert_output "200"
	rm "$s"
	run curl -sS -o /dev/null -w '%{http_code}' "$(url /x)"
	assert_output "502"
	grep -q "cannot run $s" "$BATS_TEST_TMPDIR/error.log"
	# and a reload now refuses the configuration, keeping the old one
	kill -HUP "$CPM_PID"
	within 5 grep -q "show_env.sh: No such file or directory" "$BATS_TEST_TMPDIR/error.log"
	kill -0 "$CPM_PID"
}

# ---- cpm -t: "script" is checked when the configuration is loaded ----

# script_config VALUE [MORE]: a cgi backend with "script": VALUE at line 4
script_config() {
	cat >"$BATS_TEST_TMPDIR/c.json" <<JSON
{ "listen": ["127.0.0.1:1"], ${3:-}
  "routes": [ { "prefix": "/", "backend": "app" } ],
  "backends": {
    "app": { "type": "cgi", "script": $1 ${2:-} }
  } }
JSON
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/c.json"
}

@test "cpm -t: a missing, relative, non-executable or directory script is an error at FILE:LINE:COL" {
	local c=$BATS_TEST_TMPDIR/c.json
	script_config "\"$BATS_TEST_TMPDIR/nosuch\""
	assert_failure
	assert_output "cpm: $c:4:39: backends.app.script: cannot use $BATS_TEST_TMPDIR/nosuch: No such file or directory"
	script_config '"git-http-backend"'
	assert_failure
	assert_output "cpm: $c:4:39: backends.app.script: expected a path with a '/' (a program is not looked up through PATH; \"./git-http-backend\" is in the configuration's directory)"
	# a relative path is taken from the configuration's directory
	script_config '"bin/show_env.sh"'
	assert_failure
	assert_output "cpm: $c:4:39: backends.app.script: cannot use $BATS_TEST_TMPDIR/bin/show_env.sh: No such file or directory"
	write_show_env
	script_config '"bin/show_env.sh"' '' "$(user_member)"
	assert_success
	printf '#!/bin/sh\n' >"$BATS_TEST_TMPDIR/noexec.sh"
	chmod 644 "$BATS_TEST_TMPDIR/noexec.sh"
	script_config "\"$BATS_TEST_TMPDIR/noexec.sh\""
	assert_failure
	assert_output "cpm: $c:4:39: backends.app.script: cannot run $BATS_TEST_TMPDIR/noexec.sh: Permission denied"
	script_config "\"$BATS_TEST_TMPDIR\""
	assert_failure
	assert_output "cpm: $c:4:39: backends.app.script: $BATS_TEST_TMPDIR is not a regular file"
	script_config '""'
	assert_failure
	assert_output "cpm: $c:4:39: backends.app.script: expected a non-empty string"
	script_config '"/usr/lib/git-core/git-http-backend"'
	assert_success
}

@test "cpm -t: script with index, and neither script nor root, are errors" {
	local c=$BATS_TEST_TMPDIR/c.json
	script_config '"/usr/lib/git-core/git-http-backend"' ', "index": ["index.cgi"]'
	assert_failure
	assert_output "cpm: $c:4:78: backends.app.index: only without \"script\" (there is nothing to look up)"
	printf '{ "listen": ["127.0.0.1:1"],\n  "routes": [ { "prefix": "/", "backend": "app" } ],\n  "backends": { "app": { "type": "cgi" } } }\n' >"$c"
	run "$CPM" -t -c "$c"
	assert_failure
	assert_output "cpm: $c:3:24: backends.app: needs \"root\" (programs under a directory) or \"script\" (one program)"
}

@test "cpm -t: a script the workers' user cannot reach or execute names the user and why" {
	[ "$(id -u)" = 0 ] || skip "needs root (to check as another user)"
	# a directory nobody can reach but for the one denied below (the
	# test's own directory may be closed to others)
	local top d c=$BATS_TEST_TMPDIR/c.json
	top=$(mktemp -d /tmp/cpm-apps.XXXXXX)
	chmod 755 "$top"
	d=$top/private
	mkdir "$d"
	printf '#!/bin/sh\n' >"$d/prog"
	chmod 755 "$d/prog"
	chmod 700 "$d"
	script_config "\"$d/prog\"" "" '"user": "nobody",'
	assert_failure
	assert_output "cpm: $c:4:39: backends.app.script: $d/prog is not reachable by user nobody (search permission denied on $d)"
	# reachable, but executable only by its owner (root)
	chmod 755 "$d"
	chmod 744 "$d/prog"
	script_config "\"$d/prog\"" "" '"user": "nobody",'
	assert_failure
	assert_output "cpm: $c:4:39: backends.app.script: $d/prog is not reachable by user nobody (execute permission denied on $d/prog)"
	chmod 755 "$d/prog"
	script_config "\"$d/prog\"" "" '"user": "nobody",'
	rm -rf "$top"
	assert_success
}
