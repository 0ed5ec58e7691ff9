/* Unit tests for backends/cgi_output.c: CGI output in, response out,
 * through recording callbacks (no sockets, no loop). */
#include <stdlib.h>
#include <string.h>

#include "../../backends/cgi_output.h"
#include "unit.h"

/* what the callbacks saw, and what they answer */
static struct {
	int heads, status, content_type;
	char body[256 * 1024];
	size_t body_len;
	int body_calls;
	int head_rc;	    /* what head returns */
	int body_rc;	    /* what body returns */
	size_t complete_at; /* complete() says 1 once this many body bytes came (0: never) */
} rec;

static int rec_head(void *pdata, const struct cgi_response *r)
{
	(void)pdata;
	rec.heads++;
	rec.status = r->status;
	rec.content_type = r->has_content_type;
	return rec.head_rc;
}

static int rec_body(void *pdata, const char *p, size_t n)
{
	(void)pdata;
	rec.body_calls++;
	if (rec.body_len + n <= sizeof(rec.body)) {
		memcpy(rec.body + rec.body_len, p, n);
		rec.body_len += n;
	}
	return rec.body_rc;
}

static int rec_complete(void *pdata)
{
	(void)pdata;
	return rec.complete_at && rec.body_len >= rec.complete_at;
}

static const struct cgi_output_opts opts = {rec_head, rec_body, NULL};
static const struct cgi_output_opts opts_complete = {rec_head, rec_body, rec_complete};

static void reset(void)
{
	memset(&rec, 0, sizeof(rec));
	rec.body_rc = 1;
}

/* Feed s in pieces of step bytes (the last may be shorter); returns the
 * last result that was not CGI_OUTPUT_MORE, or CGI_OUTPUT_MORE. */
static enum cgi_output_rc feed_steps(struct cgi_output *o, const char *s, size_t len, size_t step)
{
	enum cgi_output_rc last = CGI_OUTPUT_MORE;
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;
		enum cgi_output_rc rc = cgi_output_feed(o, s + i, n);
		if (rc != CGI_OUTPUT_MORE)
			last = rc;
		if (rc < 0)
			return rc;
	}
	return last;
}

/* Every split of the stream (one boundary anywhere, then byte by byte)
 * gives the same head and the same body. */
static void test_any_split(void)
{
	const char *s = "Status: 201 Made\r\nContent-Type: text/plain\r\n\r\nhello, body";
	size_t len = strlen(s);
	for (size_t cut = 0; cut <= len; cut++) {
		reset();
		struct cgi_output o;
		cgi_output_init(&o, &opts, NULL);
		CHECK_EQ_INT(cgi_output_feed(&o, s, cut), CGI_OUTPUT_MORE);
		CHECK_EQ_INT(cgi_output_feed(&o, s + cut, len - cut), CGI_OUTPUT_MORE);
		CHECK_EQ_INT(rec.heads, 1);
		CHECK_EQ_INT(rec.status, 201);
		CHECK_MEM(rec.body, rec.body_len, "hello, body", 11);
		CHECK_EQ_INT(cgi_output_eof(&o), CGI_OUTPUT_MORE);
		cgi_output_free(&o);
	}
	reset();
	struct cgi_output o;
	cgi_output_init(&o, &opts, NULL);
	CHECK_EQ_INT(feed_steps(&o, s, len, 1), CGI_OUTPUT_MORE);
	CHECK_EQ_INT(rec.heads, 1);
	CHECK_MEM(rec.body, rec.body_len, "hello, body", 11);
	cgi_output_free(&o);
}

/* A block of exactly HEAD_MAX bytes with its end is accepted, with no
 * byte of the body lost; one byte more is "too large". */
static void test_head_limit(void)
{
	for (int over = 0; over <= 1; over++) {
		size_t hl = CGI_OUTPUT_HEAD_MAX + (size_t)over;
		char *s = malloc(hl + 64);
		const char *pre = "Content-Type: text/plain\r\nX-Pad: ";
		size_t pl = strlen(pre);
		memcpy(s, pre, pl);
		memset(s + pl, 'a', hl - pl - 4);
		memcpy(s + hl - 4, "\r\n\r\n", 4);
		memcpy(s + hl, "BODY", 4);
		for (size_t step = 1000; step <= 40000; step += 39000) {
			reset();
			struct cgi_output o;
			cgi_output_init(&o, &opts, NULL);
			enum cgi_output_rc rc = feed_steps(&o, s, hl + 4, step);
			if (over) {
				CHECK_EQ_INT(rc, CGI_OUTPUT_BAD);
				CHECK_EQ_STR(o.why, "response header block too large");
				CHECK_EQ_INT(rec.heads, 0);
			} else {
				CHECK_EQ_INT(rc, CGI_OUTPUT_MORE);
				CHECK_EQ_INT(rec.heads, 1);
				CHECK_MEM(rec.body, rec.body_len, "BODY", 4);
			}
			cgi_output_free(&o);
		}
		free(s);
	}
}

#define CHECK_STARTS(s, lit) CHECK(strncmp((s), lit, sizeof(lit) - 1) == 0)

static void test_malformed(void)
{
	reset();
	struct cgi_output o;
	cgi_output_init(&o, &opts, NULL);
	CHECK_EQ_INT(cgi_output_feed(&o, "Status: 999\r\n\r\nx", 16), CGI_OUTPUT_BAD);
	CHECK_EQ_STR(o.why, "sent an invalid header: \"Status: 999\" (Status is not a code from 200 to 599 and a "
			    "reason)");
	CHECK_EQ_INT(rec.heads, 0);
	CHECK_EQ_INT(rec.body_calls, 0);
	cgi_output_free(&o);

	/* a body printed before any header: the line is quoted */
	cgi_output_init(&o, &opts, NULL);
	CHECK_EQ_INT(cgi_output_feed(&o, "hello\n\nworld\n", 14), CGI_OUTPUT_BAD);
	CHECK_STARTS(o.why, "sent an invalid header: \"hello\" (no colon");
	cgi_output_free(&o);

	/* a long line is cut at 64 bytes, a NUL ends it */
	char line[200];
	memset(line, 'x', sizeof(line));
	memcpy(line + 150, "\n\n", 2);
	cgi_output_init(&o, &opts, NULL);
	CHECK_EQ_INT(cgi_output_feed(&o, line, 152), CGI_OUTPUT_BAD);
	CHECK(strstr(o.why, "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" (") != NULL);
	cgi_output_free(&o);
	cgi_output_init(&o, &opts, NULL);
	CHECK_EQ_INT(cgi_output_feed(&o, "ab\0cd\n\n", 7), CGI_OUTPUT_BAD);
	CHECK_STARTS(o.why, "sent an invalid header: \"ab...\" (a CR or NUL");
	cgi_output_free(&o);

	/* HTML over the head limit without a header: its first line, not
	 * only "too large" */
	size_t big = CGI_OUTPUT_HEAD_MAX + 100;
	char *html = malloc(big);
	memcpy(html, "<html>\n", 7);
	memset(html + 7, 'p', big - 7);
	cgi_output_init(&o, &opts, NULL);
	CHECK_EQ_INT(feed_steps(&o, html, big, 4096), CGI_OUTPUT_BAD);
	CHECK_STARTS(o.why, "sent an invalid header: \"<html>\" (no colon");
	cgi_output_free(&o);
	free(html);
}

/* Output that ends early: which message, and no head. */
static void test_eof(void)
{
	reset();
	struct cgi_output o;
	cgi_output_init(&o, &opts, NULL);
	CHECK_EQ_INT(cgi_output_eof(&o), CGI_OUTPUT_BAD);
	CHECK(strstr(o.why, "before sending a header") != NULL);
	cgi_output_free(&o);

	cgi_output_init(&o, &opts, NULL);
	CHECK_EQ_INT(cgi_output_feed(&o, "Content-Type: a/b\r\n", 19), CGI_OUTPUT_MORE);
	CHECK_EQ_INT(cgi_output_eof(&o), CGI_OUTPUT_BAD);
	CHECK_EQ_STR(o.why, "output ended inside the header block");
	CHECK_EQ_INT(rec.heads, 0);
	cgi_output_free(&o);

	/* a program that printed a line that is no header, then exited */
	cgi_output_init(&o, &opts, NULL);
	CHECK_EQ_INT(cgi_output_feed(&o, "Content-Type: a/b\nhello", 23), CGI_OUTPUT_MORE);
	CHECK_EQ_INT(cgi_output_eof(&o), CGI_OUTPUT_BAD);
	CHECK_STARTS(o.why, "sent an invalid header: \"hello\" (no colon");
	cgi_output_free(&o);
}

/* A Location without Status is a local redirect: no head, the body is
 * nobody's, the target is kept for the end. */
static void test_local_redirect(void)
{
	reset();
	struct cgi_output o;
	cgi_output_init(&o, &opts, NULL);
	const char *s = "Location: /other?q=1\r\n\r\nthis body is dropped";
	CHECK_EQ_INT(feed_steps(&o, s, strlen(s), 7), CGI_OUTPUT_MORE);
	CHECK_EQ_INT(cgi_output_feed(&o, "more", 4), CGI_OUTPUT_MORE);
	CHECK_EQ_INT(rec.heads, 0);
	CHECK_EQ_INT(rec.body_calls, 0);
	CHECK_EQ_STR(o.redirect, "/other?q=1");
	CHECK_EQ_INT(cgi_output_eof(&o), CGI_OUTPUT_MORE);
	cgi_output_free(&o);
}

/* A slow client: HOLD, and still every byte given is delivered (the
 * caller stops reading, it does not lose what it read). */
static void test_hold(void)
{
	reset();
	rec.body_rc = 0;
	struct cgi_output o;
	cgi_output_init(&o, &opts, NULL);
	const char *s = "Content-Type: a/b\r\n\r\nfirst";
	CHECK_EQ_INT(cgi_output_feed(&o, s, strlen(s)), CGI_OUTPUT_HOLD);
	CHECK_EQ_INT(cgi_output_feed(&o, "second", 6), CGI_OUTPUT_HOLD);
	CHECK_MEM(rec.body, rec.body_len, "firstsecond", 11);
	rec.body_rc = 1;
	CHECK_EQ_INT(cgi_output_feed(&o, "!", 1), CGI_OUTPUT_MORE);
	cgi_output_free(&o);
}

/* The client gone at the head or in the body: GONE, nothing after it. */
static void test_gone(void)
{
	reset();
	rec.head_rc = -1;
	struct cgi_output o;
	cgi_output_init(&o, &opts, NULL);
	const char *s = "Content-Type: a/b\r\n\r\nbody";
	CHECK_EQ_INT(cgi_output_feed(&o, s, strlen(s)), CGI_OUTPUT_GONE);
	CHECK_EQ_INT(rec.body_calls, 0);
	cgi_output_free(&o);

	reset();
	rec.body_rc = -1;
	cgi_output_init(&o, &opts, NULL);
	CHECK_EQ_INT(cgi_output_feed(&o, s, strlen(s)), CGI_OUTPUT_GONE);
	CHECK_EQ_INT(rec.body_calls, 1);
	cgi_output_free(&o);
}

/* complete(): once the response has all its bytes the reader says
 * COMPLETE (the caller ends the exchange and drops the rest). */
static void test_complete(void)
{
	reset();
	rec.complete_at = 3;
	struct cgi_output o;
	cgi_output_init(&o, &opts_complete, NULL);
	const char *s = "Content-Type: a/b\r\n\r\nab";
	CHECK_EQ_INT(cgi_output_feed(&o, s, strlen(s)), CGI_OUTPUT_MORE);
	CHECK_EQ_INT(cgi_output_feed(&o, "c", 1), CGI_OUTPUT_COMPLETE);
	CHECK_MEM(rec.body, rec.body_len, "abc", 3);
	cgi_output_free(&o);

	/* complete at the head (no body wanted, as for HEAD or 304): the
	 * bytes after the block are not delivered */
	reset();
	rec.complete_at = 0;
	struct cgi_output o2;
	cgi_output_init(&o2, &opts_complete, NULL);
	rec.complete_at = (size_t)-1;
	rec.body_len = (size_t)-1; /* complete() is 1 from the start */
	CHECK_EQ_INT(cgi_output_feed(&o2, s, strlen(s)), CGI_OUTPUT_COMPLETE);
	CHECK_EQ_INT(rec.heads, 1);
	CHECK_EQ_INT(rec.body_calls, 0);
	cgi_output_free(&o2);
}

int main(void)
{
	test_any_split();
	test_head_limit();
	test_malformed();
	test_eof();
	test_local_redirect();
	test_hold();
	test_gone();
	test_complete();
	return unit_done();
}
