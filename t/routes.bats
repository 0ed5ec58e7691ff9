#!/usr/bin/env bats
# Routing (prefix at a segment boundary, first match wins) and script lookup
# details: directory index, percent-decoding, NUL.
load helpers

# routes_config ROUTES-JSON [APPS-BACKEND-EXTRA]: backends "apps" (t/apps)
# and "ex" (examples)
routes_config() {
	CPM_PORT=$(free_port)
	local extra=${2:-}
	[ -n "$extra" ] && extra=", $extra"
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": 1,
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member)
  "routes": $1,
  "backends": {
    "apps": { "type": "cgi", "root": "${CPM_ROOT:-$APPS}" $extra },
    "ex": { "type": "cgi", "root": "$ROOT/examples" }
  }
}
JSON
}

code() { curl -s --path-as-is -o /dev/null -w '%{http_code}' "$(url "$1")"; }

@test "a prefix with a trailing slash: the path without it gets a 301 to the directory, query kept" {
	routes_config '[{"prefix": "/app/", "backend": "apps"}, {"prefix": "/other", "backend": "ex"}]'
	cpm_start
	run curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$(url '/app?x=1&y=%2F')"
	assert_output "301 $(url '/app/?x=1&y=%2F')"
	# only where no route matches: /other is served, /apple is not a directory
	run code /apple
	assert_output 404
	run code /other/hello.sh
	assert_output 200
}

@test "the 301 to a prefix's directory is a path on this server, whatever slashes the client sent" {
	routes_config '[{"prefix": "/app/", "backend": "apps"}]'
	cpm_start
	run curl -s --path-as-is -o /dev/null -w '%{http_code} %{redirect_url}' "$(url '//app?x=1')"
	assert_output "301 $(url '/app/?x=1')"
}

@test "a prefix matches at a segment boundary only" {
	routes_config '[{"prefix": "/app", "backend": "apps"}]'
	cpm_start
	run curl -s "$(url /app/env.sh)"
	assert_line "SCRIPT_NAME=/app/env.sh"
	assert_line "SCRIPT_FILENAME=$APPS/env.sh"
	run code /apple
	assert_output 404
	run code /apple/env.sh
	assert_output 404
}

@test "a request outside every route is 404" {
	routes_config '[{"prefix": "/cgi-bin/", "backend": "apps"}]'
	cpm_start
	run code /env.sh
	assert_output 404
	run code /cgi-bin/env.sh
	assert_output 200
}

@test "routes are tried in order: the first match wins" {
	routes_config '[{"prefix": "/x/", "backend": "ex"}, {"prefix": "/", "backend": "apps"}, {"prefix": "/x/", "backend": "apps"}]'
	cpm_start
	run curl -s "$(url /x/hello.sh)"
	assert_output "Hello, world!"
	run code /x/env.sh # only in t/apps: the later /x/ route never applies
	assert_output 404
	run code /env.sh
	assert_output 200
}

@test "a directory runs its index script, with index configured" {
	root=$BATS_TEST_TMPDIR/root
	mkdir -p "$root/dir"
	printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho "index SCRIPT_NAME=$SCRIPT_NAME"\n' >"$root/dir/index.cgi"
	chmod +x "$root/dir/index.cgi"
	CPM_ROOT=$root routes_config '[{"prefix": "/", "backend": "apps"}]' '"index": ["index.cgi"]'
	cpm_start
	run curl -s "$(url /dir/)"
	assert_output --regexp '^index SCRIPT_NAME=/dir/'
	run curl -s "$(url /)"
	refute_output --partial "index SCRIPT_NAME"
}

@test "without index a directory is 404" {
	routes_config '[{"prefix": "/", "backend": "ex"}]'
	cpm_start
	run code /
	assert_output 404
}

@test "the script path is percent-decoded" {
	routes_config '[{"prefix": "/", "backend": "apps"}]'
	cpm_start
	run curl -s "$(url /%65nv%2esh)"
	assert_line "SCRIPT_NAME=/env.sh"
	assert_line "REQUEST_URI=/%65nv%2esh"
}

@test "a NUL in the path is 400" {
	routes_config '[{"prefix": "/", "backend": "apps"}]'
	cpm_start
	run raw "GET /env.sh%00.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 400'
	refute_output --partial "GATEWAY_INTERFACE"
}

@test "a dot directory in the middle of a path is 404" {
	routes_config '[{"prefix": "/", "backend": "apps"}]'
	cpm_start
	run code /.hidden/secret.sh
	assert_output 404
	run code /sub/./info.sh
	assert_output 404
	run code /sub/%2e/info.sh
	assert_output 404
}

@test "a route whose prefix names a dot directory serves it (/.well-known/), never the dotfiles below it" {
	local acme=$BATS_TEST_TMPDIR/acme
	mkdir -p "$acme/acme-challenge"
	echo token-body >"$acme/acme-challenge/tok123"
	echo secret >"$acme/acme-challenge/.secret"
	routes_config '[{"prefix": "/.well-known/", "backend": "acme"}, {"prefix": "/", "backend": "apps"}]'
	sed -i "s|\"backends\": {|\"backends\": { \"acme\": { \"type\": \"static\", \"root\": \"$acme\" },|" \
		"$BATS_TEST_TMPDIR/cpm.json"
	cpm_start
	run curl -s "$(url /.well-known/acme-challenge/tok123)"
	assert_output token-body
	local p
	for p in /.well-known/acme-challenge/.secret /.well-known/acme-challenge/../acme-challenge/tok123 \
		/.well-known/./acme-challenge/tok123 /.hidden/secret.sh /sub/.x/info.sh; do
		run code "$p"
		assert_output 404
	done
}

@test "a file reached through a symlinked directory inside root is served" {
	root=$BATS_TEST_TMPDIR/root
	mkdir -p "$root/real"
	cp "$APPS/env.sh" "$root/real/env.sh"
	ln -s real "$root/link"
	CPM_ROOT=$root routes_config '[{"prefix": "/", "backend": "apps"}]'
	cpm_start
	run curl -s "$(url /link/env.sh/more)"
	assert_line "SCRIPT_NAME=/link/env.sh"
	assert_line "PATH_INFO=/more"
}

@test "a symlink chain that leaves root is refused" {
	root=$BATS_TEST_TMPDIR/root
	mkdir -p "$root" "$BATS_TEST_TMPDIR/out"
	cp "$APPS/env.sh" "$BATS_TEST_TMPDIR/out/env.sh"
	ln -s ../out "$root/hop2"
	ln -s hop2 "$root/hop1"
	ln -s /bin/sh "$root/shell"
	CPM_ROOT=$root routes_config '[{"prefix": "/", "backend": "apps"}]'
	cpm_start
	run code /hop1/env.sh
	assert_output --regexp '^40[34]$'
	run code /shell
	assert_output --regexp '^40[34]$'
}
