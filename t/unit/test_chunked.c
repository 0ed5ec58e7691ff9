/* Unit tests for protocol/http_chunked.c */
#include <stdlib.h>
#include <string.h>

#include "../../protocol/http_chunked.h"
#include "unit.h"

/* Decode in[0..len) in one call into a separate buffer. */
static int decode1(const char *in, size_t len, char *out, size_t *consumed, size_t *produced)
{
	struct http_chunked c;
	http_chunked_init(&c);
	return http_chunked_decode(&c, in, len, out, consumed, produced);
}

/* Feed in[0..len) in pieces of `piece` bytes into out. Returns the last
 * status; *consumed and *produced are the totals. Checks that MORE always
 * consumes its whole piece. */
static int decode_pieces(const char *in, size_t len, size_t piece, char *out, size_t *consumed, size_t *produced,
			 int *more_ok)
{
	struct http_chunked c;
	http_chunked_init(&c);
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
	http_chunked_init(&c);
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
	http_chunked_init(&c);
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
		http_chunked_init(&d);
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

/* Malformed: an error, whole and fed byte by byte. */
static void invalid(const char *in)
{
	size_t len = strlen(in);
	char *out = malloc(len + 1);
	size_t cons, prod;
	int rc = decode1(in, len, out, &cons, &prod);
	if (!CHECK_EQ_INT(rc, CHUNKED_ERROR)) {
		fputs("  input: ", stderr);
		unit_print_escaped(in, len);
		fputc('\n', stderr);
	}
	CHECK(cons <= len);
	int more_ok;
	rc = decode_pieces(in, len, 1, out, &cons, &prod, &more_ok);
	CHECK_EQ_INT(rc, CHUNKED_ERROR);
	free(out);
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
	/* bare LF line endings (accepted like the head parser) */
	valid_s("3\nabc\n0\n\n", "abc");
	valid_s("3\nabc\r\n0\nT: 1\n\n", "abc");
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
	http_chunked_init(&c);
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
	http_chunked_init(&c);
	char out[8];
	size_t cons, prod;
	CHECK_EQ_INT(http_chunked_decode(&c, "100000000000000\r\nab", 19, out, &cons, &prod), CHUNKED_MORE);
	CHECK_EQ_INT(cons, 19);
	CHECK_EQ_INT(prod, 2);
	CHECK(c.remaining == 0x100000000000000ULL - 2);
}

int main(void)
{
	test_valid();
	test_invalid();
	return unit_done();
}
