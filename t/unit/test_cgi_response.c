/* Unit tests for protocol/cgi_response.c */
#include <stdlib.h>
#include <string.h>

#include "../../protocol/cgi_response.h"
#include "unit.h"

#define MAXF 32
static struct http_header F[MAXF];

static int parse_n(const char *s, size_t len, size_t max_head, unsigned max_fields, struct cgi_response *r)
{
	size_t scan = 0;
	return cgi_response_parse(s, len, max_head, F, max_fields, r, &scan);
}

static int parse(const char *s, struct cgi_response *r)
{
	return parse_n(s, strlen(s), 32768, MAXF, r);
}

static int rc_of(const char *s)
{
	struct cgi_response r;
	return parse(s, &r);
}

static const struct http_header *field(const struct cgi_response *r, const char *name)
{
	for (unsigned i = 0; i < r->nfields; i++)
		if (http_slice_ieq(r->fields[i].name, name))
			return &r->fields[i];
	return NULL;
}

static void test_status(void)
{
	struct cgi_response r;
	const char *s = "Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nbody";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_EQ_INT(r.status, 404);
	CHECK_SLICE(r.reason, "Not Found");
	CHECK_EQ_INT(r.head_len, strlen(s) - 4);
	CHECK_EQ_INT(r.has_content_type, 1);
	CHECK_EQ_INT(r.nfields, 1); /* Status is not passed on */
	CHECK(r.fields == F);
	CHECK_SLICE(F[0].name, "Content-Type");
	CHECK_SLICE(F[0].value, "text/plain");
	CHECK(field(&r, "status") == NULL);
	CHECK_EQ_INT(r.location.len, 0);
	CHECK_EQ_INT(r.content_length, -1);

	CHECK_EQ_INT(parse("Status: 200\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(r.reason.len, 0);
	CHECK_EQ_INT(r.has_content_type, 0);
	CHECK_EQ_INT(r.nfields, 0);
	CHECK_EQ_INT(parse("status:503   Busy now  \n\n", &r), 1);
	CHECK_EQ_INT(r.status, 503);
	CHECK_SLICE(r.reason, "Busy now");
	CHECK_EQ_INT(parse("Status: 200 OK\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(parse("Status: 599 X\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.status, 599);
	/* the whole final range: 200 to 599 */
	for (int st = 200; st <= 599; st++) {
		char line[32];
		snprintf(line, sizeof(line), "Status: %d\r\n\r\n", st);
		if (!CHECK_EQ_INT(parse(line, &r), 1) || !CHECK_EQ_INT(r.status, st))
			break;
	}
	/* an interim status is no answer: sent as the final one, the next
	 * response on the connection would be taken for this one's */
	for (int st = 100; st <= 199; st++) {
		char line[32];
		snprintf(line, sizeof(line), "Status: %d\r\n\r\n", st);
		if (!CHECK_EQ_INT(rc_of(line), -1))
			break;
	}
	CHECK_EQ_INT(rc_of("Status: 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status: 100 Continue\r\nContent-Type: text/plain\r\n\r\n"), -1);

	/* no Status */
	CHECK_EQ_INT(parse("Content-Type: text/html\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.status, 0);
	CHECK_EQ_INT(r.reason.len, 0);
	CHECK_EQ_INT(r.has_content_type, 1);
	CHECK_EQ_INT(parse("content-type: text/html\n\n", &r), 1);
	CHECK_EQ_INT(r.has_content_type, 1);

	/* bad Status */
	CHECK_EQ_INT(rc_of("Status: 99\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status: 099\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status: 600\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status: 000\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status: abc\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status: 2000\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status: 200OK\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status: 20\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status:\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status: -20\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status: 200\r\nStatus: 200\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Status: 200\r\nContent-Type: a/b\r\nstatus: 404\r\n\r\n"), -1);
}

static void test_location(void)
{
	struct cgi_response r;
	CHECK_EQ_INT(parse("Location: /other/path?x=1\r\n\r\n", &r), 1);
	CHECK_SLICE(r.location, "/other/path?x=1");
	CHECK(cgi_location_is_local(r.location));
	CHECK_EQ_INT(r.status, 0);
	CHECK(field(&r, "location") != NULL);
	CHECK_EQ_INT(parse("Location: http://example.com/x\r\n\r\n", &r), 1);
	CHECK_SLICE(r.location, "http://example.com/x");
	CHECK(!cgi_location_is_local(r.location));
	CHECK_EQ_INT(parse("Status: 301 Moved\r\nLocation: /new\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.status, 301);
	CHECK_SLICE(r.location, "/new");
	CHECK_EQ_INT(rc_of("Location: /a\r\nLocation: /b\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Location:\r\n\r\n"), -1);

	struct http_slice s;
	s = (struct http_slice){"/", 1};
	CHECK(cgi_location_is_local(s));
	s = (struct http_slice){"/x", 2};
	CHECK(cgi_location_is_local(s));
	s = (struct http_slice){"//host/x", 8};
	CHECK(!cgi_location_is_local(s));
	s = (struct http_slice){"//", 2};
	CHECK(!cgi_location_is_local(s));
	s = (struct http_slice){"https://h/", 10};
	CHECK(!cgi_location_is_local(s));
	s = (struct http_slice){"x/y", 3};
	CHECK(!cgi_location_is_local(s));
	s = (struct http_slice){"", 0};
	CHECK(!cgi_location_is_local(s));
	/* only the slice counts, not what follows it */
	s = (struct http_slice){"//", 1};
	CHECK(cgi_location_is_local(s));
}

static void test_fields(void)
{
	struct cgi_response r;
	const char *s = "Content-Type: text/plain\r\n"
			"Content-Length: 42\r\n"
			"Connection: close\r\n"
			"Transfer-Encoding: chunked\r\n"
			"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
			"Server: evil/1.0\r\n"
			"Keep-Alive: timeout=5\r\n"
			"Upgrade: h2c\r\n"
			"Trailer: X\r\n"
			"TE: trailers\r\n"
			"Proxy-Connection: keep-alive\r\n"
			"Set-Cookie: a=1\r\n"
			"Set-Cookie: b=2\r\n"
			"X-Custom:   spaced value  \r\n"
			"\r\n";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_EQ_INT(r.content_length, 42);
	CHECK_EQ_INT(r.head_len, strlen(s));
	CHECK_EQ_INT(r.nfields, 4);
	CHECK_SLICE(F[0].name, "Content-Type");
	CHECK_SLICE(F[1].name, "Set-Cookie");
	CHECK_SLICE(F[1].value, "a=1");
	CHECK_SLICE(F[2].name, "Set-Cookie");
	CHECK_SLICE(F[2].value, "b=2");
	CHECK_SLICE(F[3].name, "X-Custom");
	CHECK_SLICE(F[3].value, "spaced value");
	static const char *const gone[] = {
	    "content-length", "connection", "transfer-encoding", "date", "server",
	    "keep-alive",     "upgrade",    "trailer",		 "te",	 "proxy-connection"};
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		CHECK(field(&r, gone[i]) == NULL);

	/* Content-Length */
	CHECK_EQ_INT(parse("Content-Length: 0\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.content_length, 0);
	CHECK_EQ_INT(r.nfields, 0);
	CHECK_EQ_INT(parse("Content-Length: 5\r\ncontent-length: 5\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.content_length, 5);
	CHECK_EQ_INT(rc_of("Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Content-Length: 4x\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Content-Length: -4\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Content-Length:\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Content-Length: 1,1\r\n\r\n"), -1);

	/* empty values are allowed for other fields */
	CHECK_EQ_INT(parse("X-Empty:\r\n\r\n", &r), 1);
	CHECK_EQ_INT(r.nfields, 1);
	CHECK_EQ_INT(F[0].value.len, 0);
	/* tabs and obs-text in a value are allowed */
	CHECK_EQ_INT(parse("X-V: a\tb \xc3\xa9\r\n\r\n", &r), 1);
	CHECK_SLICE(F[0].value, "a\tb \xc3\xa9");
}

static void test_endings(void)
{
	struct cgi_response r;
	const char *s = "Status: 200 OK\nContent-Type: text/plain\nX: y\n\nhello";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_EQ_INT(r.head_len, strlen(s) - 5);
	CHECK_EQ_INT(r.status, 200);
	CHECK_SLICE(r.reason, "OK");
	CHECK_EQ_INT(r.nfields, 2);
	CHECK_SLICE(F[1].value, "y");
	s = "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nhello\r\n\r\n";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_EQ_INT(r.head_len, strlen("Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n"));
	CHECK_SLICE(r.reason, "OK");
	CHECK_SLICE(F[0].value, "text/plain");
	/* mixed */
	s = "A: 1\r\nB: 2\n\r\nrest";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_EQ_INT(r.head_len, strlen(s) - 4);
	CHECK_EQ_INT(r.nfields, 2);
	s = "A: 1\nB: 2\r\n\nrest";
	CHECK_EQ_INT(parse(s, &r), 1);
	CHECK_EQ_INT(r.head_len, strlen(s) - 4);
	CHECK_SLICE(F[1].value, "2");
}

/* Byte by byte with the same *scan: 0 until the end, then the same result
 * as the whole. */
static void incremental(const char *s)
{
	size_t n = strlen(s);
	char *buf = malloc(n);
	memcpy(buf, s, n);
	struct cgi_response whole, r;
	struct http_header fw[MAXF], fr[MAXF];
	size_t scan = 0;
	int wrc = cgi_response_parse(buf, n, 32768, fw, MAXF, &whole, &scan);
	scan = 0;
	int rc = 0;
	size_t len;
	for (len = 0; len <= n; len++) {
		rc = cgi_response_parse(buf, len, 32768, fr, MAXF, &r, &scan);
		if (rc != 0)
			break;
		if (scan > len)
			break;
	}
	if (!CHECK_EQ_INT(rc, wrc)) {
		fputs("  input: ", stderr);
		unit_print_escaped(s, n);
		fputc('\n', stderr);
	}
	if (wrc == 1 && rc == 1) {
		CHECK_EQ_INT(r.head_len, whole.head_len);
		CHECK_EQ_INT(len, whole.head_len); /* complete as soon as the empty line is there */
		CHECK_EQ_INT(r.status, whole.status);
		CHECK(r.reason.p == whole.reason.p && r.reason.len == whole.reason.len);
		CHECK(r.location.p == whole.location.p && r.location.len == whole.location.len);
		CHECK_EQ_INT(r.content_length, whole.content_length);
		CHECK_EQ_INT(r.has_content_type, whole.has_content_type);
		CHECK_EQ_INT(r.nfields, whole.nfields);
		int same = 1;
		for (unsigned i = 0; i < r.nfields && i < whole.nfields; i++)
			same &= fr[i].name.p == fw[i].name.p && fr[i].name.len == fw[i].name.len &&
				fr[i].value.p == fw[i].value.p && fr[i].value.len == fw[i].value.len;
		CHECK(same);
	}
	free(buf);
}

static void test_incremental(void)
{
	struct cgi_response r;
	size_t scan = 0;
	const char *s = "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n";
	CHECK_EQ_INT(cgi_response_parse(s, 10, 32768, F, MAXF, &r, &scan), 0);
	CHECK(scan <= 10);
	CHECK_EQ_INT(cgi_response_parse(s, strlen(s) - 1, 32768, F, MAXF, &r, &scan), 0);
	CHECK_EQ_INT(cgi_response_parse(s, strlen(s), 32768, F, MAXF, &r, &scan), 1);
	CHECK_EQ_INT(r.status, 200);
	scan = 0;
	CHECK_EQ_INT(cgi_response_parse(s, 0, 32768, F, MAXF, &r, &scan), 0);

	incremental("Status: 404 Not Found\r\nContent-Type: text/plain\r\nX: y\r\n\r\nbody");
	incremental("Location: /x\n\n");
	incremental("Content-Length: 3\nA: 1\r\n\nabc");
	incremental("A: 1\n\r\n");
	/* errors found once the block is complete are errors either way */
	incremental("Status: 600\r\n\r\n");
	/* an empty block at the start is an error however it arrives */
	incremental("\r\nStatus: 200\r\n\r\nbody");
	incremental("\nStatus: 200\n\nbody");
}

static void test_errors(void)
{
	/* invalid names */
	CHECK_EQ_INT(rc_of("Bad Name: x\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("X(y): z\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("X-A : z\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("X\x01: z\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("\xc3\xa9: z\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of(": z\r\n\r\n"), -1);
	/* bad values */
	CHECK_EQ_INT(rc_of("X: a\rb\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("X: a\r\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("X: a\x01z\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("X: a\x1b[31mz\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("X: a\x7fz\r\n\r\n"), -1);
	const char nul[] = "X: a\0b\r\n\r\n";
	struct cgi_response r;
	CHECK_EQ_INT(parse_n(nul, sizeof(nul) - 1, 32768, MAXF, &r), -1);
	const char nul2[] = "X: ab\0\r\n\r\n";
	CHECK_EQ_INT(parse_n(nul2, sizeof(nul2) - 1, 32768, MAXF, &r), -1);
	/* obs-fold, no colon */
	CHECK_EQ_INT(rc_of("X: a\r\n b\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("X: a\n\tb\n\n"), -1);
	CHECK_EQ_INT(rc_of(" X: a\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Hello world\r\n\r\n"), -1);
	CHECK_EQ_INT(rc_of("Content-Type: text/plain\r\nno colon here\r\n\r\n"), -1);
	/* empty block at the start */
	CHECK_EQ_INT(rc_of("\r\n"), -1);
	CHECK_EQ_INT(rc_of("\n"), -1);
	CHECK_EQ_INT(rc_of("\r\nhello"), -1);
	CHECK_EQ_INT(rc_of("\nStatus: 200\n\n"), -1);
	CHECK_EQ_INT(rc_of("\r\nStatus: 200\r\n\r\n"), -1);
	/* the start of the output split as "\r" then "\n..." */
	{
		const char *s = "\r\nStatus: 200\r\n\r\nbody";
		size_t scan = 0;
		int rc1 = cgi_response_parse(s, 1, 32768, F, MAXF, &r, &scan);
		CHECK_EQ_INT(rc1, 0);
		int rc2 = cgi_response_parse(s, strlen(s), 32768, F, MAXF, &r, &scan);
		CHECK_EQ_INT(rc2, -1);
	}

	/* size limit: the whole block including its end */
	const char *s = "Content-Type: text/plain\r\nX-Fill: 0123456789\r\n\r\n";
	size_t n = strlen(s);
	CHECK_EQ_INT(parse_n(s, n, n, MAXF, &r), 1);
	CHECK_EQ_INT(parse_n(s, n, n - 1, MAXF, &r), -1);
	CHECK_EQ_INT(parse_n(s, 20, 20, MAXF, &r), 0);
	CHECK_EQ_INT(parse_n(s, 21, 20, MAXF, &r), -1);
	CHECK_EQ_INT(parse_n(s, n - 1, 20, MAXF, &r), -1);
	/* a body after the block does not count */
	char big[200];
	snprintf(big, sizeof(big), "%s%0100d", s, 7);
	CHECK_EQ_INT(parse_n(big, strlen(big), n, MAXF, &r), 1);
	CHECK_EQ_INT(r.head_len, n);
	/* a 40K block */
	char *huge = malloc(41000);
	size_t hl = 0;
	for (int i = 0; i < 400; i++)
		hl += (size_t)sprintf(huge + hl, "X-%d: %090d\r\n", i % 10, i);
	CHECK(hl > 32768);
	CHECK_EQ_INT(parse_n(huge, hl, 32768, 1000, &r), -1); /* incomplete and too big */
	strcpy(huge + hl, "\r\n");
	CHECK_EQ_INT(parse_n(huge, hl + 2, 32768, 1000, &r), -1);
	free(huge);

	/* field count: dropped fields do not count */
	const char *f3 = "A: 1\r\nB: 2\r\nDate: x\r\nStatus: 200\r\nContent-Length: 1\r\nC: 3\r\n\r\n";
	CHECK_EQ_INT(parse_n(f3, strlen(f3), 32768, 3, &r), 1);
	CHECK_EQ_INT(r.nfields, 3);
	CHECK_EQ_INT(parse_n(f3, strlen(f3), 32768, 2, &r), -1);
	CHECK_EQ_INT(parse_n(f3, strlen(f3), 32768, 0, &r), -1);
}

/* After a complete parse, any other result leaves nothing of it in r. */
/* After -1, the line at fault and why: what the error log quotes. */
static void test_error_line(void)
{
	struct cgi_response r;
	CHECK_EQ_INT(parse("Content-Type: text/plain\r\nhello\r\n\r\nbody", &r), -1);
	CHECK_MEM(r.error_line.p, r.error_line.len, "hello", 5);
	CHECK(strstr(r.error, "no colon") != NULL);
	CHECK_EQ_INT(parse("Status: 999 Odd\n\n", &r), -1);
	CHECK_MEM(r.error_line.p, r.error_line.len, "Status: 999 Odd", 15);
	CHECK(strstr(r.error, "200 to 599") != NULL);
	CHECK_EQ_INT(parse("Bad Name: x\n\n", &r), -1);
	CHECK(strstr(r.error, "field name") != NULL);
	CHECK_EQ_INT(parse("\nbody", &r), -1);
	CHECK_EQ_INT((int)r.error_line.len, 0);
	CHECK(strstr(r.error, "empty line before any header") != NULL);
	/* a block that is only too large names no line */
	CHECK_EQ_INT(parse_n("X: aaaaaaaaaa\n", 14, 8, MAXF, &r), -1);
	CHECK(r.error == NULL);
	/* a valid block clears them */
	CHECK_EQ_INT(parse("X: y\n\n", &r), 1);
	CHECK(r.error == NULL);
	CHECK_EQ_INT((int)r.error_line.len, 0);
	/* line by line, for a block that never ended: the last line may be cut */
	CHECK_EQ_INT(cgi_response_check_lines("X: y\n<html><body>", 17, &r), -1);
	CHECK_MEM(r.error_line.p, r.error_line.len, "<html><body>", 12);
	CHECK_EQ_INT(cgi_response_check_lines("X: y\r\nZ: w", 10, &r), 0);
	CHECK(r.error == NULL);
}

static void test_reset_on_entry(void)
{
	static const struct {
		const char *in;
		int rc;
	} cases[] = {
	    {"", 0},
	    {"\r", 0},
	    {"Status: 200\r\n", 0},
	    {"\r\n", -1},
	    {"Status: 99\r\n\r\n", -1},
	    {"X y: z\r\n\r\n", -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cgi_response r;
		CHECK_EQ_INT(
		    parse("Status: 302 Found\r\nLocation: http://x/\r\nContent-Length: 3\r\nContent-Type: a/b\r\n\r\n",
			  &r),
		    1);
		CHECK_EQ_INT(r.nfields, 2);
		CHECK_EQ_INT(parse(cases[i].in, &r), cases[i].rc);
		CHECK_EQ_INT(r.status, 0);
		CHECK_EQ_INT(r.reason.len, 0);
		CHECK_EQ_INT(r.location.len, 0);
		CHECK_EQ_INT(r.has_content_type, 0);
		CHECK_EQ_INT(r.content_length, -1);
		CHECK_EQ_INT(r.nfields, 0);
		CHECK_EQ_INT(r.head_len, 0);
		CHECK(r.fields == F);
	}
}

int main(void)
{
	test_status();
	test_location();
	test_fields();
	test_endings();
	test_incremental();
	test_errors();
	test_reset_on_entry();
	test_error_line();
	return unit_done();
}
