#include "proctitle.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

static char *title_start;
static size_t title_len;
/* the copied environment strings, for good: unsetenv drops its pointer to
 * one from environ, and this keeps the string owned (no leak for LSan) */
static char **volatile env_owned; /* volatile: a store never read is not optimized away */

void proctitle_init(int argc, char **argv)
{
	if (argc == 0 || !argv[0])
		return;
	char *start = argv[0];
	char *end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
	/* environ usually follows argv: take its space too, after copying it */
	size_t n = 0;
	while (environ[n])
		n++;
	for (size_t i = 0; i < n; i++)
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
	char **env = xmalloc((n + 1) * sizeof(*env));
	for (size_t i = 0; i < n; i++)
		env[i] = xstrdup(environ[i]);
	env[n] = NULL;
	environ = env;
	char **owned = xmalloc((n + 1) * sizeof(*owned));
	memcpy(owned, env, (n + 1) * sizeof(*owned));
	env_owned = owned;
	for (int i = 0; i < argc; i++)
		argv[i] = xstrdup(argv[i]);
	title_start = start;
	title_len = (size_t)(end - start);
}

void proctitle_set(const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	prctl(PR_SET_NAME, buf, 0, 0, 0);
	if (!title_start)
		return;
	size_t n = strlen(buf);
	if (n >= title_len)
		n = title_len - 1;
	memcpy(title_start, buf, n);
	memset(title_start + n, 0, title_len - n);
}
