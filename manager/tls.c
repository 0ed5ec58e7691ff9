/* TLS on the listeners (groundwork: filled in by the TLS work). */
#include "tls.h"

#include <errno.h>
#include <stdio.h>

#include "config.h"

int tls_conf_load(struct tls_conf *t, const char *dir, int *which, char *err, size_t errlen)
{
	(void)t;
	(void)dir;
	*which = -1;
	snprintf(err, errlen, "TLS is not built yet");
	return -1;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	(void)ctx;
}
