/* Unit tests for protocol/http_auth.c (Basic credentials, htpasswd lines,
 * the challenge) and url_suffix_match (route suffixes). */
#include <string.h>

#include "../../protocol/http_auth.h"
#include "../../protocol/url.h"
#include "unit.h"

static char BUF[512];
static char *U, *P;

static int basic(const char *v)
{
	memset(BUF, 'Z', sizeof(BUF));
	U = P = NULL;
	return http_auth_basic_parse(v, strlen(v), BUF, &U, &P);
}

static void test_basic(void)
{
	CHECK_EQ_INT(basic("Basic YWxpY2U6c2VjcmV0"), 0); /* alice:secret */
	CHECK_EQ_STR(U, "alice");
	CHECK_EQ_STR(P, "secret");
	CHECK_EQ_INT(basic("basic   YWxpY2U6c2VjcmV0  "), 0);
	CHECK_EQ_STR(U, "alice");
	CHECK_EQ_INT(basic("BASIC YTpiOmM="), 0); /* a:b:c: the password has the ':' */
	CHECK_EQ_STR(U, "a");
	CHECK_EQ_STR(P, "b:c");
	CHECK_EQ_INT(basic("Basic YTo="), 0); /* "a:": empty password */
	CHECK_EQ_STR(P, "");
	CHECK_EQ_INT(basic("Basic Ojo="), 0); /* "::": empty user (unknown) */
	CHECK_EQ_STR(U, "");
	CHECK_EQ_INT(basic("Basic YWxpY2U6c2VjcmV0"), 0);
	CHECK_EQ_INT(basic("Basic YWxpY2U6c2VjcmV0="), -1); /* padding after a full group */
	CHECK_EQ_INT(basic("Basic YTpi==="), -1);	    /* too much padding */
	CHECK_EQ_INT(basic("Basic YTpiYw"), 0);		    /* "a:bc", padding left out */
	CHECK_EQ_STR(P, "bc");
	CHECK_EQ_INT(basic("Basic YTpiYw=="), 0);
	CHECK_EQ_INT(basic("Bearer abc"), -1);
	CHECK_EQ_INT(basic("Basic"), -1);
	CHECK_EQ_INT(basic("Basic "), -1);
	CHECK_EQ_INT(basic("Basicx YWxpY2U6c2VjcmV0"), -1);
	CHECK_EQ_INT(basic("Basic !!!!"), -1);
	CHECK_EQ_INT(basic("Basic YWxpY2U"), -1);    /* "alice": no ':' */
	CHECK_EQ_INT(basic("Basic YQ"), -1);	     /* "a" */
	CHECK_EQ_INT(basic("Basic YTpi\tYw=="), -1); /* tab inside */
	CHECK_EQ_INT(basic("Basic YTpiAGM="), -1);   /* "a:b\0c" */
	CHECK_EQ_INT(basic("Basic YTpiCmM="), -1);   /* "a:b\nc" */
	CHECK_EQ_INT(basic("Basic Y"), -1);
}

static int line(const char *l, enum htpasswd_scheme *sc, const char **why)
{
	const char *u, *h;
	size_t ul, hl;
	*why = NULL;
	return htpasswd_line(l, strlen(l), &u, &ul, &h, &hl, sc, why);
}

static void test_htpasswd(void)
{
	enum htpasswd_scheme sc;
	const char *why;
	const char *u, *h;
	size_t ul, hl;
	const char *l = "alice:$2y$10$PjkGsOGEDd.ZgvohV9rvQ.k0IgYTUikcIgIKuf8Zt8ch4z7278M.O\r";
	CHECK_EQ_INT(htpasswd_line(l, strlen(l), &u, &ul, &h, &hl, &sc, &why), 1);
	CHECK_MEM(u, ul, "alice", 5);
	CHECK_EQ_INT(hl, strlen(l) - 7);
	CHECK_EQ_INT(sc, HTPASSWD_BCRYPT);
	CHECK_EQ_INT(line("b:$2b$10$PjkGsOGEDd.ZgvohV9rvQ.k0IgYTUikcIgIKuf8Zt8ch4z7278M.O", &sc, &why), 1);
	CHECK_EQ_INT(line("b:$2a$10$PjkGsOGEDd.ZgvohV9rvQ.k0IgYTUikcIgIKuf8Zt8ch4z7278M.O", &sc, &why), 1);
	CHECK_EQ_INT(line("b:$5$M.QxE7n2Qw8MsCeP$VYMG3v83p1oxe0r69aW1EtO34Bf7POVEh8oMALC6nE1", &sc, &why), 1);
	CHECK_EQ_INT(sc, HTPASSWD_SHA256);
	CHECK_EQ_INT(line("b:$5$rounds=10000$M.QxE7n2Qw8MsCeP$VYMG3v83p1oxe0r69aW1EtO34Bf7POVEh8oMALC6nE1", &sc, &why),
		     1);
	CHECK_EQ_INT(
	    line("b:$6$HNzCKBQuHtrnReNJ$kmRcl2eJv2R6yyWvfUrs1VItyw4ahgaxt9GflJC0REcbaN.0E1ZoveRw34mUL9oOhxHxKT2i/"
		 "rESD1G6SxJJ41",
		 &sc, &why),
	    1);
	CHECK_EQ_INT(sc, HTPASSWD_SHA512);
	CHECK_EQ_INT(line("b:$y$j9T$abcdefghijklmnop$qqkBQnyUUgkz930BN/Rs6u6KLiM0YAYNy9MKqM8DET7", &sc, &why), 1);
	CHECK_EQ_INT(sc, HTPASSWD_YESCRYPT);
	CHECK_EQ_INT(
	    line("user with space:$y$j9T$abcdefghijklmnop$qqkBQnyUUgkz930BN/Rs6u6KLiM0YAYNy9MKqM8DET7", &sc, &why), 1);
	/* cut short or damaged */
	CHECK_EQ_INT(line("b:$2y$10$PjkGsOGEDd.ZgvohV9rvQ.k0IgYTUikcIgIKuf8Zt8ch4z7278M.", &sc, &why), -1);
	CHECK(why && strstr(why, "malformed"));
	CHECK_EQ_INT(line("b:$2y$10$PjkGsOGEDd.ZgvohV9rvQ.k0IgYTUikcIgIKuf8Zt8ch4z7278M*O", &sc, &why), -1);
	CHECK_EQ_INT(line("b:$2y$10xPjkGsOGEDd.ZgvohV9rvQ.k0IgYTUikcIgIKuf8Zt8ch4z7278M.O", &sc, &why), -1);
	CHECK_EQ_INT(line("b:$2y$05$short", &sc, &why), -1);
	CHECK_EQ_INT(line("b:$5$salt$", &sc, &why), -1);
	CHECK_EQ_INT(line("b:$6$M.QxE7n2Qw8MsCeP$VYMG3v83p1oxe0r69aW1EtO34Bf7POVEh8oMALC6nE1", &sc, &why), -1);
	CHECK_EQ_INT(line("b:$y$", &sc, &why), -1);
	CHECK_EQ_INT(line("", &sc, &why), 0);
	CHECK_EQ_INT(line("   \t", &sc, &why), 0);
	CHECK_EQ_INT(line("# comment", &sc, &why), 0);
	CHECK_EQ_INT(line("b:$apr1$salt$hash", &sc, &why), -1);
	CHECK(why && strstr(why, "MD5"));
	CHECK_EQ_INT(line("b:$1$salt$hash", &sc, &why), -1);
	CHECK(why && strstr(why, "MD5"));
	CHECK_EQ_INT(line("b:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", &sc, &why), -1);
	CHECK(why && strstr(why, "{SHA}"));
	CHECK_EQ_INT(line("b:abJnggxhB/yWI", &sc, &why), -1);
	CHECK(why && strstr(why, "DES"));
	CHECK_EQ_INT(line("b:secret", &sc, &why), -1);
	CHECK(why && strstr(why, "plaintext"));
	CHECK_EQ_INT(line("b:", &sc, &why), -1);
	CHECK_EQ_INT(line(":$y$j9T$abcdefghijklmnop$qqkBQnyUUgkz930BN/Rs6u6KLiM0YAYNy9MKqM8DET7", &sc, &why), -1);
	CHECK(why && strstr(why, "empty user"));
	CHECK_EQ_INT(line("nocolon", &sc, &why), -1);
	CHECK_EQ_INT(line("u:realm:0123456789abcdef0123456789abcdef", &sc, &why), -1);
	CHECK(why && strstr(why, "htdigest"));
	CHECK_EQ_INT(line("u\x01x:$y$j9T$abcdefghijklmnop$qqkBQnyUUgkz930BN/Rs6u6KLiM0YAYNy9MKqM8DET7", &sc, &why), -1);
	CHECK(why && strstr(why, "control"));
}

static void test_challenge(void)
{
	char out[64];
	CHECK_EQ_INT(http_auth_challenge("git", out, sizeof(out)), strlen("Basic realm=\"git\""));
	CHECK_EQ_STR(out, "Basic realm=\"git\"");
	http_auth_challenge("a\"b\\c", out, sizeof(out));
	CHECK_EQ_STR(out, "Basic realm=\"a\\\"b\\\\c\"");
	CHECK_EQ_INT(http_auth_challenge("a long realm name", out, 20), 0);
}

static int sfx(const char *p, const char *s, size_t *len)
{
	return url_suffix_match(p, strlen(p), s, strlen(s), len);
}

static void test_suffix(void)
{
	size_t n = 0;
	CHECK_EQ_INT(sfx("/wiki/doku.php", ".php", &n), 1);
	CHECK_EQ_INT(n, strlen("/wiki/doku.php"));
	CHECK_EQ_INT(sfx("/wiki/doku.php/x/y", ".php", &n), 1);
	CHECK_EQ_INT(n, strlen("/wiki/doku.php"));
	CHECK_EQ_INT(sfx("/wiki/doku.php/", ".php", &n), 1);
	CHECK_EQ_INT(sfx("/a.php/b.php", ".php", &n), 1);
	CHECK_EQ_INT(n, strlen("/a.php"));
	CHECK_EQ_INT(sfx("/wiki/doku.phpx", ".php", NULL), 0);
	CHECK_EQ_INT(sfx("/wiki/doku.PHP", ".php", NULL), 0);
	CHECK_EQ_INT(sfx("/wiki/lib/style.css", ".php", NULL), 0);
	CHECK_EQ_INT(sfx("/wiki/x.php.txt", ".php", NULL), 0);
	CHECK_EQ_INT(sfx("/", ".php", NULL), 0);
	CHECK_EQ_INT(sfx("", ".php", NULL), 0);
	CHECK_EQ_INT(sfx(".php", ".php", NULL), 1);
	CHECK_EQ_INT(sfx("/x", "", NULL), 0);
}

int main(void)
{
	test_basic();
	test_htpasswd();
	test_challenge();
	test_suffix();
	return unit_done();
}
