/* The master's control socket: a unix stream socket (mode 0600) where
 * `cpm -s COMMAND [ARG]` sends one line and reads the master's one-line
 * answer, "ok MESSAGE" or "error MESSAGE". The master never blocks on a
 * client: accepts and reads are non-blocking, a line is at most
 * CONTROL_LINE_MAX bytes, and a client that sends no whole line within
 * CONTROL_CLIENT_MS is dropped. */
#ifndef CPM_CONTROL_H
#define CPM_CONTROL_H

#include <poll.h>
#include <stddef.h>

#define CONTROL_LINE_MAX  1024
#define CONTROL_CLIENT_MS 2000
#define CONTROL_CLIENTS	  8 /* clients at once; more are refused */
#define CONTROL_POLLFDS	  (1 + CONTROL_CLIENTS)

/* 0 if cmd (with arg, NULL if none) is a command the master knows, else -1
 * with why in err. The client checks before it connects, the master again. */
int control_command_check(const char *cmd, const char *arg, char *err, size_t errlen);

/* ---- master ---- */

/* A command from an allowed peer: write the answer's message into reply;
 * return 0 (ok) or -1 (error). */
typedef int (*control_handler)(const char *cmd, const char *arg, char *reply, size_t cap);

/* Listen at path, taking it over atomically (a socket bound at a temporary
 * name, then renamed onto path): a stale socket left by a dead master is
 * replaced, and a master started by USR2 takes the path from the old one,
 * whose exit then leaves it alone. check_live: first fail if a running
 * master answers at path. A socket already open elsewhere is closed (and
 * its path removed if still ours). Returns 0 or -1 (logged). */
int control_open(const char *path, int check_live);
/* The path listened at, or NULL. */
const char *control_path(void);
/* Stop listening and drop the clients; remove the path if it is still
 * our socket (not one a newer master put there). */
void control_close(void);
/* In a forked child (a worker): close the descriptors, leave the path. */
void control_close_fds(void);

/* The descriptors to poll (at most CONTROL_POLLFDS), and ms until the
 * next client must be dropped or accepting resumes (-1: nothing due). */
size_t control_pollfds(struct pollfd *p, size_t max);
int control_timeout(void);
/* Accept, read, run complete commands through h and answer; drop clients
 * past their time. p, n: what control_pollfds gave, after poll. */
void control_on_poll(const struct pollfd *p, size_t n, control_handler h);

/* ---- client ---- */

/* Send "cmd[ arg]" to the master at path and wait (at most timeout_ms) for
 * its answer. Returns 0 (ok) or 1 (the master said error) with the message
 * in reply, or -1 if the master could not be asked, with why in reply. */
int control_request(const char *path, const char *cmd, const char *arg, int timeout_ms, char *reply, size_t cap);

#endif
