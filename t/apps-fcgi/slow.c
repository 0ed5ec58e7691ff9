/* Sleeps QUERY_STRING seconds (or "msN": N milliseconds), then answers. */
#include <unistd.h>

#include "app.h"

static void handle(FCGX_Request *r)
{
	const char *q = param(r, "QUERY_STRING");
	if (q[0] == 'm' && q[1] == 's') {
		usleep((useconds_t)atoi(q + 2) * 1000);
		FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\nslept %s\n", q);
		return;
	}
	int s = atoi(q);
	if (s > 0)
		sleep((unsigned)s);
	FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\nslept %d\n", s);
}
