/* Access lists: addresses and CIDR prefixes, IPv4 and IPv6. Pure.
 *
 * Every entry is held as an IPv6 prefix: an IPv4 entry a.b.c.d/n is the
 * IPv4-mapped ::ffff:a.b.c.d/(96+n), and an IPv4 peer is looked up in its
 * mapped form, so an IPv4-mapped IPv6 peer (a dual-stack listener) and a
 * plain IPv4 peer match the same entries. */
#ifndef CPM_CIDR_H
#define CPM_CIDR_H

#include <stddef.h>
#include <stdint.h>

enum cidr_kind {
	CIDR_PREFIX, /* addr/bits */
	CIDR_ALL,    /* "all": every client, unix-socket ones included */
	CIDR_UNIX,   /* "unix:": clients of a unix-socket listener */
};

struct cidr {
	enum cidr_kind kind;
	unsigned bits; /* 0..128, of the IPv6 form */
	uint8_t addr[16];
};

/* A peer: family 4 or 6 with its address bytes, or 0 for a unix socket. */
struct cidr_peer {
	int family;
	uint8_t addr[16]; /* 4 bytes used for family 4 */
};

/* Parse "all", "unix:", an address or ADDR/BITS. Returns 0, or -1 with
 * *why set to a static message. An address with bits set beyond its
 * prefix ("10.1.2.3/8") is refused: it is a typo more often than not. */
int cidr_parse(const char *s, struct cidr *out, const char **why);

/* Whether peer matches entry e; whether it matches any of list[0..n). */
int cidr_match(const struct cidr *e, const struct cidr_peer *peer);
int cidr_match_any(const struct cidr *list, size_t n, const struct cidr_peer *peer);

#endif
