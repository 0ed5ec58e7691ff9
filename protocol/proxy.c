/* The PROXY protocol header (see proxy.h), after HAProxy's
 * doc/proxy-protocol.txt.
 *
 * v1 is read byte by byte against its grammar, so a byte that cannot
 * continue a valid line fails at once and every prefix a valid line has is
 * PROXY_AGAIN. v2 is length-delimited: once its 16 fixed bytes are in, the
 * whole header is awaited (never more than PROXY_MAX) and then checked.
 *
 * Decisions where the spec leaves room:
 * - v1 "UNKNOWN" must be followed by a space or the CRLF; what follows the
 *   space up to the CRLF is ignored (the spec's "anything"), except that a
 *   CR must start the CRLF and a LF must end it.
 * - v1 addresses and ports have no heading zeroes (the spec forbids them);
 *   an IPv6 address is whatever inet_pton takes, at most 45 characters.
 * - v2 LOCAL: the spec says to discard the address block "including the
 *   family which is ignored", so neither the family byte nor the block nor
 *   its TLVs are looked at.
 * - v2 PROXY: a family nibble above 3 (UNIX) or a transport nibble above 2
 *   (DGRAM) is an error (the spec: "must be rejected as invalid"). AF_INET
 *   and AF_INET6 are used only with STREAM; with UNSPEC or DGRAM transport,
 *   and for AF_UNIX and UNSPEC families, the header is accepted with
 *   family 0 (HAProxy's receiver keeps its own addresses for those too).
 *   The address block must hold the family's addresses (12, 36, 216
 *   bytes, 0 for UNSPEC) whatever the transport; the rest is TLVs.
 * - PP2_TYPE_SSL shorter than its client byte and 4-byte verify field is
 *   an error; its sub-TLVs are not looked at. PP2_TYPE_CRC32C is not
 *   verified (the spec makes it optional for receivers). */

#include "proxy.h"

#include <arpa/inet.h>
#include <string.h>

static const uint8_t v2sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

#define PP2_TYPE_SSL   0x20
#define PP2_CLIENT_SSL 0x01

enum { R_OK, R_AGAIN, R_BAD };

struct cur {
	const uint8_t *p, *end;
	const char *why;
};

/* Match the literal s at c->p: R_OK and advance, R_AGAIN if the input
 * ends in a prefix of it, R_BAD otherwise. */
static int lit(struct cur *c, const char *s, const char *why)
{
	for (; *s; s++, c->p++) {
		if (c->p == c->end)
			return R_AGAIN;
		if (*c->p != (uint8_t)*s) {
			c->why = why;
			return R_BAD;
		}
	}
	return R_OK;
}

/* A decimal number 0..max without heading zeroes, ended by stop (not
 * consumed). */
static int num(struct cur *c, unsigned max, uint8_t stop, unsigned *v, const char *why)
{
	const uint8_t *start = c->p;
	*v = 0;
	for (;; c->p++) {
		if (c->p == c->end)
			return R_AGAIN;
		uint8_t ch = *c->p;
		if (ch == stop && c->p > start)
			return R_OK;
		if (ch < '0' || ch > '9' || (c->p > start && *start == '0')) {
			c->why = why;
			return R_BAD;
		}
		*v = *v * 10 + (unsigned)(ch - '0');
		if (*v > max) {
			c->why = why;
			return R_BAD;
		}
	}
}

/* An address of family 4 or 6 ended by a space (not consumed). IPv4 is
 * checked as it comes (four numbers 0..255, no heading zeroes); IPv6 by
 * its characters and length, then by inet_pton. */
static int addr(struct cur *c, int family, uint8_t *out)
{
	const char *why = family == 4 ? "v1: bad IPv4 address" : "v1: bad IPv6 address";
	if (family == 4) {
		for (int i = 0; i < 4; i++) {
			unsigned v;
			int r = num(c, 255, i < 3 ? '.' : ' ', &v, why);
			if (r != R_OK)
				return r;
			out[i] = (uint8_t)v;
			if (i < 3)
				c->p++;
		}
		return R_OK;
	}
	const uint8_t *start = c->p;
	for (;; c->p++) {
		if (c->p == c->end)
			return R_AGAIN;
		uint8_t ch = *c->p;
		if (ch == ' ')
			break;
		int ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
			 ch == ':' || ch == '.';
		if (!ok || c->p - start >= 45) {
			c->why = why;
			return R_BAD;
		}
	}
	char buf[46];
	size_t n = (size_t)(c->p - start);
	memcpy(buf, start, n);
	buf[n] = 0;
	if (n == 0 || inet_pton(AF_INET6, buf, out) != 1) {
		c->why = why;
		return R_BAD;
	}
	return R_OK;
}

#define STEP(e)                                                                                                        \
	do {                                                                                                           \
		int r_ = (e);                                                                                          \
		if (r_ != R_OK)                                                                                        \
			return r_;                                                                                     \
	} while (0)

static int v1_body(struct cur *c, struct proxy_info *out)
{
	STEP(lit(c, "PROXY ", "not a PROXY header"));
	if (c->p == c->end)
		return R_AGAIN;
	if (*c->p == 'U') {
		STEP(lit(c, "UNKNOWN", "v1: expected TCP4, TCP6 or UNKNOWN"));
		if (c->p == c->end)
			return R_AGAIN;
		if (*c->p != ' ' && *c->p != '\r') {
			c->why = "v1: expected TCP4, TCP6 or UNKNOWN";
			return R_BAD;
		}
		for (; c->p < c->end && *c->p != '\r'; c->p++)
			if (*c->p == '\n') {
				c->why = "v1: LF without CR";
				return R_BAD;
			}
		STEP(lit(c, "\r\n", "v1: CR without LF"));
		return R_OK;
	}
	STEP(lit(c, "TCP", "v1: expected TCP4, TCP6 or UNKNOWN"));
	if (c->p == c->end)
		return R_AGAIN;
	if (*c->p != '4' && *c->p != '6') {
		c->why = "v1: expected TCP4, TCP6 or UNKNOWN";
		return R_BAD;
	}
	out->family = *c->p++ == '4' ? 4 : 6;
	STEP(lit(c, " ", "v1: expected one space after the protocol"));
	STEP(addr(c, out->family, out->src));
	c->p++;
	STEP(addr(c, out->family, out->dst));
	c->p++;
	unsigned sp, dp;
	STEP(num(c, 65535, ' ', &sp, "v1: bad source port"));
	c->p++;
	STEP(num(c, 65535, '\r', &dp, "v1: bad destination port"));
	c->p++;
	STEP(lit(c, "\n", "v1: CR without LF"));
	out->src_port = (uint16_t)sp;
	out->dst_port = (uint16_t)dp;
	return R_OK;
}

static enum proxy_result v1(const uint8_t *b, size_t len, struct proxy_info *out, const char **why)
{
	struct cur c = {b, b + (len > PROXY_V1_MAX ? PROXY_V1_MAX : len), NULL};
	out->version = 1;
	int r = v1_body(&c, out);
	if (r == R_OK) {
		out->len = (size_t)(c.p - b);
		return PROXY_OK;
	}
	if (r == R_AGAIN && len < PROXY_V1_MAX)
		return PROXY_AGAIN;
	*why = r == R_BAD ? c.why : "v1: longer than 107 bytes";
	return PROXY_ERROR;
}

static size_t family_size(unsigned fam)
{
	static const size_t size[4] = {0, 12, 36, 216};
	return size[fam];
}

static enum proxy_result v2(const uint8_t *b, size_t len, struct proxy_info *out, const char **why)
{
	out->version = 2;
	if (len > 12 && (b[12] >> 4) != 2) {
		*why = "v2: version is not 2";
		return PROXY_ERROR;
	}
	unsigned cmd = len > 12 ? b[12] & 0x0f : 0;
	if (cmd > 1) {
		*why = "v2: command is neither LOCAL nor PROXY";
		return PROXY_ERROR;
	}
	unsigned fam = len > 13 ? b[13] >> 4 : 0, tr = len > 13 ? b[13] & 0x0f : 0;
	if (cmd == 1 && (fam > 3 || tr > 2)) {
		*why = "v2: unknown address family or transport";
		return PROXY_ERROR;
	}
	if (len < 16)
		return PROXY_AGAIN;
	size_t alen = (size_t)b[14] << 8 | b[15];
	if (16 + alen > PROXY_MAX) {
		*why = "v2: longer than 4096 bytes";
		return PROXY_ERROR;
	}
	if (cmd == 1 && alen < family_size(fam)) {
		*why = "v2: address block shorter than its family's addresses";
		return PROXY_ERROR;
	}
	if (len < 16 + alen)
		return PROXY_AGAIN;
	out->len = 16 + alen;
	if (cmd == 0) {
		out->local = 1;
		return PROXY_OK;
	}
	const uint8_t *a = b + 16;
	if (tr == 1 && (fam == 1 || fam == 2)) {
		size_t n = fam == 1 ? 4 : 16;
		out->family = fam == 1 ? 4 : 6;
		memcpy(out->src, a, n);
		memcpy(out->dst, a + n, n);
		out->src_port = (uint16_t)(a[2 * n] << 8 | a[2 * n + 1]);
		out->dst_port = (uint16_t)(a[2 * n + 2] << 8 | a[2 * n + 3]);
	}
	const uint8_t *t = a + family_size(fam), *end = b + out->len;
	while (t < end) {
		if (end - t < 3) {
			*why = "v2: a TLV overruns the header";
			return PROXY_ERROR;
		}
		size_t tl = (size_t)t[1] << 8 | t[2];
		if ((size_t)(end - t - 3) < tl) {
			*why = "v2: a TLV overruns the header";
			return PROXY_ERROR;
		}
		if (t[0] == PP2_TYPE_SSL) {
			if (tl < 5) {
				*why = "v2: PP2_TYPE_SSL shorter than 5 bytes";
				return PROXY_ERROR;
			}
			out->ssl = (t[3] & PP2_CLIENT_SSL) != 0;
		}
		t += 3 + tl;
	}
	return PROXY_OK;
}

enum proxy_result proxy_parse(const void *buf, size_t len, struct proxy_info *out, const char **why)
{
	const uint8_t *b = buf;
	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (len == 0)
		return PROXY_AGAIN;
	enum proxy_result r;
	if (b[0] == 'P') {
		r = v1(b, len, out, why);
	} else if (memcmp(b, v2sig, len < 12 ? len : 12) == 0) {
		r = v2(b, len, out, why);
	} else {
		*why = "not a PROXY header";
		r = PROXY_ERROR;
	}
	if (r != PROXY_OK) /* nothing half-filled */
		memset(out, 0, sizeof(*out));
	return r;
}
