/* Sleeps QUERY_STRING seconds, then answers. */
#include <unistd.h>

#include "app.h"

static void handle(FCGX_Request *r)
{
	int s = atoi(param(r, "QUERY_STRING"));
	if (s > 0)
		sleep((unsigned)s);
	FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\nslept %d\n", s);
}
