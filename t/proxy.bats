#!/usr/bin/env bats
# The client behind a balancer: the PROXY protocol on a listener, and the
# forwarding headers of trusted proxies. (t/balancer.bats runs the same
# through a real HAProxy.)

load helpers
load tls_helpers

# proxy_config [extra top-level members] [extra listen entries]
# a plain listener ($CPM_PORT) and a proxy_protocol one ($PX_PORT)
proxy_config() {
	CPM_PORT=${CPM_PORT:-$(free_port)}
	PX_PORT=${PX_PORT:-$(free_port)}
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT", {"address": "127.0.0.1:$PX_PORT", "proxy_protocol": true} ${2:+, $2}],
  "workers": 2,
  "header_timeout": 2,
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "access_log_format": "\$remote_addr:\$remote_port peer=\$peer_addr:\$peer_port \$scheme \"\$request\" \$status",
  "error_log": "$BATS_TEST_TMPDIR/error.log",
  $(user_member "${1:-}") ${1:+$1,}
  "routes": [
    { "prefix": "/only-doc/", "backend": "apps", "allow": ["203.0.113.0/24"] },
    { "prefix": "/", "backend": "apps" }
  ],
  "backends": { "apps": { "type": "cgi", "root": "$APPS" } }
}
JSON
}

px() {
	python3 "$ROOT/t/proxyclient.py" "$PX_PORT" "$@"
}

GET_ENV='GET /env.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'

@test "PROXY v1 and v2: the header's source is REMOTE_ADDR and REMOTE_PORT, and the access log's client; the peer is logged too" {
	proxy_config
	cpm_start
	run px v1:203.0.113.7:4711 "$GET_ENV"
	assert_output --partial "HTTP/1.1 200"
	assert_line "REMOTE_ADDR=203.0.113.7"
	assert_line "REMOTE_PORT=4711"
	assert_line "REQUEST_SCHEME=http"
	run px v1:2001:db8::7:5000 "$GET_ENV"
	assert_line "REMOTE_ADDR=2001:db8::7"
	assert_line "REMOTE_PORT=5000"
	run px v2:198.51.100.3:60000 "$GET_ENV"
	assert_line "REMOTE_ADDR=198.51.100.3"
	assert_line "REMOTE_PORT=60000"
	run px v2:2001:db8::3:1 "$GET_ENV"
	assert_line "REMOTE_ADDR=2001:db8::3"
	# TLVs are skipped
	run px v2tlv:198.51.100.4:2 "$GET_ENV"
	assert_line "REMOTE_ADDR=198.51.100.4"
	refute_line "HTTPS=on"
	# no address to use: the connection's own peer stands
	local h
	for h in v2local v1unknown v2unix; do
		run px "$h" "$GET_ENV"
		assert_output --partial "HTTP/1.1 200"
		assert_line "REMOTE_ADDR=127.0.0.1"
	done
	# the plain listener is untouched by it
	run curl -s "$(url /env.sh)"
	assert_line "REMOTE_ADDR=127.0.0.1"
	grep -q '^203.0.113.7:4711 peer=127.0.0.1:[0-9]* http "GET /env.sh HTTP/1.1" 200$' "$BATS_TEST_TMPDIR/access.log"
	grep -q '^2001:db8::7:5000 peer=127.0.0.1:' "$BATS_TEST_TMPDIR/access.log"
}

@test "PROXY: a keep-alive connection carries its client for every request; pipelined bytes after the header are kept" {
	proxy_config
	cpm_start
	run px v1:203.0.113.8:1234 'GET /env.sh HTTP/1.1\r\nHost: x\r\n\r\nGET /env.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	[ "$(grep -c '^REMOTE_ADDR=203.0.113.8' <<<"$output")" = 2 ]
	run px v2:203.0.113.9:1234 'GET /env.sh HTTP/1.1\r\nHost: x\r\n\r\nGET /env.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	[ "$(grep -c '^REMOTE_ADDR=203.0.113.9' <<<"$output")" = 2 ]
	# a byte at a time
	run px v1:203.0.113.10:1 "$GET_ENV" --trickle
	assert_line "REMOTE_ADDR=203.0.113.10"
	run px v2tlv:203.0.113.11:1 "$GET_ENV" --trickle
	assert_line "REMOTE_ADDR=203.0.113.11"
}

@test "PROXY: a connection without the header, or with a broken one, is closed without an answer and logged; a bare TCP check is not logged" {
	proxy_config
	cpm_start
	run px none "$GET_ENV"
	refute_output --partial "HTTP/1.1"
	assert_line --regexp '<(EOF|RESET)>'
	local bad
	for bad in 'raw:PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n' 'raw:PROXY TCP4 1.2.3.4 5.6.7.8 1 80\n' \
		'raw:PROXY TCP6 1.2.3.4 5.6.7.8 1 80\r\n' 'raw:PROXY  TCP4 1.2.3.4 5.6.7.8 1 80\r\n' \
		'raw:\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c\x01\x02\x03\x04\x01\x02\x03\x04\x00\x01\x00\x02' \
		'raw:\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x08\x01\x02\x03\x04\x01\x02\x03\x04' \
		'raw:\r\n\r\n\x00\r\nQUIT\n\x21\x11\x13\x88'; do
		run px "$bad" "$GET_ENV"
		refute_output --partial "HTTP/1.1"
		assert_line --regexp '<(EOF|RESET)>'
	done
	within 3 eval '[ "$(grep -c "PROXY protocol: .*; connection closed" "$CPM_LOG")" -ge 8 ]'
	grep -q "127.0.0.1:[0-9]*: PROXY protocol: .*; connection closed" "$CPM_LOG"
	local before
	before=$(grep -c "PROXY protocol" "$CPM_LOG")
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $PX_PORT)).close()"
	run curl -s "$(url /env.sh)"
	assert_success
	sleep 0.3
	[ "$(grep -c "PROXY protocol" "$CPM_LOG")" = "$before" ]
	# nothing of it reached the access log as a request
	! grep -q '^1.2.3.4' "$BATS_TEST_TMPDIR/access.log"
}

@test "PROXY: a stalled header is closed at header_timeout, with a line, and costs the worker no CPU" {
	proxy_config
	cpm_start
	local t0 t1 ticks0 w
	w=$(workers_of "$CPM_PID" | tr '\n' ' ')
	ticks0=0
	for p in $w; do ticks0=$((ticks0 + $(cpu_ticks "$p"))); done
	t0=$(date +%s%N)
	run px 'raw:PROXY TCP4 192.0.2.1 ' "" --timeout 6
	t1=$(date +%s%N)
	assert_line --regexp '<(EOF|RESET)>'
	[ $(((t1 - t0) / 1000000)) -lt 4500 ]
	grep -q "PROXY protocol: no complete header within header_timeout; connection closed" "$CPM_LOG"
	local ticks1=0
	for p in $w; do ticks1=$((ticks1 + $(cpu_ticks "$p"))); done
	[ $((ticks1 - ticks0)) -lt 20 ]
}

@test "PROXY then TLS on one listener; PP2 SSL TLV says https on a plain one" {
	pki_make "$BATS_TEST_TMPDIR/pki"
	local tp
	tp=$(free_port)
	proxy_config "" "{\"address\": \"127.0.0.1:$tp\", \"proxy_protocol\": true, \"tls\": {\"certificate\": \"$BATS_TEST_TMPDIR/pki/a.pem\", \"key\": \"$BATS_TEST_TMPDIR/pki/a.key\"}}"
	cpm_start
	run python3 "$ROOT/t/proxyclient.py" "$tp" v2:203.0.113.20:443 "$GET_ENV" --tls "$BATS_TEST_TMPDIR/pki/ca.pem"
	assert_output --partial "HTTP/1.1 200"
	assert_line "REMOTE_ADDR=203.0.113.20"
	assert_line "HTTPS=on"
	run python3 "$ROOT/t/proxyclient.py" "$tp" v1:203.0.113.21:443 "$GET_ENV" --tls "$BATS_TEST_TMPDIR/pki/ca.pem"
	assert_line "REMOTE_ADDR=203.0.113.21"
	# without the header the handshake's first byte is no PROXY header
	run python3 "$ROOT/t/proxyclient.py" "$tp" none "$GET_ENV" --tls "$BATS_TEST_TMPDIR/pki/ca.pem"
	refute_output --partial "HTTP/1.1"
	run px v2ssl:203.0.113.22:1 "$GET_ENV"
	assert_line "REMOTE_ADDR=203.0.113.22"
	assert_line "HTTPS=on"
	assert_line "REQUEST_SCHEME=https"
	grep -q '^203.0.113.22:1 peer=127.0.0.1:[0-9]* https ' "$BATS_TEST_TMPDIR/access.log"
}

@test "PROXY on a unix-socket listener" {
	local sock=$BATS_TEST_TMPDIR/px.sock
	proxy_config "" "{\"address\": \"unix:$sock\", \"proxy_protocol\": true}"
	cpm_start
	run python3 "$ROOT/t/proxyclient.py" 0 v1:203.0.113.30:80 "$GET_ENV" --unix "$sock"
	assert_line "REMOTE_ADDR=203.0.113.30"
	run python3 "$ROOT/t/proxyclient.py" 0 v2local "$GET_ENV" --unix "$sock"
	assert_output --partial "HTTP/1.1 200"
}

@test "PROXY: allow and deny judge the client the header names" {
	proxy_config
	cpm_start
	run px v1:203.0.113.7:1 'GET /only-doc/env.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	assert_output --partial "HTTP/1.1 200"
	run px v1:198.51.100.7:1 'GET /only-doc/env.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	assert_output --partial "HTTP/1.1 403"
	grep -q '198.51.100.7:1 .*access forbidden' "$CPM_LOG"
}

@test "trusted_proxies: X-Forwarded-For's right-most untrusted address and X-Forwarded-Proto are believed from a trusted peer only" {
	proxy_config '"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]'
	cpm_start
	run curl -s -H 'X-Forwarded-For: 6.6.6.6, 198.51.100.9, 10.1.1.1' -H 'X-Forwarded-Proto: https' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=198.51.100.9"
	assert_line "REMOTE_PORT=0"
	assert_line "HTTPS=on"
	assert_line "REQUEST_SCHEME=https"
	# several field lines are one list
	run curl -s -H 'X-Forwarded-For: 6.6.6.6' -H 'X-Forwarded-For: 2001:db8::5' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=2001:db8::5"
	refute_line "HTTPS=on"
	# all trusted: the left-most
	run curl -s -H 'X-Forwarded-For: 10.0.0.1, 10.0.0.2' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=10.0.0.1"
	# garbage ends the walk at the last address read
	run curl -s -H 'X-Forwarded-For: 198.51.100.1, junk, 10.0.0.3' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=10.0.0.3"
	run curl -s -H 'X-Forwarded-For: junk' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=127.0.0.1"
	# from an untrusted peer: nothing changes, the header reaches the program
	run curl -s --interface 127.0.0.5 -H 'X-Forwarded-For: 6.6.6.6' -H 'X-Forwarded-Proto: https' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=127.0.0.5"
	assert_line "HTTP_X_FORWARDED_FOR=6.6.6.6"
	assert_line "HTTP_X_FORWARDED_PROTO=https"
	refute_line "HTTPS=on"
	assert_line "REQUEST_SCHEME=http"
	# Forwarded is not the header believed here
	run curl -s -H 'Forwarded: for=6.6.6.6' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=127.0.0.1"
	grep -q '^198.51.100.9:0 peer=127.0.0.1:[0-9]* https "GET /env.sh HTTP/1.1" 200$' "$BATS_TEST_TMPDIR/access.log"
	grep -q '^127.0.0.5:[0-9]* peer=127.0.0.5:[0-9]* http ' "$BATS_TEST_TMPDIR/access.log"
}

@test "trusted_proxies with forwarded_header Forwarded: for= and proto= of the client's element; X-Forwarded-For is not believed" {
	proxy_config '"trusted_proxies": ["127.0.0.1"], "forwarded_header": "forwarded"'
	cpm_start
	run curl -s -H 'Forwarded: for=6.6.6.6;proto=http, for="[2001:db8::9]:4711";proto=https;by=x' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=2001:db8::9"
	assert_line "REMOTE_PORT=4711"
	assert_line "HTTPS=on"
	run curl -s -H 'Forwarded: for=198.51.100.2' -H 'X-Forwarded-For: 6.6.6.6' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=198.51.100.2"
	run curl -s -H 'X-Forwarded-For: 6.6.6.6' -H 'X-Forwarded-Proto: https' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=127.0.0.1"
	refute_line "HTTPS=on"
}

@test "trusted_proxies behind a PROXY header: the header's source is the peer judged" {
	proxy_config '"trusted_proxies": ["203.0.113.0/24"]'
	cpm_start
	run px v1:203.0.113.7:1 'GET /env.sh HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.2\r\nConnection: close\r\n\r\n'
	assert_line "REMOTE_ADDR=198.51.100.2"
	run px v1:198.51.100.50:1 'GET /env.sh HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n'
	assert_line "REMOTE_ADDR=198.51.100.50"
	assert_line "HTTP_X_FORWARDED_FOR=6.6.6.6"
	# the plain listener's peer, 127.0.0.1, is not trusted
	run curl -s -H 'X-Forwarded-For: 6.6.6.6' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=127.0.0.1"
}

@test "trusted_proxies with -b listeners (and across a reload): the list is intact" {
	proxy_config '"trusted_proxies": ["127.0.0.1"]'
	cpm_start -b "127.0.0.1:$CPM_PORT"
	local i
	for i in 1 2 3; do
		run curl -s -H 'X-Forwarded-For: 198.51.100.9' "$(url /env.sh)"
		assert_line "REMOTE_ADDR=198.51.100.9"
	done
	kill -HUP "$CPM_PID"
	within 5 eval 'grep -q "reloaded" "$CPM_LOG"'
	sleep 0.3
	run curl -s -H 'X-Forwarded-For: 198.51.100.10' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=198.51.100.10"
	run curl -s --interface 127.0.0.5 -H 'X-Forwarded-For: 6.6.6.6' "$(url /env.sh)"
	assert_line "REMOTE_ADDR=127.0.0.5"
	# and cpm -t frees what it parsed (a sanitizer build reports leaks)
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_success
	refute_output --partial "LeakSanitizer"
}

@test "redirect_http serves a request a trusted proxy says came by https" {
	local rp
	rp=$(free_port)
	proxy_config '"trusted_proxies": ["127.0.0.1"]' "{\"address\": \"127.0.0.1:$rp\", \"redirect_http\": \"https://example.org\"}"
	cpm_start
	run curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$rp/env.sh"
	assert_output "308 https://example.org/env.sh"
	run curl -s -H 'X-Forwarded-Proto: https' "http://127.0.0.1:$rp/env.sh"
	assert_line "HTTPS=on"
	run curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.5 -H 'X-Forwarded-Proto: https' "http://127.0.0.1:$rp/env.sh"
	assert_output "308"
}

@test "config: proxy_protocol, trusted_proxies and forwarded_header errors name file:line:column" {
	proxy_config '"forwarded_header": "X-Real-IP"'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp 'cpm.json:[0-9]+:[0-9]+: forwarded_header: expected "X-Forwarded-For"'
	proxy_config '"trusted_proxies": ["10.1.2.3/8"]'
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp 'cpm.json:[0-9]+:[0-9]+: trusted_proxies\[0\]: "10.1.2.3/8"'
	proxy_config
	sed -i 's/"proxy_protocol": true/"proxy_protocol": "yes"/' "$BATS_TEST_TMPDIR/cpm.json"
	run "$CPM" -t -c "$BATS_TEST_TMPDIR/cpm.json"
	assert_failure
	assert_output --regexp 'cpm.json:2:[0-9]+: listen\[1\].proxy_protocol: expected true or false'
}
