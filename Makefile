# cpm — build, run, test, install.
VERSION  = 0.1.0
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-missing-field-initializers -DCPM_VERSION='"$(VERSION)"' -D_GNU_SOURCE
LDLIBS  += -ljansson -lcrypt -lssl -lcrypto -pthread

ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

PROTOCOL = protocol/http_parser.c protocol/http_chunked.c protocol/http_response.c \
           protocol/cgi_env.c protocol/cgi_response.c protocol/url.c protocol/fcgi.c \
           protocol/cidr.c protocol/http_auth.c protocol/http_file.c protocol/proxy.c \
           protocol/forwarded.c
BACKENDS = backends/backend.c backends/cgi_output.c backends/waitq.c backends/cgi.c backends/status.c backends/health.c backends/script.c \
           backends/fastcgi.c backends/fastcgi_conn.c backends/static.c
MANAGER  = manager/main.c manager/arbiter.c manager/worker.c manager/loop.c manager/conn.c manager/config.c \
           manager/jsonpos.c manager/listener.c manager/log.c manager/proctitle.c \
           manager/scoreboard.c manager/timer.c manager/process.c manager/pool.c manager/backoff.c \
           manager/htpasswd.c manager/auth.c manager/control.c manager/tls.c manager/tls_shared.c
SRCS     = $(PROTOCOL) $(BACKENDS) $(MANAGER)
OBJS     = $(SRCS:.c=.o)
UNIT     = t/unit/test_http_parser t/unit/test_chunked t/unit/test_cgi_response t/unit/test_cgi_env \
           t/unit/test_url t/unit/test_config t/unit/test_timer t/unit/test_fcgi t/unit/test_log \
           t/unit/test_conn t/unit/test_cgi_output t/unit/test_backoff \
           t/unit/test_waitq t/unit/test_cidr t/unit/test_http_auth t/unit/test_http_file \
           t/unit/test_scoreboard t/unit/test_tls_shared t/unit/test_proxy t/unit/test_forwarded \
           t/unit/test_loop
EXAMPLES = examples/hello examples/counter
DEPS     = build-essential libjansson-dev libfcgi-dev libfcgi-perl libcrypt-dev libssl-dev media-types
TESTDEPS = bats bats-assert bats-support curl perl python3 mandoc spawn-fcgi iproute2 procps git cgit gitweb dokuwiki php-fpm apache2-utils jq php-cgi libcgi-pm-perl libplack-perl uwsgi-plugin-python3 prometheus openssl testssl.sh \
           debhelper lintian logrotate python3-yaml haproxy strace

.PHONY: all run test unit e2e conformance install clean lint bench deps test-deps fuzz soak model deb

all: cpm $(EXAMPLES)

cpm: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

%.o: %.c $(wildcard */*.h)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

examples/hello: examples/hello.c
	$(CC) $(CFLAGS) -o $@ $<

examples/counter: examples/counter.c
	$(CC) $(CFLAGS) -o $@ $< -lfcgi

t/unit/test_%: t/unit/test_%.c t/unit/unit.h $(PROTOCOL:.c=.o) manager/config.o manager/jsonpos.o manager/log.o manager/timer.o \
		manager/process.o manager/htpasswd.o manager/tls.o manager/tls_shared.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(PROTOCOL:.c=.o) manager/config.o manager/jsonpos.o manager/log.o \
		manager/timer.o manager/process.o manager/htpasswd.o manager/tls.o manager/tls_shared.o $(LDLIBS)

t/unit/test_cgi_output: t/unit/test_cgi_output.c t/unit/unit.h backends/cgi_output.o manager/log.o $(PROTOCOL:.c=.o)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< backends/cgi_output.o manager/log.o $(PROTOCOL:.c=.o) $(LDLIBS)

t/unit/test_backoff: t/unit/test_backoff.c t/unit/unit.h manager/backoff.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< manager/backoff.o

t/unit/test_waitq: t/unit/test_waitq.c t/unit/unit.h backends/waitq.o manager/loop.o manager/timer.o manager/log.o manager/scoreboard.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< backends/waitq.o manager/loop.o manager/timer.o manager/log.o manager/scoreboard.o

t/unit/test_loop: t/unit/test_loop.c t/unit/unit.h manager/loop.o manager/timer.o manager/log.o manager/scoreboard.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< manager/loop.o manager/timer.o manager/log.o manager/scoreboard.o

t/unit/test_scoreboard: t/unit/test_scoreboard.c t/unit/unit.h manager/scoreboard.o manager/log.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< manager/scoreboard.o manager/log.o

# tls_shared.c is included by its test (it looks at the shared region)
t/unit/test_tls_shared: t/unit/test_tls_shared.c t/unit/unit.h manager/tls_shared.c manager/tls.h manager/log.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< manager/log.o $(LDLIBS)

# conn.c is included by its test (its statics are what is tested), with the
# real loop and a fake worker and backend; see the comment in test_conn.c.
CONN_TEST_OBJS = $(PROTOCOL:.c=.o) manager/config.o manager/jsonpos.o manager/log.o manager/timer.o \
		 manager/process.o manager/loop.o manager/scoreboard.o manager/htpasswd.o manager/auth.o \
		 manager/tls.o manager/tls_shared.o
t/unit/test_conn: t/unit/test_conn.c t/unit/unit.h manager/conn.c $(wildcard */*.h) $(CONN_TEST_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CONN_TEST_OBJS) $(LDLIBS)

# Install what a Debian machine lacks (as root), or say what to run.
deps:
	@missing=""; for p in $(DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "missing packages:$$missing"; echo "run: sudo apt-get install -y$$missing"; exit 1; fi; \
	fi

test-deps:
	@missing=""; for p in $(DEPS) $(TESTDEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "missing packages:$$missing"; echo "run: sudo apt-get install -y$$missing"; exit 1; fi; \
	fi

# As root, cpm runs the examples as nobody. A checkout nobody cannot reach
# (under /root, say) is served as root instead, with a copy of etc/cpm.json
# that adds "user": "root", and make run says so.
run: deps
	$(MAKE) all
	@if [ "$$(id -u)" = 0 ] && ./cpm -t -c etc/cpm.json 2>&1 | grep -q 'is not reachable by user nobody'; then \
		./cpm -t -c etc/cpm.json 2>&1 | sed 's/^/make run: /'; \
		echo 'make run: user nobody cannot reach this checkout: serving the examples as root with'; \
		echo 'make run: etc/.run-as-root.json (etc/cpm.json plus "user": "root"); from a checkout nobody'; \
		echo 'make run: can reach (/srv, /opt, /tmp) they run as nobody'; \
		sed '1s/^{$$/{ "user": "root",/' etc/cpm.json >etc/.run-as-root.json; \
		exec ./cpm -c etc/.run-as-root.json; \
	fi; \
	exec ./cpm -c etc/cpm.json

test: test-deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) conformance

unit: $(UNIT)
	@fail=0; for t in $(UNIT); do ./$$t || fail=1; done; exit $$fail

e2e: all
	bats t/

conformance: all
	@if [ -d ../shared/conformance ]; then t/conformance.sh; else echo "../shared/conformance not found: skipped"; fi

# one run-peers.sh run (cgi, fcgi c8/c32/c128 and pool of 1, static, spawnbench), memory,
# profile.sh, ratios.md and chart.svg in t/bench/results/<date>/; then auth and TLS
bench: all
	t/bench/run.sh
	t/bench/auth.sh
	t/bench/tls.sh

# bounded soak: SOAK_SECONDS (default 120) of mixed load with crashes and HUPs
soak: all
	t/soak/run.sh

# libFuzzer targets (clang): FUZZ_SECONDS each, then the model test
FUZZ_SECONDS ?= 60
fuzz:
	t/fuzz/run.sh $(FUZZ_SECONDS)
	$(MAKE) model

# stateful randomized end-to-end test against a model (t/model/run.py);
# make test runs it briefly through t/model.bats
MODEL_SECONDS ?= 300
MODEL_SEED    ?= $(shell date +%s)
model: all
	python3 t/model/run.py $(MODEL_SEED) $(MODEL_SECONDS)

lint:
	clang-format --dry-run --Werror $(SRCS) */*.h
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --std=c11 -D_GNU_SOURCE $(SRCS)
	mandoc -Tlint -W warning man/cpm.8 man/cpm.json.5
	python3 t/manrender.py man/cpm.8 man/cpm.json.5

# make install [DESTDIR=...] [PREFIX=/usr/local]: the binary, the man pages,
# the examples (PREFIX/share/cpm/examples), the systemd units, and
# SYSCONFDIR/cpm/cpm.json serving those examples on 127.0.0.1:8000 (never
# over an existing one: the new default is PREFIX/share/cpm/cpm.json).
SYSCONFDIR     ?= /etc
RUNSTATEDIR    ?= /run
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
DATADIR         = $(PREFIX)/share/cpm
EXAMPLE_FILES   = examples/index.sh examples/hello.sh examples/form.sh examples/stream.sh examples/env.pl \
                  examples/counter.pl $(EXAMPLES)
INSTALL_SED     = -e 's|@DATADIR@|$(DATADIR)|g' -e 's|@RUNSTATEDIR@|$(RUNSTATEDIR)|g' \
                  -e 's|/usr/local/bin/cpm|$(PREFIX)/bin/cpm|g' -e 's|/etc/cpm/cpm.json|$(SYSCONFDIR)/cpm/cpm.json|g'

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(DATADIR)/examples $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/cpm
	install -m 755 cpm $(DESTDIR)$(PREFIX)/bin/cpm
	install -m 644 man/cpm.8 $(DESTDIR)$(PREFIX)/share/man/man8/cpm.8
	install -m 644 man/cpm.json.5 $(DESTDIR)$(PREFIX)/share/man/man5/cpm.json.5
	install -m 755 $(EXAMPLE_FILES) $(DESTDIR)$(DATADIR)/examples/
	sed $(INSTALL_SED) etc/cpm.json.in >$(DESTDIR)$(DATADIR)/cpm.json
	sed $(INSTALL_SED) etc/cpm.service >$(DESTDIR)$(SYSTEMDUNITDIR)/cpm.service
	install -m 644 etc/cpm.socket $(DESTDIR)$(SYSTEMDUNITDIR)/cpm.socket
	chmod 644 $(DESTDIR)$(DATADIR)/cpm.json $(DESTDIR)$(SYSTEMDUNITDIR)/cpm.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/cpm/cpm.json ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/cpm/cpm.json; the new default is $(DESTDIR)$(DATADIR)/cpm.json"; \
	else \
		echo "install -m 644 $(DESTDIR)$(DATADIR)/cpm.json $(DESTDIR)$(SYSCONFDIR)/cpm/cpm.json"; \
		install -m 644 $(DESTDIR)$(DATADIR)/cpm.json $(DESTDIR)$(SYSCONFDIR)/cpm/cpm.json; \
	fi

# the Debian package (debian/), built from a copy of the committed tree in
# a temporary directory (dpkg-buildpackage writes ../*.deb): the .deb,
# .buildinfo and .changes land in DEBDIR
DEBDIR ?= ..
deb:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && mkdir "$$tmp/cpm" && \
	git archive HEAD | tar -x -C "$$tmp/cpm" && \
	(cd "$$tmp/cpm" && dpkg-buildpackage -us -uc -b -j2) && \
	cp "$$tmp"/*.deb "$$tmp"/*.buildinfo "$$tmp"/*.changes $(DEBDIR)/ && \
	lintian --info "$$tmp"/*.changes

clean:
	rm -f cpm $(OBJS) $(UNIT) $(EXAMPLES) t/fuzz/fuzz_http_parser t/fuzz/fuzz_chunked t/fuzz/fuzz_cgi_response t/fuzz/fuzz_config t/fuzz/fuzz_fcgi t/fuzz/fuzz_cidr \
	      t/fuzz/fuzz_http_file t/fuzz/fuzz_proxy t/fuzz/fuzz_forwarded
