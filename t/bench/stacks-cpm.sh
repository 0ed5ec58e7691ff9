# stacks-cpm.sh - cpm as an extra stack for /work/shared/bench/run-peers.sh (--extra).
#
#   run-peers.sh --extra t/bench/stacks-cpm.sh --only 'nginx-fcgiwrap|cpm-cgi' --no-spawn
#
# Sourced by run-peers.sh after its built-in stacks, so $RUN, $STACK, track_bg,
# wait_port, log, stack and CGI_TESTS come from there. t/bench/run.sh drives it.
#
# CPM_BIN: the cpm binary (default: ./cpm at the root of the repository holding this file).

if [ -z "${CPM_BIN:-}" ]; then
    CPM_BIN=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/cpm
fi

# cpm-cgi: same CGI programs and tests as nginx-fcgiwrap / lighttpd-cgi / apache-cgid.
# Settings matched to the peers: 2 workers, no access log, keep-alive on.
start_cpm_cgi() {
    [ -x "$CPM_BIN" ] || { log "cpm binary not found at $CPM_BIN (build it or set CPM_BIN)"; return 1; }
    cat >"$RUN/conf/cpm-cgi.json" <<JSON
{
  "listen": ["127.0.0.1:18090"],
  "workers": 2,
  "access_log": null,
  "error_log": "$RUN/logs/cpm-cgi.err",
  "keepalive": 60,
  "routes": [ { "prefix": "/cgi-bin/", "backend": "cgi" } ],
  "backends": {
    "cgi": { "type": "cgi", "root": "$RUN/www/cgi-bin", "max_concurrent": 0 }
  }
}
JSON
    "$CPM_BIN" -t -c "$RUN/conf/cpm-cgi.json" >>"$RUN/logs/cpm-cgi.out" 2>&1 \
        || { log "cpm rejected $RUN/conf/cpm-cgi.json (see $RUN/logs/cpm-cgi.out)"; return 1; }
    track_bg "$CPM_BIN" -c "$RUN/conf/cpm-cgi.json"   # foreground mode, in the background
    wait_port 18090
}
stack cpm-cgi start_cpm_cgi 18090 "${CGI_TESTS[@]}"
