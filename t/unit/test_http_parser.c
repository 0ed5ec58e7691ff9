/* Unit tests for protocol/http_parser.c */
#include <stdlib.h>
#include <string.h>

#include "../../protocol/http_parser.h"
#include "unit.h"

#define MAXH 100
static struct http_limits LIM = {.request_line = 8192, .header_size = 32768, .header_count = MAXH};
static struct http_header H[MAXH];

static int parse_lim(const char *s, size_t len, const struct http_limits *lim, struct http_request *r)
{
	size_t scan = 0;
	return http_parse_request(s, len, lim, H, r, &scan);
}

static int parse_n(const char *s, size_t len, struct http_request *r)
{
	return parse_lim(s, len, &LIM, r);
}

static int parse(const char *s, struct http_request *r)
{
	return parse_n(s, strlen(s), r);
}

/* status of a request that must be rejected */
static int status_of(const char *s)
{
	struct http_request r;
	return parse(s, &r);
}

static const struct http_slice *header(const struct http_request *r, const char *name)
{
	for (unsigned i = 0; i < r->nheaders; i++)
		if (http_slice_ieq(r->headers[i].name, name))
			return &r->headers[i].value;
	return NULL;
}

static void test_get(void)
{
	struct http_request r;
	const char *s = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: unit\r\n\r\n";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_SLICE(r.method, "GET");
	CHECK_EQ_INT(r.method_id, HTTP_GET);
	CHECK_SLICE(r.target, "/index.html");
	CHECK_SLICE(r.path, "/index.html");
	CHECK_EQ_INT(r.has_query, 0);
	CHECK_EQ_INT(r.query.len, 0);
	CHECK_EQ_INT(r.authority.len, 0);
	CHECK_EQ_INT(r.version_minor, 1);
	CHECK_EQ_INT(r.nheaders, 2);
	CHECK(r.headers == H);
	CHECK_SLICE(H[0].name, "Host");
	CHECK_SLICE(H[0].value, "example.com");
	CHECK_SLICE(H[1].name, "User-Agent");
	CHECK_SLICE(H[1].value, "unit");
	CHECK_SLICE(r.host, "example.com");
	CHECK(header(&r, "user-agent") && header(&r, "user-agent")->p == H[1].value.p);
	CHECK(header(&r, "accept") == NULL);
	CHECK_EQ_INT(r.has_host, 1);
	CHECK_EQ_INT(r.content_length, -1);
	CHECK_EQ_INT(r.chunked, 0);
	CHECK_EQ_INT(r.keep_alive, 1);
	CHECK_EQ_INT(r.expect_continue, 0);
	CHECK_EQ_INT(r.head_len, strlen(s));
	/* slices point into the caller's buffer */
	CHECK(r.method.p == s);
	CHECK(r.target.p == s + 4);

	/* pipelined bytes after the head are not part of it */
	const char *p = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\n";
	CHECK_EQ_INT(parse(p, &r), 1);
	CHECK_EQ_INT(r.head_len, strlen("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
	CHECK_SLICE(r.path, "/a");

	/* every known method gets its id; others are HTTP_OTHER */
	static const struct {
		const char *m;
		enum http_method id;
	} ms[] = {{"GET", HTTP_GET},	    {"HEAD", HTTP_HEAD},       {"POST", HTTP_POST},   {"PUT", HTTP_PUT},
		  {"DELETE", HTTP_DELETE},  {"OPTIONS", HTTP_OPTIONS}, {"TRACE", HTTP_TRACE}, {"PATCH", HTTP_PATCH},
		  {"PROPFIND", HTTP_OTHER}, {"get", HTTP_OTHER},       {"GETX", HTTP_OTHER}};
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		char buf[128];
		snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\nHost: h\r\n\r\n", ms[i].m);
		CHECK_EQ_INT(parse(buf, &r), 1);
		CHECK_EQ_INT(r.method_id, ms[i].id);
		CHECK_EQ_INT(r.method.len, strlen(ms[i].m));
	}
	/* OPTIONS * */
	CHECK_EQ_INT(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &r), 1);
	CHECK_SLICE(r.path, "*");
	CHECK_EQ_INT(status_of("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
}

static void test_post(void)
{
	struct http_request r;
	const char *s = "POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 42\r\n\r\nbody";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_EQ_INT(r.method_id, HTTP_POST);
	CHECK_EQ_INT(r.content_length, 42);
	CHECK_EQ_INT(r.chunked, 0);
	CHECK_EQ_INT(r.head_len, strlen(s) - 4);
	CHECK_EQ_INT(r.nheaders, 3);

	/* zero and identical duplicates are fine */
	CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.content_length, 0);
	CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.content_length, 7);
	CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 123456789012\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.content_length, 123456789012LL);

	/* chunked */
	CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.chunked, 1);
	CHECK_EQ_INT(r.content_length, -1);
	CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.chunked, 1);
}

static void test_absolute_form_and_query(void)
{
	struct http_request r;
	CHECK_EQ_INT(parse("GET http://example.com:8080/p/q?x=1&y HTTP/1.1\r\nHost: other\r\n\r\n", &r), 1);
	CHECK_SLICE(r.target, "http://example.com:8080/p/q?x=1&y");
	CHECK_SLICE(r.authority, "example.com:8080");
	CHECK_SLICE(r.path, "/p/q");
	CHECK_EQ_INT(r.has_query, 1);
	CHECK_SLICE(r.query, "x=1&y");
	CHECK_SLICE(r.host, "example.com:8080"); /* the authority wins over Host */

	CHECK_EQ_INT(parse("GET HTTP://Example.com HTTP/1.1\r\nHost: e\r\n\r\n", &r), 1);
	CHECK_SLICE(r.authority, "Example.com");
	CHECK_SLICE(r.path, "/");
	CHECK_EQ_INT(r.has_query, 0);

	CHECK_EQ_INT(parse("GET https://e.org?a=b HTTP/1.1\r\nHost: e\r\n\r\n", &r), 1);
	CHECK_SLICE(r.authority, "e.org");
	CHECK_SLICE(r.path, "/");
	CHECK_EQ_INT(r.has_query, 1);
	CHECK_SLICE(r.query, "a=b");

	CHECK_EQ_INT(status_of("GET http:///x HTTP/1.1\r\nHost: e\r\n\r\n"), -400); /* empty authority */
	CHECK_EQ_INT(status_of("GET ftp://e/x HTTP/1.1\r\nHost: e\r\n\r\n"), -400);

	/* origin-form query */
	CHECK_EQ_INT(parse("GET /a/b?c=d&e=%20 HTTP/1.1\r\nHost: h\r\n\r\n", &r), 1);
	CHECK_SLICE(r.path, "/a/b");
	CHECK_SLICE(r.query, "c=d&e=%20");
	CHECK_EQ_INT(r.has_query, 1);
	CHECK_EQ_INT(r.authority.len, 0);
	CHECK_EQ_INT(parse("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", &r), 1);
	CHECK_SLICE(r.path, "/a");
	CHECK_EQ_INT(r.has_query, 1);
	CHECK_EQ_INT(r.query.len, 0);
	CHECK_EQ_INT(parse("GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n", &r), 1);
	CHECK_SLICE(r.path, "/a");
	CHECK_SLICE(r.query, "b?c");
	/* the path stays raw */
	CHECK_EQ_INT(parse("GET /a%2Fb/%2e%2e HTTP/1.1\r\nHost: h\r\n\r\n", &r), 1);
	CHECK_SLICE(r.path, "/a%2Fb/%2e%2e");
}

static void test_connection(void)
{
	struct http_request r;
	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.version_minor, 0);
	CHECK_EQ_INT(r.keep_alive, 0);
	CHECK_EQ_INT(r.has_host, 0);
	CHECK_EQ_INT(r.host.len, 0);

	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.keep_alive, 1);
	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.keep_alive, 1);
	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.keep_alive, 1);
	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.keep_alive, 0);
	/* close wins whatever the order (RFC 9112 9.3) */
	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.keep_alive, 0);
	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.keep_alive, 0);

	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.keep_alive, 0);
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, Close\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.keep_alive, 0);
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.keep_alive, 1);
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.keep_alive, 1);

	/* Expect */
	CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.expect_continue, 1);
	CHECK_EQ_INT(r.content_length, 3);
	CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.expect_continue, 1);
	CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.expect_continue, 0);
}

static void test_line_endings_and_ows(void)
{
	struct http_request r;
	const char *s = "GET /lf HTTP/1.1\nHost: h\nX-A: 1\n\n";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_EQ_INT(r.head_len, strlen(s));
	CHECK_EQ_INT(r.nheaders, 2);
	CHECK_SLICE(H[1].name, "X-A");
	CHECK_SLICE(H[1].value, "1");
	CHECK_SLICE(r.path, "/lf");

	/* mixed */
	s = "GET /m HTTP/1.1\r\nHost: h\nX-B: 2\r\n\n";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_EQ_INT(r.head_len, strlen(s));
	CHECK_SLICE(H[1].value, "2");
	s = "GET /m HTTP/1.1\nHost: h\n\r\n";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_EQ_INT(r.head_len, strlen(s));
	CHECK_SLICE(H[0].value, "h");

	/* leading empty lines are skipped but belong to the head */
	s = "\r\n\r\nGET /lead HTTP/1.1\r\nHost: h\r\n\r\n";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_SLICE(r.method, "GET");
	CHECK_SLICE(r.path, "/lead");
	CHECK_EQ_INT(r.head_len, strlen(s));
	s = "\nGET /lead HTTP/1.1\nHost: h\n\n";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_SLICE(r.path, "/lead");
	CHECK_EQ_INT(r.head_len, strlen(s));

	/* OWS around values is trimmed; inner whitespace is kept */
	s = "GET / HTTP/1.1\r\nHost:h\r\nX-A:   v a l \t \r\nX-B:\t\tx\r\nX-Empty:\r\nX-Sp:    \r\n\r\n";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_EQ_INT(r.nheaders, 5);
	CHECK_SLICE(H[0].value, "h");
	CHECK_SLICE(H[1].value, "v a l");
	CHECK_SLICE(H[2].value, "x");
	CHECK_SLICE(H[3].name, "X-Empty");
	CHECK_EQ_INT(H[3].value.len, 0);
	CHECK_EQ_INT(H[4].value.len, 0);
	CHECK_SLICE(r.host, "h");
	/* obs-text and tabs inside values are allowed */
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\ta\r\n\r\n", &r), 1);
	CHECK_SLICE(H[1].value, "caf\xc3\xa9\ta");
}

/* Feed s byte by byte into a growing buffer: 0 until the last byte, then 1
 * with the same result as a parse of the whole. */
static void incremental(const char *s)
{
	size_t n = strlen(s);
	char *buf = malloc(n);
	memcpy(buf, s, n);
	struct http_request whole, r;
	struct http_header hw[MAXH], hr[MAXH];
	size_t scan = 0;
	CHECK_EQ_INT(http_parse_request(buf, n, &LIM, hw, &whole, &scan), 1);
	scan = 0;
	size_t last_scan = 0;
	int ok = 1;
	for (size_t len = 0; len < n; len++) {
		int rc = http_parse_request(buf, len, &LIM, hr, &r, &scan);
		if (rc != 0 || scan > len || scan < last_scan) {
			ok = 0;
			fprintf(stderr, "incremental: len %zu: rc %d scan %zu (last %zu)\n", len, rc, scan, last_scan);
			break;
		}
		last_scan = scan;
	}
	CHECK(ok);
	CHECK_EQ_INT(http_parse_request(buf, n, &LIM, hr, &r, &scan), 1);
	CHECK_EQ_INT(r.head_len, whole.head_len);
	CHECK_EQ_INT(r.nheaders, whole.nheaders);
	CHECK(r.method.p == whole.method.p && r.method.len == whole.method.len);
	CHECK(r.target.p == whole.target.p && r.target.len == whole.target.len);
	CHECK(r.path.p == whole.path.p && r.path.len == whole.path.len);
	CHECK(r.query.len == whole.query.len && r.has_query == whole.has_query);
	CHECK(r.host.p == whole.host.p && r.host.len == whole.host.len);
	CHECK_EQ_INT(r.content_length, whole.content_length);
	CHECK_EQ_INT(r.chunked, whole.chunked);
	CHECK_EQ_INT(r.keep_alive, whole.keep_alive);
	CHECK_EQ_INT(r.expect_continue, whole.expect_continue);
	CHECK_EQ_INT(r.version_minor, whole.version_minor);
	CHECK_EQ_INT(r.method_id, whole.method_id);
	int same = 1;
	for (unsigned i = 0; i < r.nheaders && i < whole.nheaders; i++)
		same &= hr[i].name.p == hw[i].name.p && hr[i].name.len == hw[i].name.len &&
			hr[i].value.p == hw[i].value.p && hr[i].value.len == hw[i].value.len;
	CHECK(same);
	CHECK(r.headers == hr);
	free(buf);
}

static void test_incremental(void)
{
	incremental("GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nConnection: close\r\n\r\n");
	incremental("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n");
	incremental("GET / HTTP/1.1\nHost: h\nX: y\n\n");
	incremental("GET / HTTP/1.1\nHost: h\n\r\n");
	incremental("\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	incremental("GET http://a.b/c HTTP/1.1\r\nHost: a.b\r\nTransfer-Encoding: chunked\r\n\r\n");

	/* the resume offset: after a chunk without any LF it is the end of the
	 * data; it never goes back; a resumed parse gives the whole result */
	const char *s = "GET /abc HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t n = strlen(s);
	struct http_request r;
	size_t scan = 0;
	CHECK_EQ_INT(http_parse_request(s, 8, &LIM, H, &r, &scan), 0);
	CHECK_EQ_INT(scan, 8);
	CHECK_EQ_INT(http_parse_request(s, 20, &LIM, H, &r, &scan), 0);
	CHECK(scan >= 8 && scan <= 20);
	size_t after_line = strlen("GET /abc HTTP/1.1\r\nHost: h");
	CHECK_EQ_INT(http_parse_request(s, after_line, &LIM, H, &r, &scan), 0);
	CHECK(scan >= 18 && scan <= after_line);
	CHECK_EQ_INT(http_parse_request(s, n, &LIM, H, &r, &scan), 1);
	CHECK_EQ_INT(r.head_len, n);
	/* the terminating CRLF CRLF split right in its middle */
	scan = 0;
	CHECK_EQ_INT(http_parse_request(s, n - 1, &LIM, H, &r, &scan), 0);
	CHECK(scan <= n - 1);
	CHECK_EQ_INT(http_parse_request(s, n - 1, &LIM, H, &r, &scan), 0); /* no new bytes */
	CHECK_EQ_INT(http_parse_request(s, n, &LIM, H, &r, &scan), 1);
	CHECK_EQ_INT(r.head_len, n);
	/* a scan offset from a parse of a previous request must be reset: a
	 * fresh scan of 0 always works */
	scan = 0;
	CHECK_EQ_INT(http_parse_request(s, n, &LIM, H, &r, &scan), 1);
}

static void test_limits(void)
{
	struct http_request r;
	struct http_limits lim = {.request_line = 20, .header_size = 8192, .header_count = 3};
	char buf[512];
	/* request line exactly at the limit (20 bytes) */
	const char *line20 = "GET /123456 HTTP/1.1"; /* 20 */
	CHECK_EQ_INT(strlen(line20), 20);
	snprintf(buf, sizeof(buf), "%s\r\nHost: h\r\n\r\n", line20);
	CHECK_EQ_INT(parse_lim(buf, strlen(buf), &lim, &r), 1);
	snprintf(buf, sizeof(buf), "%s\nHost: h\n\n", line20);
	CHECK_EQ_INT(parse_lim(buf, strlen(buf), &lim, &r), 1);
	/* one over */
	snprintf(buf, sizeof(buf), "GET /1234567 HTTP/1.1\r\nHost: h\r\n\r\n");
	CHECK_EQ_INT(parse_lim(buf, strlen(buf), &lim, &r), -414);
	/* over while incomplete: no LF yet, and with the line but no end of head */
	const char *longline = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	CHECK_EQ_INT(parse_lim(longline, 20, &lim, &r), 0);
	CHECK_EQ_INT(parse_lim(longline, 21, &lim, &r), -414);
	CHECK_EQ_INT(parse_lim(longline, strlen(longline), &lim, &r), -414);
	snprintf(buf, sizeof(buf), "GET /1234567 HTTP/1.1\r\nHost: h\r\n");
	CHECK_EQ_INT(parse_lim(buf, strlen(buf), &lim, &r), -414);
	/* exactly at the limit while incomplete: not yet an error (the CR of the
	 * line terminator is not part of the line) */
	snprintf(buf, sizeof(buf), "%s\r\nHost: h\r\n", line20);
	CHECK_EQ_INT(parse_lim(buf, strlen(buf), &lim, &r), 0);
	snprintf(buf, sizeof(buf), "%s\r", line20);
	CHECK_EQ_INT(parse_lim(buf, strlen(buf), &lim, &r), 0);
	snprintf(buf, sizeof(buf), "%s\nHost: h\n", line20);
	CHECK_EQ_INT(parse_lim(buf, strlen(buf), &lim, &r), 0);
	/* leading empty lines are not part of the request line */
	snprintf(buf, sizeof(buf), "\r\n\r\n%s\r\nHost: h\r\n\r\n", line20);
	CHECK_EQ_INT(parse_lim(buf, strlen(buf), &lim, &r), 1);

	/* header count */
	const char *h3 = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
	CHECK_EQ_INT(parse_lim(h3, strlen(h3), &lim, &r), 1);
	CHECK_EQ_INT(r.nheaders, 3);
	const char *h4 = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
	CHECK_EQ_INT(parse_lim(h4, strlen(h4), &lim, &r), -431);
	lim.header_count = 1;
	CHECK_EQ_INT(parse_lim(h3, strlen(h3), &lim, &r), -431);
	lim.header_count = 3;

	/* one field line: name, colon, OWS and value, without the CRLF */
	{
		struct http_limits fl = {
		    .request_line = 8192, .header_size = 65536, .header_count = 10, .header_field = 16};
		const char *f16 = "GET / HTTP/1.1\r\nHost: h\r\nX-Field: 1234567\r\n\r\n"; /* 16 */
		CHECK_EQ_INT(parse_lim(f16, strlen(f16), &fl, &r), 1);
		const char *f17 = "GET / HTTP/1.1\r\nHost: h\r\nX-Field: 12345678\r\n\r\n";
		CHECK_EQ_INT(parse_lim(f17, strlen(f17), &fl, &r), -431);
		const char *lf17 = "GET / HTTP/1.1\nHost: h\nX-Field: 12345678\n\n";
		CHECK_EQ_INT(parse_lim(lf17, strlen(lf17), &fl, &r), -431);
		/* OWS counts: it is part of the line */
		const char *ows = "GET / HTTP/1.1\r\nHost: h\r\nX-Field:  1234567\r\n\r\n";
		CHECK_EQ_INT(parse_lim(ows, strlen(ows), &fl, &r), -431);
		/* a long name is limited like a long value */
		const char *name = "GET / HTTP/1.1\r\nHost: h\r\nX-Very-Long-Field-Name:\r\n\r\n";
		CHECK_EQ_INT(parse_lim(name, strlen(name), &fl, &r), -431);
		/* the request line is not a field line */
		const char *rl = "GET /a-path-longer-than-16 HTTP/1.1\r\nHost: h\r\n\r\n";
		CHECK_EQ_INT(parse_lim(rl, strlen(rl), &fl, &r), 1);
		/* 0: only header_size applies */
		fl.header_field = 0;
		CHECK_EQ_INT(parse_lim(f17, strlen(f17), &fl, &r), 1);
		/* a 16 KiB field name within a 32 KiB head */
		char *big = malloc(20000);
		int bl = snprintf(big, 20000, "GET / HTTP/1.1\r\nHost: h\r\nX-");
		memset(big + bl, 'n', 16384);
		bl += 16384;
		bl += snprintf(big + bl, 20000 - (size_t)bl, ": v\r\n\r\n");
		struct http_limits dl = {
		    .request_line = 8192, .header_size = 32768, .header_count = 100, .header_field = 8192};
		CHECK_EQ_INT(parse_lim(big, (size_t)bl, &dl, &r), -431);
		dl.header_field = 16384 + 5;
		CHECK_EQ_INT(parse_lim(big, (size_t)bl, &dl, &r), 1);
		free(big);
	}

	/* head size: the whole head including the final empty line */
	const char *hs = "GET / HTTP/1.1\r\nHost: h\r\nX-Fill: 0123456789\r\n\r\n";
	size_t hn = strlen(hs);
	lim.header_size = hn;
	CHECK_EQ_INT(parse_lim(hs, hn, &lim, &r), 1);
	lim.header_size = hn - 1;
	CHECK_EQ_INT(parse_lim(hs, hn, &lim, &r), -431);
	lim.header_size = 30;
	CHECK_EQ_INT(parse_lim(hs, 30, &lim, &r), 0);
	CHECK_EQ_INT(parse_lim(hs, 31, &lim, &r), -431);
	CHECK_EQ_INT(parse_lim(hs, hn - 1, &lim, &r), -431);
	/* a body after the head does not count */
	lim.header_size = hn;
	char big[256];
	snprintf(big, sizeof(big), "%sXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", hs);
	CHECK_EQ_INT(parse_lim(big, strlen(big), &lim, &r), 1);
	CHECK_EQ_INT(r.head_len, hn);
}

static void test_malformed(void)
{
	struct http_request r;
	/* request line */
	CHECK_EQ_INT(status_of("G@T / HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET\x01 / HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET /\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / \r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / http/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), -505);
	CHECK_EQ_INT(status_of("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), -505);
	CHECK_EQ_INT(status_of("GET / HTTP/3.0\r\nHost: h\r\n\r\n"), -505);
	/* target */
	CHECK_EQ_INT(status_of("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET a/b HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET ?x HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	/* Host */
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nX: y\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), -400);
	/* two Content-Type fields, even equal ones: which one would the
	 * application see? */
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\nContent-Type: a/b\r\n\r\n"), -400);
	CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\nX-Content-Type: c\r\n\r\n") > 0);
	/* field syntax */
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-A\t: 1\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  folded\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\tfolded\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\n: empty-name\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fz\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\x1bz\r\n\r\n"), -400);
	const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0z\r\n\r\n";
	CHECK_EQ_INT(parse_n(nul, sizeof(nul) - 1, &r), -400);
	const char nul2[] = "GET / HTTP/1.1\r\nHost: h\r\nX\0: a\r\n\r\n";
	CHECK_EQ_INT(parse_n(nul2, sizeof(nul2) - 1, &r), -400);
	/* bare CR */
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\rHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\n\r\r\nX: y\r\n\r\n"), -400);
	/* a head whose empty line is "\r\r\n" never ends the usual way: it
	 * is refused at the bare CR, in one piece or byte by byte */
	CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n"), -400);
	{
		const char *bad = "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n";
		size_t bl = strlen(bad), first = 0;
		for (size_t n = 1; n <= bl && !first; n++)
			if (parse_n(bad, n, &r) == -400)
				first = n;
		CHECK_EQ_INT(first, strlen("GET / HTTP/1.1\r\nHost: h\r\n\r\r"));
	}
	/* Content-Length */
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12a\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1,2\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), -400);
	/* Transfer-Encoding */
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
		     -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
		     -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), -501);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), -400);
}

static void test_helpers(void)
{
	struct http_slice s = {"Content-Length", 14};
	CHECK(http_slice_ieq(s, "content-length"));
	CHECK(http_slice_ieq(s, "CONTENT-LENGTH"));
	CHECK(!http_slice_ieq(s, "content-lengt"));
	CHECK(!http_slice_ieq(s, "content-lengthx"));
	CHECK(!http_slice_ieq(s, "content_length"));
	struct http_slice e = {"", 0};
	CHECK(http_slice_ieq(e, ""));
	CHECK(http_is_tchar('a') && http_is_tchar('Z') && http_is_tchar('0') && http_is_tchar('!'));
	CHECK(http_is_tchar('~') && http_is_tchar('|') && http_is_tchar('-') && http_is_tchar('_'));
	CHECK(!http_is_tchar(' ') && !http_is_tchar(':') && !http_is_tchar('(') && !http_is_tchar('"'));
	CHECK(!http_is_tchar(0) && !http_is_tchar(0x7f) && !http_is_tchar(0x80) && !http_is_tchar(0xff));
	CHECK(!http_is_tchar('@') && !http_is_tchar(',') && !http_is_tchar('/') && !http_is_tchar('\t'));
}

/* Every slice of r is empty or lies in buf[0..len) (the path may also be
 * the constant "/" of an absolute-form target without one). */
static int slice_in(struct http_slice sl, const char *buf, size_t len)
{
	return sl.len == 0 || (sl.p >= buf && sl.p + sl.len <= buf + len);
}

static int consistent(const struct http_request *r, const char *buf, size_t len, unsigned maxh)
{
	int ok = slice_in(r->method, buf, len) && slice_in(r->target, buf, len) && slice_in(r->query, buf, len) &&
		 slice_in(r->authority, buf, len) && slice_in(r->host, buf, len) &&
		 (slice_in(r->path, buf, len) || (r->path.len == 1 && r->path.p[0] == '/'));
	ok = ok && r->headers == H && r->nheaders <= maxh && r->head_len <= len;
	for (unsigned i = 0; ok && i < r->nheaders; i++)
		ok = slice_in(H[i].name, buf, len) && slice_in(H[i].value, buf, len);
	return ok;
}

/* After a successful parse, a parse of anything else leaves nothing of the
 * first request in req, whatever it returns (the caller logs a refused
 * request from req). */
static void test_reset_on_entry(void)
{
	struct http_limits lim = {.request_line = 40, .header_size = 200, .header_count = 3};
	char many_empty[80];
	memset(many_empty, '\n', 70);
	strcpy(many_empty + 70, "GET / HT");
	char longline[128];
	snprintf(longline, sizeof(longline), "GET /%050d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
	char bighead[300];
	snprintf(bighead, sizeof(bighead), "GET / HTTP/1.1\r\nHost: h\r\nX: %0250d", 0);
	const struct {
		const char *in;
		int rc;
		int has_method; /* the request line was parsed before the refusal */
	} cases[] = {
	    {"\r\r", -400, 0},
	    {"\r", 0, 0},
	    {"\r\n\r", 0, 0},
	    {"", 0, 0},
	    {"GET", 0, 0},
	    {"GET / HTTP/1.1\r\nHost: h\r\n", 0, 0},
	    {"GET / HTTP/1.1\r\nHost: h\r\n\r", 0, 0},
	    {"\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", -400, 0},
	    {"GET / HTTP/1.1\rHost: h\r\n\r\n", -400, 0},
	    {"G@T / HTTP/1.1\r\nHost: h\r\n\r\n", -400, 1},
	    {"GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n", -400, 1},
	    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -400, 1},
	    {"GET / HTTP/1.1\r\n\r\n", -400, 1},
	    {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", -505, 1},
	    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -501, 1},
	    {"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", -431, 1},
	    {many_empty, -400, 0},
	    {longline, -414, 0},
	    {bighead, -431, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* the earlier request lives in a buffer of its own */
		char first[] = "POST http://a.example/x?q HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: "
			       "close\r\nExpect: 100-continue\r\n\r\n";
		struct http_request r;
		size_t scan = 0;
		CHECK_EQ_INT(http_parse_request(first, strlen(first), &LIM, H, &r, &scan), 1);
		size_t n = strlen(cases[i].in);
		char *buf = malloc(n + 1);
		memcpy(buf, cases[i].in, n + 1);
		scan = 0;
		int rc = http_parse_request(buf, n, &lim, H, &r, &scan);
		if (!CHECK_EQ_INT(rc, cases[i].rc) || !CHECK(consistent(&r, buf, n, lim.header_count))) {
			fputs("  input: ", stderr);
			unit_print_escaped(buf, n);
			fputc('\n', stderr);
		}
		CHECK_EQ_INT(r.method.len != 0, cases[i].has_method);
		CHECK_EQ_INT(r.head_len, 0);
		CHECK_EQ_INT(r.content_length, -1);
		CHECK_EQ_INT(r.expect_continue, 0);
		CHECK_EQ_INT(r.authority.len, 0);
		if (!cases[i].has_method) {
			CHECK_EQ_INT(r.target.len, 0);
			CHECK_EQ_INT(r.path.len, 0);
			CHECK_EQ_INT(r.nheaders, 0);
			CHECK_EQ_INT(r.host.len, 0);
			CHECK_EQ_INT(r.has_host, 0);
			CHECK_EQ_INT(r.method_id, HTTP_OTHER);
			CHECK_EQ_INT(r.keep_alive, 0);
			CHECK_EQ_INT(r.conn_close, 0);
		}
		free(buf);
	}
}

/* Host = uri-host [":" port] (RFC 9112 3.2, RFC 3986 3.2.2) */
static void test_host(void)
{
	static const struct {
		const char *v, *name, *port;
	} good[] = {
	    {"", "", ""},
	    {"example.com", "example.com", ""},
	    {"Example.COM:8080", "Example.COM", "8080"},
	    {"h:", "h", ""},
	    {"127.0.0.1", "127.0.0.1", ""},
	    {"127.0.0.1:80", "127.0.0.1", "80"},
	    {"999.1.1.1", "999.1.1.1", ""}, /* not an IPv4address, but a reg-name */
	    {"[::1]", "[::1]", ""},
	    {"[::1]:8080", "[::1]", "8080"},
	    {"[2001:db8::a:b:c]:1", "[2001:db8::a:b:c]", "1"},
	    {"[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]", ""},
	    {"[1:2:3:4:5:6:7:8]", "[1:2:3:4:5:6:7:8]", ""},
	    {"[v1.fe80::a+b]:80", "[v1.fe80::a+b]", "80"},
	    {"[VF.x]", "[VF.x]", ""},
	    {"a-b_c~d.e", "a-b_c~d.e", ""},
	    {"a!$&'()*+,;=b", "a!$&'()*+,;=b", ""},
	    {"%41%2e", "%41%2e", ""},
	    {"xn--bcher-kva.example", "xn--bcher-kva.example", ""},
	    {"h:00000080", "h", "00000080"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct http_slice v = {good[i].v, strlen(good[i].v)}, name, port;
		if (!CHECK_EQ_INT(http_host_split(v, &name, &port), 0))
			fprintf(stderr, "  host: %s\n", good[i].v);
		CHECK_SLICE(name, good[i].name);
		CHECK_SLICE(port, good[i].port);
	}
	static const char *const bad[] = {
	    "evil.com:99/../x",
	    "evil.com/x",
	    "u@h",
	    "u:p@h",
	    "h:80@evil",
	    ":80",
	    ":",
	    "h:8o",
	    "h:80:81",
	    "h h",
	    "h\t",
	    "h\\x",
	    "h?",
	    "h#f",
	    "\"h\"",
	    "h%4",
	    "h%zz",
	    "%",
	    "caf\xc3\xa9",
	    "[::1",
	    "::1",
	    "[::1]x",
	    "[::1]:x",
	    "[::1]]",
	    "[]",
	    "[::g]",
	    "[1:2:3:4:5:6:7:8:9]",
	    "[1::2::3]",
	    "[::1%25eth0]",
	    "[127.0.0.1]",
	    "[v.x]",
	    "[v1.]",
	    "[v1x]",
	    "[vg.x]",
	    "[v1.a/b]",
	    "[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]",
	    "h,h:80/",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_slice v = {bad[i], strlen(bad[i])}, name, port;
		if (!CHECK_EQ_INT(http_host_split(v, &name, &port), -1))
			fprintf(stderr, "  host: %s\n", bad[i]);
		char req[256];
		snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
		if (strpbrk(bad[i], "\t") == NULL && !CHECK_EQ_INT(status_of(req), -400))
			fprintf(stderr, "  host: %s\n", bad[i]);
		/* the same as the authority of an absolute-form target */
		snprintf(req, sizeof(req), "GET http://%s/ HTTP/1.1\r\nHost: h\r\n\r\n", bad[i]);
		if (!strpbrk(bad[i], " \t/?#\"\\") && !CHECK_EQ_INT(status_of(req), -400))
			fprintf(stderr, "  authority: %s\n", bad[i]);
	}

	struct http_request r;
	/* an empty Host is valid; the authority wins over Host */
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.has_host, 1);
	CHECK_EQ_INT(r.host.len, 0);
	CHECK_EQ_INT(parse("GET http://[::1]:81/x HTTP/1.1\r\nHost: other:80\r\n\r\n", &r), 1);
	CHECK_SLICE(r.host, "[::1]:81");
	CHECK_SLICE(r.path, "/x");
	/* an invalid Host is 400 even when the authority wins */
	CHECK_EQ_INT(status_of("GET http://a/ HTTP/1.1\r\nHost: u@h\r\n\r\n"), -400);
	/* userinfo, an empty host, a host with a port only */
	CHECK_EQ_INT(status_of("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET http://u:p@h:80/x?y HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET http://:80/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET http://@/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ_INT(status_of("GET http://h@/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	/* CONNECT's authority-form target is checked the same way */
	CHECK_EQ_INT(parse("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", &r), 1);
	CHECK_SLICE(r.host, "h:443");
	CHECK_EQ_INT(status_of("CONNECT u@h:443 HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	/* HTTP/1.0 without Host is still fine; with an invalid one it is not */
	CHECK_EQ_INT(status_of("GET / HTTP/1.0\r\nHost: a/b\r\n\r\n"), -400);
}

int main(void)
{
	test_get();
	test_post();
	test_absolute_form_and_query();
	test_connection();
	test_line_endings_and_ows();
	test_incremental();
	test_limits();
	test_malformed();
	test_helpers();
	test_reset_on_entry();
	test_host();
	return unit_done();
}
