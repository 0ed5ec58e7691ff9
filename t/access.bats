#!/usr/bin/env bats
# Route access lists (allow/deny with IPv4, IPv6, CIDR prefixes, "all"),
# allowed methods (405 + Allow) and routes chosen by file-name suffix.
load helpers

# access_config ROUTES-JSON: listens on 127.0.0.1 and [::1] (same port);
# backends "apps" (CGI, t/apps) and "status"
access_config() {
	CPM_PORT=$(free_port)
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT", "[::1]:$CPM_PORT"],
  "workers": 1,
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log", $(user_member)
  "routes": $1,
  "backends": {
    "apps": { "type": "cgi", "root": "$APPS" },
    "status": { "type": "status" }
  }
}
JSON
}

v4() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CPM_PORT$1"; }
v6() { curl -s -g -o /dev/null -w '%{http_code}' "http://[::1]:$CPM_PORT$1"; }

@test "allow: only listed clients are served, IPv4 and IPv6 each by its own entries" {
	access_config '[
	  {"prefix": "/v4/", "backend": "apps", "allow": ["127.0.0.0/8"]},
	  {"prefix": "/v6/", "backend": "apps", "allow": ["::1"]},
	  {"prefix": "/both/", "backend": "apps", "allow": ["10.0.0.0/8", "127.0.0.1", "::1/128"]},
	  {"prefix": "/none/", "backend": "apps", "allow": ["192.0.2.0/24", "2001:db8::/32"]},
	  {"prefix": "/", "backend": "apps"}]'
	cpm_start
	run v4 /v4/env.sh
	assert_output 200
	run v6 /v4/env.sh
	assert_output 403
	run v4 /v6/env.sh
	assert_output 403
	run v6 /v6/env.sh
	assert_output 200
	run v4 /both/env.sh
	assert_output 200
	run v6 /both/env.sh
	assert_output 200
	run v4 /none/env.sh
	assert_output 403
	run v6 /none/env.sh
	assert_output 403
	run v6 /env.sh
	assert_output 200
	# the refusal is logged with the client and the list that refused
	grep -q '::1.*"GET /v4/env.sh" id=[0-9a-f]*: access forbidden by the allow list of route /v4/' "$CPM_LOG"
}

@test "deny is checked first; \"all\" covers every client" {
	access_config '[
	  {"prefix": "/closed/", "backend": "apps", "deny": ["all"]},
	  {"prefix": "/mixed/", "backend": "apps", "deny": ["127.0.0.1"], "allow": ["127.0.0.0/8", "::1"]},
	  {"prefix": "/open/", "backend": "apps", "allow": ["all"]},
	  {"prefix": "/", "backend": "apps"}]'
	cpm_start
	run v4 /closed/env.sh
	assert_output 403
	run v6 /closed/env.sh
	assert_output 403
	# deny wins over a matching allow
	run v4 /mixed/env.sh
	assert_output 403
	run v6 /mixed/env.sh
	assert_output 200
	run v4 /open/env.sh
	assert_output 200
	run v6 /open/env.sh
	assert_output 200
	# a 403 body is cpm's own: the script never ran
	run curl -s "http://127.0.0.1:$CPM_PORT/closed/env.sh"
	assert_output "403 Forbidden"
}

@test "the default config limits /status to loopback" {
	run grep -A1 '"prefix": "/status"' "$ROOT/etc/cpm.json"
	assert_output --partial '"allow": ["127.0.0.0/8", "::1"]'
	# and it loads
	d=$(examples_copy)
	run "$CPM" -t -c "$d/etc/cpm.json"
	rm -rf "$d"
	assert_success
}

@test "access lists are validated with FILE:LINE:COL" {
	for bad in '"10.0.0.1/8"' '"10.0.0.0/33"' '"::1/200"' '"example.com"' '"ALL"' '""' '5'; do
		access_config "[{\"prefix\": \"/\", \"backend\": \"apps\",
		  \"allow\": [\"::1\", $bad]}]"
		run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
		assert_failure
		assert_output --regexp "cpm.json:[0-9]+:[0-9]+: routes\[0\]\.allow\[1\]: "
	done
	access_config '[{"prefix": "/", "backend": "apps", "deny": []}]'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --partial "routes[0].deny: expected a non-empty array"
	access_config '[{"prefix": "/", "backend": "apps", "deny": ["10.1.2.3/8"]}]'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_output --partial "bits set beyond its prefix length"
}

@test "methods: others get 405 with Allow; HEAD comes with GET" {
	access_config '[
	  {"prefix": "/ro/", "backend": "apps", "methods": ["GET"]},
	  {"prefix": "/post/", "backend": "apps", "methods": ["POST"]},
	  {"prefix": "/", "backend": "apps"}]'
	cpm_start
	run curl -s -i -X DELETE "$(url /ro/env.sh)"
	assert_line --regexp '^HTTP/1.1 405 '
	assert_line --regexp '^Allow: GET, HEAD.$'
	run curl -s -o /dev/null -w '%{http_code}' --data x "$(url /ro/env.sh)"
	assert_output 405
	run curl -s -o /dev/null -w '%{http_code}' "$(url /ro/env.sh)"
	assert_output 200
	run curl -s -o /dev/null -w '%{http_code}' -I "$(url /ro/env.sh)"
	assert_output 200
	run curl -s -i "$(url /post/env.sh)"
	assert_line --regexp '^HTTP/1.1 405 '
	assert_line --regexp '^Allow: POST.$'
	run curl -s --data x "$(url /post/env.sh)"
	assert_line "REQUEST_METHOD=POST"
	# methods are case-sensitive (RFC 9110 9.1)
	run curl -s -o /dev/null -w '%{http_code}' -X get "$(url /ro/env.sh)"
	assert_output 405
	# the connection stays usable after a 405 with a body
	run curl -s -o /dev/null -w '%{http_code} %{num_connects} ' --data x "$(url /ro/env.sh)" \
		--next -s -o /dev/null -w '%{http_code} %{num_connects}' "$(url /ro/env.sh)"
	assert_output "405 1 200 0"
	access_config '[{"prefix": "/", "backend": "apps", "methods": ["GET", "B@D"]}]'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp "cpm.json:[0-9]+:[0-9]+: routes\[0\]\.methods\[1\]: not an HTTP method"
}

@test "suffix routes: the path or a leading part ending at '/' picks the route; first match wins" {
	access_config '[
	  {"prefix": "/", "suffix": [".sh", ".pl"], "backend": "apps"},
	  {"prefix": "/", "backend": "status"}]'
	cpm_start
	run curl -s "$(url /env.sh)"
	assert_line "SCRIPT_NAME=/env.sh"
	# PATH_INFO: the route matched on /sub/info.sh, the script walk splits there
	run curl -s "$(url /env.sh/x/y.txt)"
	assert_line "SCRIPT_NAME=/env.sh"
	assert_line "PATH_INFO=/x/y.txt"
	run curl -s "$(url /sub/info.sh/more)"
	assert_success
	refute_output --partial '"workers"'
	# not a suffix match: the next route (status, JSON)
	run curl -s "$(url /env.shx)"
	assert_output --partial '"workers"'
	run curl -s "$(url /sub/)"
	assert_output --partial '"workers"'
	run curl -s "$(url /env.SH)"
	assert_output --partial '"workers"'
	run curl -s "$(url /not_exec.txt)"
	assert_output --partial '"workers"'
}

@test "a suffix route with deny closes files by name; the rest of the tree stays open" {
	access_config '[
	  {"prefix": "/", "suffix": [".pl"], "backend": "apps", "deny": ["all"]},
	  {"prefix": "/sub/", "backend": "apps", "deny": ["all"]},
	  {"prefix": "/", "backend": "apps"}]'
	cpm_start
	run v4 /fds.pl
	assert_output 403
	run v6 /fds.pl/x
	assert_output 403
	run v4 /sub/info.sh
	assert_output 403
	run v4 /env.sh
	assert_output 200
	access_config '[{"prefix": "/", "suffix": ["a/b"], "backend": "apps"}]'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp "cpm.json:[0-9]+:[0-9]+: routes\[0\]\.suffix\[0\]: "
}

@test "repeated slashes are one: they do not step around a route's access list" {
	access_config '[
	  {"prefix": "/sub/", "backend": "apps", "deny": ["all"]},
	  {"prefix": "/fds.pl", "backend": "apps", "deny": ["all"]},
	  {"prefix": "/", "backend": "apps"}]'
	cpm_start
	for p in /sub/info.sh //sub/info.sh /sub//info.sh ///sub///info.sh /fds.pl //fds.pl //fds.pl/x; do
		run curl -s --path-as-is -o /dev/null -w '%{http_code}' "$(url "$p")"
		[ "$output" = 403 ] || { echo "$p: $output"; false; }
	done
	# what a route's backend sees is the path with single slashes
	run curl -s --path-as-is "$(url '//env.sh//x//y')"
	assert_line "PATH_INFO=/x/y"
	# so a prefix written with "//" could never match: an error
	access_config '[{"prefix": "/sub//", "backend": "apps", "deny": ["all"]}, {"prefix": "/", "backend": "apps"}]'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp 'cpm.json:[0-9]+:[0-9]+: routes\[0\]\.prefix: a prefix with "//" matches nothing'
}
