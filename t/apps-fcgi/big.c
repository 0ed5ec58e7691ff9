/* A 10 MB body of 'a' without Content-Length (so cpm chunks it). */
#include "app.h"

static void handle(FCGX_Request *r)
{
	static char buf[65536];
	memset(buf, 'a', sizeof(buf));
	FCGX_FPrintF(r->out, "Content-Type: application/octet-stream\r\n\r\n");
	for (int i = 0; i < 10485760 / (int)sizeof(buf); i++)
		if (FCGX_PutStr(buf, sizeof(buf), r->out) < 0)
			return;
}
