#!/usr/bin/env bats
# TLS session resumption across worker processes (manager/tls_shared.c):
# a session made by one worker resumes on workers forked later (after a
# kill, after a HUP, with new SSL_CTX objects), with ticket keys and the
# session cache the master shares, for TLS 1.2 and 1.3, tickets on and off.
load helpers
bats_require_minimum_version 1.5.0

# tls_start PROTOCOL TICKETS [TIMEOUT]: a throwaway certificate, a CGI that prints
# the pid of the worker that ran it, cpm with 2 workers on one TLS listener
tls_start() {
	local d=$BATS_TEST_TMPDIR
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" \
		-days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
	mkdir -p "$d/www"
	printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nworker %%s\\n" "$PPID"\n' >"$d/www/w.sh"
	chmod +x "$d/www/w.sh"
	CPM_PORT=$(free_port)
	cat >"$d/cpm.json" <<JSON
{
  "listen": [{"address": "127.0.0.1:$CPM_PORT",
              "tls": {"certificate": "cert.pem", "key": "key.pem", "protocols": ["$1"],
                      "session_tickets": $2, "session_timeout": "${3:-10m}"}}],
  "workers": 2,
  $(user_member)
  "error_log": "$d/error.log",
  "access_log": "$d/access.log",
  "routes": [{"prefix": "/", "backend": "w"}],
  "backends": {"w": {"type": "cgi", "root": "$d/www"}}
}
JSON
	cpm_start
}

# connect [s_client options]: one HTTPS request; prints "New pid" or
# "Reused pid" (the worker that served it)
connect() {
	local out how pid
	out=$(printf 'GET /w.sh HTTP/1.0\r\nHost: localhost\r\n\r\n' |
		timeout 10 openssl s_client -connect "127.0.0.1:$CPM_PORT" -servername localhost \
			-CAfile "$BATS_TEST_TMPDIR/cert.pem" -verify_return_error -ign_eof "$@" 2>&1)
	how=$(sed -n 's/^\(New\|Reused\), TLSv1.*/\1/p' <<<"$out" | head -1)
	pid=$(sed -n 's/^worker \([0-9]*\)$/\1/p' <<<"$out")
	echo "${how:-none} ${pid:-none}"
}

# wait_new_workers OLD_PIDS...: until the master runs 2 workers, none of them old
wait_new_workers() {
	local i w ok
	for i in $(seq 100); do
		ok=1
		w=$(workers_of "$CPM_PID")
		[ "$(wc -w <<<"$w")" = 2 ] || ok=0
		for p in "$@"; do
			grep -qw "$p" <<<"$w" && ok=0
		done
		[ "$ok" = 1 ] && return 0
		sleep 0.1
	done
	echo "workers not replaced: $w" >&2
	return 1
}

# resume_everywhere PROTOCOL TICKETS: the session of the first connection
# resumes after its worker is killed, after two HUPs (new workers, new
# SSL_CTX objects), on every connection, never served by the first worker
resume_everywhere() {
	tls_start "$1" "$2"
	local s=$BATS_TEST_TMPDIR/sess.pem first how pid seen=""
	read -r how first < <(connect -sess_out "$s")
	assert_equal "$how" New
	[ -s "$s" ]
	kill -KILL "$first"
	wait_new_workers "$first"
	for round in 1 2 3; do
		for i in 1 2 3; do
			read -r how pid < <(connect -sess_in "$s")
			echo "round $round: $how by worker $pid (the session's: $first)"
			assert_equal "$how" Reused
			[ "$pid" != "$first" ]
			seen="$seen $pid"
		done
		[ "$round" = 3 ] && break
		local old
		old=$(workers_of "$CPM_PID")
		kill -HUP "$CPM_PID"
		# shellcheck disable=SC2086
		wait_new_workers $old
	done
	# three generations of workers served it
	[ "$(tr ' ' '\n' <<<"$seen" | sort -u | grep -c .)" -ge 3 ]
}

@test "TLS 1.2 with tickets: a session resumes on other and later workers" {
	resume_everywhere TLSv1.2 true
}

@test "TLS 1.2 without tickets (session IDs, shared cache): a session resumes on other and later workers" {
	resume_everywhere TLSv1.2 false
}

@test "TLS 1.3 with tickets: a session resumes on other and later workers" {
	resume_everywhere TLSv1.3 true
}

@test "TLS 1.3 without tickets (stateful tickets, shared cache): a session resumes on other and later workers" {
	resume_everywhere TLSv1.3 false
}

# ticket_key FILE: the key name a saved session's ticket was made with
# (its first 16 bytes)
ticket_key() {
	openssl sess_id -in "$1" -text -noout | sed -n '/TLS session ticket:/{n;p;q}' | cut -c12-58
}

@test "the master rotates the ticket key every session_timeout; a ticket of the previous key resumes and is renewed" {
	tls_start TLSv1.2 true 3s
	local s=$BATS_TEST_TMPDIR/sess.pem first key i
	connect -sess_out "$s" >/dev/null
	first=$(ticket_key "$s")
	[ -n "$first" ]
	# new sessions until the key changes: within 3 s and a bit
	for i in $(seq 20); do
		cp "$s" "$s.last"
		connect -sess_out "$s" >/dev/null
		key=$(ticket_key "$s")
		[ "$key" = "$first" ] || break
		sleep 0.25
	done
	echo "first key $first, then $key after $i connections"
	[ -n "$key" ] && [ "$key" != "$first" ]
	# the last session made under the old key (< 0.3 s old) resumes on
	# the new key's watch, and gets a ticket under the new key
	[ "$(ticket_key "$s.last")" = "$first" ]
	# (s_client saves no renewed TLS 1.2 session: read the one it prints)
	run -0 bash -c "printf 'GET /w.sh HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect 127.0.0.1:$CPM_PORT \
		-servername localhost -ign_eof -sess_in '$s.last' 2>&1"
	assert_line --regexp '^Reused, TLSv1.2'
	assert_equal "$(sed -n '/TLS session ticket:/{n;p;q}' <<<"$output" | cut -c12-58)" "$key"
}

@test "TLS 1.3: a session resumed from a resumed one: each resumption hands out the next ticket" {
	# a TLS 1.3 client uses a ticket once (RFC 8446 C.4): a resumption
	# that gave no new ticket left the next handshake full (every other
	# one, seen by t/bench/tls.sh). TLS 1.2 clients keep their session
	# (s_client writes no -sess_out for a resumed TLS 1.2 one)
	tls_start TLSv1.3 true
	d=$BATS_TEST_TMPDIR
	run connect -sess_out "$d/chain0"
	assert_output --regexp '^New [0-9]+$'
	for i in 1 2 3 4 5 6; do
		# each connection offers the session the previous one ended with
		run connect -sess_in "$d/chain$((i - 1))" -sess_out "$d/chain$i"
		assert_output --regexp '^Reused [0-9]+$'
	done
}
