/* Unit tests for protocol/cidr.c: parsing access-list entries and matching
 * IPv4, IPv6 and IPv4-mapped peers. */
#include <arpa/inet.h>
#include <string.h>

#include "../../protocol/cidr.h"
#include "unit.h"

static struct cidr_peer peer(const char *s)
{
	struct cidr_peer p = {0};
	if (strcmp(s, "unix") == 0)
		return p;
	if (strchr(s, ':')) {
		p.family = 6;
		inet_pton(AF_INET6, s, p.addr);
	} else {
		p.family = 4;
		inet_pton(AF_INET, s, p.addr);
	}
	return p;
}

static int m(const char *entry, const char *who)
{
	struct cidr e;
	const char *why = NULL;
	if (cidr_parse(entry, &e, &why) < 0) {
		fprintf(stderr, "unexpected parse failure: %s: %s\n", entry, why);
		return -1;
	}
	struct cidr_peer p = peer(who);
	return cidr_match(&e, &p);
}

static int bad(const char *entry)
{
	struct cidr e;
	const char *why = NULL;
	return cidr_parse(entry, &e, &why) < 0 && why && *why;
}

static void test_parse(void)
{
	CHECK(bad(""));
	CHECK(bad("/8"));
	CHECK(bad("10.0.0.0/"));
	CHECK(bad("10.0.0.0/33"));
	CHECK(bad("10.0.0.0/-1"));
	CHECK(bad("10.0.0.0/08"));
	CHECK(bad("10.0.0.0/8x"));
	CHECK(bad("10.0.0.1/8")); /* host bits */
	CHECK(bad("10.0.0"));
	CHECK(bad("256.0.0.1"));
	CHECK(bad("010.0.0.1"));
	CHECK(bad("::1/129"));
	CHECK(bad("fe80::1%eth0"));
	CHECK(bad("2001:db8::1/32"));
	CHECK(bad("ALL"));
	CHECK(bad("unix"));
	CHECK(bad("localhost"));
	CHECK(bad("10.0.0.0/99999999999999999999"));
	struct cidr e;
	const char *why;
	CHECK_EQ_INT(cidr_parse("all", &e, &why), 0);
	CHECK_EQ_INT(e.kind, CIDR_ALL);
	CHECK_EQ_INT(cidr_parse("unix:", &e, &why), 0);
	CHECK_EQ_INT(e.kind, CIDR_UNIX);
	CHECK_EQ_INT(cidr_parse("10.0.0.0/8", &e, &why), 0);
	CHECK_EQ_INT(e.bits, 104);
	CHECK_EQ_INT(cidr_parse("0.0.0.0/0", &e, &why), 0);
	CHECK_EQ_INT(e.bits, 96);
	CHECK_EQ_INT(cidr_parse("::/0", &e, &why), 0);
	CHECK_EQ_INT(e.bits, 0);
	CHECK_EQ_INT(cidr_parse("192.0.2.7", &e, &why), 0);
	CHECK_EQ_INT(e.bits, 128);
}

static void test_match(void)
{
	CHECK_EQ_INT(m("127.0.0.0/8", "127.0.0.1"), 1);
	CHECK_EQ_INT(m("127.0.0.0/8", "127.255.255.254"), 1);
	CHECK_EQ_INT(m("127.0.0.0/8", "128.0.0.1"), 0);
	CHECK_EQ_INT(m("127.0.0.0/8", "::1"), 0);
	CHECK_EQ_INT(m("127.0.0.0/8", "unix"), 0);
	/* an IPv4-mapped IPv6 peer is its IPv4 form */
	CHECK_EQ_INT(m("127.0.0.0/8", "::ffff:127.0.0.1"), 1);
	CHECK_EQ_INT(m("10.1.2.3", "::ffff:10.1.2.3"), 1);
	CHECK_EQ_INT(m("10.1.2.3", "::ffff:10.1.2.4"), 0);
	CHECK_EQ_INT(m("::ffff:10.0.0.0/104", "10.200.0.1"), 1);
	/* prefixes not on a byte boundary */
	CHECK_EQ_INT(m("192.168.0.0/23", "192.168.1.255"), 1);
	CHECK_EQ_INT(m("192.168.0.0/23", "192.168.2.0"), 0);
	CHECK_EQ_INT(m("10.0.0.0/31", "10.0.0.1"), 1);
	CHECK_EQ_INT(m("10.0.0.0/31", "10.0.0.2"), 0);
	CHECK_EQ_INT(m("0.0.0.0/0", "203.0.113.9"), 1);
	CHECK_EQ_INT(m("0.0.0.0/0", "2001:db8::1"), 0);
	CHECK_EQ_INT(m("::1", "::1"), 1);
	CHECK_EQ_INT(m("::1", "::2"), 0);
	CHECK_EQ_INT(m("::1", "127.0.0.1"), 0);
	CHECK_EQ_INT(m("2001:db8::/33", "2001:db8:7fff::1"), 1);
	CHECK_EQ_INT(m("2001:db8::/33", "2001:db8:8000::1"), 0);
	CHECK_EQ_INT(m("2001:db8::/32", "10.0.0.1"), 0);
	CHECK_EQ_INT(m("all", "10.0.0.1"), 1);
	CHECK_EQ_INT(m("all", "::1"), 1);
	CHECK_EQ_INT(m("all", "unix"), 1);
	CHECK_EQ_INT(m("unix:", "unix"), 1);
	CHECK_EQ_INT(m("unix:", "127.0.0.1"), 0);
	struct cidr list[2];
	const char *why;
	cidr_parse("10.0.0.0/8", &list[0], &why);
	cidr_parse("::1", &list[1], &why);
	struct cidr_peer p = peer("::1");
	CHECK_EQ_INT(cidr_match_any(list, 2, &p), 1);
	p = peer("11.0.0.1");
	CHECK_EQ_INT(cidr_match_any(list, 2, &p), 0);
	CHECK_EQ_INT(cidr_match_any(NULL, 0, &p), 0);
}

int main(void)
{
	test_parse();
	test_match();
	return unit_done();
}
