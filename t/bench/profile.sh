#!/usr/bin/env bash
# t/bench/profile.sh - syscalls and context switches per request, cpm and its peers, plus a
# perf profile of cpm's workers (`make bench` runs it after run.sh).
#
#   t/bench/profile.sh                          # FastCGI: cpm-fcgi, nginx-fcgi-ka, lighttpd-fcgi
#   PROFILE_SECS=5 t/bench/profile.sh           # shorter runs (default 10 s per stack)
#   PROFILE_BACKEND=static t/bench/profile.sh   # cpm-static, nginx-static, lighttpd-static (4k.bin)
#   PROFILE_BACKEND=cgi t/bench/profile.sh      # cpm-cgi, nginx-fcgiwrap, lighttpd-cgi (hello.c)
#   PROFILE_STACKS=cpm-fcgi t/bench/profile.sh  # only some of the stacks
#
# For each stack: start it on a free 127.0.0.1 port (configs as in run-peers.sh and
# stacks-cpm.sh: 2 workers, no access log, keep-alive, workers as www-data, 4 fcgi-hello
# processes), check one request with curl, warm up, wait for a quiet machine, then run
#
#   perf stat -e raw_syscalls:sys_enter,context-switches --per-thread -p PID,PID,... -- wrk ...
#
# (plus one syscalls:sys_enter_NAME tracepoint per syscall of PROFILE_SYSCALLS: the per-name
# table) attached to every process of the stack (server: master and workers; app: the FastCGI
# processes, fcgiwrap) for the whole wrk run, and divide by the requests wrk completed.
# wrk's own syscalls are not counted. Then, for cpm only, a second wrk run with
# `perf record -g -p WORKERS` (PROFILE_RECORD_SECS, default 5) -> perf-report.txt
# (`perf report --stdio --no-children`). PROFILE_CALLGRAPH=dwarf records DWARF call chains
# instead of frame pointers (cpm is built without frame pointers: fp chains are short).
#
# Output: OUT (default: $BENCH_RESULTS/profile when run.sh calls it, else
# t/bench/results/<date>-<time>-profile): profile.md (the tables, also printed), profile.tsv
# (the counts, for run.sh's ratios), perf-report.txt,
# stat-STACK.csv (perf's per-thread counts), pids-STACK.txt (tid -> class), wrk-STACK.txt,
# conf/ (configs and logs). Exit 1 when a stack fails to start or answer, wrk gives no result,
# or wrk counts errors for cpm (a peer's errors, e.g. nginx-fcgi-ka's timeouts, are reported).
#
# Load takes the benchmark lock (/tmp/cpm-peers-run.lock, the same as run.sh), waiting up
# to PROFILE_LOCK_WAIT s (1800) for it (run.sh sets CPM_BENCH_LOCKED=1: it holds it already).
#
# Environment: CPM_BIN (default ./cpm, built with make), PEERS_DIR (../shared/bench),
# PROFILE_BACKEND (fcgi), PROFILE_STACKS, PROFILE_SECS (10), PROFILE_CONNS (32),
# PROFILE_THREADS (2), PROFILE_WARMUP (2), PROFILE_RECORD_SECS (5; 0 = no perf record),
# PROFILE_CALLGRAPH (fp), FCGI_PROCS (4), PROFILE_QUIET_MAX (10 % of all CPUs),
# PROFILE_QUIET_WAIT (60 s), PROFILE_RUN_DIR (/tmp/cpm-profile-run), OUT.
set -u -o pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/../.." && pwd)
PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/bench}
BACKEND=${PROFILE_BACKEND:-fcgi}
SECS=${PROFILE_SECS:-10}
CONNS=${PROFILE_CONNS:-32}
THREADS=${PROFILE_THREADS:-2}
WARMUP=${PROFILE_WARMUP:-2}
RECORD_SECS=${PROFILE_RECORD_SECS:-5}
CALLGRAPH=${PROFILE_CALLGRAPH:-fp}
FCGI_PROCS=${FCGI_PROCS:-4}
QUIET_MAX=${PROFILE_QUIET_MAX:-10}
QUIET_WAIT=${PROFILE_QUIET_WAIT:-60}
LOCK_WAIT=${PROFILE_LOCK_WAIT:-1800}
PR=${PROFILE_RUN_DIR:-/tmp/cpm-profile-run}
NCPU=$(nproc)

case $BACKEND in
fcgi) DEFAULT_STACKS="cpm-fcgi nginx-fcgi-ka lighttpd-fcgi" URLPATH=/fcgi ;;
static) DEFAULT_STACKS="cpm-static nginx-static lighttpd-static" URLPATH=/static/4k.bin ;;
cgi) DEFAULT_STACKS="cpm-cgi nginx-fcgiwrap lighttpd-cgi" URLPATH=/cgi-bin/hello ;;
*) echo "profile.sh: PROFILE_BACKEND must be fcgi, static or cgi" >&2; exit 2 ;;
esac
STACKS=${PROFILE_STACKS:-$DEFAULT_STACKS}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "profile.sh: $*"; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root (perf on other users' processes, www-data workers)"
[ -d "$PEERS_DIR/apps" ] || die "peer benchmark not found: $PEERS_DIR (set PEERS_DIR)"
PEERS_DIR=$(cd "$PEERS_DIR" && pwd)

need=""
for p in wrk:wrk nginx:nginx lighttpd:lighttpd spawn-fcgi:spawn-fcgi perf:linux-perf \
    curl:curl gcc:gcc /usr/include/fcgiapp.h:libfcgi-dev /usr/sbin/fcgiwrap:fcgiwrap; do
    f=${p%%:*}
    if [ "${f#/}" != "$f" ]; then [ -e "$f" ] || need+=" ${p#*:}"; else command -v "$f" >/dev/null || need+=" ${p#*:}"; fi
done
if [ -n "$need" ]; then
    log "installing:$need"
    apt-get update >/dev/null || die "apt-get update failed"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y $need >/dev/null || die "apt-get install$need failed"
fi

if [ -z "${CPM_BIN:-}" ]; then
    make -C "$ROOT" cpm >&2 || die "building cpm failed"
    CPM_BIN=$ROOT/cpm
fi
[ -x "$CPM_BIN" ] || die "no cpm binary at $CPM_BIN"
CPM_BIN=$(cd "$(dirname "$CPM_BIN")" && pwd)/$(basename "$CPM_BIN")

if [ -z "${OUT:-}" ]; then
    if [ -n "${BENCH_RESULTS:-}" ]; then OUT=$BENCH_RESULTS/profile
    else OUT=$BENCH/results/$(date +%Y%m%d-%H%M%S)-profile; fi
    [ "$BACKEND" = fcgi ] || OUT=$OUT-$BACKEND
fi
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)

# One load at a time on this machine: the lock run.sh and the other bench scripts take.
if [ -z "${CPM_BENCH_LOCKED:-}" ]; then
    LOCK=${PEERS_RUN_DIR:-/tmp/cpm-peers-run}
    LOCK=${LOCK%/}.lock
    exec 9>>"$LOCK"
    if ! flock -n 9; then
        log "waiting up to ${LOCK_WAIT}s for $LOCK (another benchmark is running)"
        flock -w "$LOCK_WAIT" 9 || die "$LOCK still held after ${LOCK_WAIT}s"
    fi
fi

# ---------------------------------------------------------------- processes (by PID only)
ROOTS=()
STACK=""
start_bg() { "$PR/bin/cleansig" "$@" >>"$PR/logs/$STACK.out" 2>&1 & ROOTS+=("$!"); }
tree_pids() {   # the roots and all their descendants
    [ ${#ROOTS[@]} -gt 0 ] || return 0
    ps -eo pid=,ppid= | awk -v roots="${ROOTS[*]}" '
        { pp[$1] = $2 }
        END {
            n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1
            do { ch = 0; for (p in pp) if (!(p in keep) && (pp[p] in keep)) { keep[p] = 1; ch = 1 } } while (ch)
            for (p in keep) if (p in pp) print p
        }'
}
stop_stack() {
    [ ${#ROOTS[@]} -gt 0 ] || return 0
    local all p i left phase
    all=$(tree_pids)
    kill -TERM "${ROOTS[@]}" 2>/dev/null
    for phase in TERM KILL; do
        for i in $(seq 1 30); do
            left=""
            for p in $all; do [ -e "/proc/$p" ] && left+=" $p"; done
            [ -z "$left" ] && break 2
            sleep 0.1
        done
        log "$STACK: still running 3 s after TERM, sending $phase to:$left"
        # shellcheck disable=SC2086
        kill -"$phase" $left 2>/dev/null
    done
    for p in "${ROOTS[@]}"; do wait "$p" 2>/dev/null; done
    ROOTS=()
}
BGPID=""
# shellcheck disable=SC2317
cleanup() {
    local rc=$?
    [ -n "$BGPID" ] && kill "$BGPID" 2>/dev/null
    stop_stack
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
    local i
    for i in $(seq 1 200); do port_open "$1" && return 0; sleep 0.05; done
    log "$STACK: port $1 did not open"; return 1
}
wait_sock() {
    local i
    for i in $(seq 1 200); do [ -S "$1" ] && return 0; sleep 0.05; done
    log "$STACK: socket $1 did not appear"; return 1
}
cpu_sample() {
    local _cpu u n s i w q sq st _rest
    read -r _cpu u n s i w q sq st _rest </proc/stat
    echo "$((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st))"
}
busy_pct() {    # SAMPLE0 SAMPLE1 -> % of all CPUs (200 = 2 CPUs busy)
    local b0 t0 b1 t1
    read -r b0 t0 <<<"$1"; read -r b1 t1 <<<"$2"
    echo $(( t1 > t0 ? 100 * NCPU * (b1 - b0) / (t1 - t0) : 0 ))
}
quiet_wait() {  # until the machine is at most QUIET_MAX % busy over 1 s, at most QUIET_WAIT s
    local waited=0 c0 c1 busy
    while :; do
        c0=$(cpu_sample); sleep 1; c1=$(cpu_sample)
        busy=$(busy_pct "$c0" "$c1")
        [ "$busy" -le "$QUIET_MAX" ] || [ "$waited" -ge "$QUIET_WAIT" ] && break
        waited=$((waited + 1))
    done
    [ "$waited" -gt 0 ] && log "  waited ${waited}s for a quiet machine (last ${busy}%)"
    echo "$busy"
}

# ---------------------------------------------------------------- setup ($PR: our own files)
case $PR in /tmp/?*) ;; *) die "refusing PROFILE_RUN_DIR=$PR (must be under /tmp)" ;; esac
rm -rf "$PR"
mkdir -p "$PR/bin" "$PR/conf" "$PR/logs" "$PR/sock" "$PR/tmp" "$PR/www/cgi-bin" "$PR/www/static"
chmod 755 "$PR" "$PR/bin" "$PR/www" "$PR/www/cgi-bin" "$PR/www/static"
chown www-data:www-data "$PR/logs" "$PR/sock"
CC=${CC:-gcc}
$CC -O2 -Wall -o "$PR/bin/cleansig" "$PEERS_DIR/apps/cleansig.c" || die "build cleansig"
$CC -O2 -Wall -o "$PR/bin/fcgi-hello" "$PEERS_DIR/apps/fcgi-hello.c" -lfcgi || die "build fcgi-hello"
$CC -O2 -Wall -o "$PR/www/cgi-bin/hello" "$PEERS_DIR/apps/hello.c" || die "build hello"
head -c 4096 /dev/urandom >"$PR/www/static/4k.bin" && chmod 644 "$PR/www/static/4k.bin"
printf 'Hello, World!\n' >"$PR/expected-body"

# ---------------------------------------------------------------- stacks
# Same settings as run-peers.sh (nginx_conf, lighttpd_conf) and stacks-cpm.sh.
nginx_conf() {  # NAME PORT HTTP_EXTRA SERVER_BODY
    mkdir -p "$PR/nginx-$1" "$PR/tmp/nginx-$1"
    cat >"$PR/conf/nginx-$1.conf" <<EOF
user www-data www-data;
worker_processes 2;
pid $PR/nginx-$1.pid;
error_log $PR/logs/nginx-$1.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000;
    keepalive_timeout 65;
    client_body_temp_path $PR/tmp/nginx-$1/body;
    proxy_temp_path $PR/tmp/nginx-$1/proxy;
    fastcgi_temp_path $PR/tmp/nginx-$1/fastcgi;
    uwsgi_temp_path $PR/tmp/nginx-$1/uwsgi;
    scgi_temp_path $PR/tmp/nginx-$1/scgi;
    $3
    server {
        listen 127.0.0.1:$2;
        root $PR/www;
        $4
    }
}
EOF
    start_bg nginx -p "$PR/nginx-$1/" -e "$PR/logs/nginx-$1.err" -c "$PR/conf/nginx-$1.conf" -g 'daemon off;'
    wait_port "$2"
}
lighttpd_conf() {   # NAME PORT MODULES BODY
    cat >"$PR/conf/lighttpd-$1.conf" <<EOF
server.document-root = "$PR/www"
server.bind = "127.0.0.1"
server.port = $2
server.username = "www-data"
server.groupname = "www-data"
server.errorlog = "$PR/logs/lighttpd-$1.err"
server.max-worker = 2
server.max-keep-alive-requests = 10000
server.max-keep-alive-idle = 65
server.modules = ( $3 )
$4
EOF
    start_bg lighttpd -D -f "$PR/conf/lighttpd-$1.conf"
    wait_port "$2"
}
cpm_conf() {    # NAME PORT ROUTE_PREFIX BACKEND_JSON
    cat >"$PR/conf/$1.json" <<JSON
{
  "listen": ["127.0.0.1:$2"],
  "workers": 2,
  "user": "www-data",
  "access_log": null,
  "error_log": "$PR/logs/$1.err",
  "keepalive": 60,
  "routes": [ { "prefix": "$3", "backend": "b" } ],
  "backends": { "b": $4 }
}
JSON
    "$CPM_BIN" -t -c "$PR/conf/$1.json" >>"$PR/logs/$1.out" 2>&1 || { log "cpm rejected $PR/conf/$1.json"; return 1; }
    start_bg "$CPM_BIN" -c "$PR/conf/$1.json"
    wait_port "$2"
}
spawn_fcgi() {  # SOCKET PROCS COMMAND...
    local sock=$1 n=$2 pidfile
    pidfile=$PR/$(basename "$1").pid
    shift 2
    rm -f "$sock" "$pidfile"
    "$PR/bin/cleansig" spawn-fcgi -F "$n" -s "$sock" -M 0660 -u www-data -g www-data \
        -U www-data -G www-data -P "$pidfile" -- "$@" >>"$PR/logs/$STACK.out" 2>&1 || return 1
    # spawn-fcgi has exited: its children (listed in the pid file) are the roots
    local kids
    mapfile -t kids <"$pidfile"
    ROOTS+=("${kids[@]}")
    wait_sock "$sock"
}
# shellcheck disable=SC2016
LIGHTTPD_CGI_ASSIGN='$HTTP["url"] =~ "^/cgi-bin/" { cgi.assign = ( "" => "" ) }'
start_stack() { # NAME PORT
    local p=$2
    case $1 in
    cpm-fcgi) cpm_conf "$1" "$p" /fcgi "{ \"type\": \"fastcgi\", \"command\": [\"$PR/bin/fcgi-hello\"], \"processes\": $FCGI_PROCS }" ;;
    cpm-static) cpm_conf "$1" "$p" /static/ "{ \"type\": \"static\", \"root\": \"$PR/www/static\" }" ;;
    cpm-cgi) cpm_conf "$1" "$p" /cgi-bin/ "{ \"type\": \"cgi\", \"root\": \"$PR/www/cgi-bin\", \"max_concurrent\": 0 }" ;;
    nginx-fcgi-ka)
        spawn_fcgi "$PR/sock/fcgi-ka.sock" "$FCGI_PROCS" "$PR/bin/fcgi-hello" || return 1
        nginx_conf fcgi-ka "$p" "upstream fcgi_hello {
        server unix:$PR/sock/fcgi-ka.sock;
        keepalive 2;
        keepalive_requests 10000;
    }" 'location = /fcgi {
            include /etc/nginx/fastcgi_params;
            fastcgi_keep_conn on;
            fastcgi_pass fcgi_hello;
        }' ;;
    nginx-fcgi)
        spawn_fcgi "$PR/sock/fcgi.sock" "$FCGI_PROCS" "$PR/bin/fcgi-hello" || return 1
        nginx_conf fcgi "$p" "" "location = /fcgi {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:$PR/sock/fcgi.sock;
        }" ;;
    lighttpd-fcgi)
        lighttpd_conf fcgi "$p" '"mod_fastcgi"' "fastcgi.server = ( \"/fcgi\" => ((
        \"socket\" => \"$PR/sock/lighttpd-fcgi.sock\",
        \"bin-path\" => \"$PR/bin/fcgi-hello\",
        \"max-procs\" => $FCGI_PROCS,
        \"check-local\" => \"disable\"
    )) )" ;;
    nginx-static) nginx_conf static "$p" "sendfile on;
    open_file_cache max=1000 inactive=20s;" 'location /static/ { }' ;;
    lighttpd-static) lighttpd_conf static "$p" "" 'server.network-backend = "sendfile"' ;;
    nginx-fcgiwrap)
        spawn_fcgi "$PR/sock/fcgiwrap.sock" 1 /usr/sbin/fcgiwrap -c 4 || return 1
        nginx_conf fcgiwrap "$p" "" "location /cgi-bin/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$PR/sock/fcgiwrap.sock;
        }" ;;
    lighttpd-cgi) lighttpd_conf cgi "$p" '"mod_cgi"' "$LIGHTTPD_CGI_ASSIGN" ;;
    *) log "unknown stack $1"; return 1 ;;
    esac
}

verify() {  # URL
    local code
    code=$(curl -sS --max-time 10 -o "$PR/tmp/body" -w '%{http_code}' "$1" 2>>"$PR/logs/$STACK.out") || true
    [ "$code" = 200 ] || { log "$STACK: $1 answered '$code'"; return 1; }
    if [ "$BACKEND" = static ]; then
        cmp -s "$PR/tmp/body" "$PR/www/static/4k.bin" || { log "$STACK: $1: body differs from 4k.bin"; return 1; }
    else
        cmp -s "$PR/tmp/body" "$PR/expected-body" || { log "$STACK: $1: body is not 'Hello, World!'"; return 1; }
    fi
}

# tid -> class for every thread of the stack: "app" = FastCGI/CGI application processes
# (fcgi-hello, fcgiwrap), "server" = everything else (master, workers, spawn helpers).
classify() {    # prints "tid class pid comm" lines
    local p t exe cls
    for p in $(tree_pids); do
        exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
        case ${exe##*/} in fcgi-hello|fcgiwrap|hello) cls=app ;; *) cls=server ;; esac
        for t in /proc/"$p"/task/*; do
            echo "${t##*/} $cls $p $(tr -d ' ' <"/proc/$p/comm")"
        done
    done
}

wrk_run() { # URL SECS OUTFILE (wrk through perf stat / plain)
    "$PR/bin/cleansig" wrk -t"$THREADS" -c"$CONNS" -d"$2s" --latency -s "$PEERS_DIR/report.lua" "$1"
}

# ---------------------------------------------------------------- measure
{
    echo "date: $(date -Is)"; echo "kernel: $(uname -r)"; echo "cpus: $NCPU"
    grep -m1 'model name' /proc/cpuinfo
    echo "cpm: $CPM_BIN ($("$CPM_BIN" -v 2>&1)) git: $(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
    echo "nginx: $(nginx -v 2>&1)  lighttpd: $(lighttpd -v 2>&1 | head -1)  perf: $(perf --version)"
    echo "settings: BACKEND=$BACKEND SECS=$SECS CONNS=$CONNS THREADS=$THREADS WARMUP=$WARMUP FCGI_PROCS=$FCGI_PROCS RECORD_SECS=$RECORD_SECS CALLGRAPH=$CALLGRAPH"
    echo "loadavg: $(cat /proc/loadavg)"
} >"$OUT/env.txt"

# The named syscalls counted one by one as well (tracepoints: no multiplexing), for the
# per-name table; what is not in this list shows as "other".
SC_EVENTS=""
for n in ${PROFILE_SYSCALLS:-read write readv writev recvfrom sendto recvmsg sendmsg epoll_wait \
    epoll_pwait epoll_ctl accept4 accept connect close shutdown socket openat newfstatat fstat statx \
    sendfile splice timerfd_settime setsockopt getsockopt fcntl ioctl pipe2 clone clone3 vfork execve \
    wait4 waitid kill rt_sigprocmask rt_sigaction poll ppoll getpid mmap munmap mprotect brk futex}; do
    for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
        [ -d "$d/events/syscalls/sys_enter_$n" ] && { SC_EVENTS+=",syscalls:sys_enter_$n"; break; }
    done
done

RC=0
ROWS=()
for STACK in $STACKS; do
    port=$(free_port)
    log "=== $STACK (127.0.0.1:$port)"
    url=http://127.0.0.1:$port$URLPATH
    if ! start_stack "$STACK" "$port" || ! verify "$url"; then
        log "$STACK: FAILED to start or answer (see $PR/logs/)"
        ROWS+=("$STACK FAILED")
        RC=1; stop_stack; continue
    fi
    wrk_run "$url" "$WARMUP" >/dev/null 2>&1
    pre=$(quiet_wait)
    classify >"$OUT/pids-$STACK.txt"
    pids=$(awk '{ print $3 }' "$OUT/pids-$STACK.txt" | sort -un | paste -sd,)
    c0=$(cpu_sample)
    perf stat -x, --per-thread -e "raw_syscalls:sys_enter,context-switches$SC_EVENTS" -p "$pids" \
        -o "$OUT/stat-$STACK.csv" -- "$PR/bin/cleansig" wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency \
        -s "$PEERS_DIR/report.lua" "$url" >"$OUT/wrk-$STACK.txt" 2>&1
    c1=$(cpu_sample)
    busy=$(busy_pct "$c0" "$c1")
    line=$(grep -m1 '^RESULT ' "$OUT/wrk-$STACK.txt") || { log "$STACK: wrk gave no result"; ROWS+=("$STACK FAILED"); RC=1; stop_stack; continue; }
    ROWS+=("$STACK ${line#RESULT } busy=$busy pre=$pre")
    log "  $(awk '/Requests\/sec/ { print $2 " req/s" }' "$OUT/wrk-$STACK.txt"), machine busy ${busy}% of $((NCPU * 100))%"

    if [ "${STACK%%-*}" = cpm ] && [ "$RECORD_SECS" -gt 0 ]; then
        workers=$(awk '$4 ~ /^cpm/ && $2 == "server" { print $3 }' "$OUT/pids-$STACK.txt" | sort -un |
            while read -r p; do grep -q '^cpm: worker' "/proc/$p/cmdline" 2>/dev/null && echo "$p"; done | paste -sd,)
        [ -n "$workers" ] || workers=$pids
        cg=(-g)
        [ "$CALLGRAPH" = fp ] || cg=(--call-graph "$CALLGRAPH")
        log "  perf record ${cg[*]} on workers $workers for ${RECORD_SECS}s"
        wrk_run "$url" $((RECORD_SECS + 2)) >"$OUT/wrk-$STACK-record.txt" 2>&1 & BGPID=$!
        sleep 1
        perf record "${cg[@]}" -F 999 -p "$workers" -o "$PR/perf.data" -- sleep "$RECORD_SECS" \
            >"$OUT/perf-record.log" 2>&1
        wait "$BGPID"; BGPID=""
        {
            echo "# $STACK ($BACKEND, c=$CONNS): perf record ${cg[*]} -F 999 on cpm's workers ($workers), ${RECORD_SECS}s"
            echo "# by object (--sort dso):"
            perf report -i "$PR/perf.data" --stdio --no-children -g none --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$'
            echo; echo "# flat profile, both workers together (--no-children -g none --sort dso,sym), entries >= 0.5 %:"
            perf report -i "$PR/perf.data" --stdio --no-children -g none --sort dso,sym --percent-limit 0.5 2>/dev/null |
                grep -v '^$'
            echo; echo "# user space only (--dsos cpm,libc.so.6), entries >= 0.2 % of all samples:"
            perf report -i "$PR/perf.data" --stdio --no-children -g none --sort dso,sym --dsos "$(basename "$CPM_BIN"),libc.so.6" \
                --percent-limit 0.2 2>/dev/null | grep -v '^#' | grep -v '^$'
            echo; echo "# with call chains (callee first), entries >= 2 %:"
            perf report -i "$PR/perf.data" --stdio --no-children --sort dso,sym --percent-limit 2 2>/dev/null
        } >"$OUT/perf-report.txt"
    fi
    stop_stack
done
STACK=""
cp -p "$PR"/conf/* "$PR"/logs/* "$OUT/" 2>/dev/null; mkdir -p "$OUT/conf"
mv "$OUT"/*.json "$OUT"/*.conf "$OUT"/*.err "$OUT"/*.out "$OUT/conf/" 2>/dev/null

# ---------------------------------------------------------------- table
python3 - "$OUT" "$BACKEND" "$CONNS" "$SECS" "${ROWS[@]}" <<'PY' | tee "$OUT/profile.md"
import os, sys
out, backend, conns, secs, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
print(f"### syscalls and context switches per request ({backend}, wrk -t2 -c{conns}, {secs} s; "
      "perf stat -e raw_syscalls:sys_enter,context-switches on every process of the stack)\n")
print("| stack | req/s | p50 ms | p99 ms | errors | syscalls/req (server + app) | ctx sw/req (server + app) "
      "| server / app threads | server syscalls by thread % | machine busy % |")
print("|---|---|---|---|---|---|---|---|---|---|")
bad = False
named, nreq = {}, {}
tsv = open(os.path.join(out, "profile.tsv"), "w")
tsv.write("stack\tbackend\tconns\trequests\tduration_us\tp99_us\terrors\tsyscalls_server\tsyscalls_app\tcsw_server\tcsw_app\n")
for row in rows:
    name, rest = row.split(" ", 1)
    if rest == "FAILED":
        print(f"| {name} | FAILED | | | | | | | | |"); bad = True; continue
    kv = dict(x.split("=", 1) for x in rest.split())
    n, us = int(kv["requests"]), int(kv["duration_us"])
    cls = {}
    with open(os.path.join(out, f"pids-{name}.txt")) as f:
        for line in f:
            tid, c, _pid, _comm = line.split()
            cls[tid] = c
    cnt = {("server", "sc"): 0, ("app", "sc"): 0, ("server", "cs"): 0, ("app", "cs"): 0}
    per_thread = {}
    with open(os.path.join(out, f"stat-{name}.csv")) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            p = line.rstrip("\n").split(",")
            if len(p) < 4 or not p[1].strip().isdigit():
                continue
            tid = p[0].rsplit("-", 1)[-1]
            c = cls.get(tid, "server")
            if p[3].startswith("syscalls:sys_enter_"):
                k = (p[3][len("syscalls:sys_enter_"):], c)
                named.setdefault(name, {})[k] = named.get(name, {}).get(k, 0) + int(p[1])
                continue
            ev = "sc" if "sys_enter" in p[3] else "cs" if "context" in p[3] else None
            if ev:
                cnt[(c, ev)] += int(p[1])
            if ev == "sc" and c == "server":
                per_thread[tid] = int(p[1])
    nsrv = sum(1 for c in cls.values() if c == "server")
    napp = len(cls) - nsrv
    errs = sum(int(kv[k]) for k in ("connect", "read", "write", "timeout", "status"))
    nreq[name] = (n, cnt)
    tsv.write(f"{name}\t{backend}\t{conns}\t{n}\t{us}\t{kv['p99_us']}\t{errs}\t{cnt['server', 'sc']}\t{cnt['app', 'sc']}"
              f"\t{cnt['server', 'cs']}\t{cnt['app', 'cs']}\n")
    tot = sum(per_thread.values())
    split = "/".join(f"{100 * v / tot:.0f}" for v in sorted(per_thread.values(), reverse=True) if tot and v >= tot / 100)
    bad = bad or (errs > 0 and name.startswith("cpm"))
    rps, p50 = n / (us / 1e6), int(kv["p50_us"]) / 1000
    starved = " ‡" if rps * p50 / 1000 < conns / 4 else ""
    def per(a, b):
        return f"{(a + b) / n:.1f} ({a / n:.1f} + {b / n:.1f})" if n else "-"
    print(f"| {name} | {rps:,.0f}{starved} | {p50:.2f} | {int(kv['p99_us']) / 1000:.2f} | {errs} "
          f"| {per(cnt['server', 'sc'], cnt['app', 'sc'])} | {per(cnt['server', 'cs'], cnt['app', 'cs'])} "
          f"| {nsrv} / {napp} | {split} | {kv['busy']} |")
print("\nper request = counts over the whole wrk run ÷ requests wrk completed (wrk's own syscalls are "
      "not counted); '‡' = req/s × p50 < c/4: most connections starved (as in run-peers.sh's report).")
if named:
    names = sorted({k[0] for d in named.values() for k in d})
    st = [x for x in named if nreq.get(x, (0,))[0]]
    print("\n### syscalls per request by name (server | app; same run)\n")
    print("| syscall | " + " | ".join(st) + " |")
    print("|---|" + "---|" * len(st))
    def cell(x, nm):
        n = nreq[x][0]
        a, b = named[x].get((nm, "server"), 0) / n, named[x].get((nm, "app"), 0) / n
        return f"{a:.2f} \\| {b:.2f}" if a >= 0.005 or b >= 0.005 else "-"
    lines = []
    for nm in names:
        cells = [cell(x, nm) for x in st]
        if any(c != "-" for c in cells):
            lines.append((-max(sum(named[x].get((nm, c), 0) / nreq[x][0] for c in ("server", "app")) for x in st), nm, cells))
    for _, nm, cells in sorted(lines):
        print(f"| {nm} | " + " | ".join(cells) + " |")
    other = []
    for x in st:
        n, cnt = nreq[x]
        o = [(cnt[(c, "sc")] - sum(v for k, v in named[x].items() if k[1] == c)) / n for c in ("server", "app")]
        other.append(f"{max(o[0], 0):.2f} \\| {max(o[1], 0):.2f}")
    print("| (other) | " + " | ".join(other) + " |")
if backend == "cgi":
    print("CGI: a process forked while perf is attached (the CGI program, fcgiwrap's children) is counted "
          "in the thread that forked it (perf inherits the counters): cpm's and lighttpd's 'server' include "
          "their CGI children, nginx-fcgiwrap's 'app' includes fcgiwrap's.")
if os.path.exists(os.path.join(out, "perf-report.txt")):
    print(f"perf profile of cpm's workers: {out}/perf-report.txt")
sys.exit(1 if bad else 0)
PY
[ "${PIPESTATUS[0]}" = 0 ] || RC=1
exit "$RC"
