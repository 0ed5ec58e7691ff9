/* Unit tests for protocol/cgi_env.c */
#include <stdlib.h>
#include <string.h>

#include "../../protocol/cgi_env.h"
#include "../../protocol/http_parser.h"
#include "unit.h"

#define MAXH 64
static struct http_limits LIM = {.request_line = 8192, .header_size = 32768, .header_count = MAXH};
static struct http_header H[MAXH];
static struct http_request R;
static char ARENA[16384];
static char *ENVP[256];

static int parse(const char *s)
{
	size_t scan = 0;
	return http_parse_request(s, strlen(s), &LIM, H, &R, &scan);
}

/* The value of NAME in envp, or NULL. */
static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; envp[i]; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

/* How many entries start with prefix. */
static int env_count_prefix(char *const *envp, const char *prefix)
{
	int c = 0;
	for (size_t i = 0; envp[i]; i++)
		c += strncmp(envp[i], prefix, strlen(prefix)) == 0;
	return c;
}

/* Every entry is NAME=value, names are unique, entries lie in the arena. */
static int env_well_formed(char *const *envp, int n, const char *arena, size_t cap)
{
	for (int i = 0; i < n; i++) {
		if (!envp[i] || envp[i] < arena || envp[i] >= arena + cap)
			return 0;
		const char *eq = strchr(envp[i], '=');
		if (!eq || eq == envp[i] || envp[i] + strlen(envp[i]) >= arena + cap)
			return 0;
		for (int j = 0; j < i; j++)
			if (strncmp(envp[j], envp[i], (size_t)(eq - envp[i]) + 1) == 0)
				return 0;
	}
	return envp[n] == NULL;
}

static struct cgi_env_in base_in(void)
{
	static const char *const extra[] = {"PATH=/usr/bin:/bin", "FOO=bar"};
	struct cgi_env_in in = {
	    .req = &R,
	    .script_name = "/cgi-bin/s.sh",
	    .path_info = "/extra/path",
	    .script_filename = "/srv/cgi/s.sh",
	    .document_root = "/srv/cgi",
	    .server_name = "configured.example",
	    .server_port = "8080",
	    .server_software = "cpm/0.1.0",
	    .remote_addr = "192.0.2.7",
	    .remote_port = "54321",
	    .https = 0,
	    .has_body = 1,
	    .content_length = 5,
	    .extra = extra,
	    .nextra = 2,
	};
	return in;
}

static const char *const FULL_REQ = "POST /cgi-bin/s.sh/extra/path?a=1&b=%20 HTTP/1.1\r\n"
				    "Host: example.com:8080\r\n"
				    "User-Agent: unit/1\r\n"
				    "X-Forwarded-For: 198.51.100.1\r\n"
				    "x-lower-case: v\r\n"
				    "Proxy: http://evil:1/\r\n"
				    "X_Under: spoof\r\n"
				    "Authorization: Basic dXNlcjpwdw==\r\n"
				    "Content-Type: text/plain\r\n"
				    "Content-Length: 5\r\n"
				    "Accept: text/html\r\n"
				    "Cookie: c=1\r\n"
				    "accept: text/plain\r\n"
				    "Cookie: d=2\r\n"
				    "Connection: keep-alive\r\n"
				    "Keep-Alive: timeout=5\r\n"
				    "TE: trailers\r\n"
				    "Trailer: X\r\n"
				    "Upgrade: h2c\r\n"
				    "Accept: */*\r\n"
				    "\r\n";

static void test_full(void)
{
	CHECK_EQ_INT(parse(FULL_REQ), 1);
	struct cgi_env_in in = base_in();
	int n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	if (n <= 0)
		return;
	CHECK(env_well_formed(ENVP, n, ARENA, sizeof(ARENA)));

	CHECK_EQ_STR(env_get(ENVP, "GATEWAY_INTERFACE"), "CGI/1.1");
	CHECK_EQ_STR(env_get(ENVP, "SERVER_SOFTWARE"), "cpm/0.1.0");
	CHECK_EQ_STR(env_get(ENVP, "SERVER_NAME"), "example.com");
	CHECK_EQ_STR(env_get(ENVP, "SERVER_PORT"), "8080");
	CHECK_EQ_STR(env_get(ENVP, "SERVER_PROTOCOL"), "HTTP/1.1");
	CHECK_EQ_STR(env_get(ENVP, "REQUEST_METHOD"), "POST");
	CHECK_EQ_STR(env_get(ENVP, "REQUEST_URI"), "/cgi-bin/s.sh/extra/path?a=1&b=%20");
	CHECK_EQ_STR(env_get(ENVP, "SCRIPT_NAME"), "/cgi-bin/s.sh");
	CHECK_EQ_STR(env_get(ENVP, "PATH_INFO"), "/extra/path");
	CHECK_EQ_STR(env_get(ENVP, "PATH_TRANSLATED"), "/srv/cgi/extra/path");
	CHECK_EQ_STR(env_get(ENVP, "QUERY_STRING"), "a=1&b=%20");
	CHECK_EQ_STR(env_get(ENVP, "SCRIPT_FILENAME"), "/srv/cgi/s.sh");
	CHECK_EQ_STR(env_get(ENVP, "DOCUMENT_ROOT"), "/srv/cgi");
	CHECK_EQ_STR(env_get(ENVP, "REMOTE_ADDR"), "192.0.2.7");
	CHECK_EQ_STR(env_get(ENVP, "REMOTE_PORT"), "54321");
	CHECK_EQ_STR(env_get(ENVP, "CONTENT_LENGTH"), "5");
	CHECK_EQ_STR(env_get(ENVP, "CONTENT_TYPE"), "text/plain");
	CHECK_EQ_STR(env_get(ENVP, "AUTH_TYPE"), "Basic");
	CHECK_EQ_STR(env_get(ENVP, "HTTPS"), NULL);
	/* HTTP_* */
	CHECK_EQ_STR(env_get(ENVP, "HTTP_HOST"), "example.com:8080");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_USER_AGENT"), "unit/1");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_X_FORWARDED_FOR"), "198.51.100.1");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_X_LOWER_CASE"), "v");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_ACCEPT"), "text/html, text/plain, */*");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_COOKIE"), "c=1; d=2");
	CHECK_EQ_INT(env_count_prefix(ENVP, "HTTP_ACCEPT="), 1);
	CHECK_EQ_INT(env_count_prefix(ENVP, "HTTP_COOKIE="), 1);
	/* not passed */
	CHECK_EQ_STR(env_get(ENVP, "HTTP_PROXY"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_X_UNDER"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_AUTHORIZATION"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_CONTENT_TYPE"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_CONTENT_LENGTH"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_CONNECTION"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_KEEP_ALIVE"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_TE"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_TRAILER"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_UPGRADE"), NULL);
	CHECK_EQ_INT(env_count_prefix(ENVP, "HTTP_"), 6);
	/* no credentials anywhere */
	for (int i = 0; i < n; i++)
		CHECK(strstr(ENVP[i], "dXNlcjpwdw==") == NULL);
	/* extras come last, in order */
	CHECK_EQ_STR(ENVP[n - 2], "PATH=/usr/bin:/bin");
	CHECK_EQ_STR(ENVP[n - 1], "FOO=bar");
	CHECK(ENVP[n] == NULL);
	/* exactly the expected set: 19 fixed + 6 HTTP_ + 2 extra */
	CHECK_EQ_INT(n, 27);
	CHECK_EQ_STR(env_get(ENVP, "REQUEST_SCHEME"), "http");
	CHECK(env_get(ENVP, "HTTPS") == NULL);

	/* HTTPS */
	in.https = 1;
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK_EQ_STR(env_get(ENVP, "HTTPS"), "on");
	CHECK_EQ_STR(env_get(ENVP, "REQUEST_SCHEME"), "https");
}

static void test_minimal(void)
{
	/* GET without body, query or PATH_INFO */
	CHECK_EQ_INT(parse("GET /s.sh HTTP/1.1\r\nHost: h.example\r\n\r\n"), 1);
	struct cgi_env_in in = base_in();
	in.script_name = "/s.sh";
	in.path_info = "";
	in.has_body = 0;
	in.content_length = 0;
	in.extra = NULL;
	in.nextra = 0;
	int n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	if (n <= 0)
		return;
	CHECK(env_well_formed(ENVP, n, ARENA, sizeof(ARENA)));
	CHECK_EQ_STR(env_get(ENVP, "SERVER_NAME"), "h.example");
	CHECK_EQ_STR(env_get(ENVP, "REQUEST_METHOD"), "GET");
	CHECK_EQ_STR(env_get(ENVP, "QUERY_STRING"), "");
	CHECK_EQ_STR(env_get(ENVP, "PATH_INFO"), "");
	CHECK_EQ_STR(env_get(ENVP, "PATH_TRANSLATED"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "CONTENT_LENGTH"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "CONTENT_TYPE"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "AUTH_TYPE"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "REQUEST_URI"), "/s.sh");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_HOST"), "h.example");
	CHECK_EQ_INT(env_count_prefix(ENVP, "HTTP_"), 1);
	CHECK_EQ_STR(ENVP[n - 1], "HTTP_HOST=h.example");

	/* a chunked body: CONTENT_LENGTH is the decoded length */
	CHECK_EQ_INT(parse("PUT /s.sh HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), 1);
	in.has_body = 1;
	in.content_length = 123456789012LL;
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK_EQ_STR(env_get(ENVP, "CONTENT_LENGTH"), "123456789012");
	CHECK_EQ_STR(env_get(ENVP, "REQUEST_METHOD"), "PUT");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_TRANSFER_ENCODING"), NULL);

	/* Authorization with a scheme only; Bearer */
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer abc.def\r\n\r\n"), 1);
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "AUTH_TYPE"), "Bearer");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_AUTHORIZATION"), NULL);
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nAUTHORIZATION: Digest\r\n\r\n"), 1);
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "AUTH_TYPE"), "Digest");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_AUTHORIZATION"), NULL);
	/* case-insensitive exclusions */
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nPROXY: x\r\nproxy: y\r\nCONTENT-TYPE: a/b\r\n\r\n"), 1);
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_PROXY"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_CONTENT_TYPE"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "CONTENT_TYPE"), "a/b");
	/* Proxy-Authorization-like names that merely start with an excluded
	 * name are passed */
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nProxy-Foo: 1\r\nTE-X: 2\r\n\r\n"), 1);
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_PROXY_FOO"), "1");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_TE_X"), "2");
}

static void check_exact(const struct cgi_env_in *in);

static void test_server_name(void)
{
	struct cgi_env_in in = base_in();
	int n;
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), 1);
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK_EQ_STR(env_get(ENVP, "SERVER_NAME"), "[::1]");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_HOST"), "[::1]:80");
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n"), 1);
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "SERVER_NAME"), "[2001:db8::1]");
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: plain.example\r\n\r\n"), 1);
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "SERVER_NAME"), "plain.example");
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: 10.0.0.1:8443\r\n\r\n"), 1);
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "SERVER_NAME"), "10.0.0.1");
	/* HTTP/1.0 without Host: the configured name */
	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\n\r\n"), 1);
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK_EQ_STR(env_get(ENVP, "SERVER_NAME"), "configured.example");
	CHECK_EQ_STR(env_get(ENVP, "SERVER_PROTOCOL"), "HTTP/1.0");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_HOST"), NULL);
	/* absolute-form: the authority */
	CHECK_EQ_INT(parse("GET http://abs.example:81/x?q HTTP/1.1\r\nHost: other\r\n\r\n"), 1);
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "SERVER_NAME"), "abs.example");
	CHECK_EQ_STR(env_get(ENVP, "REQUEST_URI"), "http://abs.example:81/x?q");
	CHECK_EQ_STR(env_get(ENVP, "QUERY_STRING"), "q");
	/* after an internal redirect (index, fallback): the client's target
	 * stays REQUEST_URI, the query is the redirected request's */
	CHECK_EQ_INT(parse("GET /index.php?a=1 HTTP/1.1\r\nHost: h\r\n\r\n"), 1);
	in.request_uri = "/pretty/path?a=1";
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK_EQ_STR(env_get(ENVP, "REQUEST_URI"), "/pretty/path?a=1");
	CHECK_EQ_STR(env_get(ENVP, "QUERY_STRING"), "a=1");
	check_exact(&in);
}

static void test_arena(void)
{
	CHECK_EQ_INT(parse(FULL_REQ), 1);
	struct cgi_env_in in = base_in();
	int n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	if (n <= 0)
		return;
	size_t need = 0;
	for (int i = 0; i < n; i++)
		need += strlen(ENVP[i]) + 1;
	/* exactly enough room */
	char *exact = malloc(need);
	char **envp = malloc(((size_t)n + 1) * sizeof(char *));
	CHECK_EQ_INT(cgi_env_build(&in, exact, need, envp, (size_t)n + 1), n);
	CHECK(env_well_formed(envp, n, exact, need));
	CHECK_EQ_STR(env_get(envp, "HTTP_COOKIE"), "c=1; d=2");
	free(exact);
	/* every smaller arena fails */
	int bad = 0;
	for (size_t cap = 0; cap < need; cap++) {
		char *a = malloc(cap + 1);
		if (cgi_env_build(&in, a, cap, ENVP, 256) != -1) {
			fprintf(stderr, "arena of %zu (need %zu) did not fail\n", cap, need);
			bad++;
		}
		free(a);
	}
	CHECK_EQ_INT(bad, 0);
	/* envp too small: n + 1 entries are needed for the NULL */
	char **small = malloc(((size_t)n + 1) * sizeof(char *));
	CHECK_EQ_INT(cgi_env_build(&in, ARENA, sizeof(ARENA), small, (size_t)n), -1);
	CHECK_EQ_INT(cgi_env_build(&in, ARENA, sizeof(ARENA), small, 1), -1);
	CHECK_EQ_INT(cgi_env_build(&in, ARENA, sizeof(ARENA), small, 0), -1);
	CHECK_EQ_INT(cgi_env_build(&in, ARENA, sizeof(ARENA), small, (size_t)n + 1), n);
	free(small);
	free(envp);
}

/* cgi_env_size is exact: a build into exactly that much succeeds, with
 * the same count, and one byte or one entry less fails. */
static void check_exact(const struct cgi_env_in *in)
{
	size_t bytes, nvars;
	cgi_env_size(in, &bytes, &nvars);
	char *arena = malloc(bytes);
	char **envp = malloc((nvars + 1) * sizeof(char *));
	int n = cgi_env_build(in, arena, bytes, envp, nvars + 1);
	CHECK_EQ_INT(n, nvars);
	if (n > 0) {
		CHECK(env_well_formed(envp, n, arena, bytes));
		size_t used = 0;
		for (int i = 0; i < n; i++)
			used += strlen(envp[i]) + 1;
		CHECK_EQ_INT(used, bytes);
	}
	CHECK_EQ_INT(cgi_env_build(in, arena, bytes - 1, envp, nvars + 1), -1);
	CHECK_EQ_INT(cgi_env_build(in, arena, bytes, envp, nvars), -1);
	free(arena);
	free(envp);
}

static void test_size(void)
{
	struct cgi_env_in in = base_in();
	CHECK_EQ_INT(parse(FULL_REQ), 1);
	check_exact(&in);
	in.https = 1;
	in.has_body = 0;
	in.document_root = NULL;
	check_exact(&in);
	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\n\r\n"), 1);
	check_exact(&in);

	/* PATH_INFO, SCRIPT_NAME, SCRIPT_FILENAME, REQUEST_URI and
	 * QUERY_STRING near 8 KiB each, with many fields: an arena guessed from
	 * the head's size (the old head_len * 2 + 8192) was too small */
	size_t k = 8000;
	char *path = malloc(k + 1), *name = malloc(k + 1), *file = malloc(k + 1);
	memset(path, 'p', k);
	memset(name, 'n', k);
	memset(file, 'f', k);
	path[0] = name[0] = file[0] = '/';
	path[k] = name[k] = file[k] = 0;
	size_t rl = 2 * k + 64 * 40 + 100;
	char *req = malloc(rl);
	int len = snprintf(req, rl, "GET /s%s?%s HTTP/1.1\r\nHost: h\r\n", path, path + 1);
	for (int i = 0; i < 40; i++)
		len += snprintf(req + len, rl - (size_t)len, "X-%02d: %050d\r\n", i, i);
	len += snprintf(req + len, rl - (size_t)len, "\r\n");
	struct http_limits lim = {.request_line = 32768, .header_size = 65536, .header_count = MAXH};
	size_t scan = 0;
	CHECK_EQ_INT(http_parse_request(req, (size_t)len, &lim, H, &R, &scan), 1);
	in = base_in();
	in.path_info = path;
	in.script_name = name;
	in.script_filename = file;
	size_t bytes, nvars;
	cgi_env_size(&in, &bytes, &nvars);
	CHECK(bytes > R.head_len * 2 + 8192);
	check_exact(&in);
	char *arena = malloc(bytes);
	char **envp = malloc((nvars + 1) * sizeof(char *));
	CHECK_EQ_INT(cgi_env_build(&in, arena, bytes, envp, nvars + 1), nvars);
	CHECK_EQ_INT(strlen(env_get(envp, "PATH_INFO")), k);
	CHECK_EQ_INT(strlen(env_get(envp, "SCRIPT_NAME")), k);
	CHECK_EQ_INT(strlen(env_get(envp, "SCRIPT_FILENAME")), k);
	CHECK_EQ_INT(strlen(env_get(envp, "REQUEST_URI")), 2 * k + 2);
	CHECK_EQ_INT(strlen(env_get(envp, "QUERY_STRING")), k - 1);
	CHECK_EQ_INT(strlen(env_get(envp, "PATH_TRANSLATED")), strlen("/srv/cgi") + k);
	CHECK_EQ_INT(env_count_prefix(envp, "HTTP_X_"), 40);
	free(arena);
	free(envp);
	free(req);
	free(path);
	free(name);
	free(file);
}

/* RFC 3875 4.1.3: CONTENT_TYPE describes a body; 4.1.6: PATH_TRANSLATED
 * needs a document root to map PATH_INFO into. */
static void test_body_and_root(void)
{
	struct cgi_env_in in = base_in();
	CHECK_EQ_INT(parse("GET /s.sh/x HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n\r\n"), 1);
	in.has_body = 0;
	int n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK_EQ_STR(env_get(ENVP, "CONTENT_TYPE"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "CONTENT_LENGTH"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_CONTENT_TYPE"), NULL);
	in.has_body = 1;
	in.content_length = 0;
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "CONTENT_TYPE"), "text/plain");
	CHECK_EQ_STR(env_get(ENVP, "CONTENT_LENGTH"), "0");

	CHECK_EQ_STR(env_get(ENVP, "PATH_TRANSLATED"), "/srv/cgi/extra/path");
	in.document_root = "";
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK_EQ_STR(env_get(ENVP, "PATH_TRANSLATED"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "PATH_INFO"), "/extra/path");
	CHECK_EQ_STR(env_get(ENVP, "DOCUMENT_ROOT"), "");
	in.document_root = NULL;
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK_EQ_STR(env_get(ENVP, "PATH_TRANSLATED"), NULL);
}

/* A route's server_name is SERVER_NAME whatever the client sends; the
 * client's Host stays in HTTP_HOST. */
static void test_pinned_server_name(void)
{
	struct cgi_env_in in = base_in();
	in.pinned_server_name = "pinned.example";
	static const char *const reqs[] = {
	    "GET / HTTP/1.1\r\nHost: evil.example:99\r\n\r\n",
	    "GET http://abs.example/ HTTP/1.1\r\nHost: other\r\n\r\n",
	    "GET / HTTP/1.0\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost:\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		CHECK_EQ_INT(parse(reqs[i]), 1);
		int n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
		CHECK(n > 0);
		CHECK_EQ_STR(env_get(ENVP, "SERVER_NAME"), "pinned.example");
		check_exact(&in);
	}
	CHECK_EQ_STR(env_get(ENVP, "HTTP_HOST"), "");
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: evil.example:99\r\n\r\n"), 1);
	cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_HOST"), "evil.example:99");
	/* not pinned: the client's name; an empty Host: the configured one */
	in.pinned_server_name = NULL;
	cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "SERVER_NAME"), "evil.example");
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 1);
	cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK_EQ_STR(env_get(ENVP, "SERVER_NAME"), "configured.example");
}

/* pass_authorization, and what cpm's own authentication sets */
static void test_authorization(void)
{
	CHECK_EQ_INT(parse("GET /s HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dXNlcjpwdw==\r\n"
			   "authorization: second\r\n\r\n"),
		     1);
	struct cgi_env_in in = base_in();
	in.has_body = 0;
	int n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_AUTHORIZATION"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "REMOTE_USER"), NULL);
	CHECK_EQ_STR(env_get(ENVP, "AUTH_TYPE"), "Basic");
	in.pass_authorization = 1;
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK(env_well_formed(ENVP, n, ARENA, sizeof(ARENA)));
	CHECK_EQ_STR(env_get(ENVP, "HTTP_AUTHORIZATION"), "Basic dXNlcjpwdw==, second");
	in.remote_user = "user";
	in.auth_type = "Basic";
	in.pass_authorization = 0;
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK(env_well_formed(ENVP, n, ARENA, sizeof(ARENA)));
	CHECK_EQ_STR(env_get(ENVP, "REMOTE_USER"), "user");
	CHECK_EQ_STR(env_get(ENVP, "AUTH_TYPE"), "Basic");
	CHECK_EQ_STR(env_get(ENVP, "HTTP_AUTHORIZATION"), NULL);
	for (int i = 0; i < n; i++)
		CHECK(strstr(ENVP[i], "dXNlcjpwdw==") == NULL);
	/* sizes agree with what is built */
	size_t bytes, nvars;
	in.pass_authorization = 1;
	cgi_env_size(&in, &bytes, &nvars);
	CHECK_EQ_INT(cgi_env_build(&in, ARENA, bytes, ENVP, nvars + 1), (int)nvars);
}

/* the request's id replaces every X-Request-Id of the client, so the
 * program sees exactly one; without an id the client's goes on as any
 * header */
static void test_request_id(void)
{
	CHECK_EQ_INT(parse("GET /s HTTP/1.1\r\nHost: h\r\nX-Request-Id: client\r\nx-request-id: again\r\n\r\n"), 1);
	struct cgi_env_in in = base_in();
	in.has_body = 0;
	int n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK_EQ_STR(env_get(ENVP, "HTTP_X_REQUEST_ID"), "client, again");
	in.request_id = "0123abcd";
	n = cgi_env_build(&in, ARENA, sizeof(ARENA), ENVP, 256);
	CHECK(n > 0);
	CHECK(env_well_formed(ENVP, n, ARENA, sizeof(ARENA)));
	CHECK_EQ_STR(env_get(ENVP, "HTTP_X_REQUEST_ID"), "0123abcd");
	CHECK_EQ_INT(env_count_prefix(ENVP, "HTTP_X_REQUEST_ID="), 1);
	size_t bytes, nvars;
	cgi_env_size(&in, &bytes, &nvars);
	CHECK_EQ_INT(cgi_env_build(&in, ARENA, bytes, ENVP, nvars + 1), (int)nvars);
}

int main(void)
{
	test_full();
	test_request_id();
	test_authorization();
	test_minimal();
	test_server_name();
	test_arena();
	test_size();
	test_body_and_root();
	test_pinned_server_name();
	return unit_done();
}
