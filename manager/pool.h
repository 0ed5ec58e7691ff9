/* FastCGI process pools, master side: the processes of every fastcgi
 * backend with a "command". Each process gets its own listening socket on
 * fd 0 (what libfcgi and spawn-fcgi expect); the socket outlives the
 * process, so a replacement takes over the connections queued on it. The
 * scoreboard's pool slots tell workers which process is free; workers tell
 * the master (a byte on the wake pipe) when one must be killed, drained or
 * when requests wait for a process. */
#ifndef CPM_POOL_H
#define CPM_POOL_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "scoreboard.h"

void pools_init(struct scoreboard *sb);

/* 0 if the pools of cf fit in the scoreboard next to the running ones,
 * else -1 (logged). Changes nothing. */
int pools_check(const struct config *cf);

/* Start the pools of cf; a pool that did not change (same command,
 * environment, user, ..., max) goes on with its processes, replaced one at
 * a time as by pools_restart unless its "reload" is "keep"; retire the rest
 * once no worker older than gen runs. Logs one line per pool (kept,
 * restarting, replaced, removed, or new). Sets every pool backend's
 * pool->id. Call pools_check first; returns -1 (nothing changed) if it
 * would have failed. */
int pools_reconcile(struct config *cf, unsigned gen);

/* Periodic work: start due processes, kill the hung, recycle the drained,
 * scale, finish retired pools. oldest_gen: the oldest configuration
 * generation a live worker runs (UINT32_MAX if none). Returns the ms
 * until it wants to run again. */
int pools_tick(unsigned oldest_gen);

/* 1 if pid was a pool process (its slot is dealt with), else 0. */
int pools_reaped(pid_t pid, int status);

/* A worker exited: drop the processes it held. */
void pools_worker_gone(pid_t pid, unsigned worker_index);

/* The application output pipes to watch, and their handling. */
size_t pools_pollfds(struct pollfd *p, size_t max);
void pools_on_poll(const struct pollfd *p, size_t n);

/* Stop every pool process (TERM, then KILL after timeout_ms), wait for
 * them and remove the sockets. */
void pools_shutdown(int64_t timeout_ms);

/* In a worker: close the master's pool descriptors. */
void pools_close_fds(void);

/* Replace the processes of the pool named name (whatever its "reload";
 * NULL: every pool whose "reload" is not "keep") one at a time, without
 * failing a request: a new process starts on a spare position and gets
 * requests once it has lived BACKOFF_QUICK_MS, then an old one drains and
 * stops, and so on; a new process that dies before stops the restart (the
 * old ones stay). A pool with no process running (down) tries one now.
 * HUP does the same through pools_reconcile. Returns 0, or -1 when no pool
 * has that name. */
int pools_restart(const char *name);
/* Pool processes running. */
unsigned pools_alive(void);

#endif
