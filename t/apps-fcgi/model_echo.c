/* The libfcgi side of t/model/run.py: answers as t/apps/model_echo.sh does.
 * QUERY_STRING: t=TAG&n=SIZE&cl=0|1&st=CODE&hp=SIZE (see model_echo.sh). */
#include <stdio.h>

#include "app.h"
#include "sha256.h"

static long query_num(const char *q, const char *key)
{
	size_t k = strlen(key);
	while (q && *q) {
		if (strncmp(q, key, k) == 0 && q[k] == '=')
			return atol(q + k + 1);
		q = strchr(q, '&');
		if (q)
			q++;
	}
	return -1;
}

static void handle(FCGX_Request *r)
{
	const char *q = param(r, "QUERY_STRING");
	long n = query_num(q, "n"), cl = query_num(q, "cl"), st = query_num(q, "st"), hp = query_num(q, "hp");
	const char *len = FCGX_GetParam("CONTENT_LENGTH", r->envp);
	long want = len && *len ? atol(len) : 0;
	struct sha256 s;
	sha256_init(&s);
	char buf[65536];
	long got = 0;
	while (got < want) {
		int k = want - got < (long)sizeof(buf) ? (int)(want - got) : (int)sizeof(buf);
		int m = FCGX_GetStr(buf, k, r->in);
		if (m <= 0)
			break;
		sha256_update(&s, buf, (size_t)m);
		got += m;
	}
	char hex[65];
	sha256_hex(&s, hex);
	char text[8192];
	int t = snprintf(text, sizeof(text), "method=%s\nuri=%s\nlen=%s\nsha=%s\n", param(r, "REQUEST_METHOD"),
			 param(r, "REQUEST_URI"), len && *len ? len : "0", hex);
	if (t < 0 || t >= (int)sizeof(text))
		t = 0;
	if (n < 0)
		n = 0;
	if (st > 0)
		FCGX_FPrintF(r->out, "Status: %ld Model\r\n", st);
	FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n");
	if (hp > 0) {
		FCGX_FPrintF(r->out, "X-Pad: ");
		for (long i = 0; i < hp; i++)
			FCGX_PutChar('p', r->out);
		FCGX_FPrintF(r->out, "\r\n");
	}
	if (cl == 1) {
		if (st == 204 || st == 304) {
			FCGX_FPrintF(r->out, "\r\n");
			return;
		}
		FCGX_FPrintF(r->out, "Content-Length: %ld\r\n", t + n);
	}
	FCGX_FPrintF(r->out, "\r\n");
	FCGX_PutStr(text, t, r->out);
	memset(buf, 'x', sizeof(buf));
	while (n > 0) {
		int k = n < (long)sizeof(buf) ? (int)n : (int)sizeof(buf);
		if (FCGX_PutStr(buf, k, r->out) < 0)
			return;
		n -= k;
	}
}
