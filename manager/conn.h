/* Client connections: the HTTP/1.1 state machine of a worker. */
#ifndef CPM_CONN_H
#define CPM_CONN_H

#include <sys/socket.h>

#include "config.h"
#include "listener.h"

int conn_init(const struct config *cf);
/* Take over an accepted, non-blocking socket. */
int conn_open(int fd, struct listener *l, const struct sockaddr_storage *ss, socklen_t sl);
/* Close every connection now (a fast stop, or graceful_timeout): the
 * requests they carry end as any request ends, logged and counted. */
void conn_close_all(void);
/* Close connections that sit idle between requests (graceful stop). */
void conn_close_idle(void);
/* Deferred work: connections whose next step must run outside the call
 * stack that finished their previous request. */
int conn_pending(void);
void conn_run_pending(void);

#endif
