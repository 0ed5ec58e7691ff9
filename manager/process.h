/* Process utilities for the master and workers: daemonizing, the pidfile,
 * dropping privileges, systemd readiness and socket activation. */
#ifndef CPM_PROCESS_H
#define CPM_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/* Fork into the background: the parent exits 0, the child leads a new
 * session with stdin/stdout on /dev/null (stderr too unless keep_stderr).
 * Returns 0 in the child, -1 on error. */
int process_daemonize(int keep_stderr);

/* Fails (-1, logged) if path names a running process other than us; a
 * stale file is fine. */
int pidfile_check(const char *path);
/* Write our pid atomically (temp file + rename). Returns 0 / -1. */
int pidfile_write(const char *path);

/* fork() with every signal blocked around it, so the child never runs the
 * parent's handlers. In the child (0 returned) every disposition is back
 * to default and every signal is still blocked: it sets the mask it wants
 * (process_unblock_signals before an exec). In the parent the mask is
 * restored. -1 with errno on failure. */
pid_t process_fork(void);
void process_unblock_signals(void);

/* Become user: its supplementary groups (initgroups), gid, then uid. The
 * one way workers, pool processes and the configuration's reachability
 * checks take on a user. Returns 0, or -1 with errno (not logged). */
int process_become(const char *user, uid_t uid, gid_t gid);

/* In a worker: become cf->user (with cf->gid) when running as root. */
int process_drop_privileges(const struct config *cf);

/* sd_notify(3) without libsystemd: a datagram to $NOTIFY_SOCKET. A no-op
 * when the variable is unset. */
void process_notify(const char *state);

/* Socket activation: the fds systemd passed ($LISTEN_PID, $LISTEN_FDS),
 * made close-on-exec; the variables are removed. Returns their count
 * (fds are 3 .. 3+n-1), 0 if none. */
int process_listen_fds(void);

#endif
