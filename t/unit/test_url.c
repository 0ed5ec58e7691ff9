/* Unit tests for protocol/url.c */
#include <string.h>

#include "../../protocol/url.h"
#include "unit.h"

static char OUT[256];
static size_t OUTLEN;

static int dec(const char *s)
{
	memset(OUT, 'Z', sizeof(OUT));
	OUTLEN = 9999;
	return url_decode_path(s, strlen(s), OUT, &OUTLEN);
}

static void ok_dec(const char *in, const char *want)
{
	CHECK_EQ_INT(dec(in), URL_OK);
	CHECK_MEM(OUT, OUTLEN, want, strlen(want));
	CHECK_EQ_INT(OUT[OUTLEN], 0);
}

static int seg(const char *s)
{
	return url_check_segments(s, strlen(s), 0);
}

static int pm(const char *p, const char *pre)
{
	return url_prefix_match(p, strlen(p), pre, strlen(pre));
}

static void test_decode(void)
{
	ok_dec("/plain/path", "/plain/path");
	ok_dec("", "");
	ok_dec("/a%20b", "/a b");
	ok_dec("/%41%42%43", "/ABC");
	ok_dec("/%7e%7E", "/~~");
	ok_dec("/caf%C3%A9", "/caf\xc3\xa9");
	ok_dec("/100%25", "/100%");
	ok_dec("/%2525", "/%25"); /* decoded once only */
	ok_dec("/a+b", "/a+b");	  /* '+' is not a space in a path */
	ok_dec("/%2e%2E/x", "/../x");
	ok_dec("/%5c", "/\\");
	/* an encoded slash */
	CHECK_EQ_INT(dec("/a%2Fb"), URL_FORBIDDEN);
	CHECK_EQ_INT(dec("/a%2fb"), URL_FORBIDDEN);
	CHECK_EQ_INT(dec("%2F"), URL_FORBIDDEN);
	/* NUL */
	CHECK_EQ_INT(dec("/a%00b"), URL_BAD);
	CHECK_EQ_INT(dec("/%00"), URL_BAD);
	CHECK_EQ_INT(url_decode_path("/a\0b", 4, OUT, &OUTLEN), URL_BAD);
	/* malformed escapes */
	CHECK_EQ_INT(dec("/a%"), URL_BAD);
	CHECK_EQ_INT(dec("/a%4"), URL_BAD);
	CHECK_EQ_INT(dec("/a%g1"), URL_BAD);
	CHECK_EQ_INT(dec("/a%1g"), URL_BAD);
	CHECK_EQ_INT(dec("/a%%41"), URL_BAD);
	CHECK_EQ_INT(dec("/a% 1"), URL_BAD);
	CHECK_EQ_INT(dec("%"), URL_BAD);
	/* only len bytes are read */
	CHECK_EQ_INT(url_decode_path("/ab%41", 3, OUT, &OUTLEN), URL_OK);
	CHECK_MEM(OUT, OUTLEN, "/ab", 3);
	CHECK_EQ_INT(url_decode_path("/a%41", 3, OUT, &OUTLEN), URL_BAD);
	/* a run of slashes is one: a route prefix cannot be stepped around */
	ok_dec("//status", "/status");
	ok_dec("/wiki//conf///x", "/wiki/conf/x");
	ok_dec("/a/", "/a/");
	ok_dec("///", "/");
	ok_dec("/%41//", "/A/");
	ok_dec("/a//%2e%2e", "/a/..");
}

static void enc(const char *in, const char *want)
{
	char out[256];
	size_t n = url_encode_path(in, strlen(in), out);
	CHECK_MEM(out, n, want, strlen(want));
	CHECK_EQ_INT(out[n], 0);
}

static void test_encode(void)
{
	enc("/a/b-c_d.e~f", "/a/b-c_d.e~f");
	enc("/!$&'()*+,;=:@", "/!$&'()*+,;=:@");
	enc("/a b\\c", "/a%20b%5Cc");
	enc("/%?#", "/%25%3F%23");
	enc("/\r\n\x01\x7f\xc3\xa9", "/%0D%0A%01%7F%C3%A9");
	enc("", "");
}

static void test_segments(void)
{
	CHECK_EQ_INT(seg("/"), URL_OK);
	CHECK_EQ_INT(seg("/a/b.c"), URL_OK);
	CHECK_EQ_INT(seg("/a/b."), URL_OK);
	CHECK_EQ_INT(seg("/a/b..c/d"), URL_OK);
	CHECK_EQ_INT(seg("/a/.../"), URL_FORBIDDEN);
	CHECK_EQ_INT(seg("/a//b"), URL_OK);
	CHECK_EQ_INT(seg("//"), URL_OK);
	CHECK_EQ_INT(seg("/a/"), URL_OK);
	CHECK_EQ_INT(seg("/a/../b"), URL_FORBIDDEN);
	CHECK_EQ_INT(seg("/./x"), URL_FORBIDDEN);
	CHECK_EQ_INT(seg("/."), URL_FORBIDDEN);
	CHECK_EQ_INT(seg("/.."), URL_FORBIDDEN);
	CHECK_EQ_INT(seg("/a/."), URL_FORBIDDEN);
	CHECK_EQ_INT(seg("/a/.."), URL_FORBIDDEN);
	CHECK_EQ_INT(seg("/a/./"), URL_FORBIDDEN);
	CHECK_EQ_INT(seg("/.hidden"), URL_FORBIDDEN);
	CHECK_EQ_INT(seg("/a/.git/config"), URL_FORBIDDEN);
	CHECK_EQ_INT(seg("/a//.x"), URL_FORBIDDEN);
	CHECK_EQ_INT(seg(""), URL_FORBIDDEN);
	CHECK_EQ_INT(seg("a/b"), URL_FORBIDDEN);
	CHECK_EQ_INT(seg(".."), URL_FORBIDDEN);
	/* only len bytes count */
	CHECK_EQ_INT(url_check_segments("/a/.x", 3, 0), URL_OK);
	CHECK_EQ_INT(url_check_segments("/a/.x", 4, 0), URL_FORBIDDEN);
	/* a dotfile before hidden_from (in the route's prefix) is the
	 * operator's choice; below it, and "." / ".." anywhere, are not */
	CHECK_EQ_INT(url_check_segments("/.well-known/acme/t", 19, 12), URL_OK);
	CHECK_EQ_INT(url_check_segments("/.well-known/.x", 15, 12), URL_FORBIDDEN);
	CHECK_EQ_INT(url_check_segments("/.well-known/../x", 17, 12), URL_FORBIDDEN);
	CHECK_EQ_INT(url_check_segments("/./x", 4, 4), URL_FORBIDDEN);
	CHECK_EQ_INT(url_check_segments("/a/..", 5, 5), URL_FORBIDDEN);
	CHECK_EQ_INT(url_check_segments("/.x", 3, 3), URL_OK);

	/* decoded dot segments are caught after decoding */
	CHECK_EQ_INT(dec("/a/%2e%2e/b"), URL_OK);
	CHECK_EQ_INT(url_check_segments(OUT, OUTLEN, 0), URL_FORBIDDEN);
	CHECK_EQ_INT(dec("/%2ehtaccess"), URL_OK);
	CHECK_EQ_INT(url_check_segments(OUT, OUTLEN, 0), URL_FORBIDDEN);
}

static void test_prefix(void)
{
	CHECK(pm("/app", "/app"));
	CHECK(pm("/app/", "/app"));
	CHECK(pm("/app/x/y", "/app"));
	CHECK(!pm("/apple", "/app"));
	CHECK(!pm("/ap", "/app"));
	CHECK(!pm("/App", "/app"));
	CHECK(pm("/cgi-bin/x", "/cgi-bin/"));
	CHECK(pm("/cgi-bin/", "/cgi-bin/"));
	CHECK(!pm("/cgi-bin", "/cgi-bin/"));
	CHECK(!pm("/cgi-binx", "/cgi-bin/"));
	CHECK(pm("/", "/"));
	CHECK(pm("/anything/at/all", "/"));
	CHECK(pm("/x", ""));
	CHECK(!pm("", "/"));
	CHECK(pm("/a/b", "/a/b"));
	CHECK(!pm("/a/bc", "/a/b"));
	CHECK(pm("/a/b/c", "/a/b"));
	CHECK(!pm("/b/a", "/a"));
}

int main(void)
{
	test_decode();
	test_encode();
	test_segments();
	test_prefix();
	return unit_done();
}
