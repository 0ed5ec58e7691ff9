/* libFuzzer target: fwd_client, X-Forwarded-For and Forwarded. The input
 * is split at NUL bytes: trusted entries (one a line), the header's field
 * lines (one a line), X-Forwarded-Proto's field lines. Both kinds are
 * run on the same lines, and each result is compared with a plain walk
 * from the right written here: the list is cut into elements (at commas,
 * outside quoted strings for Forwarded), fwd_client on each element alone
 * says whether it is an address, and the walk follows forwarded.h's text.
 * That checks the one-pass walk of forwarded.c against its definition. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../protocol/forwarded.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define MAXL 16
#define MAXE 512

struct el {
	struct http_slice s;
	struct fwd_client one; /* fwd_client on this element alone */
};

static size_t split_lines(const char *p, const char *end, struct http_slice *v)
{
	size_t n = 0;
	while (n < MAXL) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		v[n].p = p;
		v[n].len = (size_t)((nl ? nl : end) - p);
		n++;
		if (!nl)
			break;
		p = nl + 1;
	}
	return n;
}

static int empty(struct http_slice s, int forwarded)
{
	for (size_t i = 0; i < s.len; i++)
		if (s.p[i] != ' ' && s.p[i] != '\t' && !(forwarded && s.p[i] == ';'))
			return 0;
	return 1;
}

/* The non-empty elements of the lines, in order. */
static size_t elements(const struct http_slice *v, size_t n, int forwarded, struct el *e)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = v[i].p, *end = p + v[i].len, *start = p;
		int inq = 0;
		for (;; p++) {
			if (p == end || (*p == ',' && !inq)) {
				struct http_slice s = {start, (size_t)(p - start)};
				if (!empty(s, forwarded) && k < MAXE)
					e[k++].s = s;
				if (p == end)
					break;
				start = p + 1;
			} else if (forwarded && inq && *p == '\\' && p + 1 < end) {
				p++;
			} else if (forwarded && *p == '"') {
				inq = !inq;
			}
		}
	}
	return k;
}

static void check_addr(const struct fwd_client *c)
{
	if (c->https < -1 || c->https > 1)
		abort();
	if (!c->found) {
		if (c->addr[0] || c->port[0] || c->peer.family)
			abort();
		return;
	}
	if (memchr(c->addr, 0, sizeof(c->addr)) == NULL || memchr(c->port, 0, sizeof(c->port)) == NULL)
		abort();
	uint8_t a[16];
	int af = c->peer.family == 4 ? AF_INET : c->peer.family == 6 ? AF_INET6 : -1;
	if (af < 0 || inet_pton(af, c->addr, a) != 1 || memcmp(a, c->peer.addr, af == AF_INET ? 4 : 16) != 0)
		abort();
	if (c->port[0]) {
		char *e;
		long v = strtol(c->port, &e, 10);
		if (*e || v < 0 || v > 65535 || (c->port[0] == '0' && c->port[1]))
			abort();
	}
}

static int scheme(struct http_slice s)
{
	while (s.len && (*s.p == ' ' || *s.p == '\t'))
		s.p++, s.len--;
	while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	if (s.len == 5 && strncasecmp(s.p, "https", 5) == 0)
		return 1;
	if (s.len == 4 && strncasecmp(s.p, "http", 4) == 0)
		return 0;
	return -1;
}

static struct el ex[MAXE], ep[MAXE];

static void run(enum fwd_kind kind, const struct http_slice *v, size_t n, const struct http_slice *pv, size_t np,
		const struct cidr *tr, size_t ntr)
{
	struct fwd_client got;
	memset(&got, 0x5a, sizeof(got));
	fwd_client(kind, v, n, pv, np, tr, ntr, &got);
	check_addr(&got);

	int fw = kind == FWD_FORWARDED;
	size_t ne = elements(v, n, fw, ex);
	if (ne >= MAXE)
		return;
	for (size_t i = 0; i < ne; i++) {
		fwd_client(kind, &ex[i].s, 1, NULL, 0, tr, ntr, &ex[i].one);
		check_addr(&ex[i].one);
	}
	/* the walk from the right */
	long chosen = -1;
	for (long i = (long)ne - 1; i >= 0; i--) {
		if (!ex[i].one.found)
			break;
		chosen = i;
		if (!cidr_match_any(tr, ntr, &ex[i].one.peer))
			break;
	}
	int https;
	if (fw) {
		https = chosen >= 0 ? ex[chosen].one.https : ne ? ex[ne - 1].one.https : -1;
	} else {
		size_t npe = elements(pv, np, 0, ep);
		if (npe >= MAXE)
			return;
		https = -1;
		if (chosen >= 0 && npe == ne)
			https = scheme(ep[chosen].s);
		else if (npe)
			https = scheme(ep[npe - 1].s);
	}
	if (chosen < 0) {
		if (got.found)
			abort();
	} else {
		const struct fwd_client *c = &ex[chosen].one;
		if (!got.found || strcmp(got.addr, c->addr) || strcmp(got.port, c->port) ||
		    got.peer.family != c->peer.family || memcmp(got.peer.addr, c->peer.addr, 16))
			abort();
	}
	if (got.https != https)
		abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	const char *z1 = memchr(p, 0, size);
	const char *s2 = z1 ? z1 + 1 : end;
	const char *z2 = memchr(s2, 0, (size_t)(end - s2));
	const char *s3 = z2 ? z2 + 1 : end;

	struct cidr tr[MAXL];
	size_t ntr = 0;
	struct http_slice tl[MAXL], v[MAXL], pv[MAXL];
	size_t nt = split_lines(p, z1 ? z1 : end, tl);
	for (size_t i = 0; i < nt; i++) {
		char buf[64];
		const char *why;
		if (tl[i].len >= sizeof(buf))
			continue;
		memcpy(buf, tl[i].p, tl[i].len);
		buf[tl[i].len] = 0;
		if (cidr_parse(buf, &tr[ntr], &why) == 0)
			ntr++;
	}
	size_t n = z1 ? split_lines(s2, z2 ? z2 : end, v) : 0;
	size_t np = z2 ? split_lines(s3, end, pv) : 0;

	run(FWD_X_FORWARDED, v, n, pv, np, tr, ntr);
	run(FWD_FORWARDED, v, n, pv, np, tr, ntr);
	return 0;
}
