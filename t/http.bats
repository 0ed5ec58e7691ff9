#!/usr/bin/env bats
load helpers

setup() {
	cpm_config '"header_timeout": 1, "keepalive": 2,
  "limits": {"request_line": "1K", "header_size": "4K", "header_count": 20, "body": "1M", "body_buffer": "16K"}'
	cpm_start
}

@test "responses carry Date and Server" {
	run curl -si "$(url /ex/hello.sh)"
	assert_line --regexp '^HTTP/1.1 200 OK'
	assert_line --regexp '^Date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT'
	assert_line --regexp '^Server: cpm/'
}

@test "keep-alive: two requests share one connection" {
	run curl -sv "$(url /ex/hello.sh)" "$(url /ex/hello.sh)"
	assert_output --partial "Re-using existing connection"
	[ "$(grep -c 'Hello, world!' <<<"$output")" -eq 2 ]
}

@test "pipelined requests are answered in order" {
	run raw "GET /status.sh?201 HTTP/1.1\r\nHost: a\r\n\r\nGET /status.sh?202 HTTP/1.1\r\nHost: a\r\n\r\nGET /status.sh?203 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	codes=$(grep -o '^HTTP/1.1 20[0-9]' <<<"$output" | tr '\n' ' ')
	assert_equal "$codes" "HTTP/1.1 201 HTTP/1.1 202 HTTP/1.1 203 "
	assert_line "<EOF>"
}

@test "HEAD gets the head without a body" {
	run raw "HEAD /ex/hello.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
	refute_output --partial "Hello"
	refute_output --partial "Transfer-Encoding"
}

@test "a body of unknown length goes chunked to HTTP/1.1 clients" {
	run raw "GET /ex/hello.sh HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	assert_output --partial $'Transfer-Encoding: chunked\r'
	assert_output --partial $'e\r\nHello, world!\n\r\n0\r\n\r\n'
}

@test "HTTP/1.0 gets a close-delimited body" {
	run raw "GET /ex/hello.sh HTTP/1.0\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 200'
	refute_output --partial "chunked"
	assert_output --partial $'Connection: close\r'
	assert_output --partial $'\r\n\r\nHello, world!'
	assert_line "<EOF>"
}

@test "HTTP/1.0 keep-alive with a Content-Length response stays open" {
	run raw "GET /length.sh HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /length.sh HTTP/1.0\r\n\r\n"
	[ "$(grep -c '^HTTP/1.1 200' <<<"$output")" -eq 2 ]
	assert_output --partial $'Connection: keep-alive\r'
}

@test "a script's Content-Length is passed through" {
	run curl -si "$(url /length.sh)"
	assert_line --regexp '^Content-Length: 6'
	refute_output --partial chunked
}

@test "Expect: 100-continue gets 100 before the body is read" {
	head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/body"
	want=$(sha256sum "$BATS_TEST_TMPDIR/body" | cut -d' ' -f1)
	run curl -sv -H 'Expect: 100-continue' --data-binary @"$BATS_TEST_TMPDIR/body" "$(url /echo_body.sh)"
	assert_output --partial "HTTP/1.1 100 Continue"
	assert_output --partial "sha=$want"
}

@test "a Content-Length body streams to the script intact" {
	head -c 900000 /dev/urandom >"$BATS_TEST_TMPDIR/body"
	want=$(sha256sum "$BATS_TEST_TMPDIR/body" | cut -d' ' -f1)
	run curl -s --data-binary @"$BATS_TEST_TMPDIR/body" "$(url /echo_body.sh)"
	assert_line "CONTENT_LENGTH=900000"
	assert_line "sha=$want"
}

@test "a chunked body is decoded and CONTENT_LENGTH set (memory and temp file)" {
	for n in 1000 500000; do
		head -c $n /dev/urandom >"$BATS_TEST_TMPDIR/body"
		want=$(sha256sum "$BATS_TEST_TMPDIR/body" | cut -d' ' -f1)
		run curl -s -H 'Transfer-Encoding: chunked' --data-binary @"$BATS_TEST_TMPDIR/body" "$(url /echo_body.sh)"
		assert_line "CONTENT_LENGTH=$n"
		assert_line "sha=$want"
	done
}

@test "an absolute-form target is served" {
	run raw "GET http://example.org/env.sh?q=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n"
	assert_output --partial "SERVER_NAME=example.org"
	assert_output --partial "QUERY_STRING=q=1"
}

@test "a request line over the limit is 414" {
	long=$(head -c 2000 /dev/zero | tr '\0' a)
	run raw "GET /$long HTTP/1.1\r\nHost: a\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 414'
	assert_line "<EOF>"
}

@test "too many header fields is 431" {
	h=$(for i in $(seq 25); do printf 'X-%d: a\\r\\n' "$i"; done)
	run raw "GET /env.sh HTTP/1.1\r\nHost: a\r\n$h\r\n"
	assert_line --regexp '^HTTP/1.1 431'
}

@test "a head over header_size is 431" {
	big=$(head -c 5000 /dev/zero | tr '\0' a)
	run raw "GET /env.sh HTTP/1.1\r\nHost: a\r\nX-Big: $big\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 431'
}

@test "a body over the limit is 413, before it is read" {
	run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 413'
	run curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @<(head -c 1100000 /dev/zero) "$(url /echo_body.sh)"
	assert_output 413
}

@test "a head not complete within header_timeout is 408" {
	run raw "GET /env.sh HTTP/1.1\r\nHost: a\r\n" 4
	assert_line --regexp '^HTTP/1.1 408'
	assert_line "<EOF>"
}

@test "an idle keep-alive connection is closed after keepalive" {
	start=$(date +%s.%N)
	run raw "GET /length.sh HTTP/1.1\r\nHost: a\r\n\r\n" 6
	end=$(date +%s.%N)
	assert_line "<EOF>"
	python3 -c "import sys; d=$end-$start; sys.exit(0 if 1.5 < d < 5 else 1)"
}

@test "malformed requests are 400 and close" {
	for req in "GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n" \
		"GET / HTTP/1.1\r\nHost: a\r\n  folded\r\n\r\n" \
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n" \
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n" \
		"GET / HTTP/1.1\r\n\r\n" \
		"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n" \
		"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"; do
		run raw "$req"
		assert_line --regexp '^HTTP/1.1 400'
		assert_line "<EOF>"
	done
}

@test "an unsupported HTTP version is 505, an unknown coding 501" {
	run raw "GET / HTTP/2.0\r\nHost: a\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 505'
	run raw "POST /echo_body.sh HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	assert_line --regexp '^HTTP/1.1 501'
}

@test "the access log has the combined format plus microseconds" {
	curl -s -A "bats-agent" -e "http://ref/" "$(url /ex/hello.sh?x=1)" >/dev/null
	sleep 0.2
	run cat "$BATS_TEST_TMPDIR/access.log"
	assert_line --regexp '^127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} \+0000\] "GET /ex/hello.sh\?x=1 HTTP/1\.1" 200 14 "http://ref/" "bats-agent" [0-9]+$'
}
