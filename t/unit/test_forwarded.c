/* Unit tests for protocol/forwarded.c: the client behind trusted proxies
 * from X-Forwarded-For (+ X-Forwarded-Proto) and RFC 7239 Forwarded. */
#include <string.h>

#include "../../protocol/forwarded.h"
#include "unit.h"

static struct cidr trusted[8];
static size_t ntrusted;

static void trust(const char *list)
{
	char buf[256];
	ntrusted = 0;
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		const char *why;
		if (cidr_parse(t, &trusted[ntrusted++], &why) < 0)
			fprintf(stderr, "bad trusted entry %s: %s\n", t, why);
	}
}

/* vals and pvals: field lines separated by '\n' ("" is one empty line,
 * NULL none) */
static size_t lines(const char *s, struct http_slice *v)
{
	size_t n = 0;
	if (!s)
		return 0;
	for (;;) {
		const char *nl = strchr(s, '\n');
		v[n].p = s;
		v[n].len = nl ? (size_t)(nl - s) : strlen(s);
		n++;
		if (!nl)
			return n;
		s = nl + 1;
	}
}

static struct fwd_client fc;

static void run(enum fwd_kind k, const char *vals, const char *pvals)
{
	struct http_slice v[8], pv[8];
	size_t n = lines(vals, v), np = lines(pvals, pv);
	memset(&fc, 0x5a, sizeof(fc));
	fwd_client(k, v, n, pv, np, trusted, ntrusted, &fc);
}

/* The client found (or "" for none), its port, and https. */
#define XFF(vals, pvals, want, wport, whttps)                                                                          \
	do {                                                                                                           \
		run(FWD_X_FORWARDED, vals, pvals);                                                                     \
		expect(want, wport, whttps, __LINE__);                                                                 \
	} while (0)
#define FWD(vals, want, wport, whttps)                                                                                 \
	do {                                                                                                           \
		run(FWD_FORWARDED, vals, "https");                                                                     \
		expect(want, wport, whttps, __LINE__);                                                                 \
	} while (0)

static void expect(const char *want, const char *wport, int whttps, int line)
{
	int ok = 1;
	if (*want) {
		ok &= CHECK_EQ_INT(fc.found, 1);
		ok &= fc.found == 1 && !strcmp(fc.addr, want) && !strcmp(fc.port, wport);
		ok &= CHECK_EQ_INT(fc.peer.family, strchr(want, ':') ? 6 : 4);
	} else {
		ok &= CHECK_EQ_INT(fc.found, 0);
		ok &= fc.addr[0] == 0 && fc.port[0] == 0 && fc.peer.family == 0;
	}
	ok &= CHECK_EQ_INT(fc.https, whttps);
	CHECK(ok);
	if (!ok)
		fprintf(stderr, "  line %d: got found=%d addr=%.46s port=%.6s https=%d; want %s %s %d\n", line,
			fc.found, fc.addr, fc.port, fc.https, want, wport, whttps);
}

static void test_xff(void)
{
	trust("10.0.0.0/8 2001:db8:ffff::/48");
	/* the spoof: the client sends its own X-Forwarded-For, the proxy
	 * appends the real peer: the real one wins */
	XFF("1.2.3.4, 198.51.100.7", NULL, "198.51.100.7", "", -1);
	XFF("1.2.3.4\n198.51.100.7", NULL, "198.51.100.7", "", -1); /* a second field line */
	XFF("198.51.100.7", NULL, "198.51.100.7", "", -1);
	/* trusted hops on the right are skipped */
	XFF("1.2.3.4, 198.51.100.7, 10.1.1.1, 10.2.2.2", NULL, "198.51.100.7", "", -1);
	XFF("1.2.3.4, 198.51.100.7,10.1.1.1\n10.2.2.2", NULL, "198.51.100.7", "", -1);
	/* all trusted: the left-most */
	XFF("10.9.9.9, 10.1.1.1, 10.2.2.2", NULL, "10.9.9.9", "", -1);
	XFF("10.9.9.9", NULL, "10.9.9.9", "", -1);
	/* garbage ends the walk: the last address walked past, or nothing */
	XFF("198.51.100.7, evil, 10.1.1.1", NULL, "10.1.1.1", "", -1);
	XFF("198.51.100.7, evil, 10.1.1.1, 10.2.2.2", NULL, "10.1.1.1", "", -1);
	XFF("198.51.100.7, 10.1.1.1, evil", NULL, "", "", -1);
	XFF("198.51.100.7, unknown", NULL, "", "", -1);
	XFF("198.51.100.7, 1.2.3.4 5.6.7.8", NULL, "", "", -1);
	XFF("198.51.100.7, 256.1.1.1", NULL, "", "", -1);
	XFF("198.51.100.7, 01.1.1.1", NULL, "", "", -1);
	XFF("198.51.100.7, fe80::1%eth0", NULL, "", "", -1);
	XFF("198.51.100.7, [::1", NULL, "", "", -1);
	XFF("198.51.100.7, [::1]x", NULL, "", "", -1);
	XFF("198.51.100.7, [::1]:", NULL, "", "", -1);
	XFF("198.51.100.7, 1.2.3.4:", NULL, "", "", -1);
	XFF("198.51.100.7, 1.2.3.4:65536", NULL, "", "", -1);
	XFF("198.51.100.7, 1.2.3.4:8o", NULL, "", "", -1);
	XFF("198.51.100.7, [1.2.3.4]", NULL, "", "", -1);
	XFF("198.51.100.7, \"1.2.3.4\"", NULL, "", "", -1);
	/* ... but garbage to the left of an untrusted address is never seen */
	XFF("evil, 198.51.100.7", NULL, "198.51.100.7", "", -1);
	XFF("evil, 198.51.100.7, 10.1.1.1", NULL, "198.51.100.7", "", -1);
	/* empty elements and lines are skipped */
	XFF("", NULL, "", "", -1);
	XFF(" , ,", NULL, "", "", -1);
	XFF("198.51.100.7,,10.1.1.1, ", NULL, "198.51.100.7", "", -1);
	XFF("198.51.100.7\n\n \t", NULL, "198.51.100.7", "", -1);
	XFF(NULL, NULL, "", "", -1);
	/* IPv6, canonical text; trusted IPv6 */
	XFF("2001:DB8::0:1", NULL, "2001:db8::1", "", -1);
	XFF("2001:db8::1, 2001:db8:ffff::9", NULL, "2001:db8::1", "", -1);
	XFF("[2001:db8::1], 2001:db8:ffff::9", NULL, "2001:db8::1", "", -1);
	/* an IPv4-mapped address counts as the IPv4 one for trust */
	XFF("198.51.100.7, ::ffff:10.1.1.1", NULL, "198.51.100.7", "", -1);
	/* ports */
	XFF("198.51.100.7:4711", NULL, "198.51.100.7", "4711", -1);
	XFF("[2001:db8::1]:443, 10.1.1.1:1", NULL, "2001:db8::1", "443", -1);
	XFF("198.51.100.7:0", NULL, "198.51.100.7", "0", -1);
	XFF("198.51.100.7:00080", NULL, "198.51.100.7", "80", -1);
	XFF("198.51.100.7:65535", NULL, "198.51.100.7", "65535", -1);
	XFF("198.51.100.7:123456", NULL, "", "", -1);
	/* nothing trusted: the right-most */
	trust("");
	XFF("10.1.1.1, 10.2.2.2", NULL, "10.2.2.2", "", -1);
}

static void test_xfp(void)
{
	trust("10.0.0.0/8");
	/* as many values as X-Forwarded-For: the client's position */
	XFF("198.51.100.7, 10.1.1.1", "https, http", "198.51.100.7", "", 1);
	XFF("198.51.100.7, 10.1.1.1", "http, https", "198.51.100.7", "", 0);
	XFF("198.51.100.7, 10.1.1.1", "http\nhttps", "198.51.100.7", "", 0);
	XFF("1.2.3.4, 198.51.100.7, 10.1.1.1", "http, HTTPS, http", "198.51.100.7", "", 1);
	XFF("10.9.9.9, 10.1.1.1", "HttpS, http", "10.9.9.9", "", 1);
	XFF("198.51.100.7", "HTTPS", "198.51.100.7", "", 1);
	XFF("198.51.100.7", "Http", "198.51.100.7", "", 0);
	/* otherwise the right-most */
	XFF("198.51.100.7, 10.1.1.1", "https", "198.51.100.7", "", 1);
	XFF("198.51.100.7, 10.1.1.1", "http, http, https", "198.51.100.7", "", 1);
	XFF("198.51.100.7, 10.1.1.1", "http, http, http", "198.51.100.7", "", 0);
	/* only http and https count */
	XFF("198.51.100.7", "ftp", "198.51.100.7", "", -1);
	XFF("198.51.100.7", "https ", "198.51.100.7", "", 1);
	XFF("198.51.100.7", "httpss", "198.51.100.7", "", -1);
	XFF("198.51.100.7", "", "198.51.100.7", "", -1);
	XFF("198.51.100.7, 10.1.1.1", "https, ws", "198.51.100.7", "", 1);
	XFF("198.51.100.7, 10.1.1.1", "https, ws, ftp", "198.51.100.7", "", -1);
	/* empty elements do not shift positions */
	XFF("198.51.100.7, 10.1.1.1", "https,, http,", "198.51.100.7", "", 1);
	/* X-Forwarded-For absent or unusable: the right-most still applies */
	XFF(NULL, "http, https", "", "", 1);
	XFF("evil", "https, http", "", "", 0);
	XFF("", "HTTPS", "", "", 1);
}

static void test_forwarded(void)
{
	trust("10.0.0.0/8 2001:db8:ffff::/48");
	FWD("for=198.51.100.7", "198.51.100.7", "", -1);
	FWD("for=198.51.100.7;proto=https", "198.51.100.7", "", 1);
	FWD("For=198.51.100.7;PROTO=HTTP", "198.51.100.7", "", 0);
	/* the spoof */
	FWD("for=1.2.3.4;proto=https, for=198.51.100.7;proto=http", "198.51.100.7", "", 0);
	FWD("for=1.2.3.4\nfor=198.51.100.7", "198.51.100.7", "", -1);
	/* trusted hops, each with its own proto: the chosen element's */
	FWD("for=198.51.100.7;proto=https, for=10.1.1.1;proto=http", "198.51.100.7", "", 1);
	FWD("for=10.9.9.9;proto=https, for=10.1.1.1;proto=http", "10.9.9.9", "", 1);
	/* quotes, IPv6, ports, obfuscated ports */
	FWD("for=\"198.51.100.7\"", "198.51.100.7", "", -1);
	FWD("for=\"198.51.100.7:4711\"", "198.51.100.7", "4711", -1);
	FWD("for=\"[2001:db8::1]\"", "2001:db8::1", "", -1);
	FWD("for=\"[2001:db8::1]:443\";proto=\"https\"", "2001:db8::1", "443", 1);
	FWD("for=\"[2001:db8::1]:_p0rt.x-y\"", "2001:db8::1", "", -1);
	FWD("for=\"198.51.100.7:_x\"", "198.51.100.7", "", -1);
	FWD("for=\"\\1\\98.51.100.7\"", "198.51.100.7", "", -1); /* quoted-pairs */
	FWD("for=\"[2001:db8::1]\", for=\"[2001:db8:ffff::1]:80\"", "2001:db8::1", "", -1);
	/* the RFC's forms that are not addresses */
	FWD("for=198.51.100.7, for=unknown", "", "", -1);
	FWD("for=198.51.100.7, for=unknown;proto=https", "", "", 1);
	FWD("for=198.51.100.7, for=_hidden, for=10.1.1.1", "10.1.1.1", "", -1);
	FWD("for=198.51.100.7, for=\"_hidden\"", "", "", -1);
	FWD("for=198.51.100.7, for=\"2001:db8::1\"", "", "", -1); /* brackets required */
	FWD("for=198.51.100.7, for=\"[2001:db8::1\"", "", "", -1);
	FWD("for=198.51.100.7, for=\"198.51.100.8:_\"", "", "", -1);
	FWD("for=198.51.100.7, for=\"198.51.100.8:_a/b\"", "", "", -1);
	FWD("for=198.51.100.7, proto=https", "", "", 1); /* no for= */
	FWD("for=198.51.100.7, by=10.1.1.1", "", "", -1);
	/* commas inside quoted strings do not split elements */
	FWD("for=198.51.100.7;host=\"a,b\", for=10.1.1.1", "198.51.100.7", "", -1);
	FWD("for=\"1.2.3.4, 198.51.100.9\", for=10.1.1.1", "10.1.1.1", "", -1);
	FWD("for=198.51.100.7;x=\"\\\",\", for=10.1.1.1;proto=https", "198.51.100.7", "", -1);
	/* malformed elements end the walk */
	FWD("for=198.51.100.7, for=1.2.3.4:80", "", "", -1);		/* ':' unquoted */
	FWD("for=198.51.100.7, for=[::1]", "", "", -1);			/* '[' unquoted */
	FWD("for=198.51.100.7, for=\"1.2.3.4", "", "", -1);		/* unterminated */
	FWD("for=198.51.100.7, for=", "", "", -1);			/* empty value */
	FWD("for=198.51.100.7, for", "", "", -1);			/* no '=' */
	FWD("for=198.51.100.7, for =10.1.1.1", "", "", -1);		/* space before '=' */
	FWD("for=198.51.100.7, for= 10.1.1.1", "", "", -1);		/* space after '=' */
	FWD("for=198.51.100.7, =10.1.1.1", "", "", -1);			/* no name */
	FWD("for=198.51.100.7, for=10.1.1.1 x", "", "", -1);		/* junk after the value */
	FWD("for=198.51.100.7, for=10.1.1.1;for=10.1.1.2", "", "", -1); /* twice */
	FWD("for=198.51.100.7, for=10.1.1.1;proto=http;proto=https", "", "", -1);
	FWD("for=198.51.100.7, for=10.1.1.1;by=a;by=b", "", "", -1);
	FWD("for=198.51.100.7, for=10.1.1.1;host=a;host=b", "", "", -1);
	FWD("for=198.51.100.7, for=\"1.2.3.4\x01\"", "", "", -1); /* a control character */
	FWD("for=198.51.100.7, for=10.1.1.1;proto=https, junk", "", "", -1);
	FWD("for=198.51.100.7, for=\"10.1.1.1\"x", "", "", -1);
	/* ...and only they: a malformed element left of the client is never
	 * looked at, and its quotes do not swallow the next line */
	FWD("for=\"oops, for=198.51.100.7", "", "", -1);
	FWD("for=\"oops\nfor=198.51.100.7", "198.51.100.7", "", -1);
	FWD("for=1.2.3.4:80, for=198.51.100.7", "198.51.100.7", "", -1);
	/* a malformed element is skipped up to its end, quoted-pairs included */
	FWD("for=198.51.100.7, x y=\"\\\",\", for=10.1.1.1", "10.1.1.1", "", -1);
	/* pairs: spaces around ';', empty pairs, other parameters, order */
	FWD("for=198.51.100.7 ; proto=https ;by=10.1.1.1", "198.51.100.7", "", 1);
	FWD(";;proto=https;;for=198.51.100.7;", "198.51.100.7", "", 1);
	FWD("by=\"[2001:db8::9]\";ext=\"x;y\";for=198.51.100.7;host=example.com", "198.51.100.7", "", -1);
	FWD("proto=ftp;for=198.51.100.7", "198.51.100.7", "", -1);
	/* empty elements */
	FWD(", ,for=198.51.100.7,, ;", "198.51.100.7", "", -1);
	FWD("", "", "", -1);
	FWD(" ", "", "", -1);
	/* a value too long to be a node */
	FWD("for=198.51.100.7, for=\"1111111111111111111111111111111111111111111111111111111111111111111\"", "", "",
	    -1);
	FWD("for=198.51.100.7, for=1111111111111111111111111111111111111111111111111111111111111111111", "", "", -1);
	/* with nothing chosen, the right-most element's proto= still counts */
	FWD("for=unknown;proto=https", "", "", 1);
	FWD("proto=HTTPS", "", "", 1);
	FWD("for=198.51.100.7;proto=https, bad\"", "", "", -1);
	/* X-Forwarded-Proto is not looked at for Forwarded (FWD passes "https") */
	FWD("for=198.51.100.7", "198.51.100.7", "", -1);
}

int main(void)
{
	test_xff();
	test_xfp();
	test_forwarded();
	return unit_done();
}
