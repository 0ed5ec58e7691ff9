/* The control socket, both ends: the master's listener (polled in its
 * loop, never blocking on a client) and the `cpm -s` client. */

#include "control.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "scoreboard.h"

#define CONTROL_REPLY_MAX 4096

static const struct {
	const char *name;
	int arg; /* takes one argument */
} commands[] = {
    {"reload", 0}, {"reopen", 0}, {"quit", 0}, {"stop", 0}, {"restart-pool", 1},
};

int control_command_check(const char *cmd, const char *arg, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i].name) != 0)
			continue;
		if (commands[i].arg && (!arg || !*arg)) {
			snprintf(err, errlen, "%s needs an argument (a pool's name)", cmd);
			return -1;
		}
		if (!commands[i].arg && arg) {
			snprintf(err, errlen, "%s takes no argument", cmd);
			return -1;
		}
		for (const char *p = arg; p && *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				snprintf(err, errlen, "%s: the argument contains a control character", cmd);
				return -1;
			}
		return 0;
	}
	snprintf(err, errlen, "unknown command \"%.64s\" (reload, reopen, quit, stop, restart-pool NAME)", cmd);
	return -1;
}

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

/* ---- master ---- */

struct client {
	int fd; /* -1: free */
	pid_t pid;
	uid_t uid;
	int64_t deadline_ms;
	size_t len;
	char buf[CONTROL_LINE_MAX];
};

static struct {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* the socket file we made: removed at exit only if */
	ino_t ino; /* it is still there (USR2: the new master's replaced it) */
	struct client c[CONTROL_CLIENTS];
	int inited;
	int64_t paused_until_ms; /* accept failed for want of descriptors */
} C = {.fd = -1};

#define CONTROL_PAUSE_MS 1000

static void init_clients(void)
{
	if (C.inited)
		return;
	for (size_t i = 0; i < CONTROL_CLIENTS; i++)
		C.c[i].fd = -1;
	C.inited = 1;
}

/* A master listens at path (connect succeeds, or its backlog is full). */
static int answers(const char *path)
{
	struct sockaddr_un sa;
	if (fill_addr(&sa, path) < 0)
		return 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int live = r == 0 || errno == EAGAIN;
	close(fd);
	return live;
}

static void close_listener(void)
{
	if (C.fd < 0)
		return;
	struct stat st;
	if (stat(C.path, &st) == 0 && st.st_dev == C.dev && st.st_ino == C.ino)
		unlink(C.path);
	close(C.fd);
	C.fd = -1;
	C.path[0] = 0;
}

int control_open(const char *path, int check_live)
{
	init_clients();
	struct sockaddr_un sa;
	char want[sizeof(C.path)], tmp[sizeof(sa.sun_path)];
	if (snprintf(want, sizeof(want), "%s", path) >= (int)sizeof(want) ||
	    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp)) {
		log_error("control socket %s: the path is too long for a unix socket (%zu bytes at most)", path,
			  sizeof(tmp) - 16);
		return -1;
	}
	if (check_live && answers(want)) {
		log_error("control socket %s: another cpm master answers there", want);
		return -1;
	}
	fill_addr(&sa, tmp);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_error("control socket %s: socket: %s", want, strerror(errno));
		return -1;
	}
	unlink(tmp);		  /* left by a master with our pid that crashed */
	mode_t old = umask(0177); /* born 0600: never open to others */
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		log_error("control socket %s: bind: %s", want, strerror(errno));
		close(fd);
		return -1;
	}
	struct stat st;
	const char *step = "listen";
	if (listen(fd, CONTROL_CLIENTS) < 0 || (step = "stat", stat(tmp, &st) < 0) ||
	    (step = "rename", rename(tmp, want) < 0)) {
		log_error("control socket %s: %s: %s", want, step, strerror(errno));
		unlink(tmp);
		close(fd);
		return -1;
	}
	close_listener(); /* not unlinked when it was at want: no longer ours */
	C.fd = fd;
	memcpy(C.path, want, sizeof(C.path));
	C.dev = st.st_dev;
	C.ino = st.st_ino;
	log_info("control socket %s", C.path);
	return 0;
}

const char *control_path(void)
{
	return C.fd >= 0 ? C.path : NULL;
}

static void drop(struct client *cl)
{
	close(cl->fd);
	cl->fd = -1;
}

void control_close(void)
{
	init_clients();
	for (size_t i = 0; i < CONTROL_CLIENTS; i++)
		if (C.c[i].fd >= 0)
			drop(&C.c[i]);
	close_listener();
}

void control_close_fds(void)
{
	init_clients();
	for (size_t i = 0; i < CONTROL_CLIENTS; i++)
		if (C.c[i].fd >= 0)
			drop(&C.c[i]);
	if (C.fd >= 0)
		close(C.fd);
	C.fd = -1;
}

size_t control_pollfds(struct pollfd *p, size_t max)
{
	init_clients();
	size_t n = 0;
	if (C.fd >= 0 && n < max && monotonic_ms() >= C.paused_until_ms)
		p[n++] = (struct pollfd){.fd = C.fd, .events = POLLIN};
	for (size_t i = 0; i < CONTROL_CLIENTS && n < max; i++)
		if (C.c[i].fd >= 0)
			p[n++] = (struct pollfd){.fd = C.c[i].fd, .events = POLLIN};
	return n;
}

int control_timeout(void)
{
	init_clients();
	int64_t now = monotonic_ms(), t = C.paused_until_ms > now ? C.paused_until_ms - now : -1;
	for (size_t i = 0; i < CONTROL_CLIENTS; i++) {
		if (C.c[i].fd < 0)
			continue;
		int64_t d = C.c[i].deadline_ms - now;
		if (d < 0)
			d = 0;
		if (t < 0 || d < t)
			t = d;
	}
	return (int)t;
}

/* One line, "ok MESSAGE" or "error MESSAGE", sent without waiting: it is
 * short and the socket's buffer is empty, so it fits or the peer is gone. */
static void answer(int fd, int rc, const char *msg)
{
	char out[CONTROL_REPLY_MAX];
	int n = snprintf(out, sizeof(out), "%s %s", rc == 0 ? "ok" : "error", msg);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(out) - 2)
		n = (int)sizeof(out) - 2;
	for (int i = 0; i < n; i++)
		if (out[i] == '\n' || out[i] == '\r')
			out[i] = ' ';
	out[n++] = '\n';
	ssize_t w = send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
}

static void run(struct client *cl, control_handler h)
{
	char *line = cl->buf;
	size_t len = strlen(line);
	if (len && line[len - 1] == '\r')
		line[--len] = 0;
	log_info("control: \"%s\" from pid %ld uid %ld", line, (long)cl->pid, (long)cl->uid);
	char *arg = strchr(line, ' ');
	if (arg)
		*arg++ = 0;
	char reply[CONTROL_REPLY_MAX - 16];
	int rc = control_command_check(line, arg, reply, sizeof(reply));
	if (rc < 0)
		log_warn("control: %s", reply);
	else
		rc = h(line, arg, reply, sizeof(reply));
	answer(cl->fd, rc, reply);
}

/* Read what is there; a whole line runs, EOF or an error drops. */
static void client_read(struct client *cl, control_handler h)
{
	for (;;) {
		ssize_t r = read(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - 1 - cl->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			drop(cl);
			return;
		}
		char *nl = memchr(cl->buf + cl->len, '\n', (size_t)r);
		cl->len += (size_t)r;
		cl->buf[cl->len] = 0;
		if (nl) {
			*nl = 0;
			run(cl, h);
			drop(cl);
			return;
		}
		if (cl->len == sizeof(cl->buf) - 1) {
			log_warn("control: pid %ld sent more than %d bytes without a newline; dropped", (long)cl->pid,
				 CONTROL_LINE_MAX - 1);
			answer(cl->fd, -1, "command line too long");
			drop(cl);
			return;
		}
	}
}

static void accept_clients(control_handler h)
{
	for (;;) {
		int fd = accept4(C.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0 && errno != EAGAIN) {
			/* EMFILE and the like: the connection stays queued and the
			 * socket readable; stop polling it for a while, not spin */
			log_error("control: accept: %s; not accepting for %d ms", strerror(errno), CONTROL_PAUSE_MS);
			C.paused_until_ms = monotonic_ms() + CONTROL_PAUSE_MS;
			return;
		}
		if (fd < 0)
			return;
		struct ucred uc;
		socklen_t ul = sizeof(uc);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) < 0) {
			log_error("control: SO_PEERCRED: %s", strerror(errno));
			close(fd);
			continue;
		}
		/* the socket's mode already keeps others out: this is the
		 * second lock (a mode changed by hand, a shared directory) */
		if (uc.uid != 0 && uc.uid != geteuid()) {
			log_warn("control: refused pid %ld uid %ld (only uid 0 and %ld may control this master)",
				 (long)uc.pid, (long)uc.uid, (long)geteuid());
			answer(fd, -1, "permission denied");
			close(fd);
			continue;
		}
		size_t i;
		for (i = 0; i < CONTROL_CLIENTS && C.c[i].fd >= 0; i++)
			;
		if (i == CONTROL_CLIENTS) {
			log_warn("control: refused pid %ld: %d clients already waiting", (long)uc.pid, CONTROL_CLIENTS);
			answer(fd, -1, "busy: too many control clients at once");
			close(fd);
			continue;
		}
		struct client *cl = &C.c[i];
		*cl = (struct client){
		    .fd = fd, .pid = uc.pid, .uid = uc.uid, .deadline_ms = monotonic_ms() + CONTROL_CLIENT_MS};
		client_read(cl, h); /* the line is often there already */
	}
}

void control_on_poll(const struct pollfd *p, size_t n, control_handler h)
{
	init_clients();
	int listen_ready = 0;
	/* clients first, then accept: a fd closed here and reused by accept
	 * cannot be mistaken for an entry of p */
	for (size_t k = 0; k < n; k++) {
		if (!p[k].revents)
			continue;
		if (p[k].fd == C.fd) {
			listen_ready = 1;
			continue;
		}
		for (size_t i = 0; i < CONTROL_CLIENTS; i++)
			if (C.c[i].fd == p[k].fd) {
				client_read(&C.c[i], h);
				break;
			}
	}
	if (listen_ready && C.fd >= 0)
		accept_clients(h);
	int64_t now = monotonic_ms();
	for (size_t i = 0; i < CONTROL_CLIENTS; i++)
		if (C.c[i].fd >= 0 && now >= C.c[i].deadline_ms) {
			log_warn("control: pid %ld sent no command within %d ms; dropped", (long)C.c[i].pid,
				 CONTROL_CLIENT_MS);
			answer(C.c[i].fd, -1, "no command received in time");
			drop(&C.c[i]);
		}
}

/* ---- client ---- */

int control_request(const char *path, const char *cmd, const char *arg, int timeout_ms, char *reply, size_t cap)
{
	struct sockaddr_un sa;
	if (fill_addr(&sa, path) < 0) {
		snprintf(reply, cap, "cannot reach the master at %s: the path is too long for a unix socket", path);
		return -1;
	}
	char line[CONTROL_LINE_MAX];
	int n = snprintf(line, sizeof(line), "%s%s%s\n", cmd, arg ? " " : "", arg ? arg : "");
	if (n < 0 || (size_t)n >= sizeof(line)) {
		snprintf(reply, cap, "the command is longer than %d bytes", CONTROL_LINE_MAX - 1);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(reply, cap, "socket: %s", strerror(errno));
		return -1;
	}
	/* bounds connect (a full backlog), the write and the wait */
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		snprintf(reply, cap, "cannot reach the master at %s: %s%s", path, strerror(e),
			 e == ENOENT || e == ECONNREFUSED ? " (is cpm running?)"
			 : e == EACCES			  ? " (run cpm -s as the user the master runs as)"
							  : "");
		close(fd);
		return -1;
	}
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		snprintf(reply, cap, "sending to the master at %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	char buf[CONTROL_REPLY_MAX];
	size_t len = 0;
	char *nl = NULL;
	while (!nl && len < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			snprintf(reply, cap, "no answer from the master at %s within %d ms", path, timeout_ms);
			close(fd);
			return -1;
		}
		if (r <= 0)
			break;
		nl = memchr(buf + len, '\n', (size_t)r);
		len += (size_t)r;
	}
	close(fd);
	buf[len] = 0;
	if (nl)
		*nl = 0;
	if (strncmp(buf, "ok ", 3) == 0) {
		snprintf(reply, cap, "%s", buf + 3);
		return 0;
	}
	if (strncmp(buf, "error ", 6) == 0) {
		snprintf(reply, cap, "%s", buf + 6);
		return 1;
	}
	snprintf(reply, cap, "the master at %s closed the connection without an answer", path);
	return -1;
}
