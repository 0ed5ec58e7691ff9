#!/usr/bin/env bats
# DokuWiki as Debian packages it (/usr/share/dokuwiki), served by cpm alone
# from etc/dokuwiki.json: its PHP through a real php-fpm (an external
# FastCGI server), its images, CSS and JS as files by the static backend,
# its conf/, data/, inc/, bin/ and vendor/ closed. The sample runs as
# shipped (user www-data), with only the port, the logs and php-fpm's
# socket changed. t/dokuwiki_client.py is the browser: pages, log in, an
# edit, an upload.
#
# The wiki the test uses is a DokuWiki "farm animal" (Debian's preload.php
# picks /etc/dokuwiki/farm/HOST.dokuwiki for requests with that Host), with
# its own users, ACL and data directory under the test's directory, so the
# system's wiki is neither read nor changed.
load helpers

HOSTNAME_=cpmtest.example
FARM=/etc/dokuwiki/farm/$HOSTNAME_.dokuwiki

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root (php-fpm and cpm run the wiki as www-data)"
	# a directory www-data can reach, for php-fpm's socket and the data
	TOP=$(mktemp -d /tmp/cpm-dokuwiki.XXXXXX)
	chmod 0755 "$TOP"
	cp -a /var/lib/dokuwiki/data "$TOP/data"
	chown -R www-data: "$TOP/data"
	mkdir -p "$FARM"
	cat >"$FARM/local.php" <<PHP
<?php
\$conf['title'] = 'cpm test wiki';
\$conf['savedir'] = '$TOP/data';
\$conf['useacl'] = 1;
\$conf['superuser'] = '@admin';
PHP
	printf '*\t@ALL\t1\n*\t@user\t16\n' >"$FARM/acl.auth.php"
	local hash
	hash=$(php -r 'echo password_hash("wiki pass 1", PASSWORD_BCRYPT);')
	echo "tester:$hash:Test User:tester@example.org:admin,user" >"$FARM/users.auth.php"
	chmod 0644 "$FARM"/*
	start_php_fpm "$TOP" www-data
	CPM_PORT=$(free_port)
	jq --arg port "127.0.0.1:$CPM_PORT" --arg t "$BATS_TEST_TMPDIR" --arg sock "unix:$TOP/php.sock" \
		'.listen = [$port] | .access_log = "\($t)/access.log" | .error_log = "\($t)/error.log"
		 | .backends.php.address = $sock' "$ROOT/etc/dokuwiki.json" >"$BATS_TEST_TMPDIR/cpm.json"
	cpm_start
}

# helpers.bash's teardown (cpm and what it started are gone, no crash, no
# sanitizer report) under another name, then php-fpm and the wiki
eval "cpm_teardown() $(declare -f teardown | tail -n +2)"
teardown() {
	local rc=0
	cpm_teardown || rc=1
	stop_php_fpm
	rm -rf "$FARM"
	[ -z "${TOP:-}" ] || rm -rf "$TOP"
	return $rc
}

@test "the DokuWiki sample is valid as shipped" {
	run "$CPM" -t -c "$ROOT/etc/dokuwiki.json"
	assert_success
}

@test "DokuWiki: pages, stylesheet, scripts, images, log in, edit, upload — cpm alone" {
	run python3 "$ROOT/t/dokuwiki_client.py" "$(url /dokuwiki)" "$HOSTNAME_" tester "wiki pass 1"
	echo "$output"
	assert_success
	# the edit and the upload landed in the test's wiki, written by www-data
	run find "$TOP/data/pages/cpmtest" "$TOP/data/media/cpmtest" -type f -user www-data
	assert_line --regexp '/pages/cpmtest/p[0-9a-f]+\.txt$'
	assert_line --regexp '/media/cpmtest/up[0-9a-f]+\.png$'
	# PHP ran in php-fpm and files came from the static backend: every
	# request is in the access log, none of them failed
	! grep -E '" 5[0-9][0-9] ' "$BATS_TEST_TMPDIR/access.log"
}

@test "DokuWiki: the directory index runs doku.php; its source is never sent" {
	run curl -sS -H "Host: $HOSTNAME_" -D - "$(url /dokuwiki/)"
	assert_success
	assert_line --regexp '^HTTP/1.1 200'
	assert_line --regexp '^Content-Type: text/html'
	assert_output --partial 'cpm test wiki'
	refute_output --partial '<?php'
	# /dokuwiki without the slash: 301 to the directory
	run curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H "Host: $HOSTNAME_" "$(url /dokuwiki)"
	assert_output --regexp '^301 .*/dokuwiki/$'
}

@test "DokuWiki: conf/, data/, inc/, bin/, vendor/, install.php and dotfiles are closed" {
	local p code
	for p in conf/local.php conf/ data/ data/pages/wiki/syntax.txt inc/init.php bin/indexer.php \
		vendor/autoload.php install.php .htaccess inc/preload.php; do
		code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Host: $HOSTNAME_" "$(url "/dokuwiki/$p")")
		case $code in
		403 | 404) ;;
		*) echo "/dokuwiki/$p: $code" >&2; return 1 ;;
		esac
	done
	# and what is open stays open
	code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Host: $HOSTNAME_" "$(url /dokuwiki/lib/images/license/button/cc-by-sa.png)")
	assert_equal "$code" 200
}
