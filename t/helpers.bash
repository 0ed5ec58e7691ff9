# Shared helpers for the bats suite: start the real cpm on a free port,
# talk to it with curl or raw sockets, stop it and check nothing is left.
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
CPM=$ROOT/cpm
APPS=$ROOT/t/apps

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The suite runs as root from a checkout (and temp directories) that
# "nobody", cpm's default user as root, may not reach: the configs the
# tests write say "user": "root" (the way to insist), unless CPM_USER says
# otherwise (CPM_USER= : no "user" at all). t/privileges.bats tests the
# default.
CPM_USER=${CPM_USER-root}

# user_member [TOP]: '"user": "NAME",' for CPM_USER, or nothing (also when
# the top-level members TOP name a user)
user_member() {
	[ -z "$CPM_USER" ] || [[ "${1:-}" == *'"user"'* ]] || printf '"user": "%s",' "$CPM_USER"
}

# examples_copy: prints a new directory under /tmp, open to all, holding a
# copy of etc/ and examples/ (built): run from there as root, the shipped
# etc/cpm.json serves the examples as nobody wherever the checkout is (CI
# may clone under /root, mode 0700). The caller removes it.
examples_copy() {
	local d
	d=$(mktemp -d /tmp/cpm-examples.XXXXXX) && chmod 0755 "$d" && cp -a "$ROOT/etc" "$ROOT/examples" "$d/" &&
		echo "$d"
}

# cpm_config [extra top-level JSON members] [extra cgi backend members]
# Writes $BATS_TEST_TMPDIR/cpm.json serving t/apps at / and examples/ at /ex/.
cpm_config() {
	CPM_PORT=${CPM_PORT:-$(free_port)}
	local top=${1:-} cgi=${2:-} user
	user=$(user_member "$top")
	[ -n "$top" ] && top="$top,"
	[ -n "$cgi" ] && cgi=", $cgi"
	cat >"$BATS_TEST_TMPDIR/cpm.json" <<JSON
{
  "listen": ["127.0.0.1:$CPM_PORT"],
  "workers": ${CPM_WORKERS:-2},
  "access_log": "$BATS_TEST_TMPDIR/access.log",
  "error_log": "$BATS_TEST_TMPDIR/error.log",
  $user $top
  "routes": [
    { "prefix": "/ex/", "backend": "examples" },
    { "prefix": "/", "backend": "apps" }
  ],
  "backends": {
    "apps": { "type": "cgi", "root": "${CPM_ROOT:-$APPS}", "timeout": ${CPM_CGI_TIMEOUT:-10} $cgi },
    "examples": { "type": "cgi", "root": "$ROOT/examples" }
  }
}
JSON
}

# cpm_start [args...]: start cpm -c $BATS_TEST_TMPDIR/cpm.json (written by
# cpm_config if absent) and wait until the port answers.
cpm_start() {
	[ -f "$BATS_TEST_TMPDIR/cpm.json" ] || cpm_config
	CPM_LOG=$BATS_TEST_TMPDIR/error.log
	"$CPM" -c "$BATS_TEST_TMPDIR/cpm.json" "$@" >>"$BATS_TEST_TMPDIR/stderr.log" 2>&1 &
	CPM_PID=$!
	wait_listening "$CPM_PORT" "$CPM_PID" && return 0
	echo "cpm did not start:" >&2
	cat "$BATS_TEST_TMPDIR/stderr.log" "$CPM_LOG" >&2 2>/dev/null
	return 1
}

# wait_listening PORT PID: until 127.0.0.1:PORT takes a connection (0), or
# PID has exited or 5 s have passed (1)
wait_listening() {
	local i
	for i in $(seq 100); do
		if python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# stop_pid PID: QUIT, wait (bounded: 5 s), then KILL, and reap it.
stop_pid() {
	[ -n "${1:-}" ] || return 0
	kill -QUIT "$1" 2>/dev/null || true
	local i
	for i in $(seq 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# cpm_stop: stop_pid on cpm's master.
cpm_stop() {
	stop_pid "${CPM_PID:-}"
	CPM_PID=
}

# cpu_ticks PID: user + system clock ticks PID has used: fields 14 and 15
# of /proc/PID/stat, counted after "(comm)" — cpm's process names ("cpm:
# worker 0") have spaces, so counting from the start reads other fields
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

workers_of() {
	pgrep -P "$1" -f "cpm: worker" || true
}

# cgi_groups_of MASTER: process groups of the CGI programs its workers run
cgi_groups_of() {
	local w
	for w in $(workers_of "$1"); do
		ps -o pgid= --ppid "$w" 2>/dev/null || true
	done | sort -u
}

# live_in_group PGID: processes of the group still running (zombies aside:
# once cpm is gone, pid 1 may be slow to reap what it inherited)
live_in_group() {
	ps -o pid=,stat= -g "$1" 2>/dev/null | awk '$2 !~ /^Z/ {print $1}'
}

teardown() {
	local master=${CPM_PID:-}
	local kids="" groups=""
	if [ -n "$master" ]; then
		kids=$(workers_of "$master")
		groups=$(cgi_groups_of "$master")
	fi
	cpm_stop
	# nothing cpm started may outlive it: workers, CGI programs and what
	# they forked (each CGI program leads its own process group)
	local k g left rc=0
	for k in $kids; do
		! kill -0 "$k" 2>/dev/null || { echo "worker $k survived" >&2; kill -KILL "$k"; rc=1; }
	done
	for g in $groups; do
		left=$(live_in_group "$g")
		[ -z "$left" ] || { echo "CGI process group $g survived: $left" >&2; kill -KILL -- "-$g"; rc=1; }
	done
	# a sanitizer build (make test SANITIZE=1) reports on stderr
	if grep -sE "runtime error|AddressSanitizer" "$BATS_TEST_TMPDIR/stderr.log" "$BATS_TEST_TMPDIR/error.log" >&2; then
		rc=1
	fi
	# no test may crash a worker, whatever it asserts: a worker that died
	# of SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT fails it (tests that
	# kill workers on purpose send KILL or TERM)
	if grep -sE "worker [0-9]+ \(pid [0-9]+\) killed by signal (4|6|7|8|11) " "$BATS_TEST_TMPDIR/error.log" >&2; then
		rc=1
	fi
	return $rc
}

url() {
	echo "http://127.0.0.1:$CPM_PORT$1"
}

# raw "bytes with \r\n escapes" [timeout]: send, print all that comes back
raw() {
	python3 "$ROOT/t/rawhttp.py" "$CPM_PORT" "$1" "${2:-3}"
}

# raw_http PORT "bytes" [timeout]: raw against any port
raw_http() {
	python3 "$ROOT/t/rawhttp.py" "$1" "$2" "${3:-3}"
}

# within SECONDS CMD...: retry CMD every 50 ms until it succeeds. CMD's
# arguments are expanded once, by the caller: to test something that
# changes, wrap it in a function or in eval '...'.
within() {
	local n=$(($1 * 20)) i
	shift
	for i in $(seq "$n"); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# wait_exit PID SECONDS: wait for cpm (a child of this shell: do not call
# it under `run`) to exit within SECONDS; sets EXIT_STATUS (or "running").
wait_exit() {
	local pid=$1 i
	EXIT_STATUS=running
	for i in $(seq $(($2 * 20))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && return 0
	EXIT_STATUS=0
	wait "$pid" || EXIT_STATUS=$?
}

# gone PID: the process has exited (a zombie counts: once cpm is gone its
# children are reparented to pid 1, which may not reap them here)
gone() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "${st#Z}" != "$st" ]
}

# group_gone PGID: no live (non-zombie) process is left in the process
# group (a CGI program leads its own, so this covers what it forked)
group_gone() {
	! ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'
}

# build_fcgi_apps APP...: compile t/apps-fcgi/APP.c against libfcgi into
# $BATS_FILE_TMPDIR/APP (for setup_file)
build_fcgi_apps() {
	command -v gcc >/dev/null || {
		echo "gcc is missing: install build-essential" >&2
		return 1
	}
	[ -f /usr/include/fcgiapp.h ] || {
		echo "fcgiapp.h is missing: install libfcgi-dev" >&2
		return 1
	}
	local a
	for a in "$@"; do
		gcc -O2 -Wall -Wextra -Werror -o "$BATS_FILE_TMPDIR/$a" "$ROOT/t/apps-fcgi/$a.c" -lfcgi || {
			echo "cannot build t/apps-fcgi/$a.c against libfcgi" >&2
			return 1
		}
	done
}

# start_php_fpm DIR [USER]: run php-fpm (php-fpm8.2, or php-fpm) in the
# foreground (-F, -R: root allowed, as the tests run) with its own
# configuration in DIR, one static pool of 2 children (running as USER,
# default the current user) on the unix socket DIR/php.sock (owned by USER
# too); sets PHP_FPM_PID and waits for the socket. stop_php_fpm stops it
# by that pid.
start_php_fpm() {
	local dir=$1 bin i who=${2:-$(id -un)}
	bin=$(command -v php-fpm8.2 || command -v php-fpm) || return 1
	cat >"$dir/php-fpm.conf" <<CONF
[global]
error_log = $dir/php-fpm.log
daemonize = no
pid = $dir/php-fpm.pid

[test]
user = $who
listen = $dir/php.sock
listen.owner = $who
pm = static
pm.max_children = 2
catch_workers_output = yes
CONF
	# fd 3 is bats' output: a daemon holding it would hold up the suite
	"$bin" -F -R -n -y "$dir/php-fpm.conf" >>"$dir/php-fpm.out" 2>&1 3>&- &
	PHP_FPM_PID=$!
	for i in $(seq 100); do
		[ -S "$dir/php.sock" ] && return 0
		kill -0 "$PHP_FPM_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "php-fpm did not start:" >&2
	cat "$dir/php-fpm.out" "$dir/php-fpm.log" >&2 2>/dev/null
	return 1
}

stop_php_fpm() {
	stop_pid "${PHP_FPM_PID:-}"
	PHP_FPM_PID=
}
