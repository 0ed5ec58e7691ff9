/* Unit tests for protocol/http_file.c */
#include <string.h>

#include "../../protocol/http_file.h"
#include "../../protocol/http_response.h"
#include "unit.h"

static struct http_slice S(const char *s) {
	return (struct http_slice){s, strlen(s)};
}

static void
test_dates(void)
{
	char buf[30];
	http_format_date(784111777, buf);
	CHECK_EQ_STR(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
	http_format_date(0, buf);
	CHECK_EQ_STR(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
	http_format_date(951782400, buf);
	CHECK_EQ_STR(buf, "Tue, 29 Feb 2000 00:00:00 GMT");
	int64_t t = 0;
	CHECK_EQ_INT(http_date_parse(S("Sun, 06 Nov 1994 08:49:37 GMT"), &t), 0);
	CHECK_EQ_INT(t, 784111777);
	t = 0;
	CHECK_EQ_INT(http_date_parse(S("Sunday, 06-Nov-94 08:49:37 GMT"), &t), 0);
	CHECK_EQ_INT(t, 784111777);
	t = 0;
	CHECK_EQ_INT(http_date_parse(S("Sun Nov  6 08:49:37 1994"), &t), 0);
	CHECK_EQ_INT(t, 784111777);
	CHECK_EQ_INT(http_date_parse(S("Sun, 06 Nov 1994 08:49:37 GMT "), &t), -1);
	CHECK_EQ_INT(http_date_parse(S("Sun, 06 Nov 1994 25:49:37 GMT"), &t), -1);
	CHECK_EQ_INT(http_date_parse(S("Sun, 6 Nov 1994 08:49:37 GMT"), &t), -1);
	CHECK_EQ_INT(http_date_parse(S("Sun, 06 Foo 1994 08:49:37 GMT"), &t), -1);
	CHECK_EQ_INT(http_date_parse(S("yesterday"), &t), -1);
	CHECK_EQ_INT(http_date_parse(S(""), &t), -1);
	/* a round trip over many dates */
	for (int64_t x = 0; x < (int64_t)4102444800; x += 86400 * 37 + 3601) {
		http_format_date((time_t)x, buf);
		t = -1;
		if (!CHECK(http_date_parse(S(buf), &t) == 0 && t == x))
			break;
	}
}

static void test_etags(void)
{
	char e[80];
	size_t n = http_etag_make(e, sizeof(e), 0x1234, 10, 1, 5, NULL);
	CHECK_MEM(e, n, "\"1234-a-3b9aca05\"", 17);
	n = http_etag_make(e, sizeof(e), 0x1234, 10, 1, 5, "br");
	CHECK_MEM(e, n, "\"1234-a-3b9aca05-br\"", 20);
	const char *tag = "\"abc\"";
	CHECK_EQ_INT(http_etag_match(S("\"abc\""), tag, 1), 1);
	CHECK_EQ_INT(http_etag_match(S("W/\"abc\""), tag, 1), 1);
	CHECK_EQ_INT(http_etag_match(S("W/\"abc\""), tag, 0), 0);
	CHECK_EQ_INT(http_etag_match(S("\"x\", \"abc\""), tag, 0), 1);
	CHECK_EQ_INT(http_etag_match(S("\"x\" ,\t\"y\""), tag, 1), 0);
	CHECK_EQ_INT(http_etag_match(S(" * "), tag, 0), 1);
	CHECK_EQ_INT(http_etag_match(S("abc"), tag, 1), 0);
	CHECK_EQ_INT(http_etag_match(S("\"abc"), tag, 1), 0);
	CHECK_EQ_INT(http_etag_match(S("\"ab\"c\""), tag, 1), 0);
}

static void test_cond(void)
{
	struct http_cond c = {.etag = "\"v1\"", .mtime = 784111777, .get_or_head = 1};
	CHECK_EQ_INT(http_cond_eval(&c), HTTP_COND_PASS);
	c.if_none_match = S("\"v1\"");
	CHECK_EQ_INT(http_cond_eval(&c), HTTP_COND_NOT_MODIFIED);
	/* If-None-Match wins over If-Modified-Since */
	c.if_none_match = S("\"v0\"");
	c.if_modified_since = S("Sun, 06 Nov 1994 08:49:37 GMT");
	CHECK_EQ_INT(http_cond_eval(&c), HTTP_COND_PASS);
	c.if_none_match = S("");
	CHECK_EQ_INT(http_cond_eval(&c), HTTP_COND_NOT_MODIFIED);
	c.if_modified_since = S("Sun, 06 Nov 1994 08:49:36 GMT");
	CHECK_EQ_INT(http_cond_eval(&c), HTTP_COND_PASS);
	c.if_modified_since = S("garbage");
	CHECK_EQ_INT(http_cond_eval(&c), HTTP_COND_PASS);
	c.if_modified_since = S("");
	c.if_match = S("\"v0\"");
	CHECK_EQ_INT(http_cond_eval(&c), HTTP_COND_FAILED);
	c.if_match = S("*");
	CHECK_EQ_INT(http_cond_eval(&c), HTTP_COND_PASS);
	c.if_match = S("");
	c.if_unmodified_since = S("Sun, 06 Nov 1994 08:49:36 GMT");
	CHECK_EQ_INT(http_cond_eval(&c), HTTP_COND_FAILED);
	c.if_unmodified_since = S("");
	c.get_or_head = 0;
	c.if_none_match = S("*");
	CHECK_EQ_INT(http_cond_eval(&c), HTTP_COND_FAILED);
}

static void test_if_range(void)
{
	CHECK_EQ_INT(http_if_range(S("\"v1\""), "\"v1\"", 5), 1);
	CHECK_EQ_INT(http_if_range(S("\"v2\""), "\"v1\"", 5), 0);
	CHECK_EQ_INT(http_if_range(S("W/\"v1\""), "\"v1\"", 5), 0);
	CHECK_EQ_INT(http_if_range(S("Sun, 06 Nov 1994 08:49:37 GMT"), "\"v1\"", 784111777), 1);
	CHECK_EQ_INT(http_if_range(S("Sun, 06 Nov 1994 08:49:38 GMT"), "\"v1\"", 784111777), 0);
	CHECK_EQ_INT(http_if_range(S("junk"), "\"v1\"", 5), 0);
}

static int rp(const char *v, int64_t size, int64_t *a, int64_t *b)
{
	*a = *b = -7;
	return http_range_parse(S(v), size, a, b);
}

static void test_ranges(void)
{
	int64_t a, b;
	CHECK_EQ_INT(rp("bytes=0-99", 1000, &a, &b), HTTP_RANGE_ONE);
	CHECK(a == 0 && b == 99);
	CHECK_EQ_INT(rp("bytes=900-", 1000, &a, &b), HTTP_RANGE_ONE);
	CHECK(a == 900 && b == 999);
	CHECK_EQ_INT(rp("bytes=-100", 1000, &a, &b), HTTP_RANGE_ONE);
	CHECK(a == 900 && b == 999);
	CHECK_EQ_INT(rp("bytes=-5000", 1000, &a, &b), HTTP_RANGE_ONE);
	CHECK(a == 0 && b == 999);
	CHECK_EQ_INT(rp("bytes=500-5000", 1000, &a, &b), HTTP_RANGE_ONE);
	CHECK(a == 500 && b == 999);
	CHECK_EQ_INT(rp("Bytes= 1-2 ", 1000, &a, &b), HTTP_RANGE_ONE);
	CHECK_EQ_INT(rp("bytes=1000-", 1000, &a, &b), HTTP_RANGE_UNSATISFIABLE);
	CHECK_EQ_INT(rp("bytes=-0", 1000, &a, &b), HTTP_RANGE_UNSATISFIABLE);
	CHECK_EQ_INT(rp("bytes=0-", 0, &a, &b), HTTP_RANGE_UNSATISFIABLE);
	CHECK_EQ_INT(rp("bytes=0-1,5-6", 1000, &a, &b), HTTP_RANGE_MANY);
	CHECK_EQ_INT(rp("bytes=0-1,5000-6000", 1000, &a, &b), HTTP_RANGE_ONE);
	CHECK(a == 0 && b == 1);
	CHECK_EQ_INT(rp("bytes=5-1", 1000, &a, &b), HTTP_RANGE_IGNORE);
	CHECK_EQ_INT(rp("bytes=", 1000, &a, &b), HTTP_RANGE_IGNORE);
	CHECK_EQ_INT(rp("items=0-1", 1000, &a, &b), HTTP_RANGE_IGNORE);
	CHECK_EQ_INT(rp("bytes=a-b", 1000, &a, &b), HTTP_RANGE_IGNORE);
	CHECK_EQ_INT(rp("bytes=0-1;x", 1000, &a, &b), HTTP_RANGE_IGNORE);
	CHECK_EQ_INT(rp("bytes=99999999999999999999-", 1000, &a, &b), HTTP_RANGE_IGNORE);
	char many[1024] = "bytes=0-0";
	for (int i = 0; i < HTTP_RANGE_MAX_SPECS; i++)
		strcat(many, ",1-1");
	CHECK_EQ_INT(rp(many, 1000, &a, &b), HTTP_RANGE_IGNORE);
}

static void test_accept_encoding(void)
{
	CHECK_EQ_INT(http_accept_encoding(S("gzip, deflate, br")), HTTP_ACCEPT_GZIP | HTTP_ACCEPT_BR);
	CHECK_EQ_INT(http_accept_encoding(S("gzip;q=0, br")), HTTP_ACCEPT_BR);
	CHECK_EQ_INT(http_accept_encoding(S("gzip;q=0.000")), 0);
	CHECK_EQ_INT(http_accept_encoding(S("gzip;q=0.5")), HTTP_ACCEPT_GZIP);
	CHECK_EQ_INT(http_accept_encoding(S("*")), HTTP_ACCEPT_GZIP | HTTP_ACCEPT_BR);
	CHECK_EQ_INT(http_accept_encoding(S("*, br;q=0")), HTTP_ACCEPT_GZIP);
	CHECK_EQ_INT(http_accept_encoding(S("identity")), 0);
	CHECK_EQ_INT(http_accept_encoding(S("gzipx, brotli")), 0);
	CHECK_EQ_INT(http_accept_encoding(S("")), 0);
}

static void test_mime(void)
{
	const char *text = "# comment\n"
			   "text/html\t\thtml htm # trailing\n"
			   "application/x-thing\n"
			   "bogus line here\n"
			   "text/css css\r\n"
			   "text/x-other html\n"
			   "image/png PNG\n";
	size_t bad = 9;
	size_t n = mime_types_parse(text, strlen(text), NULL, 0, &bad);
	CHECK_EQ_INT(n, 5);
	CHECK_EQ_INT(bad, 1);
	struct mime_entry e[8];
	CHECK_EQ_INT(mime_types_parse(text, strlen(text), e, 8, NULL), 5);
	CHECK_SLICE(mime_lookup(e, 5, "/a/b.html", 9), "text/html"); /* the first listed wins */
	CHECK_SLICE(mime_lookup(e, 5, "x.HTM", 5), "text/html");
	CHECK_SLICE(mime_lookup(e, 5, "x.css", 5), "text/css");
	CHECK_SLICE(mime_lookup(e, 5, "x.png", 5), "image/png");
	CHECK(mime_lookup(e, 5, "x.gif", 5).p == NULL);
	CHECK(mime_lookup(e, 5, "css", 3).p == NULL);
	CHECK(mime_lookup(e, 5, "a.css/x", 7).p == NULL);
	CHECK(mime_lookup(e, 5, "x.", 2).p == NULL);
	/* the cap is respected */
	CHECK_EQ_INT(mime_types_parse(text, strlen(text), e, 2, NULL), 2);
	/* the built-in table is sorted, so lookups find every entry */
	for (size_t i = 0; i < mime_builtin_count; i++) {
		char name[80];
		snprintf(name, sizeof(name), "f.%.*s", (int)mime_builtin[i].ext.len, mime_builtin[i].ext.p);
		struct http_slice t = mime_lookup(mime_builtin, mime_builtin_count, name, strlen(name));
		CHECK(t.p == mime_builtin[i].type.p);
	}
}

int main(void)
{
	test_dates();
	test_etags();
	test_cond();
	test_if_range();
	test_ranges();
	test_accept_encoding();
	test_mime();
	return unit_done();
}
