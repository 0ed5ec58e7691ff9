#!/usr/bin/env bash
# t/bench/tls.sh - cpm's HTTPS against nginx's, same certificate, one run (`make bench` runs it).
#
#   t/bench/tls.sh              # 2 reps x 3 s per row and server (~4 min)
#   t/bench/tls.sh --quick      # 1 rep x 2 s, 500 idle connections
#   TLS_RSA=0 t/bench/tls.sh    # only the ECDSA P-256 certificate
#
# One throwaway self-signed certificate per key type (ECDSA P-256, then RSA 2048), made
# with the openssl CLI (SAN bench.test, localhost, 127.0.0.1). For each, on free
# 127.0.0.1 ports, both at once:
#   nginx: 2 workers (www-data), the certificate, TLSv1.2 + TLSv1.3, ssl_session_cache
#          shared:SSL:10m, ssl_session_tickets on, ssl_session_timeout 1d, no access log,
#          keep-alive; /hello.txt (static, 14 bytes) and /fcgi -> spawn-fcgi -F 4 fcgi-hello
#          (libfcgi, ../shared/bench/apps) with upstream keepalive 2 per worker and
#          fastcgi_keep_conn on, as ../shared/bench's nginx-fcgi-ka;
#   cpm:   2 workers (www-data), a TLS listener with the same files (protocols default:
#          TLSv1.2 + TLSv1.3; tickets and session timeout: defaults), no access log,
#          keepalive 60; /hello.txt from a static backend and /fcgi from a fastcgi pool
#          of 4 fcgi-hello processes.
# Both are checked first with curl --cacert (status 200, body "Hello, World!\n").
#
# Rows (ECDSA; RSA: the full handshakes only), each server in turn, rep by rep:
#   full     tlsload -c 16: TLS 1.3 handshakes with no session offered, each followed by
#            GET /hello.txt (Connection: close), per second
#   resumed  the same, each connection offering the last ticket its slot received (from
#            whichever worker): resumed handshakes per second; "reused" counts the
#            handshakes the client saw resumed (SSL_session_reused), they must be >= 99%
#   resumed-1.2-id  TLS 1.2 without tickets: resumption only from the server's session
#            cache, which must be shared by the 2 workers to reach ~100%
#   keepalive wrk -t2 -c32 https://.../fcgi: requests/s and p99 on keep-alive
#            connections to the FastCGI pool
#   idle     $TLS_IDLE_CONNS TLS connections, one GET /hello.txt each, then idle:
#            (workers' RSS with - before) / connections, and Pss
# tlsload (t/bench/tlsload.c, built here) is a one-thread epoll client on non-blocking
# OpenSSL: openssl s_time runs one connection at a time (it measures the round trips, not
# the server), reuses a session only with TLS 1.2 unless given -www, and does not say
# how many of its handshakes resumed. The client does not verify the certificate (its
# share of the 2 CPUs is smaller); it still does its half of every key exchange.
#
# The client runs on the same 2 CPUs as the server (tlsload uses about one core during the
# handshake rows, wrk about half during keepalive): the rows compare the two servers
# under the same client, they are not either server's capacity. Before each rep the script
# waits for the machine to be quiet and redoes a rep (at most $RETRIES times) when other
# processes used more than $OTHER_MAX % of the CPUs (as ../shared/bench/run-peers.sh).
#
# Output: a markdown table with cpm ÷ nginx (medians over the reps) on stdout and in
# t/bench/results/<date>-<time>-tls/ratios.md (results/latest-tls points to it), plus
# reps.tsv, raw/ (tlsload and wrk output), idle/, env.txt and run-logs/ (configs, logs).
# Exit 1 when a server failed its check, a row has errors, or resumption stayed under 99%.
#
# Environment: CPM_BIN (default ./cpm, built with make), PEERS_DIR (../shared/bench),
# TLS_REPS (2), TLS_SECS (3), TLS_CONNS (16, tlsload), TLS_WRK_CONNS (32), TLS_IDLE_CONNS
# (2000), TLS_RSA (1), TLS_PERF (0; 1: perf record on nginx's then cpm's workers during one
# more rep each of every row where cpm is below nginx: perf-ROW.txt, samples per request by
# object and top functions), QUIET_MAX (10), QUIET_WAIT (60), OTHER_MAX (15), RETRIES (2),
# BENCH_RESULTS (results directory).
set -u -o pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/../.." && pwd)
PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/bench}
TLS_REPS=${TLS_REPS:-2}
TLS_SECS=${TLS_SECS:-3}
TLS_CONNS=${TLS_CONNS:-16}
TLS_WRK_CONNS=${TLS_WRK_CONNS:-32}
TLS_IDLE_CONNS=${TLS_IDLE_CONNS:-2000}
TLS_RSA=${TLS_RSA:-1}
TLS_PERF=${TLS_PERF:-0}
QUIET_MAX=${QUIET_MAX:-10}
QUIET_WAIT=${QUIET_WAIT:-60}
OTHER_MAX=${OTHER_MAX:-15}
RETRIES=${RETRIES:-2}
FCGI_PROCS=4
IDLE_HOLD=3
while [ $# -gt 0 ]; do
    case $1 in
    --quick) TLS_REPS=1 TLS_SECS=2 TLS_IDLE_CONNS=500 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;/^set -u/d'; exit 0 ;;
    *) echo "t/bench/tls.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "tls.sh: $*"; exit 2; }

for c in openssl nginx spawn-fcgi wrk curl python3 cc; do
    command -v "$c" >/dev/null || die "needs $c (apt-get install nginx spawn-fcgi wrk curl libssl-dev libfcgi-dev)"
done
[ -f "$PEERS_DIR/apps/fcgi-hello.c" ] || die "no $PEERS_DIR/apps/fcgi-hello.c (set PEERS_DIR)"
PEERS_DIR=$(cd "$PEERS_DIR" && pwd)
if [ -z "${CPM_BIN:-}" ]; then
    make -C "$ROOT" cpm >&2 || die "building cpm failed"
    CPM_BIN=$ROOT/cpm
fi
[ -x "$CPM_BIN" ] || die "no cpm binary at $CPM_BIN"

# one benchmark at a time (the lock of run.sh and auth.sh)
LOCKRUN=${PEERS_RUN_DIR:-/tmp/cpm-peers-run}
exec 9>>"${LOCKRUN%/}.lock"
flock -n 9 || { log "waiting for the benchmark lock ${LOCKRUN%/}.lock"; flock -w 1800 9 || die "lock busy"; }

RES=${BENCH_RESULTS:-$BENCH/results/$(date +%Y%m%d-%H%M%S)-tls}
mkdir -p "$RES/raw" "$RES/idle" "$RES/run-logs" || die "cannot create $RES"
RES=$(cd "$RES" && pwd)
[ "$(dirname "$RES")" = "$BENCH/results" ] && ln -sfn "$(basename "$RES")" "$BENCH/results/latest-tls" 2>/dev/null
RUN=$(mktemp -d /tmp/cpm-tls-bench.XXXXXX) || die "mktemp"
chmod 755 "$RUN"
mkdir -p "$RUN/bin" "$RUN/www" "$RUN/logs" "$RUN/tmp" "$RUN/sock"
chown www-data:www-data "$RUN/logs" "$RUN/sock" 2>/dev/null

ROOTS=()   # PIDs of the servers' root processes (stopped by PID at the end)
stop_servers() {
    local p all=""
    [ ${#ROOTS[@]} -gt 0 ] || return 0
    for p in "${ROOTS[@]}"; do all+=" $p $(cat /proc/"$p"/task/*/children 2>/dev/null)"; done
    kill -TERM "${ROOTS[@]}" 2>/dev/null
    for _ in $(seq 50); do
        local left=""
        for p in $all; do [ -e "/proc/$p" ] && left+=" $p"; done
        [ -z "$left" ] && break
        sleep 0.1
    done
    for p in $all; do [ -e "/proc/$p" ] && kill -KILL "$p" 2>/dev/null; done
    for p in "${ROOTS[@]}"; do wait "$p" 2>/dev/null; done
    ROOTS=()
}
CLIENT_PID=""
cleanup() {
    [ -n "$CLIENT_PID" ] && kill "$CLIENT_PID" 2>/dev/null
    stop_servers
    cp -p "$RUN"/logs/* "$RUN"/*.conf "$RUN"/*.json "$RES/run-logs/" 2>/dev/null
    case $RUN in /tmp/cpm-tls-bench.?*) rm -rf "$RUN" ;; esac
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CC=${CC:-cc}
$CC -O2 -Wall -o "$RUN/bin/tlsload" "$BENCH/tlsload.c" -lssl -lcrypto || die "build tlsload"
$CC -O2 -Wall -o "$RUN/bin/fcgi-hello" "$PEERS_DIR/apps/fcgi-hello.c" -lfcgi || die "build fcgi-hello"
$CC -O2 -Wall -o "$RUN/bin/cleansig" "$PEERS_DIR/apps/cleansig.c" || die "build cleansig"
chmod 755 "$RUN/bin"/*
printf 'Hello, World!\n' >"$RUN/www/hello.txt"
printf 'Hello, World!\n' >"$RUN/expected"
chmod 644 "$RUN/www/hello.txt"

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 200); do port_open "$1" && return 0; sleep 0.05; done; return 1; }

# ---- machine quiet / foreign CPU (as ../shared/bench/run-peers.sh) ----
NCPU=$(nproc)
cpu_sample() {
    local u n s i w q sq st rest
    read -r _ u n s i w q sq st rest </proc/stat
    echo "$((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st))"
}
quiet_wait() {
    local waited=0 c0 c1 b0 t0 b1 t1 busy
    while :; do
        c0=$(cpu_sample); sleep 1; c1=$(cpu_sample)
        read -r b0 t0 <<<"$c0"; read -r b1 t1 <<<"$c1"
        busy=$((t1 > t0 ? 100 * NCPU * (b1 - b0) / (t1 - t0) : 0))
        if [ "$busy" -le "$QUIET_MAX" ] || [ "$waited" -ge "$QUIET_WAIT" ]; then break; fi
        [ "$waited" = 0 ] && log "  machine busy (${busy}% of $((NCPU * 100))%), waiting up to ${QUIET_WAIT}s"
        waited=$((waited + 2))
    done
    echo "$busy"
}
# CPU ticks so far of user processes outside this script's tree and the servers' trees
foreign_snapshot() {
    ps -eo pid=,ppid= | awk -v mine="$$ ${ROOTS[*]}" '
        { pp[$1] = $2 }
        END {
            n = split(mine, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1
            do { ch = 0; for (p in pp) if (!(p in keep) && (pp[p] in keep)) { keep[p] = 1; ch = 1 } } while (ch)
            for (p in pp) if (!(p in keep) && p != 2 && pp[p] != 2) {
                f = "/proc/" p "/stat"
                if ((getline line < f) > 0) { sub(/.*\) /, "", line); split(line, a, " "); print p ":" a[20], a[12] + a[13] + a[14] + a[15] }
                close(f)
            }
        }' 2>/dev/null
}
other_cpu() {  # SNAP0 SNAP1 "busy0 total0" "busy1 total1" -> % of all CPUs
    local b0 t0 b1 t1
    read -r b0 t0 <<<"$3"; read -r b1 t1 <<<"$4"
    awk -v t=$((t1 - t0)) -v n="$NCPU" '
        NR == FNR { s[$1] = $2; next }
        { d += ($1 in s) ? $2 - s[$1] : $2 }
        END { o = t ? 100 * n * d / t : 0; printf "%.0f", o < 0 ? 0 : o }' "$1" "$2"
}

# ---- certificates ----
mkcert() {  # KIND -> $RUN/KIND.crt, $RUN/KIND.key
    local alg
    case $1 in
    ecdsa) alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    rsa) alg=(-newkey rsa:2048) ;;
    esac
    openssl req -x509 "${alg[@]}" -nodes -days 2 -subj /CN=bench.test \
        -addext 'subjectAltName=DNS:bench.test,DNS:localhost,IP:127.0.0.1' \
        -keyout "$RUN/$1.key" -out "$RUN/$1.crt" >"$RUN/logs/openssl-$1.out" 2>&1 || die "openssl req ($1) failed"
    chmod 600 "$RUN/$1.key"   # read by the masters (root) only
}

# ---- servers ----
start_nginx() {  # KIND PORT
    local sock=$RUN/sock/fcgi-$1.sock pidfile=$RUN/spawn-fcgi-$1.pid
    rm -f "$sock" "$pidfile"
    "$RUN/bin/cleansig" spawn-fcgi -F "$FCGI_PROCS" -s "$sock" -M 0660 -u www-data -g www-data \
        -U www-data -G www-data -P "$pidfile" -- "$RUN/bin/fcgi-hello" >>"$RUN/logs/spawn-fcgi.out" 2>&1 ||
        return 1
    mapfile -t -O "${#ROOTS[@]}" ROOTS <"$pidfile"
    mkdir -p "$RUN/nginx-$1"
    cat >"$RUN/nginx-$1.conf" <<EOF
user www-data www-data;
worker_processes 2;
pid $RUN/nginx-$1.pid;
error_log $RUN/logs/nginx-$1.err warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 10000;
    keepalive_timeout 65;
    client_body_temp_path $RUN/tmp/body; proxy_temp_path $RUN/tmp/proxy;
    fastcgi_temp_path $RUN/tmp/fastcgi; uwsgi_temp_path $RUN/tmp/uwsgi; scgi_temp_path $RUN/tmp/scgi;
    upstream fcgi_hello {
        server unix:$sock;
        keepalive 2;
        keepalive_requests 10000;
    }
    server {
        listen 127.0.0.1:$2 ssl;
        root $RUN/www;
        ssl_certificate $RUN/$1.crt;
        ssl_certificate_key $RUN/$1.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_tickets on;
        ssl_session_timeout 1d;
        location = /fcgi {
            include /etc/nginx/fastcgi_params;
            fastcgi_keep_conn on;
            fastcgi_pass fcgi_hello;
        }
    }
}
EOF
    "$RUN/bin/cleansig" nginx -p "$RUN/nginx-$1/" -e "$RUN/logs/nginx-$1.err" -c "$RUN/nginx-$1.conf" \
        -g 'daemon off;' >>"$RUN/logs/nginx-$1.out" 2>&1 &
    ROOTS+=($!)
    NGINX_PID=$!
    wait_port "$2"
}
start_cpm() {  # KIND PORT STATUS_PORT
    cat >"$RUN/cpm-$1.json" <<JSON
{
  "listen": [ { "address": "127.0.0.1:$2",
                "tls": { "certificate": "$RUN/$1.crt", "key": "$RUN/$1.key" } },
              "127.0.0.1:$3" ],
  "workers": 2,
  "user": "www-data",
  "access_log": null,
  "error_log": "$RUN/logs/cpm-$1.err",
  "keepalive": 60,
  "max_connections": 8192,
  "routes": [ { "prefix": "/fcgi", "backend": "hello" }, { "prefix": "/cpm-status", "backend": "st" },
              { "prefix": "/", "backend": "files" } ],
  "backends": {
    "hello": { "type": "fastcgi", "command": ["$RUN/bin/fcgi-hello"], "processes": $FCGI_PROCS },
    "st": { "type": "status" },
    "files": { "type": "static", "root": "$RUN/www" }
  }
}
JSON
    "$CPM_BIN" -t -c "$RUN/cpm-$1.json" >"$RUN/logs/cpm-$1.t" 2>&1 ||
        { cat "$RUN/logs/cpm-$1.t" >&2; return 1; }
    "$RUN/bin/cleansig" "$CPM_BIN" -c "$RUN/cpm-$1.json" >>"$RUN/logs/cpm-$1.out" 2>&1 &
    ROOTS+=($!)
    CPM_PID=$!
    wait_port "$2"
}
workers() {  # MASTER_PID -> the worker PIDs
    local p
    for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        case $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) in
        "nginx: worker"* | "cpm: worker"*) echo "$p" ;;
        esac
    done
}
mem() {  # PIDS... -> "rss_kb pss_kb"
    local p r=0 s=0 x
    for p in "$@"; do
        x=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null); r=$((r + ${x:-0}))
        x=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null); s=$((s + ${x:-0}))
    done
    echo "$r $s"
}
verify() {  # SERVER KIND PORT: /hello.txt and /fcgi with curl --cacert, SNI bench.test
    local u code
    for u in /hello.txt /fcgi; do
        code=$(curl -sS --max-time 10 --cacert "$RUN/$2.crt" --resolve "bench.test:$3:127.0.0.1" \
            -o "$RES/raw/verify-$1-$2${u//\//_}.body" -w '%{http_code} %{ssl_verify_result}' \
            "https://bench.test:$3$u" 2>"$RES/raw/verify-$1-$2${u//\//_}.err")
        if [ "$code" != "200 0" ] || ! cmp -s "$RES/raw/verify-$1-$2${u//\//_}.body" "$RUN/expected"; then
            log "FAIL: $1 ($2) https://bench.test:$3$u: status/verify '$code' (see $RES/raw/verify-$1-$2*)"
            return 1
        fi
    done
}

# cpm's own count of TLS handshakes (status backend on the plain listener): "handshakes resumed"
cpm_tls_count() {
    curl -s --max-time 5 "http://127.0.0.1:$SPORT/cpm-status" | python3 -c '
import json, sys
try:
    t = json.load(sys.stdin)["tls"]; print(t["handshakes"], t["resumed"])
except Exception:
    print("- -")'
}

# ---- one measurement ----
printf 'kind\ttest\tserver\trep\tvalue\tp99_us\treused\tfull\terrors\tproto\tcipher\tother_pct\tattempt\tsrv_handshakes\tsrv_resumed\n' >"$RES/reps.tsv"
run_one() {  # KIND TEST SERVER PORT REP -> a reps.tsv row
    local kind=$1 test=$2 srv=$3 port=$4 rep=$5 raw attempt=0 c0 c1 other line v p99 reused full errs proto cipher
    local s0 s1 sh sr
    local args=()
    case $test in
    full) args=(-c "$TLS_CONNS" -d "$TLS_SECS" -g /hello.txt) ;;
    resumed) args=(-c "$TLS_CONNS" -d "$TLS_SECS" -g /hello.txt -r) ;;
    resumed-1.2-id) args=(-c "$TLS_CONNS" -d "$TLS_SECS" -g /hello.txt -r -2 -T) ;;
    esac
    while :; do
        attempt=$((attempt + 1))
        raw=$RES/raw/$kind-$test-$srv-r$rep.txt
        quiet_wait >/dev/null
        s0="- -"
        [ "$srv" = cpm ] && s0=$(cpm_tls_count)
        foreign_snapshot >"$RUN/f0"; c0=$(cpu_sample)
        if [ "$test" = keepalive ]; then
            "$RUN/bin/cleansig" wrk -t2 -c"$TLS_WRK_CONNS" -d"${TLS_SECS}s" --latency -s "$PEERS_DIR/report.lua" \
                "https://127.0.0.1:$port/fcgi" >"$raw" 2>&1
        else
            "$RUN/bin/tlsload" -p "$port" "${args[@]}" >"$raw" 2>&1
        fi
        c1=$(cpu_sample); foreign_snapshot >"$RUN/f1"
        other=$(other_cpu "$RUN/f0" "$RUN/f1" "$c0" "$c1")
        s1="- -"
        [ "$srv" = cpm ] && s1=$(cpm_tls_count)
        read -r sh sr <<<"$(paste -d' ' <(echo "$s0") <(echo "$s1") |
            awk '$1 == "-" || $3 == "-" { print "- -"; next } { print $3 - $1, $4 - $2 }')"
        if [ "$test" = keepalive ]; then
            line=$(grep -m1 '^RESULT ' "$raw")
            v=$(sed -E 's/.*requests=([0-9]+) duration_us=([0-9]+).*/\1 \2/' <<<"$line" | awk '{ if ($2) printf "%.0f", $1 / ($2 / 1e6); else print 0 }')
            p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$line")
            errs=$(sed -E 's/.*connect=([0-9]+) read=([0-9]+) write=([0-9]+) status=([0-9]+) timeout=([0-9]+).*/\1 \2 \3 \4 \5/' <<<"$line" | awk '{print $1+$2+$3+$4+$5}')
            reused=- full=- proto=- cipher=-
            [ -n "$line" ] || { v=0 p99=- errs=1; }
        else
            line=$(grep -m1 '^mode=' "$raw")
            get() { sed -nE "s/.*(^| )$1=([^ ]*).*/\\2/p" <<<"$line"; }
            v=$(get per_s) reused=$(get reused) full=$(get full) errs=$(get errors) proto=$(get proto) cipher=$(get cipher) p99=-
            [ -n "$line" ] || { v=0 errs=1; }
        fi
        log "  $kind $test $srv rep $rep: $v/s, p99 ${p99}us, reused $reused, errors $errs, foreign ${other}%"
        if [ "$other" -gt "$OTHER_MAX" ] && [ "$attempt" -le "$RETRIES" ]; then
            log "  foreign processes used ${other}% of the CPUs (> ${OTHER_MAX}%): redoing"
            mv "$raw" "$raw.discarded$attempt"
            continue
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$test" "$srv" "$rep" "$v" "${p99:--}" \
            "$reused" "$full" "$errs" "$proto" "$cipher" "$other" "$attempt" "$sh" "$sr" >>"$RES/reps.tsv"
        break
    done
}

# ---- idle connections: RSS per connection ----
printf 'kind\tserver\tconns\tok\terrors\trss_before_kb\trss_with_kb\tpss_before_kb\tpss_with_kb\trss_after_kb\n' >"$RES/idle.tsv"
idle_one() {  # KIND SERVER PORT MASTER_PID
    local d=$RES/idle/$2-$1 ws b w a ok errs
    mkdir -p "$d"
    ws=$(workers "$4")
    sleep 1
    b=$(mem $ws)
    mkfifo "$RUN/idle.fifo"
    "$RUN/bin/tlsload" -p "$3" -i "$TLS_IDLE_CONNS" -g /hello.txt -f "$d/ready" <"$RUN/idle.fifo" >"$d/client.out" 2>&1 &
    CLIENT_PID=$!
    exec 8>"$RUN/idle.fifo"
    for _ in $(seq 600); do [ -f "$d/ready" ] && break; kill -0 "$CLIENT_PID" 2>/dev/null || break; sleep 0.1; done
    sleep "$IDLE_HOLD"
    w=$(mem $ws)
    exec 8>&-
    wait "$CLIENT_PID" 2>/dev/null
    CLIENT_PID=""
    rm -f "$RUN/idle.fifo"
    sleep 2
    a=$(mem $ws)
    ok=$(sed -nE 's/.*ok=([0-9]+).*/\1/p' "$d/ready" 2>/dev/null)
    errs=$(sed -nE 's/.*errors=([0-9]+).*/\1/p' "$d/ready" 2>/dev/null)
    log "  $1 idle $2: $TLS_IDLE_CONNS connections, ok ${ok:-0}, RSS kB before/with/after: ${b% *} / ${w% *} / ${a% *}"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$TLS_IDLE_CONNS" "${ok:-0}" "${errs:-1}" \
        "${b% *}" "${w% *}" "${b#* }" "${w#* }" "${a% *}" >>"$RES/idle.tsv"
}

# ---- perf: where the time goes, per request, in nginx's and cpm's workers ----
perf_one() {  # KIND TEST NGINX_PORT CPM_PORT
    command -v perf >/dev/null || { log "no perf: TLS_PERF skipped"; return; }
    local srv port master ws pid ops out=$RES/perf-$1-$2 a=(-c "$TLS_CONNS" -d "$TLS_SECS" -g /hello.txt)
    case $2 in resumed) a+=(-r) ;; resumed-1.2-id) a+=(-r -2 -T) ;; esac
    : >"$out.txt"
    for srv in nginx cpm; do
        if [ $srv = nginx ]; then port=$3 master=$NGINX_PID; else port=$4 master=$CPM_PID; fi
        ws=$(workers "$master" | paste -sd,)
        log "  perf record on $srv's workers $ws during one more $1 $2 rep"
        perf record -q -g -o "$out-$srv.data" -p "$ws" -- sleep "$TLS_SECS" 2>"$out-$srv.err" &
        pid=$!
        sleep 0.2
        if [ "$2" = keepalive ]; then
            ops=$(wrk -t2 -c"$TLS_WRK_CONNS" -d"${TLS_SECS}s" "https://127.0.0.1:$port/fcgi" 2>&1 |
                awk '/requests in/ {print $1}')
        else
            ops=$("$RUN/bin/tlsload" -p "$port" "${a[@]}" 2>&1 | sed -nE 's/.*handshakes=([0-9]+).*/\1/p')
        fi
        wait "$pid"
        {
            echo "## $srv: ${ops:-0} requests while recording; samples per 1000 requests by object (self)"
            perf report -i "$out-$srv.data" --no-children --sort dso -g none -n --stdio 2>/dev/null |
                awk -v ops="${ops:-0}" '/^ +[0-9]/ { printf "  %-22s %6.1f %%  %8.1f\n", $3, $1, ops ? 1000 * $2 / ops : 0 }' | head -8
            echo "## $srv: self time by function"
            perf report -i "$out-$srv.data" --no-children --sort dso,sym -g none --stdio 2>/dev/null |
                grep -E '^ +[0-9]' | head -25
        } >>"$out.txt"
        rm -f "$out-$srv.data"
    done
}

{
    echo "date: $(date -Is)"; echo "kernel: $(uname -r)"; echo "cpus: $NCPU"
    grep -m1 'model name' /proc/cpuinfo
    echo "cpm: $CPM_BIN ($("$CPM_BIN" -v 2>&1)) $(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null)"
    echo "nginx: $(nginx -v 2>&1)"; echo "openssl: $(openssl version)"
    echo "wrk: $(dpkg-query -W -f='${Version}' wrk 2>/dev/null)  spawn-fcgi: $(dpkg-query -W -f='${Version}' spawn-fcgi 2>/dev/null)"
    echo "settings: TLS_REPS=$TLS_REPS TLS_SECS=$TLS_SECS TLS_CONNS=$TLS_CONNS TLS_WRK_CONNS=$TLS_WRK_CONNS TLS_IDLE_CONNS=$TLS_IDLE_CONNS TLS_RSA=$TLS_RSA QUIET_MAX=$QUIET_MAX OTHER_MAX=$OTHER_MAX RETRIES=$RETRIES"
    echo "loadavg before the run: $(cat /proc/loadavg)"
} >"$RES/env.txt"
log "results in $RES"

FAIL=0
KINDS=(ecdsa)
[ "$TLS_RSA" = 1 ] && KINDS+=(rsa)
ulimit -n "$(ulimit -Hn)" 2>/dev/null
for kind in "${KINDS[@]}"; do
    mkcert "$kind"
    NPORT=$(freeport) CPORT=$(freeport) SPORT=$(freeport)
    while [ "$CPORT" = "$NPORT" ]; do CPORT=$(freeport); done
    while [ "$SPORT" = "$NPORT" ] || [ "$SPORT" = "$CPORT" ]; do SPORT=$(freeport); done
    log "=== $kind: nginx on 127.0.0.1:$NPORT, cpm on 127.0.0.1:$CPORT"
    start_nginx "$kind" "$NPORT" || { log "FAIL: nginx ($kind) did not start (see $RES/run-logs)"; FAIL=1; stop_servers; continue; }
    start_cpm "$kind" "$CPORT" "$SPORT" || { log "FAIL: cpm ($kind) did not start (see $RES/run-logs)"; FAIL=1; stop_servers; continue; }
    verify nginx "$kind" "$NPORT" && verify cpm "$kind" "$CPORT" || { FAIL=1; stop_servers; continue; }
    # warm-up: a few handshakes and requests on each
    for p in "$NPORT" "$CPORT"; do
        "$RUN/bin/tlsload" -p "$p" -c 4 -d 1 -g /fcgi >/dev/null 2>&1
    done
    tests=(full resumed resumed-1.2-id keepalive)
    [ "$kind" = ecdsa ] || tests=(full)
    for t in "${tests[@]}"; do
        for rep in $(seq "$TLS_REPS"); do
            run_one "$kind" "$t" nginx "$NPORT" "$rep"
            run_one "$kind" "$t" cpm "$CPORT" "$rep"
        done
        if [ "$TLS_PERF" = 1 ]; then
            below=$(awk -F'\t' -v k="$kind" -v t="$t" '$1 == k && $2 == t { s[$3] += $5; n[$3]++ }
                END { print (n["cpm"] && n["nginx"] && s["cpm"] / n["cpm"] < s["nginx"] / n["nginx"]) ? 1 : 0 }' "$RES/reps.tsv")
            [ "$below" = 1 ] && perf_one "$kind" "$t" "$NPORT" "$CPORT"
        fi
    done
    if [ "$kind" = ecdsa ]; then
        idle_one "$kind" nginx "$NPORT" "$NGINX_PID"
        idle_one "$kind" cpm "$CPORT" "$CPM_PID"
    fi
    stop_servers
done

python3 - "$RES" "$TLS_CONNS" "$TLS_WRK_CONNS" "$OTHER_MAX" <<'PY' | tee "$RES/ratios.md"
import csv, os, statistics, sys
res, hc, wc, other_max = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = list(csv.DictReader(open(os.path.join(res, "reps.tsv")), delimiter="\t"))
idle = list(csv.DictReader(open(os.path.join(res, "idle.tsv")), delimiter="\t"))
fails = []
def med(kind, test, srv, key):
    v = [float(r[key]) for r in rows if r["kind"] == kind and r["test"] == test and r["server"] == srv and r[key] not in ("-", "")]
    return statistics.median(v) if v else None
def fmt(x, d=0): return "-" if x is None else f"{x:,.{d}f}"
def ratio(a, b): return "-" if a is None or not b else f"{a / b:.2f}"
what = {"full": f"full handshakes/s (TLS 1.3, c{hc}, + GET /hello.txt)",
        "resumed": f"resumed handshakes/s (TLS 1.3 tickets, c{hc})",
        "resumed-1.2-id": f"resumed handshakes/s (TLS 1.2 session ID, no tickets, c{hc})",
        "keepalive": f"keep-alive HTTPS req/s to the FastCGI pool (wrk -t2 -c{wc})"}
print("### cpm vs nginx over TLS (same certificate, same client, same run; median of the reps; ratio = cpm ÷ nginx)\n")
print("| cert | test | nginx | cpm | **cpm ÷ nginx** | nginx resumed | cpm resumed | nginx p99 ms | cpm p99 ms | errors nginx / cpm | protocol, cipher |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
seen = []
for r in rows:
    k = (r["kind"], r["test"])
    if k not in seen:
        seen.append(k)
for kind, test in seen:
    n, c = med(kind, test, "nginx", "value"), med(kind, test, "cpm", "value")
    sel = lambda s: [r for r in rows if r["kind"] == kind and r["test"] == test and r["server"] == s]
    err = {s: sum(int(r["errors"]) if r["errors"].isdigit() else 1 for r in sel(s)) for s in ("nginx", "cpm")}
    def reuse(s):
        rr = sel(s)
        if not rr or rr[0]["reused"] in ("-", ""):
            return None
        done = sum(int(r["reused"]) + int(r["full"]) for r in rr)
        return 100.0 * sum(int(r["reused"]) for r in rr) / done if done else 0.0
    ru = {s: reuse(s) for s in ("nginx", "cpm")}
    # cpm's own count (status backend): resumed / handshakes it saw during the reps
    srv = [(int(r["srv_handshakes"]), int(r["srv_resumed"])) for r in sel("cpm")
           if r.get("srv_handshakes", "-").lstrip("-").isdigit() and r.get("srv_resumed", "-").lstrip("-").isdigit()]
    sh = sum(a for a, b in srv)
    srv_pct = f" (cpm: {100.0 * sum(b for a, b in srv) / sh:.1f} %)" if sh and test != "keepalive" else ""
    p99 = {s: med(kind, test, s, "p99_us") for s in ("nginx", "cpm")}
    pc = sel("cpm")[0] if sel("cpm") else {}
    # '!': a rep still disturbed by other processes after the retries
    bad = any(int(r["other_pct"]) > other_max for r in sel("nginx") + sel("cpm"))
    print(f"| {kind} | {what.get(test, test)}{' !' if bad else ''} | {fmt(n)} | {fmt(c)} | **{ratio(c, n)}** "
          f"| {'-' if ru['nginx'] is None else fmt(ru['nginx'], 1) + ' %'} | {'-' if ru['cpm'] is None else fmt(ru['cpm'], 1) + ' %' + srv_pct} "
          f"| {fmt(p99['nginx'] and p99['nginx'] / 1000, 2)} | {fmt(p99['cpm'] and p99['cpm'] / 1000, 2)} "
          f"| {err['nginx']} / {err['cpm']} | {pc.get('proto', '-')}, {pc.get('cipher', '-')} |")
    # nginx's errors are reported, not failed on: its keepalive row starves connections
    # (nginx-fcgi-ka) and wrk counts the ones that wait past its 2 s timeout
    if err["cpm"]:
        fails.append(f"cpm {kind} {test}: {err['cpm']} error(s), see raw/{kind}-{test}-cpm-r*.txt")
    for s in ("nginx", "cpm"):  # nginx under 99 %: the client does not resume (a broken tlsload)
        if test.startswith("resumed") and ru[s] is not None and ru[s] < 99:
            fails.append(f"{s} {kind} {test}: only {ru[s]:.1f} % of the handshakes resumed")
if idle:
    print("\n### idle TLS connections (one GET /hello.txt each, then idle; the 2 workers' memory)\n")
    print("| server | conns | answered | RSS kB before / with / after close | **RSS per conn** | Pss per conn |")
    print("|---|---|---|---|---|---|")
    per = {}
    for r in idle:
        n = int(r["conns"])
        rpc = (int(r["rss_with_kb"]) - int(r["rss_before_kb"])) * 1024 / n
        ppc = (int(r["pss_with_kb"]) - int(r["pss_before_kb"])) * 1024 / n
        per[r["server"]] = rpc
        print(f"| {r['server']} | {n} | {r['ok']} | {r['rss_before_kb']} / {r['rss_with_kb']} / {r['rss_after_kb']} "
              f"| **{rpc:,.0f} B** | {ppc:,.0f} B |")
        if int(r["ok"]) != n:
            fails.append(f"idle {r['server']}: {r['ok']} of {n} connections answered")
    if per.get("nginx"):
        print(f"\nRSS per idle TLS connection, cpm ÷ nginx: **{per.get('cpm', 0) / per['nginx']:.2f}** (lower is better)")
print("\nresumed: handshakes the client saw resumed (SSL_session_reused), of those it completed; "
      "(cpm: ...): resumed / handshakes in cpm's own count (status backend) over the same reps.")
print("The client (tlsload: ~1 core in the handshake rows; wrk) runs on the same 2 CPUs as the server.")
print(f"'!': other processes used more than {other_max} % of the CPUs during a rep even after the retries (column other_pct of reps.tsv).")
for f in fails:
    print("FAIL: " + f)
print(f"\nraw data: {res}")
sys.exit(1 if fails else 0)
PY
[ $? = 0 ] || FAIL=1
for f in "$RUN"/logs/cpm-*.err; do
    [ -f "$f" ] || continue
    n=$(grep -cE '\[(error|warn)\]' "$f")
    echo "cpm log $(basename "$f"): $n error/warn line(s)" | tee -a "$RES/ratios.md"
    grep -E '\[(error|warn)\]' "$f" | head -5 | sed 's/^/  /' | tee -a "$RES/ratios.md"
done
for f in "$RES"/perf-*.txt; do
    [ -f "$f" ] || continue
    echo; echo "perf $(basename "$f" .txt) (full report: $f):"; grep -A8 -E '^## (nginx|cpm): [0-9]* requests' "$f" | grep -v -- '^--' | grep -v 'self time by function'

done | tee -a "$RES/ratios.md"
exit $FAIL
