/* Writes a line to the FastCGI error stream, then answers. */
#include "app.h"

static void handle(FCGX_Request *r)
{
	FCGX_FPrintF(r->err, "something went sideways in %s\n", param(r, "SCRIPT_NAME"));
	FCGX_FFlush(r->err);
	FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\nok\n");
}
