#!/usr/bin/env bats
# The Debian package (debian/): dpkg-buildpackage in a temporary copy of
# the tree, lintian, what the .deb holds, and a real install on this
# machine: the cpm user, the installed cpm serving the package's
# /etc/cpm/cpm.json the way cpm.service starts it, logrotate, purge.
load helpers

DEB_ALLOWED_LINTIAN_TAGS="initial-upload-closes-no-bugs"

setup_file() {
	[ "$(id -u)" = 0 ] || skip "needs root: dpkg-buildpackage, dpkg -i and the cpm user"
	# the tracked and the new (not ignored) files, as they are in the work
	# tree; dpkg-buildpackage writes ../*.deb, so the copy is one level down
	local src=$BATS_FILE_TMPDIR/cpm
	mkdir "$src"
	(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		tar --null -T - -cf -) | tar -xf - -C "$src"
	# nocheck: make unit runs in make test already; this is about the package.
	# Not make test's variables (make test SANITIZE=1 puts SANITIZE in the environment and
	# MAKEFLAGS): the package is built as debian/rules says
	(cd "$src" && env -u SANITIZE -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u CFLAGS -u CPPFLAGS -u LDFLAGS -u CC \
		DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b -j2) >"$BATS_FILE_TMPDIR/build.log" 2>&1 ||
		{ tail -30 "$BATS_FILE_TMPDIR/build.log" >&3; return 1; }
	export DEB CHANGES
	DEB=$(ls "$BATS_FILE_TMPDIR"/cpm_*_*.deb)
	CHANGES=$(ls "$BATS_FILE_TMPDIR"/cpm_*.changes)
}

@test "the package builds with the hardening flags, and the Makefile's own flags stay" {
	# dpkg-buildflags reach the compiler through the environment; -Werror
	# and CPM_VERSION come from the Makefile
	run grep -c -- '-D_FORTIFY_SOURCE=2 .*-fstack-protector-strong .*-Werror .*-DCPM_VERSION=' "$BATS_FILE_TMPDIR/build.log"
	[ "$output" -gt 20 ]
	run grep -E -- '-Wl,-z,relro -Wl,-z,now.* -o cpm ' "$BATS_FILE_TMPDIR/build.log"
	assert_success
	local bin=$BATS_TEST_TMPDIR/x
	dpkg-deb -x "$DEB" "$bin"
	run readelf -h "$bin/usr/sbin/cpm"
	assert_output --regexp 'Type: +DYN'
	run readelf -d "$bin/usr/sbin/cpm"
	assert_output --regexp 'FLAGS.*BIND_NOW'
	run readelf -l "$bin/usr/sbin/cpm"
	assert_output --partial GNU_RELRO
	run readelf -W --dyn-syms "$bin/usr/sbin/cpm"
	assert_output --regexp '__[a-z_]+_chk'
	run "$bin/usr/sbin/cpm" -v
	assert_output "cpm $(sed -n 's/^VERSION *= *//p' "$ROOT/Makefile")"
}

@test "lintian: no errors, and no warning but the allowed ones" {
	run lintian --no-tag-display-limit "$CHANGES" "$DEB"
	echo "$output"
	refute_line --regexp '^E: '
	local w tag
	while read -r w; do
		tag=$(echo "$w" | awk '{print $3}')
		case " $DEB_ALLOWED_LINTIAN_TAGS " in
		*" $tag "*) ;;
		*) echo "unexpected: $w" >&2; return 1 ;;
		esac
	done < <(echo "$output" | grep '^W: ' || true)
}

@test "the .deb: files, conffiles, dependencies, maintainer scripts, units" {
	run sh -c "dpkg-deb -c '$DEB' | awk '{print \$6}' | grep -v '/\$' | sort"
	assert_output "./etc/cpm/cpm.json
./etc/logrotate.d/cpm
./lib/systemd/system/cpm.service
./lib/systemd/system/cpm.socket
./usr/sbin/cpm
./usr/share/doc/cpm/README.Debian
./usr/share/doc/cpm/changelog.Debian.gz
./usr/share/doc/cpm/copyright
./usr/share/man/man5/cpm.json.5.gz
./usr/share/man/man8/cpm.8.gz"
	run dpkg-deb -f "$DEB" Depends
	assert_output --regexp '^adduser, libc6 .*libjansson4 .*libssl3 '
	run dpkg-deb -f "$DEB" Recommends
	assert_output media-types
	local ctl=$BATS_TEST_TMPDIR/ctl
	dpkg-deb -e "$DEB" "$ctl"
	run cat "$ctl/conffiles"
	assert_output "/etc/cpm/cpm.json
/etc/logrotate.d/cpm"
	grep -q 'adduser --system --group' "$ctl/postinst"
	grep -q "deb-systemd-helper enable 'cpm.service'" "$ctl/postinst"
	# cpm.socket is installed, not enabled
	! grep -q "deb-systemd-helper enable 'cpm.socket' >/dev/null || true$" <(sed -n '/was-enabled .cpm.socket/,/fi/!p' "$ctl/postinst")
	grep -q 'rm -rf /var/log/cpm' "$ctl/postrm"
	# the user stays on purge (Debian practice: files elsewhere may be its)
	run grep -E 'deluser|userdel' "$ctl/postrm"
	assert_failure
	local x=$BATS_TEST_TMPDIR/x
	dpkg-deb -x "$DEB" "$x"
	run grep -E '^(Exec|Requires|KillSignal|KillMode|Documentation)' "$x/lib/systemd/system/cpm.service"
	assert_output "Documentation=man:cpm(8) man:cpm.json(5)
ExecStart=/usr/sbin/cpm -c /etc/cpm/cpm.json
ExecReload=/usr/sbin/cpm -s reload -c /etc/cpm/cpm.json
KillSignal=SIGQUIT
KillMode=mixed"
	# the optional socket listens where the config does
	run sed -n 's/^ListenStream=//p' "$x/lib/systemd/system/cpm.socket"
	assert_output "$(jq -r '.listen[0]' "$x/etc/cpm/cpm.json")"
	# the safe default: loopback only, a user, no examples
	run jq -c '[.listen, .user, ([.backends[].type] | sort)]' "$x/etc/cpm/cpm.json"
	assert_output '[["127.0.0.1:8080"],"cpm",["health","status"]]'
}

# --- a real install -------------------------------------------------------

pkg_installed() {
	dpkg-query -W -f='${Status}' cpm 2>/dev/null | grep -q 'ok installed'
}

# dpkg, waiting (at most 60 s) while another dpkg or apt holds the lock
dpkg_locked() {
	local i out rc
	for i in $(seq 60); do
		rc=0
		out=$(dpkg "$@" 2>&1) || rc=$?
		if [ $rc -ne 0 ] && echo "$out" | grep -q 'lock'; then
			sleep 1
			continue
		fi
		echo "$out"
		return $rc
	done
	echo "$out"
	return 1
}

setup() {
	CREATED_USER=
	INSTALLED=
	MASTER=
}

teardown() {
	local rc=0
	if [ -n "$MASTER" ] && kill -0 "$MASTER" 2>/dev/null; then
		# QUIT first: workers outlive a master that is KILLed
		echo "cpm master $MASTER still running: stopping it" >&2
		stop_pid "$MASTER"
		rc=1
	fi
	if [ -n "$INSTALLED" ] && pkg_installed; then
		[ -d /run/systemd/system ] && systemctl stop cpm.service 2>/dev/null
		dpkg_locked --purge cpm >&2 || rc=1
	fi
	# the package keeps its user; the test leaves the machine as it found it
	if [ -n "$CREATED_USER" ] && getent passwd cpm >/dev/null; then
		within 5 eval '! ps -u cpm -o pid= | grep -q .' || { ps -u cpm -o pid,ppid,cmd >&2; rc=1; }
		deluser --quiet --system cpm >&2 || rc=1
		! getent group cpm >/dev/null || delgroup --quiet --system cpm >&2 || rc=1
	fi
	return $rc
}

@test "dpkg -i: the cpm user, the installed cpm serves /healthz as cpm.service starts it; logrotate; dpkg --purge leaves nothing" {
	if pkg_installed; then
		skip "a cpm package is already installed here: $(dpkg-query -W cpm)"
	fi
	if ss -Hltn 'sport = :8080' | grep -q .; then
		echo "127.0.0.1:8080, the package config's address, is taken:" >&2
		ss -Hltnp 'sport = :8080' >&2
		return 1
	fi
	getent passwd cpm >/dev/null || CREATED_USER=1
	INSTALLED=1
	run dpkg_locked -i "$DEB"
	assert_success

	# the system user and its log directory
	run getent passwd cpm
	assert_output --regexp '^cpm:x:[0-9]+:[0-9]+:[^:]*:/nonexistent:/usr/sbin/nologin$'
	[ "$(id -u cpm)" -lt 1000 ]
	run stat -c '%U:%G %a' /var/log/cpm
	assert_output "cpm:adm 750"
	run dpkg-query -W -f='${Conffiles}' cpm
	assert_output --partial "/etc/cpm/cpm.json "
	run /usr/sbin/cpm -t -c /etc/cpm/cpm.json
	assert_success
	assert_output "cpm: configuration /etc/cpm/cpm.json is ok"

	# start it as the unit does: systemctl where systemd runs, else the
	# unit's ExecStart with its empty environment, stopped with KillSignal
	local unit=/lib/systemd/system/cpm.service
	if [ -d /run/systemd/system ]; then
		run systemctl is-active cpm.service
		assert_output active
	else
		echo "# systemd is not PID 1 here ($(ps -o comm= -p 1)): ExecStart of $unit" >&3
		local exec
		exec=$(sed -n 's/^ExecStart=//p' "$unit")
		[ "$exec" = "/usr/sbin/cpm -c /etc/cpm/cpm.json" ]
		# shellcheck disable=SC2086
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin $exec 3>&- &
		MASTER=$!
	fi
	within 10 curl -sf -o /dev/null http://127.0.0.1:8080/healthz
	run curl -s -i http://127.0.0.1:8080/healthz
	assert_line --regexp '^HTTP/1.1 200 '
	assert_line --partial 'ok'
	run curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/status
	assert_output 200
	# no examples: nothing else is served
	run curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/
	assert_output 404
	local pid
	pid=$(cat /run/cpm.pid)
	[ -z "$MASTER" ] || [ "$pid" = "$MASTER" ]
	run ps -o user= --ppid "$pid"
	assert_output "cpm
cpm"
	[ -S /run/cpm.ctl ]
	within 5 grep -q 'GET /healthz' /var/log/cpm/access.log
	run stat -c '%U' /var/log/cpm/access.log /var/log/cpm/error.log
	assert_output "cpm
cpm"

	# logrotate with the package's config: the old file moves, USR1 makes
	# cpm write to a new one
	logrotate -f -s "$BATS_TEST_TMPDIR/logrotate.state" /etc/logrotate.d/cpm
	[ -s /var/log/cpm/access.log.1 ]
	curl -sf -o /dev/null http://127.0.0.1:8080/healthz?rotated
	within 5 grep -q 'GET /healthz?rotated' /var/log/cpm/access.log
	run grep -c rotated /var/log/cpm/access.log.1
	assert_output 0
	# through the control socket (the postrotate script's first choice),
	# logged to the file it had, then moved
	grep -q 'control: "reopen" from pid' /var/log/cpm/error.log.1

	# stop it as the unit does
	if [ -d /run/systemd/system ]; then
		systemctl stop cpm.service
	else
		local sig
		sig=$(sed -n 's/^KillSignal=SIG//p' "$unit")
		[ "$sig" = QUIT ]
		kill -"$sig" "$MASTER"
		wait_exit "$MASTER" 40
		assert_equal "$EXIT_STATUS" 0
		MASTER=
	fi
	[ ! -e /run/cpm.pid ]
	[ ! -e /run/cpm.ctl ]

	run dpkg_locked --purge cpm
	assert_success
	run dpkg-query -W -f='${Status}' cpm
	refute_output --partial installed
	local f
	for f in /usr/sbin/cpm /etc/cpm /etc/logrotate.d/cpm /var/log/cpm /lib/systemd/system/cpm.service \
		/lib/systemd/system/cpm.socket /usr/share/doc/cpm /usr/share/man/man8/cpm.8.gz \
		/etc/systemd/system/multi-user.target.wants/cpm.service; do
		[ ! -e "$f" ] || { echo "left after purge: $f" >&2; return 1; }
	done
	# the user stays
	getent passwd cpm >/dev/null
}
