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
  "user": "www-data",
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

# cpm-fcgi: the fcgi-hello libfcgi app as a cpm pool, next to nginx-fcgi-ka (nginx ->
# spawn-fcgi -F $FCGI_PROCS, upstream keepalive) and nginx-fcgi (a connection per
# request). Same process count, same user, 2 workers, keep-alive on.
start_cpm_fcgi() {
    [ -x "$CPM_BIN" ] || { log "cpm binary not found at $CPM_BIN (build it or set CPM_BIN)"; return 1; }
    cat >"$RUN/conf/cpm-fcgi.json" <<JSON
{
  "listen": ["127.0.0.1:18091"],
  "workers": 2,
  "user": "www-data",
  "access_log": null,
  "error_log": "$RUN/logs/cpm-fcgi.err",
  "keepalive": 60,
  "routes": [ { "prefix": "/fcgi", "backend": "hello" } ],
  "backends": {
    "hello": { "type": "fastcgi", "command": ["$RUN/bin/fcgi-hello"], "processes": ${FCGI_PROCS:-4} }
  }
}
JSON
    "$CPM_BIN" -t -c "$RUN/conf/cpm-fcgi.json" >>"$RUN/logs/cpm-fcgi.out" 2>&1 \
        || { log "cpm rejected $RUN/conf/cpm-fcgi.json (see $RUN/logs/cpm-fcgi.out)"; return 1; }
    track_bg "$CPM_BIN" -c "$RUN/conf/cpm-fcgi.json"
    wait_port 18091
}
stack cpm-fcgi start_cpm_fcgi 18091 "fcgi-hello /fcgi 32"

# cpm-static: the static backend next to nginx-static (sendfile on, open_file_cache),
# lighttpd-static and h2o-static (run-peers.sh --set static): $RUN/www/static/4k.bin at 32
# connections, 100m.bin at 8. Same 2 workers, no access log, keep-alive on; cpm keeps up to
# 64 small files open per worker and stats the path at every request.
start_cpm_static() {
    [ -x "$CPM_BIN" ] || { log "cpm binary not found at $CPM_BIN (build it or set CPM_BIN)"; return 1; }
    cat >"$RUN/conf/cpm-static.json" <<JSON
{
  "listen": ["127.0.0.1:18092"],
  "workers": 2,
  "user": "www-data",
  "access_log": null,
  "error_log": "$RUN/logs/cpm-static.err",
  "keepalive": 60,
  "routes": [ { "prefix": "/static/", "backend": "files" } ],
  "backends": {
    "files": { "type": "static", "root": "$RUN/www/static" }
  }
}
JSON
    "$CPM_BIN" -t -c "$RUN/conf/cpm-static.json" >>"$RUN/logs/cpm-static.out" 2>&1 \
        || { log "cpm rejected $RUN/conf/cpm-static.json (see $RUN/logs/cpm-static.out)"; return 1; }
    track_bg "$CPM_BIN" -c "$RUN/conf/cpm-static.json"
    wait_port 18092
}
stack cpm-static start_cpm_static 18092 "${STATIC_TESTS[@]}"

# ---- more tests and stacks for t/bench/run.sh (the issue-14 targets), next to the built-ins.
# FastCGI at c8 and c128 too: the same stacks (same names, ports, configs) get more tests; the
# rows differ by their c column. Only the stacks selected by --only/--set run.
add_tests() {   # STACK "BACKEND PATH CONNS"...
    local t
    [ -n "${STACK_START[$1]:-}" ] || return 0
    for t in "${@:2}"; do STACK_TESTS[$1]+="$t"$'\n'; done
}
for s in cpm-fcgi nginx-fcgi-ka nginx-fcgi lighttpd-fcgi h2o-fcgi h2o-fcgi-ext; do
    add_tests "$s" "fcgi-hello /fcgi 8" "fcgi-hello /fcgi 128"
done
unset s

# A pool of ONE fcgi-hello process (where a kept backend connection pins it): NAME-p1 runs
# NAME's own start function with FCGI_PROCS=1 (the peers' keepalive settings unchanged, as
# `FCGI_PROCS=1 run-peers.sh` would do), on NAME's port: stacks run one after the other,
# each stopped before the next starts.
p1_stack() {    # NAME
    local name=$1 fn=${STACK_START[$1]:-}
    [ -n "$fn" ] || return 0
    eval "start_p1_${fn#start_}() { local FCGI_PROCS=1; $fn; }"
    stack "$name-p1" "start_p1_${fn#start_}" "${STACK_PORT[$name]}" "fcgi-hello /fcgi 32"
}
for s in cpm-fcgi nginx-fcgi-ka nginx-fcgi lighttpd-fcgi h2o-fcgi h2o-fcgi-ext; do p1_stack "$s"; done
unset s
