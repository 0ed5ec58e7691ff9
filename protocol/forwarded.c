/* The client behind trusted proxies (see forwarded.h).
 *
 * The walk from the right that forwarded.h describes is done in one pass
 * from the left, so that Forwarded's quoted strings (which may hold
 * commas) are split correctly without going back. Appending an element e
 * to a list whose answer (the client the walk finds) is A gives:
 *   e not an address       -> no answer (the walk stops at e at once);
 *   e an untrusted address -> e;
 *   e a trusted address    -> A if there is one, else e (the walk passes
 *                             e and goes on into the list; if that stops
 *                             at once, e was the last address walked past;
 *                             if the whole list is trusted, A is its
 *                             left-most).
 * Nothing is allocated; the work is linear in the header's length.
 *
 * Elements:
 * - Lists split at ',' (outside quoted strings for Forwarded), each element
 *   trimmed of spaces and tabs. Empty elements are skipped (RFC 9110 5.6.1
 *   asks recipients to ignore them): they neither end the walk nor count
 *   as a position for X-Forwarded-Proto. Several field lines are one list.
 * - X-Forwarded-For elements: an IPv4 address, an IPv6 address, and, as
 *   nginx's ngx_parse_addr_port takes them (some balancers send them),
 *   "IPv4:port", "[IPv6]" and "[IPv6]:port". Anything else (a name, an
 *   IPv6 zone "fe80::1%eth0", "unknown", two addresses separated by a
 *   space) is not an address and ends the walk.
 * - Forwarded (RFC 7239): pairs separated by ';' (spaces and tabs around a
 *   pair are allowed, none around '='), names case-insensitive, values a
 *   token or a quoted-string with quoted-pairs. A pair without '=', an
 *   empty value, an unterminated quoted string, a character a token or a
 *   quoted-string may not hold, or a second for=, by=, host= or proto= in
 *   one element makes the element malformed, which ends the walk like a
 *   non-address. An element without for= is not an address either.
 *   for= takes an IPv4 address or a bracketed IPv6 one (the RFC's
 *   nodename), each with an optional ":port"; an obfuscated port ("_x")
 *   leaves the address with no port; "unknown", an obfuscated node
 *   ("_hidden") and an unbracketed IPv6 address are not addresses.
 * - https with Forwarded: the proto= of the element chosen; when no element
 *   is chosen, the proto= of the right-most element if that is well formed
 *   (the nearest trusted proxy saying how the request reached it), the
 *   rule X-Forwarded-Proto follows too. */

#include "forwarded.h"

#include <arpa/inet.h>
#include <string.h>

#define NODE_MAX 64 /* longer values are never an address (the longest is 53) */

struct node {
	struct cidr_peer peer;
	char addr[46];
	char port[6];
};

/* The answer of the walk so far (see the top of the file). */
struct walk {
	int found;
	struct node best;
	size_t pos;	/* best's position among the non-empty elements */
	int https;	/* best's proto= (Forwarded) */
	size_t count;	/* non-empty elements seen */
	int last_https; /* the right-most element's proto= (Forwarded) */
	const struct cidr *trusted;
	size_t ntrusted;
};

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int ieq(const char *s, size_t n, const char *lit)
{
	size_t ln = strlen(lit);
	if (n != ln)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lit[i])
			return 0;
	}
	return 1;
}

static int scheme(const char *s, size_t n)
{
	if (ieq(s, n, "https"))
		return 1;
	if (ieq(s, n, "http"))
		return 0;
	return -1;
}

/* A port: 1 to 5 digits, at most 65535, written back in decimal. */
static int port(const char *s, size_t n, char out[6])
{
	if (n == 0 || n > 5)
		return 0;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return 0;
	char tmp[6];
	size_t k = 0;
	do {
		tmp[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < k; i++)
		out[i] = tmp[k - 1 - i];
	out[k] = 0;
	return 1;
}

static int addr(const char *s, size_t n, int family, struct node *nd)
{
	char buf[NODE_MAX];
	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, s, n);
	buf[n] = 0;
	int af = family == 4 ? AF_INET : AF_INET6;
	if (inet_pton(af, buf, nd->peer.addr) != 1)
		return 0;
	nd->peer.family = family;
	return inet_ntop(af, nd->peer.addr, nd->addr, sizeof(nd->addr)) != NULL;
}

/* s[0..n) as a node: 1 with *nd filled if it is an address. forwarded:
 * RFC 7239's nodename rules; else X-Forwarded-For's. */
static int node(const char *s, size_t n, int forwarded, struct node *nd)
{
	memset(nd, 0, sizeof(*nd));
	if (n == 0 || n >= NODE_MAX || memchr(s, 0, n))
		return 0;
	const char *end = s + n, *pstart = NULL;
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', n);
		if (!rb || !addr(s + 1, (size_t)(rb - s - 1), 6, nd))
			return 0;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return 0;
			pstart = rb + 2;
		}
	} else {
		const char *colon = memchr(s, ':', n);
		if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
			/* two colons or more: a bare IPv6 address */
			if (forwarded)
				return 0;
			return addr(s, n, 6, nd);
		}
		if (!addr(s, colon ? (size_t)(colon - s) : n, 4, nd))
			return 0;
		if (colon)
			pstart = colon + 1;
	}
	if (!pstart)
		return 1;
	size_t pl = (size_t)(end - pstart);
	if (forwarded && pl > 1 && pstart[0] == '_') { /* obfport: the address stands, its port is unknown */
		for (size_t i = 1; i < pl; i++) {
			char c = pstart[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
			      c == '_' || c == '-'))
				return 0;
		}
		return 1;
	}
	return port(pstart, pl, nd->port);
}

/* One more non-empty element to the right: nd is its address, or NULL. */
static void step(struct walk *w, const struct node *nd, int https)
{
	size_t pos = w->count++;
	if (!nd) {
		w->found = 0;
		return;
	}
	if (w->found && cidr_match_any(w->trusted, w->ntrusted, &nd->peer))
		return;
	w->found = 1;
	w->best = *nd;
	w->pos = pos;
	w->https = https;
}

/* The next element of a comma-separated list in [*p, end), trimmed; 0 at
 * the end of the list. */
static int next_plain(const char **p, const char *end, const char **s, size_t *n)
{
	while (*p < end) {
		const char *a = *p, *c = memchr(a, ',', (size_t)(end - a));
		const char *b = c ? c : end;
		*p = c ? c + 1 : end;
		while (a < b && is_ows(*a))
			a++;
		while (b > a && is_ows(b[-1]))
			b--;
		if (a < b) {
			*s = a;
			*n = (size_t)(b - a);
			return 1;
		}
	}
	return 0;
}

static void xff_walk(struct walk *w, const struct http_slice *vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!vals[i].p)
			continue;
		const char *p = vals[i].p, *end = vals[i].p + vals[i].len, *s;
		size_t sl;
		while (next_plain(&p, end, &s, &sl)) {
			struct node nd;
			step(w, node(s, sl, 0, &nd) ? &nd : NULL, -1);
		}
	}
}

/* X-Forwarded-Proto: the value at position pos if it has count
 * elements, else its right-most. */
static int xfp(const struct http_slice *vals, size_t n, int at, size_t pos, size_t count)
{
	size_t k = 0;
	int atv = -1, last = -1;
	for (size_t i = 0; i < n; i++) {
		if (!vals[i].p)
			continue;
		const char *p = vals[i].p, *end = vals[i].p + vals[i].len, *s;
		size_t sl;
		while (next_plain(&p, end, &s, &sl)) {
			last = scheme(s, sl);
			if (k++ == pos)
				atv = last;
		}
	}
	return at && k == count ? atv : last;
}

/* What one Forwarded element says. */
struct elem {
	char forv[NODE_MAX];
	size_t forn;
	int has_for, for_long, https;
};

/* One Forwarded element starting at *pp (up to its ',' or the end of the
 * line, which *pp is left past). Returns 0 for an empty element, 1 for a
 * well-formed one, -1 for a malformed one. */
static int fwd_element(const char **pp, const char *end, struct elem *e)
{
	const char *p = *pp;
	int seen_by = 0, seen_host = 0, seen_proto = 0, pairs = 0, inq = 0;
	memset(e, 0, sizeof(*e));
	e->https = -1;
	for (;;) {
		while (p < end && is_ows(*p))
			p++;
		if (p == end || *p == ',')
			break;
		if (*p == ';') {
			p++;
			continue;
		}
		const char *name = p;
		while (p < end && http_is_tchar((unsigned char)*p))
			p++;
		size_t nl = (size_t)(p - name);
		if (nl == 0 || p == end || *p != '=')
			goto bad;
		p++;
		char val[NODE_MAX];
		size_t vl = 0;
		int vlong = 0;
		if (p < end && *p == '"') {
			p++;
			inq = 1;
			for (;;) {
				if (p == end)
					goto bad;
				unsigned char c = (unsigned char)*p++;
				if (c == '"')
					break;
				if (c == '\\') {
					if (p == end)
						goto bad;
					c = (unsigned char)*p++;
					if ((c < 0x20 && c != '\t') || c == 0x7f)
						goto bad;
				} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
					goto bad;
				}
				if (vl < sizeof(val))
					val[vl++] = (char)c;
				else
					vlong = 1;
			}
			inq = 0;
		} else {
			const char *v = p;
			while (p < end && http_is_tchar((unsigned char)*p))
				p++;
			if (p == v)
				goto bad;
			vl = (size_t)(p - v);
			if (vl > sizeof(val)) {
				vl = sizeof(val);
				vlong = 1;
			}
			memcpy(val, v, vl);
		}
		pairs++;
		if (ieq(name, nl, "for")) {
			if (e->has_for)
				goto bad;
			e->has_for = 1;
			e->for_long = vlong;
			memcpy(e->forv, val, vl);
			e->forn = vl;
		} else if (ieq(name, nl, "proto")) {
			if (seen_proto++)
				goto bad;
			e->https = vlong ? -1 : scheme(val, vl);
		} else if (ieq(name, nl, "by")) {
			if (seen_by++)
				goto bad;
		} else if (ieq(name, nl, "host")) {
			if (seen_host++)
				goto bad;
		}
		while (p < end && is_ows(*p))
			p++;
		if (p < end && *p != ';' && *p != ',')
			goto bad;
	}
	*pp = p < end ? p + 1 : end;
	return pairs ? 1 : 0;
bad:
	/* on to the next ',' outside a quoted string */
	while (p < end) {
		char c = *p++;
		if (inq && c == '\\' && p < end)
			p++;
		else if (c == '"')
			inq = !inq;
		else if (c == ',' && !inq)
			break;
	}
	*pp = p;
	return -1;
}

static void fwd_walk(struct walk *w, const struct http_slice *vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!vals[i].p)
			continue;
		const char *p = vals[i].p, *end = vals[i].p + vals[i].len;
		while (p < end) {
			struct elem e;
			int r = fwd_element(&p, end, &e);
			if (r == 0)
				continue;
			struct node nd;
			int isaddr = r == 1 && e.has_for && !e.for_long && node(e.forv, e.forn, 1, &nd);
			step(w, isaddr ? &nd : NULL, e.https);
			w->last_https = r == 1 ? e.https : -1;
		}
	}
}

void fwd_client(enum fwd_kind kind, const struct http_slice *vals, size_t n, const struct http_slice *pvals, size_t np,
		const struct cidr *trusted, size_t ntrusted, struct fwd_client *out)
{
	struct walk w;
	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	w.https = w.last_https = -1;
	w.trusted = trusted;
	w.ntrusted = ntrusted;
	if (kind == FWD_FORWARDED) {
		fwd_walk(&w, vals, n);
		out->https = w.found ? w.https : w.last_https;
	} else {
		xff_walk(&w, vals, n);
		out->https = xfp(pvals, np, w.found, w.pos, w.count);
	}
	if (!w.found)
		return;
	out->found = 1;
	out->peer = w.best.peer;
	memcpy(out->addr, w.best.addr, sizeof(out->addr));
	memcpy(out->port, w.best.port, sizeof(out->port));
}
