/* Dies in the middle of a request: with QUERY_STRING "early" before
 * writing anything, otherwise after the header and part of the body. */
#include <unistd.h>

#include "app.h"

static void handle(FCGX_Request *r)
{
	if (strcmp(param(r, "QUERY_STRING"), "early") == 0)
		_exit(1);
	FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\npartial\n");
	FCGX_FFlush(r->out);
	usleep(100000);
	_exit(1);
}
