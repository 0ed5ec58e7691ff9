/* Unit tests for protocol/http_chunked.c */
#include <stdlib.h>
#include <string.h>

#include "../../protocol/http_chunked.h"
#include "unit.h"

/* The body limit every decoder in these tests gets (init: none). */
static uint64_t MAX_BODY = UINT64_MAX;

static void init(struct http_chunked *c)
{
	http_chunked_init(c);
	c->max_body = MAX_BODY;
}

/* Decode in[0..len) in one call into a separate buffer. */
static int decode1(const char *in, size_t len, char *out, size_t *consumed, size_t *produced)
{
	struct http_chunked c;
	init(&c);
	return http_chunked_decode(&c, in, len, out, consumed, produced);
}

/* Feed in[0..len) in pieces of `piece` bytes into out. Returns the last
 * status; *consumed and *produced are the totals. Checks that MORE always
 * consumes its whole piece. */
static int decode_pieces(const char *in, size_t len, size_t piece, char *out, size_t *consumed, size_t *produced,
			 int *more_ok)
{
	struct http_chunked c;
	init(&c);
	size_t ci = 0, po = 0;
	int rc = CHUNKED_MORE;
	*more_ok = 1;
	while (ci < len) {
		size_t n = len - ci < piece ? len - ci : piece;
		size_t cn = 0, pn = 0;
		rc = http_chunked_decode(&c, in + ci, n, out + po, &cn, &pn);
		if (cn > n)
			*more_ok = 0;
		ci += cn;
		po += pn;
		if (rc != CHUNKED_MORE)
			break;
		if (cn != n)
			*more_ok = 0;
	}
	*consumed = ci;
	*produced = po;
	return rc;
}

/* Same, but in place: one buffer, output written over the consumed input. */
static int decode_inplace_pieces(char *buf, size_t len, size_t piece, size_t *consumed, size_t *produced)
{
	struct http_chunked c;
	init(&c);
	size_t ci = 0, po = 0;
	int rc = CHUNKED_MORE;
	while (ci < len) {
		size_t n = len - ci < piece ? len - ci : piece;
		size_t cn = 0, pn = 0;
		rc = http_chunked_decode(&c, buf + ci, n, buf + po, &cn, &pn);
		ci += cn;
		po += pn;
		if (rc != CHUNKED_MORE)
			break;
	}
	*consumed = ci;
	*produced = po;
	return rc;
}

/* A valid message: whole, in place, every piece size and every two-piece
 * split must give DONE, consume exactly `msglen` bytes (of `len`) and produce
 * `want`. */
static void valid(const char *in, size_t len, size_t msglen, const char *want)
{
	size_t wl = strlen(want);
	char *out = malloc(len + 1), *buf = malloc(len + 1);
	size_t cons, prod;
	CHECK_EQ_INT(decode1(in, len, out, &cons, &prod), CHUNKED_DONE);
	CHECK_EQ_INT(cons, msglen);
	CHECK_MEM(out, prod, want, wl);

	memcpy(buf, in, len);
	struct http_chunked c;
	init(&c);
	CHECK_EQ_INT(http_chunked_decode(&c, buf, len, buf, &cons, &prod), CHUNKED_DONE);
	CHECK_EQ_INT(cons, msglen);
	CHECK_MEM(buf, prod, want, wl);
	/* once done, it stays done and consumes nothing */
	if (msglen < len) {
		size_t c2 = 99, p2 = 99;
		CHECK_EQ_INT(http_chunked_decode(&c, in + msglen, len - msglen, out, &c2, &p2), CHUNKED_DONE);
		CHECK_EQ_INT(c2, 0);
		CHECK_EQ_INT(p2, 0);
	}

	int bad = 0;
	for (size_t piece = 1; piece <= len; piece++) {
		int more_ok;
		memset(out, 0, len + 1);
		int rc = decode_pieces(in, len, piece, out, &cons, &prod, &more_ok);
		if (rc != CHUNKED_DONE || cons != msglen || prod != wl || memcmp(out, want, wl) != 0 || !more_ok) {
			fprintf(stderr, "pieces of %zu: rc %d consumed %zu produced %zu\n", piece, rc, cons, prod);
			bad++;
		}
		memcpy(buf, in, len);
		rc = decode_inplace_pieces(buf, len, piece, &cons, &prod);
		if (rc != CHUNKED_DONE || cons != msglen || prod != wl || memcmp(buf, want, wl) != 0) {
			fprintf(stderr, "in place, pieces of %zu: rc %d consumed %zu produced %zu\n", piece, rc, cons,
				prod);
			bad++;
		}
	}
	CHECK_EQ_INT(bad, 0);

	/* every split into two pieces at k */
	bad = 0;
	for (size_t k = 0; k <= len; k++) {
		struct http_chunked d;
		init(&d);
		size_t c1 = 0, p1 = 0, c2 = 0, p2 = 0;
		memset(out, 0, len + 1);
		int rc = http_chunked_decode(&d, in, k, out, &c1, &p1);
		if (rc == CHUNKED_MORE && c1 == k)
			rc = http_chunked_decode(&d, in + k, len - k, out + p1, &c2, &p2);
		if (rc != CHUNKED_DONE || c1 + c2 != msglen || p1 + p2 != wl || memcmp(out, want, wl) != 0) {
			fprintf(stderr, "split at %zu: rc %d\n", k, rc);
			bad++;
		}
	}
	CHECK_EQ_INT(bad, 0);
	free(out);
	free(buf);
}

static void valid_s(const char *in, const char *want)
{
	valid(in, strlen(in), strlen(in), want);
}

/* Refused with want (CHUNKED_ERROR or CHUNKED_TOO_LARGE): whole, in every
 * piece size and in every split into two pieces, with the same bytes
 * consumed and produced each time. */
static void refused(const char *in, int want)
{
	size_t len = strlen(in);
	char *out = malloc(len + 1);
	size_t cons, prod;
	int rc = decode1(in, len, out, &cons, &prod);
	if (!CHECK_EQ_INT(rc, want)) {
		fputs("  input: ", stderr);
		unit_print_escaped(in, len);
		fputc('\n', stderr);
	}
	CHECK(cons <= len);
	size_t cons1 = cons, prod1 = prod;
	int bad = 0;
	for (size_t piece = 1; piece <= len; piece++) {
		int more_ok;
		rc = decode_pieces(in, len, piece, out, &cons, &prod, &more_ok);
		if (rc != want || cons != cons1 || prod != prod1) {
			fprintf(stderr, "pieces of %zu: rc %d consumed %zu produced %zu\n", piece, rc, cons, prod);
			bad++;
		}
	}
	for (size_t k = 0; k <= len; k++) {
		struct http_chunked d;
		init(&d);
		size_t c1 = 0, p1 = 0, c2 = 0, p2 = 0;
		rc = http_chunked_decode(&d, in, k, out, &c1, &p1);
		if (rc == CHUNKED_MORE && c1 == k)
			rc = http_chunked_decode(&d, in + k, len - k, out + p1, &c2, &p2);
		if (rc != want || c1 + c2 != cons1 || p1 + p2 != prod1) {
			fprintf(stderr, "split at %zu: rc %d\n", k, rc);
			bad++;
		}
	}
	if (!CHECK_EQ_INT(bad, 0)) {
		fputs("  input: ", stderr);
		unit_print_escaped(in, len);
		fputc('\n', stderr);
	}
	free(out);
}

static void invalid(const char *in)
{
	refused(in, CHUNKED_ERROR);
}

static void test_valid(void)
{
	valid_s("5\r\nhello\r\n0\r\n\r\n", "hello");
	valid_s("0\r\n\r\n", "");
	valid_s("5\r\nhello\r\n6\r\n world\r\n1\r\n!\r\n0\r\n\r\n", "hello world!");
	/* data containing CR, LF, NUL-free binary and digits */
	valid_s("6\r\n\r\n0\r\n\r\r\n3\r\n123\r\n0\r\n\r\n", "\r\n0\r\n\r123");
	/* uppercase and lowercase hex, leading zeros */
	valid_s("A\r\n0123456789\r\n0\r\n\r\n", "0123456789");
	valid_s("a\r\n0123456789\r\n00\r\n\r\n", "0123456789");
	valid_s("1F\r\n0123456789012345678901234567890\r\n0\r\n\r\n", "0123456789012345678901234567890");
	valid_s("1f\r\n0123456789012345678901234567890\r\n0\r\n\r\n", "0123456789012345678901234567890");
	valid_s("0005\r\nhello\r\n0\r\n\r\n", "hello");
	valid_s("00000000000005\r\nhello\r\n0\r\n\r\n", "hello");
	/* extensions */
	valid_s("5;name=value\r\nhello\r\n0\r\n\r\n", "hello");
	valid_s("5;a=1;b=\"q;x\"\r\nhello\r\n0;last\r\n\r\n", "hello");
	valid_s("5 ;a\r\nhello\r\n0\t;x=y\r\n\r\n", "hello");
	/* trailers */
	valid_s("5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n", "hello");
	valid_s("3\r\nabc\r\n0\r\nA: 1\r\nB: two words\r\n\r\n", "abc");
	/* names that only look like forbidden ones are fine, and so are
	 * fields that do not frame or route (they are dropped anyway) */
	valid_s("3\r\nabc\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\n", "abc");
	valid_s("3\r\nabc\r\n0\r\nX-Content-Length: 3\r\nHosts: a\r\nContent-Lengthy: 1\r\n\r\n", "abc");
	valid_s("3\r\nabc\r\n0\r\nA-very-long-trailer-field-name-indeed: Host: x\r\n\r\n", "abc");
	/* trailer names are tokens; values may hold HTAB, SP and obs-text */
	valid_s("1\r\nz\r\n0\r\nX-A!#$%&'*+.^_`|~9: v\r\nB:\r\nC:\t\xc3\xa9 x \r\n\r\n", "z");
	/* bytes after the final CRLF are not consumed */
	const char *m = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
	valid(m, strlen(m), strlen("3\r\nabc\r\n0\r\n\r\n"), "abc");
	m = "0\r\n\r\nX";
	valid(m, strlen(m), 5, "");
	m = "1\r\nz\r\n0\r\nT: v\r\n\r\n\r\n";
	valid(m, strlen(m), strlen(m) - 2, "z");

	/* a larger body split into many chunks */
	char *big = malloc(70000), *want = malloc(70000);
	size_t bl = 0, wl = 0;
	for (int i = 0; i < 40; i++) {
		int n = i * 37 % 251 + 1;
		bl += (size_t)sprintf(big + bl, "%x\r\n", n);
		for (int k = 0; k < n; k++)
			big[bl++] = want[wl++] = (char)('a' + (i + k) % 26);
		big[bl++] = '\r';
		big[bl++] = '\n';
	}
	bl += (size_t)sprintf(big + bl, "0\r\n\r\n");
	want[wl] = 0;
	valid(big, bl, bl, want);
	free(big);
	free(want);

	/* MORE: everything consumed, data produced as it arrives */
	struct http_chunked c;
	init(&c);
	char out[64];
	size_t cons, prod;
	CHECK_EQ_INT(http_chunked_decode(&c, "a\r\n01234", 8, out, &cons, &prod), CHUNKED_MORE);
	CHECK_EQ_INT(cons, 8);
	CHECK_MEM(out, prod, "01234", 5);
	CHECK_EQ_INT(c.remaining, 5);
	CHECK_EQ_INT(http_chunked_decode(&c, "56789\r\n", 7, out, &cons, &prod), CHUNKED_MORE);
	CHECK_EQ_INT(cons, 7);
	CHECK_MEM(out, prod, "56789", 5);
	CHECK_EQ_INT(http_chunked_decode(&c, "", 0, out, &cons, &prod), CHUNKED_MORE);
	CHECK_EQ_INT(cons, 0);
	CHECK_EQ_INT(prod, 0);
	CHECK_EQ_INT(http_chunked_decode(&c, "0\r\n\r\n", 5, out, &cons, &prod), CHUNKED_DONE);
	CHECK_EQ_INT(cons, 5);
	CHECK_EQ_INT(prod, 0);
}

static void test_invalid(void)
{
	/* size overflow: 16 or more hex digits */
	invalid("FFFFFFFFFFFFFFFF\r\n");
	invalid("10000000000000000\r\nx\r\n0\r\n\r\n");
	invalid("0000000000000000000000000001\r\nx\r\n0\r\n\r\n");
	/* junk in the size */
	invalid("x\r\nhello\r\n0\r\n\r\n");
	invalid("5x\r\nhello\r\n0\r\n\r\n");
	invalid("-5\r\nhello\r\n0\r\n\r\n");
	invalid("+5\r\nhello\r\n0\r\n\r\n");
	invalid("0x5\r\nhello\r\n0\r\n\r\n");
	invalid("\r\nhello\r\n0\r\n\r\n");
	invalid(" 5\r\nhello\r\n0\r\n\r\n");
	invalid(";x\r\n");
	invalid("5\rx\nhello\r\n0\r\n\r\n");
	/* control characters in an extension */
	invalid("5;a\x01\r\nhello\r\n0\r\n\r\n");
	invalid("5;a\x7f\r\nhello\r\n0\r\n\r\n");
	/* missing CRLF after the data */
	invalid("5\r\nhelloX\r\n0\r\n\r\n");
	invalid("5\r\nhello0\r\n\r\n");
	invalid("5\r\nhello\r\r\n0\r\n\r\n");
	invalid("5\r\nhello\rX0\r\n\r\n");
	invalid("3\r\nabcdef\r\n0\r\n\r\n");
	/* bad trailer / final line */
	invalid("0\r\nX: a\x01\r\n\r\n");
	invalid("0\r\nX: a\rb\r\n\r\n");
	invalid("0\r\n\rX");
	/* framing lines end in CRLF: a bare LF anywhere in the framing */
	invalid("3\nabc\r\n0\r\n\r\n");		/* size line */
	invalid("3;x=1\nabc\r\n0\r\n\r\n");	/* size line with an extension */
	invalid("3\r\nabc\n0\r\n\r\n");		/* after the data */
	invalid("3\r\nabc\r\n0\n\r\n");		/* last size line */
	invalid("3\r\nabc\r\n0\r\nT: 1\n\r\n"); /* trailer line */
	invalid("3\r\nabc\r\n0\r\nT: 1\r\n\n"); /* final line */
	invalid("3\r\nabc\r\n0\r\n\n");		/* final line, no trailers */
	invalid("3\nabc\n0\n\n");
	invalid("0\r\nT: a\nb\r\n\r\n"); /* a bare LF inside a value */
	/* trailer names are validated like the head's field names */
	invalid("0\r\n X: 1\r\n\r\n"); /* obs-fold / leading whitespace */
	invalid("0\r\nA: 1\r\n\tfolded\r\n\r\n");
	invalid("0\r\n: v\r\n\r\n");   /* empty name */
	invalid("0\r\nX : v\r\n\r\n"); /* whitespace before the colon */
	invalid("0\r\nX\t: v\r\n\r\n");
	invalid("0\r\nX(y): v\r\n\r\n");
	invalid("0\r\nX@: v\r\n\r\n");
	invalid("0\r\nX\x01: v\r\n\r\n");
	invalid("0\r\n\xc3\xa9: v\r\n\r\n");
	invalid("0\r\nNoColon\r\n\r\n");
	invalid("0\r\nX: a\x7f\r\n\r\n");
	invalid("0\r\nX: a\x1b[m\r\n\r\n");
	{
		const char nul[] = "0\r\nX: a\0b\r\n\r\n";
		struct http_chunked c;
		init(&c);
		char out[32];
		size_t cons, prod;
		CHECK_EQ_INT(http_chunked_decode(&c, nul, sizeof(nul) - 1, out, &cons, &prod), CHUNKED_ERROR);
		const char nul2[] = "0\r\nX\0: a\r\n\r\n";
		init(&c);
		CHECK_EQ_INT(http_chunked_decode(&c, nul2, sizeof(nul2) - 1, out, &cons, &prod), CHUNKED_ERROR);
	}
	/* whitespace after the size, no extension (RFC 9112: BWS only before ';') */
	invalid("5 \r\nhello\r\n0\r\n\r\n");
	invalid("5\r\nhello\r\n0 \r\n\r\n");
	invalid("5\t\r\nhello\r\n0\r\n\r\n");
	invalid("5 x\r\nhello\r\n0\r\n\r\n");
	/* trailer fields RFC 9110 forbids in trailers, in any case */
	invalid("5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n");
	invalid("5\r\nhello\r\n0\r\nHost: example.com\r\n\r\n");
	invalid("5\r\nhello\r\n0\r\nX: 1\r\ntransfer-ENCODING: chunked\r\n\r\n");
	invalid("0\r\nTE: trailers\r\n\r\n");
	invalid("0\r\nConnection: close\r\n\r\n");
	/* an over-long extension */
	char *ext = malloc(6000);
	strcpy(ext, "1;");
	memset(ext + 2, 'a', 5000);
	strcpy(ext + 5002, "\r\nx\r\n0\r\n\r\n");
	invalid(ext);
	free(ext);
	/* too many trailer bytes */
	char *tr = malloc(20000);
	strcpy(tr, "0\r\n");
	size_t n = 3;
	for (int i = 0; i < 200; i++)
		n += (size_t)sprintf(tr + n, "X-%03d: %060d\r\n", i, i);
	strcpy(tr + n, "\r\n");
	invalid(tr);
	free(tr);

	/* a 15-digit size is still fine; the decoder waits for the data */
	struct http_chunked c;
	init(&c);
	char out[8];
	size_t cons, prod;
	CHECK_EQ_INT(http_chunked_decode(&c, "100000000000000\r\nab", 19, out, &cons, &prod), CHUNKED_MORE);
	CHECK_EQ_INT(cons, 19);
	CHECK_EQ_INT(prod, 2);
	CHECK(c.remaining == 0x100000000000000ULL - 2);
}

/* A body limit: a chunk whose declared size takes the total past it is
 * refused as soon as the size is read, before its data. */
static void test_too_large(void)
{
	MAX_BODY = 10;
	valid_s("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", "helloworld"); /* exactly the limit */
	valid_s("a\r\n0123456789\r\n0\r\n\r\n", "0123456789");
	valid_s("0000000000000a\r\n0123456789\r\n0\r\n\r\n", "0123456789");
	refused("b\r\n", CHUNKED_TOO_LARGE);
	refused("5\r\nhello\r\n6\r\n", CHUNKED_TOO_LARGE);
	refused("5\r\nhello\r\n6", CHUNKED_TOO_LARGE);
	refused("5\r\nhello\r\n5\r\nworld\r\n1\r\n!\r\n0\r\n\r\n", CHUNKED_TOO_LARGE);
	refused("ffffffffffffff\r\n", CHUNKED_TOO_LARGE);
	refused("10\r\n", CHUNKED_TOO_LARGE);
	/* what came before is produced, and the refusal is at the size's
	 * digit that crossed the limit */
	struct http_chunked c;
	init(&c);
	char out[64];
	size_t cons, prod;
	const char *m = "5\r\nhello\r\n06\r\nworld!\r\n0\r\n\r\n";
	CHECK_EQ_INT(http_chunked_decode(&c, m, strlen(m), out, &cons, &prod), CHUNKED_TOO_LARGE);
	CHECK_EQ_INT(cons, strlen("5\r\nhello\r\n0"));
	CHECK_MEM(out, prod, "hello", 5);
	/* a limit of 0: only an empty body */
	MAX_BODY = 0;
	valid_s("0\r\n\r\n", "");
	refused("1\r\nx\r\n0\r\n\r\n", CHUNKED_TOO_LARGE);
	/* the syntax check comes first: 16 digits are malformed, not large */
	MAX_BODY = UINT64_MAX;
	invalid("0000000000000000\r\n\r\n");
	/* init leaves no limit */
	http_chunked_init(&c);
	CHECK(c.max_body == UINT64_MAX);
	CHECK_EQ_INT(http_chunked_decode(&c, "100000000000000\r\n", 17, out, &cons, &prod), CHUNKED_MORE);
}

int main(void)
{
	test_valid();
	test_invalid();
	test_too_large();
	return unit_done();
}
