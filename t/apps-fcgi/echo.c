/* Prints every parameter it got, sorted, then its own pid and the request
 * body's length and SHA-256 (read up to CONTENT_LENGTH, or to the end of
 * STDIN). */
#include <stdio.h>
#include <unistd.h>

#include "app.h"
#include "sha256.h"

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void handle(FCGX_Request *r)
{
	size_t n = 0;
	while (r->envp[n])
		n++;
	char **v = malloc((n + 1) * sizeof(*v));
	memcpy(v, r->envp, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp);
	FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\n");
	for (size_t i = 0; i < n; i++)
		FCGX_FPrintF(r->out, "%s\n", v[i]);
	free(v);
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", r->envp);
	long want = cl && *cl ? atol(cl) : -1;
	struct sha256 s;
	sha256_init(&s);
	char buf[65536];
	long got = 0;
	while (want < 0 || got < want) {
		int k = sizeof(buf);
		if (want >= 0 && want - got < k)
			k = (int)(want - got);
		int m = FCGX_GetStr(buf, k, r->in);
		if (m <= 0)
			break;
		sha256_update(&s, buf, (size_t)m);
		got += m;
	}
	char hex[65];
	sha256_hex(&s, hex);
	FCGX_FPrintF(r->out, "app-pid=%d\nbody-length=%ld\nbody-sha256=%s\n", (int)getpid(), got, hex);
}
