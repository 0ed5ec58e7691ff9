#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "xalloc.h"

/* Sockets handed over by systemd (or a previous cpm), to be matched with
 * the configured addresses before anything is bound. */
static int *adopt_fds;
static int *adopt_sd; /* from systemd */
static size_t nadopt;

void listeners_adopt(const int *fds, size_t n, int from_systemd)
{
	adopt_fds = xrealloc(adopt_fds, (nadopt + n) * sizeof(int));
	adopt_sd = xrealloc(adopt_sd, (nadopt + n) * sizeof(int));
	memcpy(adopt_fds + nadopt, fds, n * sizeof(int));
	for (size_t i = 0; i < n; i++)
		adopt_sd[nadopt + i] = from_systemd;
	nadopt += n;
}

static int take_adopted(const struct sockaddr *want, socklen_t wlen, int *from_systemd)
{
	for (size_t i = 0; i < nadopt; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getsockname(adopt_fds[i], (struct sockaddr *)&ss, &sl) < 0 || ss.ss_family != want->sa_family)
			continue;
		int same;
		if (want->sa_family == AF_UNIX)
			same = strcmp(((struct sockaddr_un *)&ss)->sun_path,
				      ((const struct sockaddr_un *)want)->sun_path) == 0;
		else
			same = sl == wlen && memcmp(&ss, want, sl) == 0;
		if (!same)
			continue;
		int fd = adopt_fds[i];
		*from_systemd = adopt_sd[i];
		adopt_fds[i] = adopt_fds[--nadopt];
		adopt_sd[i] = adopt_sd[nadopt];
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		return fd;
	}
	return -1;
}

void listeners_adopt_done(void)
{
	for (size_t i = 0; i < nadopt; i++) {
		log_warn("inherited socket fd %d matches no listen address; closing it", adopt_fds[i]);
		close(adopt_fds[i]);
	}
	free(adopt_fds);
	free(adopt_sd);
	adopt_fds = NULL;
	adopt_sd = NULL;
	nadopt = 0;
}

static int open_unix(struct listener *l, const char *path, int backlog)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("listen %s: path too long", l->addr);
		return -1;
	}
	strcpy(sun.sun_path, path);
	int afd = take_adopted((struct sockaddr *)&sun, sizeof(sun), &l->from_systemd);
	if (afd >= 0) {
		l->fd = afd;
		l->is_unix = 1;
		snprintf(l->host, sizeof(l->host), "localhost");
		snprintf(l->port, sizeof(l->port), "0");
		log_info("listen %s: inherited fd %d", l->addr, afd);
		return 0;
	}
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* a stale socket from an earlier run */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, backlog) < 0) {
		log_error("listen %s: %s", l->addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	l->fd = fd;
	l->is_unix = 1;
	snprintf(l->host, sizeof(l->host), "localhost");
	snprintf(l->port, sizeof(l->port), "0");
	return 0;
}

/* HOST:PORT, [V6]:PORT or :PORT resolved for binding: the first address,
 * IPv4 "any" for an empty host (the usual meaning of ":8000"). Returns
 * the list to free and sets *ai, or NULL after logging. */
static struct addrinfo *resolve_inet(const char *addr, struct addrinfo **ai)
{
	char host[256];
	const char *port = config_host_port(addr, host, sizeof(host));
	if (!port) {
		log_error("listen %s: host too long", addr);
		return NULL;
	}
	int any = host[0] == 0;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
	int rc = getaddrinfo(any ? NULL : host, port, &hints, &res);
	if (rc) {
		log_error("listen %s: %s", addr, gai_strerror(rc));
		return NULL;
	}
	*ai = res;
	for (struct addrinfo *p = res; p && any; p = p->ai_next)
		if (p->ai_family == AF_INET) {
			*ai = p;
			break;
		}
	return res;
}

int listener_matches(const struct listener *l, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (strcmp(l->addr, addr) == 0)
		return 1;
	if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	if (strncmp(addr, "unix:", 5) == 0)
		return ss.ss_family == AF_UNIX && strcmp(((struct sockaddr_un *)&ss)->sun_path, addr + 5) == 0;
	struct addrinfo *ai, *res = resolve_inet(addr, &ai);
	if (!res)
		return 0;
	int same = ai->ai_addrlen == sl && memcmp(ai->ai_addr, &ss, sl) == 0;
	freeaddrinfo(res);
	return same;
}

static int open_inet(struct listener *l, int backlog)
{
	struct addrinfo *ai, *res = resolve_inet(l->addr, &ai);
	if (!res)
		return -1;
	int fd = take_adopted(ai->ai_addr, ai->ai_addrlen, &l->from_systemd);
	int adopted = fd >= 0;
	if (adopted)
		log_info("listen %s: inherited fd %d", l->addr, fd);
	else
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd >= 0 && !adopted) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (fd < 0 || (!adopted && (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0))) {
		log_error("listen %s: %s", l->addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	char serv[sizeof(l->port)];
	getnameinfo((struct sockaddr *)&ss, sl, l->host, sizeof(l->host), serv, sizeof(serv),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	memcpy(l->port, serv, sizeof(l->port));
	freeaddrinfo(res);
	l->fd = fd;
	return 0;
}

int listeners_open(struct listener **out, size_t *n, char *const *addrs, size_t naddrs, int backlog)
{
	struct listener *ls = xcalloc(naddrs, sizeof(*ls));
	for (size_t i = 0; i < naddrs; i++) {
		ls[i].fd = -1;
		ls[i].addr = xstrdup(addrs[i]);
		int rc = strncmp(addrs[i], "unix:", 5) == 0 ? open_unix(&ls[i], addrs[i] + 5, backlog)
							    : open_inet(&ls[i], backlog);
		if (rc < 0) {
			listeners_close(ls, i + 1);
			return -1;
		}
		log_info("listening on %s (fd %d)", ls[i].addr, ls[i].fd);
	}
	*out = ls;
	*n = naddrs;
	return 0;
}

void listeners_close(struct listener *ls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ls[i].fd >= 0)
			close(ls[i].fd);
		free(ls[i].addr);
	}
	free(ls);
}
