/* Floods stderr: ?pipe writes 200,000 lines to fd 2 (the pool's pipe to
 * the master), ?fcgi as many to the FastCGI error stream (FCGI_STDERR
 * records to the worker), ?one writes a single line; then answers. */
#include <stdio.h>

#include "app.h"

#define LINES 200000

static void handle(FCGX_Request *r)
{
	const char *q = param(r, "QUERY_STRING");
	if (strcmp(q, "pipe") == 0) {
		for (int i = 0; i < LINES; i++)
			fprintf(stderr, "pipe flood %d\n", i);
		fflush(stderr);
	} else if (strcmp(q, "fcgi") == 0) {
		for (int i = 0; i < LINES; i++)
			FCGX_FPrintF(r->err, "fcgi flood %d\n", i);
		FCGX_FFlush(r->err);
	} else {
		fprintf(stderr, "one line after the flood\n");
		fflush(stderr);
	}
	FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\nok %s\n", q);
}
