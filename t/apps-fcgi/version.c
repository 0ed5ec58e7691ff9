/* version: a libfcgi responder for t/reload_pools.bats that reads its
 * "version" from the file VERSION_FILE once, at start (as an application
 * loads its code), and answers "version=V pid=P" after reading the request
 * body and sleeping QUERY_STRING "sleep=MS" milliseconds. A file that says
 * "broken" makes it exit with code 1 at start. Unlike a plain libfcgi app
 * (whose SIGTERM handler lets the request in progress finish), a TERM
 * kills it at once: a request in progress is lost. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "app.h"

static char version[64];

__attribute__((constructor)) static void read_version(void)
{
	const char *file = getenv("VERSION_FILE");
	FILE *f = file ? fopen(file, "r") : NULL;
	if (!f || !fgets(version, sizeof(version), f)) {
		fprintf(stderr, "version: cannot read VERSION_FILE\n");
		exit(1);
	}
	fclose(f);
	version[strcspn(version, "\n")] = 0;
	if (strcmp(version, "broken") == 0) {
		fprintf(stderr, "version: this version is broken; exiting\n");
		exit(1);
	}
}

static void handle(FCGX_Request *r)
{
	const char *q = param(r, "QUERY_STRING");
	char buf[4096];
	signal(SIGTERM, SIG_DFL); /* after FCGX_Init's handler */
	while (FCGX_GetStr(buf, sizeof(buf), r->in) > 0)
		;
	if (strncmp(q, "sleep=", 6) == 0)
		usleep((useconds_t)atoi(q + 6) * 1000);
	FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\nversion=%s pid=%ld\n", version, (long)getpid());
}
