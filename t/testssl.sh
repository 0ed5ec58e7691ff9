#!/bin/bash
# t/testssl.sh [REPORT]: Debian's testssl.sh, every check it has (its
# default run: protocols, ciphers, forward secrecy, server preferences and
# defaults, HTTP headers, vulnerabilities, each cipher), against a cpm
# started here from ./cpm with a TLS listener on a free loopback port and
# a certificate from a throwaway CA (t/tls_helpers.bash). Writes the text
# report to REPORT (default: testssl-report.txt in a temporary directory),
# prints the findings rated LOW and above and the run time, and exits 1 if
# one is rated HIGH or CRITICAL. About a minute; t/tls.bats runs a faster
# subset (-p -s -P -S -U).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=t/tls_helpers.bash
. "$ROOT/t/tls_helpers.bash"
command -v testssl >/dev/null || {
	echo "testssl is missing: apt-get install testssl.sh" >&2
	exit 2
}
[ -x "$ROOT/cpm" ] || make -s -C "$ROOT" cpm
D=$(mktemp -d /tmp/cpm-testssl.XXXXXX)
chmod 0755 "$D"
REPORT=${1:-$D/testssl-report.txt}
pki_make "$D/pki"
pki_scanner_cert "$D/pki"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$D/cpm.json" <<JSON
{
  "listen": [ { "address": "127.0.0.1:$PORT",
                "tls": { "certificate": "pki/t.pem", "key": "pki/t.key" } } ],
  "workers": 2,
  "access_log": "$D/access.log",
  "error_log": "$D/error.log",
  "routes": [ { "prefix": "/", "backend": "examples" } ],
  "backends": { "examples": { "type": "cgi", "root": "$D/examples" } }
}
JSON
[ "$(id -u)" != 0 ] || sed -i 's|"workers": 2,|"workers": 2, "user": "nobody",|' "$D/cpm.json"
cp -a "$ROOT/examples" "$D/"
"$ROOT/cpm" -c "$D/cpm.json" >"$D/stderr.log" 2>&1 &
PID=$!
trap 'kill -QUIT $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null && break
	kill -0 $PID 2>/dev/null || {
		cat "$D/stderr.log" "$D/error.log" >&2
		exit 2
	}
	sleep 0.05
done
t0=$(date +%s)
testssl --quiet --color 0 --warnings off --add-ca "$D/pki/ca.pem" --jsonfile "$D/testssl.json" \
	--ip 127.0.0.1 "https://localhost:$PORT/hello.sh" >"$REPORT" 2>&1 || true
t1=$(date +%s)
echo "testssl: $((t1 - t0)) s, report in $REPORT, JSON in $D/testssl.json"
jq -r '.[] | select(.severity | IN("LOW", "MEDIUM", "HIGH", "CRITICAL")) | "\(.severity) \(.id): \(.finding)"' \
	"$D/testssl.json" | sort
bad=$(jq '[.[] | select(.severity | IN("HIGH", "CRITICAL"))] | length' "$D/testssl.json")
[ "$bad" -eq 0 ]
