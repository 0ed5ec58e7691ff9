/* Unit tests for protocol/proxy.c: PROXY protocol v1 and v2 headers,
 * their errors, and the PROXY_AGAIN promise that every byte given so far
 * belongs to the header (every proper prefix of a valid header is AGAIN,
 * and what follows the header is never taken). */
#include <arpa/inet.h>
#include <string.h>

#include "../../protocol/proxy.h"
#include "unit.h"

static const char sig[] = "\r\n\r\n\0\r\nQUIT\n";

static enum proxy_result parse(const void *b, size_t n, struct proxy_info *pi)
{
	const char *why = NULL;
	enum proxy_result r = proxy_parse(b, n, pi, &why);
	if (r == PROXY_ERROR && (!why || !*why))
		fprintf(stderr, "ERROR without a reason\n");
	if (r != PROXY_ERROR && why)
		fprintf(stderr, "a reason without an ERROR: %s\n", why);
	return r;
}

static enum proxy_result s(const char *str, struct proxy_info *pi)
{
	return parse(str, strlen(str), pi);
}

/* Every proper prefix of b[0..n) is AGAIN; b itself is want; with junk
 * after it, the same, and len stays (OK) */
static void prefixes(const void *b, size_t n, enum proxy_result want, int line)
{
	struct proxy_info pi;
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		if (parse(b, i, &pi) != PROXY_AGAIN && !bad)
			bad = i + 1;
	if (bad)
		fprintf(stderr, "line %d: prefix of %zu bytes is not AGAIN\n", line, bad - 1);
	CHECK(bad == 0);
	CHECK_EQ_INT(parse(b, n, &pi), want);
	if (want == PROXY_OK) {
		CHECK_EQ_INT(pi.len, n);
		unsigned char more[PROXY_MAX + 64];
		memcpy(more, b, n);
		memcpy(more + n, "GET / HTTP/1.1\r\n\r\n", 18);
		CHECK_EQ_INT(parse(more, n + 18, &pi), PROXY_OK);
		CHECK_EQ_INT(pi.len, n);
	}
}

static void test_v1(void)
{
	struct proxy_info pi;
	const char *h = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
	CHECK_EQ_INT(s(h, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.version, 1);
	CHECK_EQ_INT(pi.family, 4);
	CHECK_EQ_INT(pi.len, strlen(h));
	CHECK_MEM((char *)pi.src, 4, "\xc0\x00\x02\x01", 4);
	CHECK_MEM((char *)pi.dst, 4, "\xc6\x33\x64\x02", 4);
	CHECK_EQ_INT(pi.src_port, 56324);
	CHECK_EQ_INT(pi.dst_port, 443);
	CHECK_EQ_INT(pi.local, 0);
	CHECK_EQ_INT(pi.ssl, 0);
	prefixes(h, strlen(h), PROXY_OK, __LINE__);

	h = "PROXY TCP6 2001:db8::1 ::ffff:192.0.2.7 0 65535\r\n";
	CHECK_EQ_INT(s(h, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.family, 6);
	uint8_t a[16];
	inet_pton(AF_INET6, "2001:db8::1", a);
	CHECK(memcmp(pi.src, a, 16) == 0);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", a);
	CHECK(memcmp(pi.dst, a, 16) == 0);
	CHECK_EQ_INT(pi.src_port, 0);
	CHECK_EQ_INT(pi.dst_port, 65535);
	prefixes(h, strlen(h), PROXY_OK, __LINE__);

	/* the longest lines the spec names */
	h = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
	prefixes(h, strlen(h), PROXY_OK, __LINE__);
	h = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 "
	    "65535\r\n";
	CHECK_EQ_INT(strlen(h), 104);
	prefixes(h, strlen(h), PROXY_OK, __LINE__);

	/* UNKNOWN: anything up to the CRLF, the peer stands */
	h = "PROXY UNKNOWN\r\n";
	CHECK_EQ_INT(s(h, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.family, 0);
	CHECK_EQ_INT(pi.version, 1);
	CHECK_EQ_INT(pi.len, 15);
	prefixes(h, strlen(h), PROXY_OK, __LINE__);
	h = "PROXY UNKNOWN ffff:f...f:ffff whatever \x01\xff 1 2\r\n";
	CHECK_EQ_INT(s(h, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.family, 0);
	prefixes(h, strlen(h), PROXY_OK, __LINE__);
	/* 107 bytes exactly is the longest */
	char l[200] = "PROXY UNKNOWN ";
	memset(l + 14, 'x', 107 - 14 - 2);
	memcpy(l + 105, "\r\n", 3);
	CHECK_EQ_INT(strlen(l), 107);
	prefixes(l, 107, PROXY_OK, __LINE__);
	memset(l + 14, 'x', 108 - 14 - 2);
	memcpy(l + 106, "\r\n", 3);
	CHECK_EQ_INT(s(l, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse(l, 107, &pi), PROXY_ERROR); /* known at 107 bytes without a LF */
	CHECK_EQ_INT(parse(l, 106, &pi), PROXY_AGAIN);
	CHECK_EQ_INT(s("PROXY UNKNOWNX\r\n", &pi), PROXY_ERROR);
	CHECK_EQ_INT(s("PROXY UNKNOWN x\ny\r\n", &pi), PROXY_ERROR);
	CHECK_EQ_INT(s("PROXY UNKNOWN x\rx\r\n", &pi), PROXY_ERROR);
	CHECK_EQ_INT(s("PROXY UNKNOWN\n", &pi), PROXY_ERROR);
}

static void test_v1_errors(void)
{
	struct proxy_info pi;
	const char *bad[] = {
	    "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n", /* two spaces */
	    "PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2  1 2\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1  2\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",
	    "PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
	    "PROXY\tTCP4 192.0.2.1 192.0.2.2 1 2\r\n",
	    "PROXY TCP4\t192.0.2.1 192.0.2.2 1 2\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n", /* ports */
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 99999999999999999999\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2  2\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 \r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 http 2\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 8o\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n", /* heading zero */
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 -2\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 +2\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n", /* CRLF */
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", /* fields */
	    "PROXY TCP4 192.0.2.1 192.0.2.2\r\n",
	    "PROXY TCP4 192.0.2.1\r\n",
	    "PROXY TCP4\r\n",
	    "PROXY\r\n",
	    "PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n", /* family */
	    "PROXY TCP4 192.0.2.1 ::1 1 2\r\n",
	    "PROXY TCP6 192.0.2.1 ::1 1 2\r\n", /* v4 address in TCP6 */
	    "PROXY TCP6 ::1 192.0.2.2 1 2\r\n",
	    "PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n", /* addresses */
	    "PROXY TCP4 192.0.2 192.0.2.2 1 2\r\n",
	    "PROXY TCP4 192.0.2.1.5 192.0.2.2 1 2\r\n",
	    "PROXY TCP4 192.0.02.1 192.0.2.2 1 2\r\n",
	    "PROXY TCP4 192..2.1 192.0.2.2 1 2\r\n",
	    "PROXY TCP4 localhost 192.0.2.2 1 2\r\n",
	    "PROXY TCP6 ::1::2 ::1 1 2\r\n",
	    "PROXY TCP6 ::g ::1 1 2\r\n",
	    "PROXY TCP6 [::1] ::1 1 2\r\n",
	    "PROXY TCP6 fe80::1%lo ::1 1 2\r\n",
	    "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
	    "PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n", /* protocol */
	    "PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n",
	    "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
	    "PROXY TCP 192.0.2.1 192.0.2.2 1 2\r\n",
	    "proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
	    "PROXYTCP4 192.0.2.1 192.0.2.2 1 2\r\n",
	    "GET / HTTP/1.1\r\n\r\n", /* not PROXY at all */
	    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!CHECK_EQ_INT(s(bad[i], &pi), PROXY_ERROR))
			fprintf(stderr, "  for %s\n", bad[i]);
		CHECK_EQ_INT(pi.len, 0);
		CHECK_EQ_INT(pi.family, 0);
	}
	/* decided at the first byte that shows it */
	CHECK_EQ_INT(parse("G", 1, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse("\x16", 1, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0, &pi), PROXY_AGAIN);
	CHECK_EQ_INT(parse("PRE", 3, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse("PROXY X", 7, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse("PROXY TCP4 1.2.3.4  ", 20, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse("PROXY TCP4 256", 14, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse("PROXY TCP4 0", 12, &pi), PROXY_AGAIN);
	CHECK_EQ_INT(parse("PROXY TCP4 01", 13, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse("PROXY TCP4 1.2.3.4 5.6.7.8 65536", 32, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse("PROXY TCP6 1.2.3.4 ", 19, &pi), PROXY_ERROR);
	/* a v1 line without its LF is never taken past 107 bytes */
	char l[300];
	memcpy(l, "PROXY TCP6 ", 11);
	memset(l + 11, '1', sizeof(l) - 11);
	CHECK_EQ_INT(parse(l, sizeof(l), &pi), PROXY_ERROR);
	memcpy(l, "PROXY UNKNOWN ", 14);
	memset(l + 14, 'x', sizeof(l) - 14);
	CHECK_EQ_INT(parse(l, 106, &pi), PROXY_AGAIN);
	CHECK_EQ_INT(parse(l, 107, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse(l, sizeof(l), &pi), PROXY_ERROR);
	/* a v4-mapped IPv6 address written in full is over the line limit */
	const char *h = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
			"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 65535\r\n";
	CHECK_EQ_INT(s(h, &pi), PROXY_ERROR);
}

/* A v2 header: ver_cmd, fam, then block bytes */
static size_t v2(unsigned char *out, unsigned vc, unsigned fam, const void *block, size_t blen)
{
	memcpy(out, sig, 12);
	out[12] = (unsigned char)vc;
	out[13] = (unsigned char)fam;
	out[14] = (unsigned char)(blen >> 8);
	out[15] = (unsigned char)blen;
	if (blen)
		memcpy(out + 16, block, blen);
	return 16 + blen;
}

static void test_v2(void)
{
	unsigned char h[PROXY_MAX + 100];
	struct proxy_info pi;
	const unsigned char inet[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb};
	size_t n = v2(h, 0x21, 0x11, inet, sizeof(inet));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.version, 2);
	CHECK_EQ_INT(pi.family, 4);
	CHECK_EQ_INT(pi.len, 28);
	CHECK_MEM((char *)pi.src, 4, "\xc0\x00\x02\x01", 4);
	CHECK_MEM((char *)pi.dst, 4, "\xc6\x33\x64\x02", 4);
	CHECK_EQ_INT(pi.src_port, 56324);
	CHECK_EQ_INT(pi.dst_port, 443);
	CHECK_EQ_INT(pi.local, 0);
	CHECK_EQ_INT(pi.ssl, 0);
	prefixes(h, n, PROXY_OK, __LINE__);

	unsigned char in6[36];
	inet_pton(AF_INET6, "2001:db8::1", in6);
	inet_pton(AF_INET6, "2001:db8::2", in6 + 16);
	memcpy(in6 + 32, "\x00\x50\xff\xff", 4);
	n = v2(h, 0x21, 0x21, in6, sizeof(in6));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.family, 6);
	CHECK(memcmp(pi.src, in6, 16) == 0);
	CHECK(memcmp(pi.dst, in6 + 16, 16) == 0);
	CHECK_EQ_INT(pi.src_port, 80);
	CHECK_EQ_INT(pi.dst_port, 65535);
	CHECK_EQ_INT(pi.len, 52);
	prefixes(h, n, PROXY_OK, __LINE__);

	/* LOCAL: accepted, no address, whatever the family and block */
	n = v2(h, 0x20, 0x00, NULL, 0);
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.local, 1);
	CHECK_EQ_INT(pi.family, 0);
	CHECK_EQ_INT(pi.len, 16);
	prefixes(h, n, PROXY_OK, __LINE__);
	n = v2(h, 0x20, 0x11, inet, sizeof(inet));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.local, 1);
	CHECK_EQ_INT(pi.family, 0);
	CHECK_EQ_INT(pi.len, 28);
	n = v2(h, 0x20, 0xff, "\x01\x02", 2);
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.local, 1);

	/* PROXY with UNSPEC, AF_UNIX, DGRAM or UNSPEC transport: accepted, no
	 * address cpm can use */
	unsigned char un[216] = {0};
	memcpy(un, "/run/a.sock", 11);
	n = v2(h, 0x21, 0x31, un, sizeof(un));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.family, 0);
	CHECK_EQ_INT(pi.local, 0);
	CHECK_EQ_INT(pi.len, 232);
	prefixes(h, n, PROXY_OK, __LINE__);
	n = v2(h, 0x21, 0x00, NULL, 0);
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.family, 0);
	n = v2(h, 0x21, 0x10, inet, sizeof(inet));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.family, 0);
	n = v2(h, 0x21, 0x12, inet, sizeof(inet));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.family, 0);
	n = v2(h, 0x21, 0x22, in6, sizeof(in6));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.family, 0);

	/* errors */
	n = v2(h, 0x11, 0x11, inet, sizeof(inet)); /* version 1 */
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse(h, 13, &pi), PROXY_ERROR); /* at its byte */
	n = v2(h, 0x31, 0x11, inet, sizeof(inet));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	n = v2(h, 0x22, 0x11, inet, sizeof(inet)); /* command 2 */
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse(h, 13, &pi), PROXY_ERROR);
	n = v2(h, 0x2f, 0x11, inet, sizeof(inet));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	n = v2(h, 0x21, 0x41, inet, sizeof(inet)); /* family 4 */
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse(h, 14, &pi), PROXY_ERROR);
	n = v2(h, 0x21, 0x13, inet, sizeof(inet)); /* transport 3 */
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	n = v2(h, 0x21, 0x11, inet, 11); /* block shorter than the family's */
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse(h, 16, &pi), PROXY_ERROR); /* known from the length */
	n = v2(h, 0x21, 0x21, in6, 35);
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	n = v2(h, 0x21, 0x31, un, 215);
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	n = v2(h, 0x21, 0x12, inet, 0);
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	/* signature */
	n = v2(h, 0x21, 0x11, inet, sizeof(inet));
	for (size_t i = 0; i < 12; i++) {
		h[i] ^= 0x20;
		CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
		CHECK_EQ_INT(parse(h, i + 1, &pi), PROXY_ERROR); /* at the byte */
		if (i)
			CHECK_EQ_INT(parse(h, i, &pi), PROXY_AGAIN);
		h[i] ^= 0x20;
	}
}

static void test_v2_tlv(void)
{
	unsigned char h[PROXY_MAX + 100], b[PROXY_MAX];
	struct proxy_info pi;
	const unsigned char inet[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb};
	memcpy(b, inet, 12);
	/* ALPN "h2", an SSL TLV with the client flag and a sub-TLV, an empty
	 * NOOP */
	static const unsigned char tlvs[] = {0x01, 0,	 2, 'h', '2', 0x20, 0,	 12,  0x07, 0, 0, 0,
					     0,	   0x21, 0, 4,	 'T', 'L',  'S', '1', 0x04, 0, 0};
	memcpy(b + 12, tlvs, sizeof(tlvs));
	size_t n = v2(h, 0x21, 0x11, b, 12 + sizeof(tlvs));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.ssl, 1);
	CHECK_EQ_INT(pi.family, 4);
	CHECK_EQ_INT(pi.src_port, 56324);
	CHECK_EQ_INT(pi.len, n);
	prefixes(h, n, PROXY_OK, __LINE__);
	/* every shorter block cuts a TLV: an error (except at a TLV boundary) */
	for (size_t cut = 1; cut < sizeof(tlvs); cut++) {
		n = v2(h, 0x21, 0x11, b, 12 + sizeof(tlvs) - cut);
		int boundary = cut == 3 || cut == sizeof(tlvs) - 5;
		if (!CHECK_EQ_INT(parse(h, n, &pi), boundary ? PROXY_OK : PROXY_ERROR))
			fprintf(stderr, "  cut %zu\n", cut);
	}
	/* an SSL TLV without PP2_CLIENT_SSL */
	b[12 + 8] = 0x06;
	n = v2(h, 0x21, 0x11, b, 12 + sizeof(tlvs));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.ssl, 0);
	b[12 + 8] = 0x07;
	/* an SSL TLV too short for its client byte and verify field */
	static const unsigned char shortssl[] = {0x20, 0, 4, 0x01, 0, 0, 0};
	memcpy(b + 12, shortssl, sizeof(shortssl));
	n = v2(h, 0x21, 0x11, b, 12 + sizeof(shortssl));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	static const unsigned char emptyssl[] = {0x20, 0, 0};
	memcpy(b + 12, emptyssl, sizeof(emptyssl));
	n = v2(h, 0x21, 0x11, b, 12 + sizeof(emptyssl));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	/* a TLV whose length runs past the block, by one byte and by 64k */
	static const unsigned char over[] = {0x01, 0, 3, 'h', '2'};
	memcpy(b + 12, over, sizeof(over));
	n = v2(h, 0x21, 0x11, b, 12 + sizeof(over));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	static const unsigned char over2[] = {0x01, 0xff, 0xff, 'h', '2'};
	memcpy(b + 12, over2, sizeof(over2));
	n = v2(h, 0x21, 0x11, b, 12 + sizeof(over2));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	/* TLVs after an AF_UNIX block and after an UNSPEC (empty) one */
	unsigned char un[216 + 8] = {0};
	memcpy(un + 216, "\x20\x00\x05\x01\x00\x00\x00\x00", 8);
	n = v2(h, 0x21, 0x31, un, sizeof(un));
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.ssl, 1);
	CHECK_EQ_INT(pi.family, 0);
	n = v2(h, 0x21, 0x00, un + 216, 8);
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.ssl, 1);
	n = v2(h, 0x21, 0x00, un + 216, 7);
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
}

static void test_v2_lengths(void)
{
	static unsigned char h[PROXY_MAX + 100], b[PROXY_MAX];
	struct proxy_info pi;
	memset(b, 0, sizeof(b));
	memcpy(b, "\xc0\x00\x02\x01\xc6\x33\x64\x02\x00\x01\x00\x02", 12);
	/* one NOOP TLV filling the block up to PROXY_MAX exactly */
	size_t tl = PROXY_MAX - 16 - 12 - 3;
	b[12] = 0x04;
	b[13] = (unsigned char)(tl >> 8);
	b[14] = (unsigned char)tl;
	size_t n = v2(h, 0x21, 0x11, b, PROXY_MAX - 16);
	CHECK_EQ_INT(n, PROXY_MAX);
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_OK);
	CHECK_EQ_INT(pi.len, PROXY_MAX);
	prefixes(h, n, PROXY_OK, __LINE__);
	/* one more byte: an error as soon as the length is read */
	tl++;
	b[13] = (unsigned char)(tl >> 8);
	b[14] = (unsigned char)tl;
	n = v2(h, 0x21, 0x11, b, PROXY_MAX - 16 + 1);
	CHECK_EQ_INT(parse(h, n, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse(h, 16, &pi), PROXY_ERROR);
	CHECK_EQ_INT(parse(h, 15, &pi), PROXY_AGAIN);
	h[14] = h[15] = 0xff;
	CHECK_EQ_INT(parse(h, 16, &pi), PROXY_ERROR);
	/* LOCAL too */
	h[12] = 0x20;
	CHECK_EQ_INT(parse(h, 16, &pi), PROXY_ERROR);
	/* AGAIN never at PROXY_MAX or beyond, whatever the bytes */
	memset(h, 'x', sizeof(h));
	memcpy(h, "PROXY UNKNOWN ", 14);
	CHECK_EQ_INT(parse(h, PROXY_MAX, &pi), PROXY_ERROR);
}

int main(void)
{
	test_v1();
	test_v1_errors();
	test_v2();
	test_v2_tlv();
	test_v2_lengths();
	return unit_done();
}
