#!/usr/bin/env bash
# t/bench/auth.sh - requests/s of a CGI program behind HTTP Basic auth vs the
# same program without, on keep-alive connections (wrk), and the cost of a
# cache miss: the first request of each connection is verified by bcrypt,
# the rest come from the verification cache.
#
#   t/bench/auth.sh [SECONDS] [CONNECTIONS]     (defaults: 10, 8; 3 reps each)
#
# Uses ./cpm (or CPM_BIN), examples/hello (C), htpasswd -B -C 10, wrk.
# Takes the benchmark lock of t/bench/run.sh: one benchmark at a time.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/../.." && pwd)
CPM_BIN=${CPM_BIN:-$ROOT/cpm}
SECS=${1:-10}
CONNS=${2:-8}
REPS=${REPS:-3}
command -v wrk >/dev/null || { echo "t/bench/auth.sh: needs wrk" >&2; exit 1; }
command -v htpasswd >/dev/null || { echo "t/bench/auth.sh: needs htpasswd (apache2-utils)" >&2; exit 1; }
[ -x "$CPM_BIN" ] && [ -x "$ROOT/examples/hello" ] || { echo "t/bench/auth.sh: make all first" >&2; exit 1; }

RUN=${PEERS_RUN_DIR:-/tmp/cpm-peers-run}
exec 9>>"${RUN%/}.lock"
echo "t/bench/auth.sh: waiting for the benchmark lock ${RUN%/}.lock" >&2
flock -w 1800 9 || { echo "t/bench/auth.sh: lock busy" >&2; exit 1; }

dir=$(mktemp -d /tmp/cpm-auth-bench.XXXXXX)
chmod 0755 "$dir"
mkdir "$dir/cgi"
cp "$ROOT/examples/hello" "$dir/cgi/hello"
htpasswd -cbB -C 10 "$dir/htpasswd" bench 'bench password' 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$port"],
  "workers": 2,
  "user": "$(id -un)",
  "access_log": null,
  "error_log": "$dir/error.log",
  "keepalive": 60,
  "routes": [
    { "prefix": "/sec/", "backend": "cgi",
      "auth": { "basic": { "realm": "bench", "user_file": "$dir/htpasswd" } } },
    { "prefix": "/open/", "backend": "cgi" }
  ],
  "backends": { "cgi": { "type": "cgi", "root": "$dir/cgi", "max_concurrent": 0 } }
}
JSON
"$CPM_BIN" -c "$dir/cpm.json" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
	curl -s -o /dev/null "http://127.0.0.1:$port/open/hello" && break
	sleep 0.05
done
auth="Authorization: Basic $(printf 'bench:bench password' | base64)"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$auth" "http://127.0.0.1:$port/sec/hello")" = 200 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/sec/hello")" = 401 ]

rps() { wrk -t2 -c"$CONNS" -d"${SECS}s" "$@" | awk '/^Requests\/sec/ {print $2}'; }
echo "| rep | open req/s | auth req/s | auth / open |"
echo "|---|---|---|---|"
for r in $(seq "$REPS"); do
	o=$(rps "http://127.0.0.1:$port/open/hello")
	a=$(rps -H "$auth" "http://127.0.0.1:$port/sec/hello")
	echo "| $r | $o | $a | $(python3 -c "print(f'{$a / $o:.3f}')") |"
done
grep -E '\[(error|warn)\]' "$dir/error.log" | grep -v '"user"' || true
