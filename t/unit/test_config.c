/* Unit tests for manager/config.c and manager/jsonpos.c */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../manager/config.h"
#include "../../manager/jsonpos.h"
#include "../../manager/log.h"
#include "unit.h"

static char TMP[64];	 /* temp directory */
static char ROOT[128];	 /* an existing directory (scripts root), canonical */
static char CFG[128];	 /* the config file */
static char NOTDIR[128]; /* a regular file */
static char ERR[1024];

/* Write text to CFG, with every "@ROOT@" replaced by ROOT. */
static void write_cfg(const char *text)
{
	FILE *f = fopen(CFG, "w");
	if (!f) {
		perror(CFG);
		exit(2);
	}
	for (const char *p = text; *p;) {
		if (strncmp(p, "@ROOT@", 6) == 0) {
			fputs(ROOT, f);
			p += 6;
		} else {
			fputc(*p++, f);
		}
	}
	fclose(f);
}

static struct config *load(const char *text)
{
	write_cfg(text);
	ERR[0] = 0;
	return config_load(CFG, ERR, sizeof(ERR));
}

/* The load must fail with exactly "CFG:" + want. */
static void expect_err(const char *text, const char *want, int line)
{
	struct config *c = load(text);
	char full[1200];
	snprintf(full, sizeof(full), "%s:%s", CFG, want);
	if (!unit_check(c == NULL, __FILE__, line, "config_load fails")) {
		config_free(c);
		return;
	}
	unit_check_mem(ERR, strlen(ERR), full, strlen(full), __FILE__, line, "error message");
}
#define EXPECT_ERR(text, want) expect_err(text, want, __LINE__)

/* The load must fail with an error starting with "CFG:" + prefix. */
static void expect_err_prefix(const char *text, const char *prefix, int line)
{
	struct config *c = load(text);
	char full[1200];
	snprintf(full, sizeof(full), "%s:%s", CFG, prefix);
	if (!unit_check(c == NULL, __FILE__, line, "config_load fails")) {
		config_free(c);
		return;
	}
	size_t n = strlen(full);
	unit_check_mem(ERR, strlen(ERR) < n ? strlen(ERR) : n, full, n, __FILE__, line, "error message prefix");
}
#define EXPECT_ERR_PREFIX(text, prefix) expect_err_prefix(text, prefix, __LINE__)

static const char *env_find(char **env, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

static int env_index(char **env, const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return i;
	return -1;
}

static void test_full(void)
{
	setenv("CPM_UNIT_PASS", "passed-value", 1);
	unsetenv("CPM_UNIT_ABSENT");
	struct config *c =
	    load("{\n"
		 "  \"listen\": [\"127.0.0.1:8080\", \"[::1]:8081\", \":8082\", \"unix:/tmp/cpm.sock\"],\n"
		 "  \"backlog\": 128,\n"
		 "  \"workers\": 4,\n"
		 "  \"timeout\": \"5m\",\n"
		 "  \"graceful_timeout\": 0,\n"
		 "  \"keepalive\": \"500ms\",\n"
		 "  \"header_timeout\": \"30s\",\n"
		 "  \"client_timeout\": \"1h\",\n"
		 "  \"max_connections\": 10,\n"
		 "  \"max_requests\": 1000,\n"
		 "  \"max_requests_jitter\": 50,\n"
		 "  \"limits\": {\"request_line\": \"4K\", \"header_count\": 50, \"header_size\": \"64K\",\n"
		 "             \"body\": \"1G\", \"body_buffer\": 1000},\n"
		 "  \"access_log\": null,\n"
		 "  \"error_log\": \"/tmp/cpm-unit-error.log\",\n"
		 "  \"log_level\": \"debug\",\n"
		 "  \"pidfile\": \"/tmp/cpm-unit.pid\",\n"
		 "  \"server_name\": \"example.org\",\n"
		 "  \"routes\": [\n"
		 "    {\"prefix\": \"/cgi-bin/\", \"backend\": \"scripts\"},\n"
		 "    {\"prefix\": \"/\", \"backend\": \"other\"}\n"
		 "  ],\n"
		 "  \"backends\": {\n"
		 "    \"scripts\": {\n"
		 "      \"type\": \"cgi\", \"root\": \"@ROOT@/\", \"timeout\": 5, \"max_concurrent\": 3,\n"
		 "      \"queue\": 7, \"queue_timeout\": \"2s\", \"env\": {\"FOO\": \"bar\", \"B_2\": \"\"},\n"
		 "      \"pass_env\": [\"CPM_UNIT_PASS\", \"CPM_UNIT_ABSENT\"], \"path\": \"/opt/bin:/bin\",\n"
		 "      \"index\": [\"index.cgi\", \"index.sh\"]\n"
		 "    },\n"
		 "    \"other\": {\"type\": \"cgi\", \"root\": \"@ROOT@\"}\n"
		 "  }\n"
		 "}\n");
	CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "  error: %s\n", ERR);
		return;
	}
	CHECK_EQ_STR(c->file, CFG);
	CHECK_EQ_INT(c->nlisten, 4);
	if (c->nlisten == 4) {
		CHECK_EQ_STR(c->listen[0], "127.0.0.1:8080");
		CHECK_EQ_STR(c->listen[1], "[::1]:8081");
		CHECK_EQ_STR(c->listen[2], ":8082");
		CHECK_EQ_STR(c->listen[3], "unix:/tmp/cpm.sock");
	}
	CHECK_EQ_INT(c->backlog, 128);
	CHECK_EQ_INT(c->workers, 4);
	CHECK_EQ_INT(c->timeout_ms, 300000);
	CHECK_EQ_INT(c->graceful_timeout_ms, 0);
	CHECK_EQ_INT(c->keepalive_ms, 500);
	CHECK_EQ_INT(c->header_timeout_ms, 30000);
	CHECK_EQ_INT(c->client_timeout_ms, 3600000);
	CHECK_EQ_INT(c->max_connections, 10);
	CHECK_EQ_INT(c->max_requests, 1000);
	CHECK_EQ_INT(c->max_requests_jitter, 50);
	CHECK_EQ_INT(c->limit_request_line, 4096);
	CHECK_EQ_INT(c->limit_header_count, 50);
	CHECK_EQ_INT(c->limit_header_size, 65536);
	CHECK_EQ_INT(c->limit_body, 1073741824LL);
	CHECK_EQ_INT(c->body_buffer, 1000);
	CHECK_EQ_STR(c->access_log, NULL);
	CHECK_EQ_STR(c->error_log, "/tmp/cpm-unit-error.log");
	CHECK_EQ_INT(c->log_level, LOG_DEBUG);
	CHECK_EQ_STR(c->pidfile, "/tmp/cpm-unit.pid");
	CHECK_EQ_STR(c->server_name, "example.org");
	CHECK_EQ_INT(c->nbackends, 2);
	CHECK_EQ_INT(c->nroutes, 2);
	if (c->nbackends == 2 && c->nroutes == 2) {
		struct backend_conf *s = &c->backends[0], *o = &c->backends[1];
		CHECK_EQ_STR(s->name, "scripts");
		CHECK_EQ_STR(o->name, "other");
		CHECK_EQ_INT(s->type, BACKEND_CGI);
		CHECK_EQ_STR(s->cgi.root, ROOT); /* canonical: no trailing slash */
		CHECK_EQ_STR(o->cgi.root, ROOT);
		CHECK_EQ_INT(s->cgi.timeout_ms, 5000);
		CHECK_EQ_INT(s->cgi.max_concurrent, 3);
		CHECK_EQ_INT(s->cgi.queue, 7);
		CHECK_EQ_INT(s->cgi.queue_timeout_ms, 2000);
		CHECK_EQ_STR(env_find(s->cgi.env, "FOO"), "bar");
		CHECK_EQ_STR(env_find(s->cgi.env, "B_2"), "");
		CHECK_EQ_STR(env_find(s->cgi.env, "CPM_UNIT_PASS"), "passed-value");
		CHECK_EQ_STR(env_find(s->cgi.env, "CPM_UNIT_ABSENT"), NULL);
		CHECK_EQ_STR(env_find(s->cgi.env, "PATH"), "/opt/bin:/bin");
		CHECK_EQ_INT(s->cgi.nenv, 4);
		CHECK(s->cgi.env[s->cgi.nenv] == NULL);
		/* env before pass_env */
		CHECK(env_index(s->cgi.env, "FOO") < env_index(s->cgi.env, "CPM_UNIT_PASS"));
		CHECK_EQ_INT(s->cgi.nindex, 2);
		if (s->cgi.nindex == 2) {
			CHECK_EQ_STR(s->cgi.index[0], "index.cgi");
			CHECK_EQ_STR(s->cgi.index[1], "index.sh");
		}
		/* the other backend has the defaults */
		CHECK_EQ_INT(o->cgi.timeout_ms, 60000);
		CHECK_EQ_INT(o->cgi.max_concurrent, 32);
		CHECK_EQ_INT(o->cgi.queue, 100);
		CHECK_EQ_INT(o->cgi.queue_timeout_ms, 10000);
		CHECK_EQ_INT(o->cgi.nenv, 1);
		CHECK_EQ_STR(env_find(o->cgi.env, "PATH"), "/usr/local/bin:/usr/bin:/bin");
		CHECK_EQ_INT(o->cgi.nindex, 0);
		/* routes keep their order and point at their backends */
		CHECK_EQ_STR(c->routes[0].prefix, "/cgi-bin/");
		CHECK_EQ_INT(c->routes[0].prefix_len, 9);
		CHECK(c->routes[0].backend == s);
		CHECK_EQ_STR(c->routes[1].prefix, "/");
		CHECK_EQ_INT(c->routes[1].prefix_len, 1);
		CHECK(c->routes[1].backend == o);
	}
	/* -b replaces listen */
	char *addrs[] = {"0.0.0.0:9000", "unix:/run/x.sock"};
	CHECK_EQ_INT(config_set_listen(c, addrs, 2), 0);
	CHECK_EQ_INT(c->nlisten, 2);
	CHECK_EQ_STR(c->listen[0], "0.0.0.0:9000");
	CHECK_EQ_STR(c->listen[1], "unix:/run/x.sock");
	char *badaddrs[] = {"0.0.0.0:9001", "nope"};
	CHECK_EQ_INT(config_set_listen(c, badaddrs, 2), -1);
	CHECK_EQ_INT(c->nlisten, 2); /* unchanged */
	CHECK_EQ_STR(c->listen[0], "0.0.0.0:9000");
	config_free(c);
}

static void test_defaults(void)
{
	struct config *c = load("{\"routes\": [{\"prefix\": \"/\", \"backend\": \"b\"}],\n"
				" \"backends\": {\"b\": {\"type\": \"cgi\", \"root\": \"@ROOT@\"}}}\n");
	CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "  error: %s\n", ERR);
		return;
	}
	CHECK_EQ_INT(c->nlisten, 1);
	CHECK_EQ_STR(c->listen[0], "127.0.0.1:8000");
	CHECK_EQ_INT(c->backlog, 1024);
	CHECK_EQ_INT(c->workers, 2);
	CHECK_EQ_INT(c->timeout_ms, 30000);
	CHECK_EQ_INT(c->graceful_timeout_ms, 30000);
	CHECK_EQ_INT(c->keepalive_ms, 5000);
	CHECK_EQ_INT(c->header_timeout_ms, 10000);
	CHECK_EQ_INT(c->client_timeout_ms, 60000);
	CHECK_EQ_INT(c->max_connections, 1024);
	CHECK_EQ_INT(c->max_requests, 0);
	CHECK_EQ_INT(c->max_requests_jitter, 0);
	CHECK_EQ_INT(c->limit_request_line, 8192);
	CHECK_EQ_INT(c->limit_header_count, 100);
	CHECK_EQ_INT(c->limit_header_size, 32768);
	CHECK_EQ_INT(c->limit_header_field, 8192);
	CHECK_EQ_INT(c->limit_body, 10 * 1024 * 1024);
	CHECK_EQ_INT(c->body_buffer, 64 * 1024);
	CHECK_EQ_STR(c->access_log, "-");
	CHECK(c->error_log == NULL || strcmp(c->error_log, "-") == 0); /* stderr */
	CHECK_EQ_INT(c->log_level, LOG_INFO);
	CHECK_EQ_STR(c->pidfile, NULL);
	CHECK_EQ_STR(c->server_name, NULL);
	CHECK_EQ_INT(c->nbackends, 1);
	CHECK_EQ_INT(c->nroutes, 1);
	CHECK_EQ_INT(c->backends[0].cgi.timeout_ms, 60000);
	CHECK_EQ_INT(c->backends[0].cgi.max_concurrent, 32);
	CHECK_EQ_INT(c->backends[0].cgi.queue, 100);
	CHECK_EQ_INT(c->backends[0].cgi.queue_timeout_ms, 10000);
	CHECK_EQ_INT(c->backends[0].cgi.nenv, 1);
	CHECK_EQ_STR(c->backends[0].cgi.env[0], "PATH=/usr/local/bin:/usr/bin:/bin");
	CHECK_EQ_INT(c->backends[0].cgi.nindex, 0);
	CHECK(c->routes[0].backend == &c->backends[0]);
	config_free(c);

	/* --cgi DIR */
	c = config_quick_cgi(ROOT, ERR, sizeof(ERR));
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_STR(c->file, NULL);
		CHECK_EQ_INT(c->nroutes, 1);
		CHECK_EQ_STR(c->routes[0].prefix, "/");
		CHECK_EQ_STR(c->backends[0].cgi.root, ROOT);
		CHECK_EQ_STR(c->listen[0], "127.0.0.1:8000");
		CHECK_EQ_INT(c->workers, 2);
		CHECK_EQ_STR(env_find(c->backends[0].cgi.env, "PATH"), "/usr/local/bin:/usr/bin:/bin");
		config_free(c);
	}
	c = config_quick_cgi("/nonexistent/cpm-unit", ERR, sizeof(ERR));
	CHECK(c == NULL);
	CHECK(strstr(ERR, "/nonexistent/cpm-unit") != NULL);
}

#define TAIL_ROUTES   "  \"routes\": [{\"prefix\": \"/\", \"backend\": \"b\"}],\n"
#define TAIL_BACKENDS "  \"backends\": {\"b\": {\"type\": \"cgi\", \"root\": \"@ROOT@\"}}\n"
#define TAIL	      TAIL_ROUTES TAIL_BACKENDS "}\n"

static void test_errors(void)
{
	/* unknown key: points at the key */
	EXPECT_ERR("{\n"
		   "  \"workers\": 2,\n"
		   "  \"bogus\": true,\n" TAIL,
		   "3:3: bogus: unknown key");
	EXPECT_ERR("{\"workers\": 2, \"Workers\": 3,\n" TAIL, "1:16: Workers: unknown key");
	EXPECT_ERR("{\n" TAIL_ROUTES "  \"backends\": {\n"
		   "    \"scripts\": {\n"
		   "      \"type\": \"cgi\",\n"
		   "      \"root\": \"@ROOT@\",\n"
		   "      \"tiemout\": 5\n"
		   "    }\n"
		   "  }\n"
		   "}\n",
		   "7:7: backends.scripts.tiemout: unknown key");
	EXPECT_ERR("{\n"
		   "  \"limits\": {\"body\": 1, \"headers\": 2},\n" TAIL,
		   "2:25: limits.headers: unknown key");
	EXPECT_ERR("{\n"
		   "  \"routes\": [\n"
		   "    {\"prefix\": \"/\", \"backend\": \"b\"},\n"
		   "    {\"prefix\": \"/x\", \"backend\": \"b\", \"extra\": 1}\n"
		   "  ],\n" TAIL_BACKENDS "}\n",
		   "4:38: routes[1].extra: unknown key");

	/* wrong types: point at the value */
	static const char *const timeout_cfg = "{\n" TAIL_ROUTES "  \"backends\": {\n"
					       "    \"scripts\": {\n"
					       "      \"type\": \"cgi\",\n"
					       "      \"root\": \"@ROOT@\",\n"
					       "      \"timeout\": %s\n"
					       "    }\n"
					       "  }\n"
					       "}\n";
	char buf[1024];
	snprintf(buf, sizeof(buf), timeout_cfg, "true");
	EXPECT_ERR(buf, "7:18: backends.scripts.timeout: expected a duration (seconds, or a string such as \"500ms\", "
			"\"30s\", \"5m\", \"1h\")");
	snprintf(buf, sizeof(buf), timeout_cfg, "0");
	EXPECT_ERR(buf, "7:18: backends.scripts.timeout: expected a duration greater than 0 (this wait has no \"off\": "
			"every wait is bounded)");
	snprintf(buf, sizeof(buf), timeout_cfg, "-3");
	EXPECT_ERR(buf, "7:18: backends.scripts.timeout: expected a duration (seconds, or a string such as \"500ms\", "
			"\"30s\", \"5m\", \"1h\")");
	snprintf(buf, sizeof(buf), timeout_cfg, "[60]");
	EXPECT_ERR(buf, "7:18: backends.scripts.timeout: expected a duration (seconds, or a string such as \"500ms\", "
			"\"30s\", \"5m\", \"1h\")");
	snprintf(buf, sizeof(buf), timeout_cfg, "\"soon\"");
	EXPECT_ERR(buf, "7:18: backends.scripts.timeout: expected a duration (seconds, or a string such as \"500ms\", "
			"\"30s\", \"5m\", \"1h\")");
	snprintf(buf, sizeof(buf), timeout_cfg, "\"5x\"");
	EXPECT_ERR(buf, "7:18: backends.scripts.timeout: expected a duration (seconds, or a string such as \"500ms\", "
			"\"30s\", \"5m\", \"1h\")");
	snprintf(buf, sizeof(buf), timeout_cfg, "\"0s\"");
	EXPECT_ERR(buf, "7:18: backends.scripts.timeout: expected a duration greater than 0 (this wait has no \"off\": "
			"every wait is bounded)");
	snprintf(buf, sizeof(buf), timeout_cfg, "1.5");
	EXPECT_ERR(buf, "7:18: backends.scripts.timeout: expected a duration (seconds, or a string such as \"500ms\", "
			"\"30s\", \"5m\", \"1h\")");

	EXPECT_ERR("{\n"
		   "  \"workers\": \"2\",\n" TAIL,
		   "2:14: workers: expected an integer");
	EXPECT_ERR("{\n"
		   "  \"workers\": 0,\n" TAIL,
		   "2:14: workers: expected an integer between 1 and 1024");
	EXPECT_ERR("{\n"
		   "  \"workers\": 1025,\n" TAIL,
		   "2:14: workers: expected an integer between 1 and 1024");
	EXPECT_ERR("{\n"
		   "  \"backlog\": 65536,\n" TAIL,
		   "2:14: backlog: expected an integer between 1 and 65535");
	EXPECT_ERR("{\n"
		   "  \"log_level\": \"verbose\",\n" TAIL,
		   "2:16: log_level: expected one of \"debug\", \"info\", \"warn\", \"error\"");
	EXPECT_ERR("{\n"
		   "  \"listen\": [\"127.0.0.1:80\", \"nohost\"],\n" TAIL,
		   "2:30: listen[1]: expected \"HOST:PORT\", \"[V6]:PORT\", \"unix:/PATH\" or {\"address\": ..., "
		   "\"tls\": ...}");
	/* listen objects: each problem at its key */
	EXPECT_ERR("{\n"
		   "  \"listen\": [{\"adress\": \"127.0.0.1:80\"}],\n" TAIL,
		   "2:15: listen[0].adress: unknown key");
	EXPECT_ERR("{\n"
		   "  \"listen\": [{\"tls\": {}}],\n" TAIL,
		   "2:14: listen[0]: missing key \"address\" (\"HOST:PORT\", \"[V6]:PORT\" or \"unix:/PATH\")");
	EXPECT_ERR("{\n"
		   "  \"listen\": [{\"address\": \"127.0.0.1:443\", \"tls\": {}}],\n" TAIL,
		   "2:50: listen[0].tls: a TLS listener needs \"certificate\" and \"key\" (or \"certificates\")");
	EXPECT_ERR("{\n"
		   "  \"listen\": [{\"address\": \"127.0.0.1:443\", \"tls\": {\"certificate\": \"c.pem\"}}],\n" TAIL,
		   "2:50: listen[0].tls: missing key \"key\" (the PEM private key)");
	EXPECT_ERR_PREFIX(
	    "{\n"
	    "  \"listen\": [{\"address\": \"127.0.0.1:443\", \"tls\": {\"certificate\": \"/nonexistent/c.pem\", "
	    "\"key\": \"k.pem\"}}],\n" TAIL,
	    "2:66: listen[0].tls.certificate: /nonexistent/c.pem: No such file or directory");
	EXPECT_ERR("{\n"
		   "  \"listen\": [{\"address\": \"127.0.0.1:443\", \"tls\": {\"certificate\": \"c\", \"key\": \"k\", "
		   "\"protocols\": [\"TLSv1.1\"]}}],\n" TAIL,
		   "2:97: listen[0].tls.protocols[0]: expected \"TLSv1.2\" or \"TLSv1.3\" (nothing older is offered)");
	EXPECT_ERR("{\n"
		   "  \"listen\": [{\"address\": \"127.0.0.1:80\", \"redirect_http\": true}],\n" TAIL,
		   "2:59: listen[0].redirect_http: no listener has \"tls\" on a port to redirect to: give the origin "
		   "(\"https://HOST:PORT\")");
	EXPECT_ERR("{\n"
		   "  \"listen\": [{\"address\": \"127.0.0.1:80\", \"redirect_http\": \"http://x\"}],\n" TAIL,
		   "2:59: listen[0].redirect_http: expected true, or an origin such as \"https://example.org\" or "
		   "\"https://example.org:8443\"");
	EXPECT_ERR("{\n"
		   "  \"listen\": [{\"address\": \"127.0.0.1:80\", \"proxy_protocol\": 1}],\n" TAIL,
		   "2:60: listen[0].proxy_protocol: expected true or false");
	EXPECT_ERR("{\n"
		   "  \"trusted_proxies\": [\"10.0.0.0/8\", \"10.1.2.3/8\"],\n" TAIL,
		   "2:37: trusted_proxies[1]: \"10.1.2.3/8\": the address has bits set beyond its prefix length (write "
		   "the network address)");
	EXPECT_ERR(
	    "{\n"
	    "  \"forwarded_header\": \"X-Real-IP\",\n" TAIL,
	    "2:23: forwarded_header: expected \"X-Forwarded-For\" (with X-Forwarded-Proto) or \"Forwarded\" (RFC "
	    "7239)");
	EXPECT_ERR("{\n"
		   "  \"sigterm\": \"soft\",\n" TAIL,
		   "2:14: sigterm: expected \"fast\" (TERM stops at once, as INT) or \"graceful\" (TERM is QUIT)");
	EXPECT_ERR("{\n"
		   "  \"drain_delay\": \"5x\",\n" TAIL,
		   "2:18: drain_delay: expected a duration (seconds, or a string such as \"500ms\", \"30s\", \"5m\", "
		   "\"1h\")");
	EXPECT_ERR("{\n"
		   "  \"listen\": [],\n" TAIL,
		   "2:13: listen: expected a non-empty array of addresses");
	EXPECT_ERR("{\n"
		   "  \"error_log\": \"\",\n" TAIL,
		   "2:16: error_log: expected a non-empty string");
	EXPECT_ERR("{\n"
		   "  \"limits\": [],\n" TAIL,
		   "2:13: limits: expected an object");
	EXPECT_ERR(
	    "{\n"
	    "  \"keepalive\": -1,\n" TAIL,
	    "2:16: keepalive: expected a duration (seconds, or a string such as \"500ms\", \"30s\", \"5m\", \"1h\")");

	/* a route to an undefined backend */
	EXPECT_ERR("{\n"
		   "  \"routes\": [\n"
		   "    {\"prefix\": \"/\", \"backend\": \"nope\"}\n"
		   "  ],\n" TAIL_BACKENDS "}\n",
		   "3:32: routes[0].backend: no backend named \"nope\"");
	EXPECT_ERR("{\n"
		   "  \"routes\": [\n"
		   "    {\"prefix\": \"x/\", \"backend\": \"b\"}\n"
		   "  ],\n" TAIL_BACKENDS "}\n",
		   "3:16: routes[0].prefix: a prefix must start with '/'");
	EXPECT_ERR("{\n"
		   "  \"routes\": [\n"
		   "    {\"prefix\": \"/\"}\n"
		   "  ],\n" TAIL_BACKENDS "}\n",
		   "3:5: routes[0]: missing key \"backend\"");
	EXPECT_ERR("{\n"
		   "  \"routes\": [],\n" TAIL_BACKENDS "}\n",
		   "2:13: routes: expected a non-empty array of routes");

	/* a route's server_name: a host as a client sends it, without a port */
	{
		static const char *const good[] = {"www.example.com", "10.0.0.1", "[::1]", "[2001:db8::5]", "x"};
		for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			snprintf(buf, sizeof(buf),
				 "{\"routes\": [{\"prefix\": \"/a/\", \"backend\": \"b\", \"server_name\": \"%s\"},\n"
				 "  {\"prefix\": \"/\", \"backend\": \"b\"}],\n" TAIL_BACKENDS "}\n",
				 good[i]);
			struct config *c = load(buf);
			CHECK(c != NULL);
			if (!c)
				continue;
			CHECK_EQ_STR(c->routes[0].server_name, good[i]);
			CHECK_EQ_STR(c->routes[1].server_name, NULL);
			config_free(c);
		}
		static const char *const bad[] = {"a:80", "[::1]:80", "u@h", "a/b", "a b", "[::1", "::1"};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(buf, sizeof(buf),
				 "{\n  \"routes\": [{\"prefix\": \"/\", \"backend\": \"b\", \"server_name\": "
				 "\"%s\"}],\n" TAIL_BACKENDS "}\n",
				 bad[i]);
			EXPECT_ERR(buf,
				   "2:61: routes[0].server_name: expected a host name or IP address, without a port");
		}
		EXPECT_ERR(
		    "{\n  \"routes\": [{\"prefix\": \"/\", \"backend\": \"b\", \"server_name\": \"\"}],\n" TAIL_BACKENDS
		    "}\n",
		    "2:61: routes[0].server_name: expected a non-empty string");
		EXPECT_ERR(
		    "{\n  \"routes\": [{\"prefix\": \"/\", \"backend\": \"b\", \"server_name\": 1}],\n" TAIL_BACKENDS
		    "}\n",
		    "2:61: routes[0].server_name: expected a non-empty string");
	}

	/* root */
	EXPECT_ERR("{\n" TAIL_ROUTES "  \"backends\": {\"b\": {\"type\": \"cgi\",\n"
		   "    \"root\": \"/nonexistent/cpm-unit\"}}\n"
		   "}\n",
		   "4:13: backends.b.root: cannot use /nonexistent/cpm-unit: No such file or directory");
	char nd[1024];
	snprintf(nd, sizeof(nd),
		 "{\n" TAIL_ROUTES "  \"backends\": {\"b\": {\"type\": \"cgi\",\n"
		 "    \"root\": \"%s\"}}\n"
		 "}\n",
		 NOTDIR);
	char ndwant[512];
	snprintf(ndwant, sizeof(ndwant), "4:13: backends.b.root: %s is not a directory", NOTDIR);
	EXPECT_ERR(nd, ndwant);
	EXPECT_ERR("{\n" TAIL_ROUTES "  \"backends\": {\n"
		   "    \"b\": {\"type\": \"cgi\"}\n"
		   "  }\n"
		   "}\n",
		   "4:10: backends.b: needs \"root\" (programs under a directory) or \"script\" (one program)");
	EXPECT_ERR("{\n" TAIL_ROUTES "  \"backends\": {\n"
		   "    \"b\": {\"type\": \"cgi\", \"script\": \"sh\"}\n"
		   "  }\n"
		   "}\n",
		   "4:36: backends.b.script: expected a path with a '/' (a program is not looked up through PATH; "
		   "\"./sh\" is in the configuration's directory)");
	EXPECT_ERR("{\n" TAIL_ROUTES "  \"backends\": {\n"
		   "    \"b\": {\"type\": \"cgi\", \"script\": \"/\"}\n"
		   "  }\n"
		   "}\n",
		   "4:36: backends.b.script: / is not a regular file");
	EXPECT_ERR("{\n" TAIL_ROUTES "  \"backends\": {\n"
		   "    \"b\": {\"type\": \"cgi\", \"script\": \"/bin/sh\", \"index\": [\"x\"]}\n"
		   "  }\n"
		   "}\n",
		   "4:47: backends.b.index: only without \"script\" (there is nothing to look up)");
	EXPECT_ERR("{\n" TAIL_ROUTES "  \"backends\": {\n"
		   "    \"b\": {\"type\": \"fastcgi\", \"root\": \"/\"}\n"
		   "  }\n"
		   "}\n",
		   "4:10: backends.b: needs \"command\" (cpm runs the application) or \"address\" (it runs elsewhere)");
	EXPECT_ERR("{\n" TAIL_ROUTES "  \"backends\": {\n"
		   "    \"b\": {\"type\": \"scgi\", \"root\": \"/\"}\n"
		   "  }\n"
		   "}\n",
		   "4:19: backends.b.type: unknown backend type (expected \"cgi\", \"fastcgi\", \"static\", \"status\" "
		   "or \"health\")");
}

/* errors whose column depends on ROOT's length are checked separately */
static void test_errors_after_root(void)
{
	char want[512];
	size_t rl = strlen(ROOT);
	/* line 4: `    "b": {"type": "cgi", "root": "ROOT", "env": {"OK": "1", "1BAD": "x"}}` */
	snprintf(want, sizeof(want), "4:%zu: backends.b.env.1BAD: not a valid environment variable name",
		 (size_t)(strlen("    \"b\": {\"type\": \"cgi\", \"root\": \"") + rl +
			  strlen("\", \"env\": {\"OK\": \"1\", ") + 1));
	EXPECT_ERR("{\n" TAIL_ROUTES "  \"backends\": {\n"
		   "    \"b\": {\"type\": \"cgi\", \"root\": \"@ROOT@\", \"env\": {\"OK\": \"1\", \"1BAD\": \"x\"}}\n"
		   "  }\n"
		   "}\n",
		   want);
	snprintf(
	    want, sizeof(want),
	    "4:%zu: backends.b.index[1]: expected a file name (no '/', '?', '%%', '#' or space, not starting with '.')",
	    (size_t)(strlen("    \"b\": {\"type\": \"cgi\", \"root\": \"") + rl + strlen("\", \"index\": [\"a\", ") +
		     1));
	EXPECT_ERR("{\n" TAIL_ROUTES "  \"backends\": {\n"
		   "    \"b\": {\"type\": \"cgi\", \"root\": \"@ROOT@\", \"index\": [\"a\", \"../x\"]}\n"
		   "  }\n"
		   "}\n",
		   want);
}

static void test_pools(void)
{
	/* a pool: defaults, then every key */
	struct config *c =
	    load("{\n" TAIL_ROUTES "  \"backends\": {\"b\": {\"type\": \"fastcgi\", \"command\": [\"true\"]}}\n"
		 "}\n");
	CHECK(c != NULL);
	if (c) {
		const struct cgi_conf *g = &c->backends[0].cgi;
		CHECK(g->pool != NULL && g->naddrs == 0);
		if (g->pool) {
			CHECK(g->pool->argc == 1 && g->pool->argv[1] == NULL);
			CHECK(strcmp(g->pool->argv[0], "/usr/bin/true") == 0 ||
			      strcmp(g->pool->argv[0], "/bin/true") == 0);
			CHECK(g->pool->min == 1 && g->pool->max == 1);
			CHECK(g->pool->max_requests == 0 && g->pool->idle_timeout_ms == 10000);
			CHECK(g->pool->tcp == 0 && g->pool->cwd == NULL && g->pool->user == NULL && g->pool->id == -1);
			/* the application is the script */
			CHECK(g->script && strcmp(g->script, g->pool->argv[0]) == 0);
		}
		CHECK(g->queue_timeout_ms == 10000 && g->timeout_ms == 60000);
		CHECK(g->rl.cpu == -1 && g->rl.as == -1 && g->rl.nofile == -1 && g->rl.nproc == -1 && !g->no_new_privs);
		config_free(c);
	}
	c = load(
	    "{\n" TAIL_ROUTES
	    "  \"backends\": {\"b\": {\"type\": \"fastcgi\", \"command\": [\"/bin/sh\", \"-c\", \"x\"],\n"
	    "    \"min\": 0, \"max\": 8, \"idle_timeout\": \"500ms\", \"max_requests\": 1000, \"cwd\": \"@ROOT@\",\n"
	    "    \"socket\": \"tcp\", \"queue_timeout\": 2, \"rlimits\": {\"cpu\": 10, \"as\": \"512M\", \"nofile\": "
	    "64,\n"
	    "    \"nproc\": 20}, \"no_new_privs\": true, \"user\": \"root\"}}\n"
	    "}\n");
	CHECK(c != NULL);
	if (c) {
		const struct cgi_conf *g = &c->backends[0].cgi;
		const struct pool_conf *p = g->pool;
		CHECK(p && p->argc == 3 && strcmp(p->argv[2], "x") == 0);
		CHECK(p && p->min == 0 && p->max == 8 && p->idle_timeout_ms == 500 && p->max_requests == 1000);
		CHECK(p && p->cwd && strcmp(p->cwd, ROOT) == 0 && p->tcp == 1 && p->user && p->uid == 0);
		CHECK(g->queue_timeout_ms == 2000);
		CHECK(g->rl.cpu == 10 && g->rl.as == 512 << 20 && g->rl.nofile == 64 && g->rl.nproc == 20 &&
		      g->no_new_privs);
		config_free(c);
	}
	/* rlimits on a cgi backend */
	c = load("{\n" TAIL_ROUTES
		 "  \"backends\": {\"b\": {\"type\": \"cgi\", \"root\": \"@ROOT@\", \"rlimits\": {\"as\": \"1G\"}}}\n"
		 "}\n");
	CHECK(c && c->backends[0].cgi.rl.as == 1 << 30 && c->backends[0].cgi.rl.cpu == -1);
	config_free(c);

#define POOL(extra)                                                                                                    \
	"{\n" TAIL_ROUTES "  \"backends\": {\n"                                                                        \
	"    \"b\": {\"type\": \"fastcgi\", \"command\": [\"/bin/true\"]" extra "}\n"                                  \
	"  }\n"                                                                                                        \
	"}\n"
	EXPECT_ERR(POOL(", \"address\": \"unix:/x\""),
		   "4:30: backends.b.command: give \"command\" or \"address\", not both");
	EXPECT_ERR(POOL(", \"processes\": 2, \"min\": 1, \"max\": 2"),
		   "4:56: backends.b.processes: give either \"processes\" or \"min\" and \"max\"");
	EXPECT_ERR(POOL(", \"min\": 3, \"max\": 2"), "4:73: backends.b.max: smaller than \"min\"");
	EXPECT_ERR(POOL(", \"min\": 3"), "4:56: backends.b.min: \"min\" and \"max\" go together");
	EXPECT_ERR(POOL(", \"processes\": 0"), "4:69: backends.b.processes: expected an integer between 1 and 256");
	EXPECT_ERR(POOL(", \"socket\": \"udp\""), "4:66: backends.b.socket: expected \"unix\" or \"tcp\"");
	EXPECT_ERR(POOL(", \"reload\": \"always\""), "4:66: backends.b.reload: expected \"restart\" or \"keep\"");
	EXPECT_ERR(POOL(", \"reload\": true"), "4:66: backends.b.reload: expected \"restart\" or \"keep\"");
	EXPECT_ERR(POOL(", \"group\": \"root\""), "4:56: backends.b.group: \"group\" needs \"user\"");
	EXPECT_ERR(POOL(", \"user\": \"no-such-user-x\""), "4:64: backends.b.user: no such user \"no-such-user-x\"");
	EXPECT_ERR(POOL(", \"rlimits\": {\"cpu\": \"500ms\"}"),
		   "4:75: backends.b.rlimits.cpu: expected at least one second");
	EXPECT_ERR(POOL(", \"rlimits\": {\"stack\": 1}"), "4:68: backends.b.rlimits.stack: unknown key");
	EXPECT_ERR(POOL(", \"no_new_privs\": 1"), "4:72: backends.b.no_new_privs: expected true or false");
#undef POOL
	EXPECT_ERR(
	    "{\n" TAIL_ROUTES "  \"backends\": {\n"
	    "    \"b\": {\"type\": \"fastcgi\", \"command\": [\"no-such-program-x\"]}\n"
	    "  }\n"
	    "}\n",
	    "4:42: backends.b.command[0]: no-such-program-x: not found in /usr/local/bin:/usr/bin:/bin (give a path)");
	EXPECT_ERR("{\n" TAIL_ROUTES "  \"backends\": {\n"
		   "    \"b\": {\"type\": \"fastcgi\", \"command\": []}\n"
		   "  }\n"
		   "}\n",
		   "4:41: backends.b.command: expected an array: the program and its arguments");
	EXPECT_ERR(
	    "{\n" TAIL_ROUTES "  \"backends\": {\n"
	    "    \"b\": {\"type\": \"fastcgi\", \"address\": \"unix:/x\", \"script\": \"/x\", \"max_requests\": 5}\n"
	    "  }\n"
	    "}\n",
	    "4:68: backends.b.max_requests: only for a pool (a backend with \"command\")");
}

static void test_syntax_and_duplicates(void)
{
	/* JSON syntax errors: FILE:LINE:COL: MESSAGE (from jansson) */
	EXPECT_ERR_PREFIX("{\n"
			  "  \"workers\": 2,\n"
			  "  \"backlog\": ,\n"
			  "}\n",
			  "3:14: ");
	CHECK(strlen(ERR) > strlen(CFG) + strlen(":3:14: "));
	EXPECT_ERR_PREFIX("{\n"
			  "  \"workers\": 2\n"
			  "  \"backlog\": 3\n"
			  "}\n",
			  "3:11: ");
	EXPECT_ERR_PREFIX("{\"workers\": 2,}", "1:15: ");
	/* duplicate keys are rejected */
	EXPECT_ERR_PREFIX("{\n"
			  "  \"workers\": 1,\n"
			  "  \"workers\": 2,\n" TAIL,
			  "3:");
	CHECK(strstr(ERR, "duplicate") != NULL);
	EXPECT_ERR_PREFIX("{\n" TAIL_ROUTES
			  "  \"backends\": {\"b\": {\"type\": \"cgi\", \"root\": \"/\", \"root\": \"/\"}}\n"
			  "}\n",
			  "3:");
	CHECK(strstr(ERR, "duplicate") != NULL);
	/* not an object */
	struct config *c = load("[1, 2]\n");
	CHECK(c == NULL);
	CHECK(strstr(ERR, "must be a JSON object") != NULL);
	/* a file that does not exist */
	c = config_load("/nonexistent/cpm-unit.json", ERR, sizeof(ERR));
	CHECK(c == NULL);
	CHECK_EQ_STR(ERR, "/nonexistent/cpm-unit.json: No such file or directory");
	/* missing sections */
	c = load("{\"routes\": [{\"prefix\": \"/\", \"backend\": \"b\"}]}");
	CHECK(c == NULL);
	CHECK(strstr(ERR, "missing key \"backends\"") != NULL);
	c = load("{" TAIL_BACKENDS "}");
	CHECK(c == NULL);
	CHECK(strstr(ERR, "missing key \"routes\"") != NULL);
}

static void test_sizes_durations(void)
{
	struct config *c;
	c = load("{\"limits\": {\"body\": \"10M\", \"body_buffer\": \"64K\", \"request_line\": \"1k\"},\n" TAIL);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->limit_body, 10485760);
		CHECK_EQ_INT(c->body_buffer, 65536);
		CHECK_EQ_INT(c->limit_request_line, 1024);
		config_free(c);
	}
	c = load("{\"limits\": {\"body\": \"1G\", \"body_buffer\": 0, \"header_size\": 300},\n"
		 " \"limits\": {}}");
	CHECK(c == NULL); /* duplicate */
	c = load(
	    "{\"limits\": {\"body\": \"1G\", \"body_buffer\": 0, \"header_size\": 300, \"request_line\": 100},\n" TAIL);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->limit_body, 1073741824LL);
		CHECK_EQ_INT(c->body_buffer, 0);
		CHECK_EQ_INT(c->limit_header_size, 300);
		CHECK_EQ_INT(c->limit_request_line, 100);
		config_free(c);
	}
	c = load("{\"limits\": {\"body\": 12345},\n" TAIL);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->limit_body, 12345);
		config_free(c);
	}
	static const char *const bad_sizes[] = {"\"10X\"", "\"10 M\"", "\"M\"",	   "\"-1\"", "\"\"", "\"1.5M\"",
						"\"+5\"",  "\" 5\"",   "\"10MB\"", "true",   "1.5"};
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		char buf[512];
		snprintf(buf, sizeof(buf), "{\n  \"limits\": {\"body\": %s},\n" TAIL, bad_sizes[i]);
		EXPECT_ERR(buf, "2:22: limits.body: expected a size (bytes, or a number with K, M or G)");
	}
	EXPECT_ERR("{\n  \"limits\": {\"request_line\": 10},\n" TAIL,
		   "2:30: limits.request_line: size out of range (64 to 1048576 bytes)");
	EXPECT_ERR("{\n  \"limits\": {\"request_line\": \"16K\", \"header_size\": \"8K\"},\n" TAIL,
		   "2:30: limits.request_line: larger than limits.header_size");
	c = load("{\"limits\": {\"header_field\": \"4K\"},\n" TAIL);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->limit_header_field, 4096);
		CHECK_EQ_INT(c->limit_header_size, 32768);
		config_free(c);
	}
	EXPECT_ERR("{\n  \"limits\": {\"header_field\": 10},\n" TAIL,
		   "2:30: limits.header_field: size out of range (64 to 1048576 bytes)");
	EXPECT_ERR("{\n  \"limits\": {\"header_field\": \"2M\"},\n" TAIL,
		   "2:30: limits.header_field: size out of range (64 to 1048576 bytes)");
	EXPECT_ERR("{\n  \"limits\": {\"header_field\": \"8 K\"},\n" TAIL,
		   "2:30: limits.header_field: expected a size (bytes, or a number with K, M or G)");
	EXPECT_ERR("{\n  \"limits\": {\"header_count\": 0},\n" TAIL,
		   "2:30: limits.header_count: expected an integer between 1 and 10000");

	/* durations */
	c = load("{\"timeout\": \"500ms\", \"keepalive\": 0, \"graceful_timeout\": \"1h\",\n"
		 " \"header_timeout\": \"7\", \"client_timeout\": 2,\n" TAIL);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->timeout_ms, 500);
		CHECK_EQ_INT(c->keepalive_ms, 0);
		CHECK_EQ_INT(c->graceful_timeout_ms, 3600000);
		CHECK_EQ_INT(c->header_timeout_ms, 7000);
		CHECK_EQ_INT(c->client_timeout_ms, 2000);
		config_free(c);
	}
	c = load("{\"timeout\": \"5m\", \"keepalive\": \"0s\",\n" TAIL);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->timeout_ms, 300000);
		CHECK_EQ_INT(c->keepalive_ms, 0);
		config_free(c);
	}
	static const char *const bad_durs[] = {"\"5x\"", "\"m\"", "\"-5s\"", "\"5 s\"", "\"5sec\"", "\"1.5s\"", "\"\""};
	for (size_t i = 0; i < sizeof(bad_durs) / sizeof(bad_durs[0]); i++) {
		char buf[512];
		snprintf(buf, sizeof(buf), "{\n  \"header_timeout\": %s,\n" TAIL, bad_durs[i]);
		EXPECT_ERR(buf, "2:21: header_timeout: expected a duration (seconds, or a string such as \"500ms\", "
				"\"30s\", \"5m\", \"1h\")");
	}
	EXPECT_ERR("{\n  \"header_timeout\": 0,\n" TAIL, "2:21: header_timeout: expected a duration greater than 0 "
							 "(this wait has no \"off\": every wait is bounded)");
	EXPECT_ERR("{\n  \"header_timeout\": \"0ms\",\n" TAIL, "2:21: header_timeout: expected a duration greater than "
							       "0 (this wait has no \"off\": every wait is bounded)");
}

static void test_listen_valid(void)
{
	CHECK_EQ_INT(config_listen_valid("127.0.0.1:8000"), 0);
	CHECK_EQ_INT(config_listen_valid("localhost:80"), 0);
	CHECK_EQ_INT(config_listen_valid("[::1]:8000"), 0);
	CHECK_EQ_INT(config_listen_valid("[::]:0"), 0);
	CHECK_EQ_INT(config_listen_valid(":8000"), 0);
	CHECK_EQ_INT(config_listen_valid("unix:/tmp/s"), 0);
	CHECK_EQ_INT(config_listen_valid("unix:tmp/s"), -1);
	CHECK_EQ_INT(config_listen_valid("unix:"), -1);
	CHECK_EQ_INT(config_listen_valid("127.0.0.1"), -1);
	CHECK_EQ_INT(config_listen_valid("127.0.0.1:"), -1);
	CHECK_EQ_INT(config_listen_valid("127.0.0.1:65536"), -1);
	CHECK_EQ_INT(config_listen_valid("127.0.0.1:-1"), -1);
	CHECK_EQ_INT(config_listen_valid("127.0.0.1:80x"), -1);
	CHECK_EQ_INT(config_listen_valid("[::1]80"), -1);
	CHECK_EQ_INT(config_listen_valid(""), -1);
	char longpath[200] = "unix:/";
	memset(longpath + 6, 'a', 150);
	longpath[156] = 0;
	CHECK_EQ_INT(config_listen_valid(longpath), -1);
}

static void locate(const char *text, const struct jsonpos_step *path, size_t n, int want_key, int rc, int line, int col,
		   int srcline)
{
	int l = -1, c = -1;
	int got = jsonpos_locate(text, strlen(text), path, n, want_key, &l, &c);
	unit_check_int(got, rc, __FILE__, srcline, "jsonpos_locate rc", "expected");
	unit_check_int(l, line, __FILE__, srcline, "line", "expected");
	unit_check_int(c, col, __FILE__, srcline, "col", "expected");
}
#define LOCATE(text, path, want_key, rc, line, col)                                                                    \
	locate(text, path, sizeof(path) / sizeof(path[0]), want_key, rc, line, col, __LINE__)

static void test_jsonpos(void)
{
	const char *t = "{\n"
			"  \"s\": \"a } ] \\\" { [\",\n"
			"  \"a\": {\"b\": [10, {\"c\": \"x\"}, [1, [2]], true],\n"
			"         \"ab\": null},\n"
			"  \"d\"  :  -1.5e3 ,\n"
			"  \"k\": {\"k\": {\"k\": 7}}\n"
			"}\n";
	struct jsonpos_step s[] = {{"s", 0}};
	LOCATE(t, s, 0, 0, 2, 8);
	LOCATE(t, s, 1, 0, 2, 3);
	struct jsonpos_step abc[] = {{"a", 0}, {"b", 0}, {NULL, 1}, {"c", 0}};
	LOCATE(t, abc, 0, 0, 3, 25);
	LOCATE(t, abc, 1, 0, 3, 20);
	struct jsonpos_step ab0[] = {{"a", 0}, {"b", 0}, {NULL, 0}};
	LOCATE(t, ab0, 0, 0, 3, 15);
	LOCATE(t, ab0, 1, 0, 3, 15); /* array element: no key */
	struct jsonpos_step ab3[] = {{"a", 0}, {"b", 0}, {NULL, 3}};
	LOCATE(t, ab3, 0, 0, 3, 41);
	struct jsonpos_step ab2[] = {{"a", 0}, {"b", 0}, {NULL, 2}, {NULL, 1}, {NULL, 0}};
	LOCATE(t, ab2, 0, 0, 3, 36);
	struct jsonpos_step aab[] = {{"a", 0}, {"ab", 0}};
	LOCATE(t, aab, 0, 0, 4, 16);
	LOCATE(t, aab, 1, 0, 4, 10);
	struct jsonpos_step d[] = {{"d", 0}};
	LOCATE(t, d, 0, 0, 5, 11);
	LOCATE(t, d, 1, 0, 5, 3);
	struct jsonpos_step kkk[] = {{"k", 0}, {"k", 0}, {"k", 0}};
	LOCATE(t, kkk, 0, 0, 6, 20);
	LOCATE(t, kkk, 1, 0, 6, 15);
	/* not found: the deepest part found */
	struct jsonpos_step nf[] = {{"a", 0}, {"zz", 0}};
	LOCATE(t, nf, 0, -1, 3, 8);
	struct jsonpos_step nf2[] = {{"a", 0}, {"b", 0}, {NULL, 9}};
	LOCATE(t, nf2, 0, -1, 3, 14);
	struct jsonpos_step nf3[] = {{"nope", 0}};
	LOCATE(t, nf3, 0, -1, 1, 1);
	struct jsonpos_step nf4[] = {{"d", 0}, {"x", 0}}; /* d is not an object */
	LOCATE(t, nf4, 0, -1, 5, 11);
	struct jsonpos_step nf5[] = {{NULL, 0}}; /* the root is not an array */
	LOCATE(t, nf5, 0, -1, 1, 1);
	/* an empty path: the start of the value */
	int l = 0, c = 0;
	CHECK_EQ_INT(jsonpos_locate("  \n  {}", 7, NULL, 0, 0, &l, &c), 0);
	CHECK_EQ_INT(l, 2);
	CHECK_EQ_INT(c, 3);
	/* a key written with an escape is the same key */
	const char *esc = "{\"x\": 1, \"b\\u006fgus\": 2}";
	struct jsonpos_step bogus[] = {{"bogus", 0}};
	LOCATE(esc, bogus, 1, 0, 1, 10);
	/* a key that is a prefix of another, and a value equal to the key */
	const char *pre = "{\"abc\": \"ab\", \"ab\": 5}";
	struct jsonpos_step abk[] = {{"ab", 0}};
	LOCATE(pre, abk, 0, 0, 1, 21);
}

/* Started as root (config_set_privileged): "nobody" unless "user" says
 * otherwise, "group" needs "user", roots are checked as the user. Needs
 * root to become nobody (the suite runs as root). */
static void test_privileged(void)
{
	if (geteuid() != 0) {
		fprintf(stderr,
			"test_config: not root: the privileged configuration is tested by t/privileges.bats only\n");
		return;
	}
	config_set_privileged(1);
	struct config *c = load("{\"routes\": [{\"prefix\": \"/\", \"backend\": \"s\"}],\n"
				" \"backends\": {\"s\": {\"type\": \"cgi\", \"root\": \"/tmp\"}}}");
	CHECK(c && c->user && strcmp(c->user, "nobody") == 0 && c->user_default && c->uid != 0);
	config_free(c);
	c = load("{\"user\": \"root\", \"routes\": [{\"prefix\": \"/\", \"backend\": \"s\"}],\n"
		 " \"backends\": {\"s\": {\"type\": \"cgi\", \"root\": \"@ROOT@\"}}}");
	CHECK(c && strcmp(c->user, "root") == 0 && !c->user_default && c->uid == 0);
	config_free(c);
	/* TMP (mkdtemp: 0700) holds ROOT */
	char want[512];
	snprintf(want, sizeof(want),
		 "2:44: backends.s.root: %s is not reachable by user nobody (search permission denied on %s)", ROOT,
		 TMP);
	EXPECT_ERR("{\"routes\": [{\"prefix\": \"/\", \"backend\": \"s\"}],\n"
		   " \"backends\": {\"s\": {\"type\": \"cgi\", \"root\": \"@ROOT@\"}}}",
		   want);
	EXPECT_ERR("{\"group\": \"root\", \"routes\": [{\"prefix\": \"/\", \"backend\": \"s\"}],\n"
		   " \"backends\": {\"s\": {\"type\": \"cgi\", \"root\": \"/tmp\"}}}",
		   "1:2: group: \"group\" needs \"user\"");
	config_set_privileged(0);
}

/* The configuration whose first members are members: the master's
 * control socket and cpm -s's are both want. */
static void expect_control(const char *members, const char *want)
{
	char text[512];
	snprintf(text, sizeof(text), "{\n  %s,\n" TAIL, members);
	struct config *c = load(text);
	CHECK(c != NULL);
	if (c)
		CHECK_EQ_STR(c->control, want);
	config_free(c);
	char *p = config_control_path(CFG, ERR, sizeof(ERR));
	CHECK_EQ_STR(p, want);
	free(p);
}

/* "control": as given, else next to "pidfile" (.pid -> .ctl), else none;
 * config_control_path (cpm -s) finds the same without validating. */
static void test_control(void)
{
	/* the pidfile's directory must exist (the master writes it later) */
	expect_control("\"pidfile\": \"/run/cpm.pid\"", "/run/cpm.ctl");
	/* relative: from the configuration file's directory, for the master
	 * and for cpm -s alike, wherever either starts */
	char want[128];
	snprintf(want, sizeof(want), "%s/cpm.ctl", TMP);
	expect_control("\"pidfile\": \"cpm.pid\"", want);
	snprintf(want, sizeof(want), "%s/sub/c.sock", TMP);
	expect_control("\"control\": \"sub/c.sock\"", want);
	struct config *c;
	char *p;
	c = load("{\n  \"pidfile\": \"/run/cpm\",\n  \"control\": \"/run/c.sock\",\n" TAIL);
	CHECK(c != NULL);
	if (c)
		CHECK_EQ_STR(c->control, "/run/c.sock");
	config_free(c);
	c = load("{\n  \"pidfile\": \"/run/cpm.pid\",\n  \"control\": null,\n" TAIL);
	CHECK(c != NULL);
	if (c)
		CHECK_EQ_STR(c->control, NULL);
	config_free(c);
	c = load("{\n" TAIL);
	CHECK(c != NULL);
	if (c)
		CHECK_EQ_STR(c->control, NULL);
	config_free(c);
	p = config_control_path(CFG, ERR, sizeof(ERR));
	CHECK(p == NULL);
	CHECK(strstr(ERR, "no control socket: set \"control\"") != NULL);
	EXPECT_ERR("{\n  \"listen\": [\"unix:/run/c.sock\"],\n  \"control\": \"/run/c.sock\",\n" TAIL,
		   "3:3: control: the control socket /run/c.sock is also in \"listen\"");
	EXPECT_ERR(
	    "{\n  \"control\": \"/run/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\n" TAIL,
	    "2:3: control: the control socket's path /run/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa is longer "
	    "than 90 bytes");
	EXPECT_ERR("{\n  \"control\": 3,\n" TAIL, "2:14: control: expected a non-empty string");
	/* a file that is not JSON: the client says where */
	write_cfg("{\n  \"control\": ");
	p = config_control_path(CFG, ERR, sizeof(ERR));
	CHECK(p == NULL);
	CHECK(strncmp(ERR, CFG, strlen(CFG)) == 0 && strstr(ERR, ":2:") != NULL);
}

int main(void)
{
	snprintf(TMP, sizeof(TMP), "/tmp/cpm-unit-XXXXXX");
	if (!mkdtemp(TMP)) {
		perror("mkdtemp");
		return 2;
	}
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/root", TMP);
	mkdir(dir, 0755);
	char *real = realpath(dir, NULL);
	snprintf(ROOT, sizeof(ROOT), "%s", real ? real : dir);
	free(real);
	snprintf(CFG, sizeof(CFG), "%s/cpm.json", TMP);
	snprintf(NOTDIR, sizeof(NOTDIR), "%s/file", TMP);
	FILE *f = fopen(NOTDIR, "w");
	if (f)
		fclose(f);

	test_full();
	test_defaults();
	test_errors();
	test_errors_after_root();
	test_pools();
	test_syntax_and_duplicates();
	test_sizes_durations();
	test_listen_valid();
	test_jsonpos();
	test_privileged();
	test_control();

	unlink(CFG);
	unlink(NOTDIR);
	rmdir(ROOT);
	rmdir(TMP);
	return unit_done();
}
