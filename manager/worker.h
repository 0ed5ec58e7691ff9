/* A worker process: one epoll loop serving many connections. */
#ifndef CPM_WORKER_H
#define CPM_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "listener.h"
#include "scoreboard.h"

/* Exit codes a worker reports to the master. */
#define WORKER_EXIT_OK	       0
#define WORKER_EXIT_BOOT_ERROR 3

/* Runs in the forked child; never returns. */
void worker_run(const struct config *cf, struct listener *ls, size_t nls, struct scoreboard *sb, unsigned slot,
		long max_requests) __attribute__((noreturn));

/* ---- for conn.c ---- */
const struct config *worker_config(void);
/* A request finished (counts toward max_requests): its status, its
 * backend (NULL if it reached none), its time from first byte to end and
 * the part of it spent waiting for a backend resource. */
void worker_request_done(int status, const struct backend_conf *b, int64_t duration_us, int64_t wait_us);
/* Whether connections should close after their current request: this
 * worker stops, or the instance drains (a graceful stop's drain_delay, so
 * a balancer's kept connections move elsewhere). */
int worker_draining(void);
/* A TLS handshake ended: TLS_HS_FULL, TLS_HS_RESUMED or TLS_HS_FAILED. */
void worker_tls_handshake(int outcome);
void worker_conn_closed(void);
/* Current Date header value and access-log time, refreshed each second. */
const char *worker_http_date(void);
const char *worker_log_date(void);

#endif
