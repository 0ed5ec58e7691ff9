/* Session resumption shared by every worker: ticket keys and a session
 * cache in shared memory made by the master. (Groundwork: filled in by
 * the TLS work.) */
#include "tls.h"

#include <stdint.h>

int tls_shared_init(void)
{
	return 0;
}

int tls_shared_tick(int64_t now_ms)
{
	(void)now_ms;
	return 3600 * 1000;
}

void tls_shared_attach(void *ssl_ctx, int tickets, int64_t timeout_ms)
{
	(void)ssl_ctx;
	(void)tickets;
	(void)timeout_ms;
}
