#!/usr/bin/env bash
# Run ../shared/conformance (HTTP/1.1 + CGI corpus) against a real cpm.
# Required cases must pass; advisory ones are reported.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
corpus=${CONFORMANCE_DIR:-$here/../shared/conformance}
work=$(mktemp -d)
chmod 755 "$work" # the workers run as nobody (cpm started as root without "user")
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
mkdir -p "$work/cgi-bin"
cp "$corpus/echo.cgi" "$work/cgi-bin/echo.cgi"
chmod +x "$work/cgi-bin/echo.cgi"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$port"],
  "workers": 2,
  "access_log": null,
  "error_log": "$work/error.log",
  "routes": [ { "prefix": "/cgi-bin/", "backend": "cgi" } ],
  "backends": { "cgi": { "type": "cgi", "root": "$work/cgi-bin" } }
}
JSON
"$here/cpm" -c "$work/cpm.json" 2>"$work/stderr.log" &
pid=$!
for _ in $(seq 50); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
	sleep 0.1
done
rc=0
# run.py's last line counts advisory failures too; restate it so that a
# summary line with "failed" in it means a required case failed
# HTTP_X_REQUEST_ID: cpm gives every request an id and passes it to the
# program (cpm.json(5), "Request IDs"), also when the client sent none: the
# one HTTP_* variable the server adds on its own (run.py's --allow-http)
python3 "$corpus/run.py" --host 127.0.0.1 --port "$port" --prefix /cgi-bin/echo.cgi --json "$work/report.json" \
	--allow-http HTTP_X_REQUEST_ID "$@" \
	>"$work/out.txt" || rc=$?
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$work/out.txt"
python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cases = r.get("cases", r.get("results", []))
by = {}
for c in cases:
    lvl, st = c.get("level"), c.get("status", c.get("result"))
    by.setdefault(lvl, {}).setdefault(st, 0)
    by[lvl][st] += 1
print("conformance summary:", json.dumps(by, sort_keys=True))
PY
# a sanitizer build reports on stderr: any report fails the run
if grep -E "runtime error|AddressSanitizer|LeakSanitizer" "$work/stderr.log"; then
	echo "conformance: sanitizer reports above"
	rc=1
fi
if grep -E "worker [0-9]+ \(pid [0-9]+\) (killed by signal|exited with code [1-9])" "$work/error.log"; then
	echo "conformance: a worker died"
	rc=1
fi
exit $rc
