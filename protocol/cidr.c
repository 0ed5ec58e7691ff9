/* Access-list entries and their matching (see cidr.h). */

#include "cidr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int cidr_parse(const char *s, struct cidr *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	if (strcmp(s, "all") == 0) {
		out->kind = CIDR_ALL;
		return 0;
	}
	if (strcmp(s, "unix:") == 0) {
		out->kind = CIDR_UNIX;
		return 0;
	}
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(buf)) {
		*why = "expected an IPv4 or IPv6 address, ADDRESS/BITS, \"all\" or \"unix:\"";
		return -1;
	}
	memcpy(buf, s, alen);
	buf[alen] = 0;
	int v6 = strchr(buf, ':') != NULL;
	unsigned max = v6 ? 128 : 32;
	if (v6) {
		if (inet_pton(AF_INET6, buf, out->addr) != 1) {
			*why = "not an IPv6 address";
			return -1;
		}
	} else {
		memcpy(out->addr, v4mapped, sizeof(v4mapped));
		if (inet_pton(AF_INET, buf, out->addr + 12) != 1) {
			*why = "not an IPv4 address (four decimal numbers, like 192.0.2.1)";
			return -1;
		}
	}
	unsigned bits = max;
	if (slash) {
		const char *p = slash + 1;
		if (*p < '0' || *p > '9' || (p[0] == '0' && p[1])) {
			*why = "the prefix length after '/' must be a decimal number";
			return -1;
		}
		bits = 0;
		for (; *p >= '0' && *p <= '9' && bits <= 128; p++)
			bits = bits * 10 + (unsigned)(*p - '0');
		if (*p || bits > max) {
			*why = v6 ? "the prefix length must be 0 to 128" : "the prefix length must be 0 to 32";
			return -1;
		}
	}
	out->bits = v6 ? bits : 96 + bits;
	for (unsigned i = out->bits; i < 128; i++)
		if (out->addr[i / 8] & (0x80 >> (i % 8))) {
			*why = "the address has bits set beyond its prefix length (write the network address)";
			return -1;
		}
	out->kind = CIDR_PREFIX;
	return 0;
}

int cidr_match(const struct cidr *e, const struct cidr_peer *peer)
{
	if (e->kind == CIDR_ALL)
		return 1;
	if (e->kind == CIDR_UNIX)
		return peer->family == 0;
	uint8_t a[16];
	if (peer->family == 4) {
		memcpy(a, v4mapped, sizeof(v4mapped));
		memcpy(a + 12, peer->addr, 4);
	} else if (peer->family == 6) {
		memcpy(a, peer->addr, 16);
	} else {
		return 0;
	}
	unsigned full = e->bits / 8, rest = e->bits % 8;
	if (memcmp(a, e->addr, full) != 0)
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((a[full] & mask) != (e->addr[full] & mask))
			return 0;
	}
	return 1;
}

int cidr_match_any(const struct cidr *list, size_t n, const struct cidr_peer *peer)
{
	for (size_t i = 0; i < n; i++)
		if (cidr_match(&list[i], peer))
			return 1;
	return 0;
}
