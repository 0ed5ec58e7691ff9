/* Unit tests for manager/log.c: the one escaping, whole lines in the error
 * log whatever a caller passes, and the rate limit of struct log_lines. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../manager/log.h"
#include "unit.h"

static char logpath[] = "/tmp/cpm-test-log-XXXXXX";

/* The error log so far; truncates it for the next test. */
static char *slurp(size_t *len)
{
	static char buf[1 << 20];
	int fd = open(logpath, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n < 0)
		n = 0;
	buf[n] = 0;
	*len = (size_t)n;
	if (truncate(logpath, 0) < 0)
		perror("truncate");
	return buf;
}

static int count(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	return n;
}

/* Every line has the header and only printable ASCII. */
static int lines_clean(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\n') || c >= 0x7f)
			return 0;
		if (c == '\n' && i + 1 < len && s[i + 1] != '2')
			return 0; /* a line not starting with the year */
	}
	return len == 0 || s[len - 1] == '\n';
}

static void test_escape(void)
{
	char out[64];
	size_t used;
	size_t n = log_escape(out, sizeof(out), "a\nb\x1b[31m\\c\x7f\xc3\xa9\"", 14, NULL, &used);
	CHECK_EQ_STR(out, "a\\x0ab\\x1b[31m\\\\c\\x7f\\xc3\\xa9\"");
	CHECK_EQ_INT(n, strlen(out));
	CHECK_EQ_INT(used, 14);

	log_escape(out, sizeof(out), "say \"hi\"\t", 9, "\"", NULL);
	CHECK_EQ_STR(out, "say \\x22hi\\x22\\x09");

	n = log_escape(out, sizeof(out), "nul\0x", 5, NULL, &used);
	CHECK_EQ_STR(out, "nul\\x00x");
	CHECK_EQ_INT(used, 5);

	/* an escape is never cut: "ab" + "\x0a" needs 6 bytes and a NUL */
	n = log_escape(out, 6, "ab\ncd", 5, NULL, &used);
	CHECK_EQ_STR(out, "ab");
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(used, 2);
	n = log_escape(out, 7, "ab\ncd", 5, NULL, &used);
	CHECK_EQ_STR(out, "ab\\x0a");
	CHECK_EQ_INT(used, 3);
	n = log_escape(out, 3, "a\\b", 3, NULL, &used);
	CHECK_EQ_STR(out, "a");
	CHECK_EQ_INT(used, 1);

	out[0] = 'z';
	n = log_escape(out, 0, "abc", 3, NULL, &used);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(used, 0);
	CHECK(out[0] == 'z');
}

/* log_field: '"' becomes %22, never cut in the middle of one, always
 * NUL-terminated */
static void test_field(void)
{
	char b[16];
	CHECK_EQ_STR(log_field(b, sizeof(b), "/q?\"x", 5), "/q?%22x");
	CHECK_EQ_STR(log_field(b, sizeof(b), "abc", 3), "abc");
	CHECK_EQ_STR(log_field(b, 6, "ab\"cd", 5), "ab%22");
	CHECK_EQ_STR(log_field(b, 5, "ab\"cd", 5), "ab");
	CHECK_EQ_STR(log_field(b, 1, "x", 1), "");
	CHECK_EQ_STR(log_field(b, sizeof(b), "", 0), "");
}

static void test_msg_is_one_line(void)
{
	size_t len;
	log_error("GET /x\n2026-01-01T00:00:00.000Z [error] cpm[1]: forged \x1b]0;title\x07 \xc2\x9b done");
	char *s = slurp(&len);
	CHECK_EQ_INT(count(s, "\n"), 1);
	CHECK(lines_clean(s, len));
	CHECK(strstr(
	    s, "GET /x\\x0a2026-01-01T00:00:00.000Z [error] cpm[1]: forged \\x1b]0;title\\x07 \\xc2\\x9b done\n"));

	/* a message far longer than a line: one line, cut and marked */
	static char big[10000];
	memset(big, '\n', sizeof(big) - 1);
	log_warn("%s", big);
	s = slurp(&len);
	CHECK_EQ_INT(count(s, "\n"), 1);
	CHECK(len <= LOG_LINE_MAX);
	CHECK(lines_clean(s, len));
	CHECK(len > 4 && memcmp(s + len - 4, "...\n", 4) == 0);
	CHECK(len > 4 && memcmp(s + len - 8, "\\x0a", 4) == 0); /* no escape cut */

	/* below the level: nothing */
	log_debug("hidden");
	s = slurp(&len);
	CHECK_EQ_INT(len, 0);
}

static void test_lines(void)
{
	size_t len;
	struct log_lines *l = calloc(1, sizeof(*l));
	snprintf(l->prefix, sizeof(l->prefix), "cgi x.sh[42]");
	static const char in[] = "one\ttab\n\nnul\0byte\n\x1b[2Jpart";
	log_lines_feed(l, in, sizeof(in) - 1);
	char *s = slurp(&len);
	CHECK(strstr(s, "[warn] cpm["));
	CHECK(strstr(s, "]: cgi x.sh[42]: one\\x09tab\n"));
	CHECK(strstr(s, "]: cgi x.sh[42]: nul\\x00byte\n"));
	CHECK_EQ_INT(count(s, "\n"), 2); /* the blank line is not logged, "part" waits */
	log_lines_flush(l);
	s = slurp(&len);
	CHECK(strstr(s, "]: cgi x.sh[42]: \\x1b[2Jpart\n"));
	CHECK_EQ_INT(count(s, "\n"), 1);

	/* a long line of control bytes: pieces that fit a line, none cut */
	static char ctl[3000];
	memset(ctl, 1, sizeof(ctl));
	log_lines_feed(l, ctl, sizeof(ctl));
	log_lines_flush(l);
	s = slurp(&len);
	CHECK(lines_clean(s, len));
	CHECK_EQ_INT(count(s, "\\x01"), 3000);
	CHECK_EQ_INT(count(s, "..."), 0);
	CHECK_EQ_INT(count(s, "\n"), (3000 + LOG_LINES_PIECE / 4 - 1) / (LOG_LINES_PIECE / 4));
	free(l);

	/* a flood: the burst, then one summary with the exact count */
	l = calloc(1, sizeof(*l));
	snprintf(l->prefix, sizeof(l->prefix), "pool p[0] pid 7");
	for (int i = 0; i < 5000; i++)
		log_lines_feed(l, "flood line\n", 11);
	s = slurp(&len);
	int logged = count(s, ": flood line\n");
	CHECK(logged >= LOG_LINES_BURST);
	CHECK(logged < LOG_LINES_BURST + 2 * LOG_LINES_RATE); /* this loop takes well under a second */
	log_lines_flush(l);
	s = slurp(&len);
	char want[128];
	snprintf(want, sizeof(want), "]: pool p[0] pid 7: %d lines suppressed\n", 5000 - logged);
	CHECK(strstr(s, want));
	CHECK_EQ_INT(count(s, "\n"), 1);
	/* a second flush has nothing more to say */
	log_lines_flush(l);
	s = slurp(&len);
	CHECK_EQ_INT(len, 0);

	/* after a drop, logging resumes once a second's worth refilled: the
	 * summary comes first, then the line, and nothing is lost uncounted */
	for (int i = 0; i < 200; i++)
		log_lines_feed(l, "dropped\n", 8);
	usleep(1100 * 1000);
	log_lines_feed(l, "after\n", 6);
	s = slurp(&len);
	char *sum = strstr(s, "]: pool p[0] pid 7: "), *after = strstr(s, ": after\n");
	unsigned n = 0;
	CHECK(sum && sscanf(sum, "]: pool p[0] pid 7: %u lines suppressed", &n) == 1);
	CHECK(sum && after && sum < after);
	CHECK_EQ_INT((unsigned)count(s, ": dropped\n") + n, 200);
	free(l);
}

/* ---- access log formats ---- */

#define HAS(p, n, lit) (memmem((p), (n), (lit), sizeof(lit) - 1) != NULL)

static struct log_access_rec sample(void)
{
	static const char ua[] = "agent \"x\"\x1b[2J\xc3\xa9";
	return (struct log_access_rec){
	    .time_local = "26/Nov/2026:13:31:38 +0000",
	    .remote_addr = "127.0.0.1",
	    .remote_port = "5555",
	    .method = "GET",
	    .method_len = 3,
	    .target = "/a\"b?c",
	    .target_len = 6,
	    .version_minor = 1,
	    .status = 200,
	    .bytes_sent = 150,
	    .body_bytes_sent = 20,
	    .request_length = 80,
	    .request_time_us = 1234567,
	    .queue_time_us = 0,
	    .upstream_time_us = -1,
	    .request_id = "abc",
	    .user_agent = ua,
	    .user_agent_len = sizeof(ua) - 1,
	};
}

static size_t render(const char *spec, const struct log_access_rec *r, char *line)
{
	char why[128];
	size_t off = 99;
	struct log_format *f = log_format_compile(spec, &off, why, sizeof(why));
	CHECK(f != NULL);
	if (!f)
		return 0;
	size_t n = log_format_render(f, r, line, NULL);
	log_format_free(f);
	return n;
}

static void test_formats(void)
{
	char line[LOG_ACCESS_MAX];
	struct log_access_rec r = sample();
	/* combined: the line cpm always wrote */
	size_t n = render("combined", &r, line);
	static const char comb[] =
	    "127.0.0.1 - - [26/Nov/2026:13:31:38 +0000] \"GET /a\\x22b?c HTTP/1.1\" 200 20 \"-\" "
	    "\"agent \\x22x\\x22\\x1b[2J\\xc3\\xa9\" 1234567\n";
	CHECK_MEM(line, n, comb, sizeof(comb) - 1);
	r.remote_user = "a b";
	n = render("$remote_user", &r, line);
	CHECK_MEM(line, n, "a\\x20b\n", sizeof("a\\x20b\n") - 1);
	/* json: client bytes escaped as in the combined line, then as JSON */
	n = render("json", &r, line);
	CHECK(HAS(line, n, "\"target\":\"/a\\\"b?c\""));
	CHECK(HAS(line, n, "\"user_agent\":\"agent \\\"x\\\"\\\\x1b[2J\\\\xc3\\\\xa9\""));
	CHECK(HAS(line, n, "\"upstream_time\":null,\"upstream_pid\":null"));
	CHECK(HAS(line, n, "\"request_time\":1.234567,"));
	CHECK(HAS(line, n, "\"remote_port\":5555,"));
	CHECK(line[0] == '{' && line[n - 2] == '}' && line[n - 1] == '\n');
	for (size_t i = 0; i < n; i++)
		CHECK(line[i] >= 0x20 || line[i] == '\n');
	/* a template: $$, ${name}, nginx's header names, "-" for nothing */
	n = render("$$ ${status}x $http_referer $upstream_pid $request_id", &r, line);
	CHECK_MEM(line, n, "$ 200x - - abc\n", sizeof("$ 200x - - abc\n") - 1);
	/* no request line (a head that did not parse) */
	r.method = NULL;
	n = render("\"$request\" $method $target $protocol", &r, line);
	CHECK_MEM(line, n, "\"\" - - -\n", sizeof("\"\" - - -\n") - 1);
}

static void test_format_errors(void)
{
	static const struct {
		const char *spec;
		size_t off;
		const char *why;
	} bad[] = {
	    {"$remote_addr $nope x", 13, "unknown field \"$nope\""},
	    {"ok $", 3, "a '$' without a field name"},
	    {"${status", 0, "without its"},
	    {"a ${} b", 2, "without a field name"},
	    {"$Status", 0, "without a field name"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char why[128] = "";
		size_t off = 99;
		CHECK(log_format_compile(bad[i].spec, &off, why, sizeof(why)) == NULL);
		CHECK_EQ_INT((long long)off, (long long)bad[i].off);
		CHECK(strstr(why, bad[i].why) != NULL);
	}
}

/* a huge client string is cut so that the rest of the line fits: a JSON
 * line stays JSON */
static void test_format_bounds(void)
{
	static char big[3 * LOG_ACCESS_MAX];
	memset(big, 0x01, sizeof(big));
	struct log_access_rec r = sample();
	r.target = big;
	r.target_len = sizeof(big);
	r.referer = big;
	r.referer_len = sizeof(big);
	char line[LOG_ACCESS_MAX];
	size_t n = render("json", &r, line);
	CHECK(n <= LOG_ACCESS_MAX);
	CHECK(n > 2 && memcmp(line + n - 2, "}\n", 2) == 0);
	CHECK(HAS(line, n, "\"cgi_maxrss\":null,\"scheme\":\"http\",\"ssl_protocol\":null,\"ssl_cipher\":null}"));
	n = render("combined", &r, line);
	CHECK(n <= LOG_ACCESS_MAX);
	CHECK(n > 8 && memcmp(line + n - 9, " 1234567\n", 9) == 0);
}

/* usage pending: holes, filled later with the values or "-" / null */
static void test_format_holes(void)
{
	char why[128];
	size_t off;
	struct log_format *f =
	    log_format_compile("$cgi_maxrss|$status|$cgi_cpu_user|$cgi_cpu_sys", &off, why, sizeof(why));
	CHECK(f != NULL);
	struct log_access_rec r = sample();
	r.usage = LOG_USAGE_PENDING;
	struct log_holes h;
	char line[LOG_ACCESS_MAX], out[LOG_ACCESS_MAX];
	size_t n = log_format_render(f, &r, line, &h);
	CHECK_EQ_INT(h.n, 3);
	CHECK_MEM(line, n, "|200||\n", sizeof("|200||\n") - 1);
	struct log_access_rec u = {
	    .usage = LOG_USAGE_SET, .cpu_user_us = 1500, .cpu_sys_us = 2000000, .maxrss_kb = 3124};
	size_t m = log_format_fill(line, n, &h, &u, out);
	CHECK_MEM(out, m, "3124|200|0.001500|2.000000\n", sizeof("3124|200|0.001500|2.000000\n") - 1);
	u.usage = LOG_USAGE_NONE;
	m = log_format_fill(line, n, &h, &u, out);
	CHECK_MEM(out, m, "-|200|-|-\n", sizeof("-|200|-|-\n") - 1);
	log_format_free(f);
	f = log_format_compile("json", &off, why, sizeof(why));
	n = log_format_render(f, &r, line, &h);
	u.usage = LOG_USAGE_NONE;
	m = log_format_fill(line, n, &h, &u, out);
	CHECK(HAS(out, m, "\"cgi_cpu_user\":null,\"cgi_cpu_sys\":null,\"cgi_maxrss\":null,"));
	log_format_free(f);
}

/* the TLS fields: "-" / null on a plain connection, the client's SNI
 * escaped like every client string */
static void test_format_tls(void)
{
	char why[128];
	size_t off;
	struct log_format *f = log_format_compile(
	    "$scheme $ssl_protocol $ssl_cipher $ssl_server_name $ssl_session_reused", &off, why, sizeof(why));
	CHECK(f != NULL);
	struct log_access_rec r = sample();
	char line[LOG_ACCESS_MAX];
	size_t n = log_format_render(f, &r, line, NULL);
	CHECK_MEM(line, n, "http - - - -\n", sizeof("http - - - -\n") - 1);
	r.ssl_protocol = "TLSv1.3";
	r.ssl_cipher = "TLS_AES_128_GCM_SHA256";
	r.ssl_server_name = "a b\"c";
	r.ssl_session_reused = 1;
	n = log_format_render(f, &r, line, NULL);
	const char want[] = "https TLSv1.3 TLS_AES_128_GCM_SHA256 a\\x20b\\x22c r\n";
	CHECK_MEM(line, n, want, sizeof(want) - 1);
	log_format_free(f);
	f = log_format_compile("json", &off, why, sizeof(why));
	n = log_format_render(f, &r, line, NULL);
	CHECK(HAS(line, n,
		  "\"scheme\":\"https\",\"ssl_protocol\":\"TLSv1.3\",\"ssl_cipher\":\"TLS_AES_128_GCM_SHA256\"}"));
	log_format_free(f);
}

int main(void)
{
	test_format_tls();
	test_field();
	test_formats();
	test_format_errors();
	test_format_bounds();
	test_format_holes();
	int fd = mkstemp(logpath);
	if (fd < 0)
		return 2;
	close(fd);
	log_started();
	if (log_open_error(logpath) < 0)
		return 2;
	test_escape();
	test_msg_is_one_line();
	test_lines();
	unlink(logpath);
	return unit_done();
}
