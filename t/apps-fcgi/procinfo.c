/* Reports on its own process rather than on the request, for the pools
 * cpm runs itself (t/pools.bats). Without a QUERY_STRING: its pid, cwd,
 * RLIMIT_NOFILE, what fd 0 is, the inode of the FastCGI connection this
 * request came on, its environment (sorted, "env NAME=VALUE") and the fds
 * that were open when it started ("fd N -> TARGET", read from
 * /proc/self/fd before main, without the directory's own fd).
 *
 *   ?stderr  writes a line to its own stderr and one to its stdout (the
 *            process's fds 2 and 1, not the FastCGI streams), answers ok
 *   ?hold    reads the request, then waits (5 s at most) on the connection
 *            without answering; reports on stderr whether an
 *            FCGI_ABORT_REQUEST record came and when the peer closed */
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"

extern char **environ;

static char fds[4096];

__attribute__((constructor)) static void snapshot_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
			continue;
		char link[300], target[256];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t k = readlink(link, target, sizeof(target) - 1);
		target[k < 0 ? 0 : k] = 0;
		int w = snprintf(fds + n, sizeof(fds) - n, "fd %s -> %s\n", e->d_name, target);
		if (w < 0 || (size_t)w >= sizeof(fds) - n)
			break;
		n += (size_t)w;
	}
	closedir(d);
	signal(SIGPIPE, SIG_IGN);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void hold(FCGX_Request *r)
{
	char buf[4096];
	while (FCGX_GetStr(buf, sizeof(buf), r->in) > 0)
		;
	struct pollfd p = {.fd = r->ipcFd, .events = POLLIN};
	for (;;) {
		if (poll(&p, 1, 5000) <= 0) {
			fprintf(stderr, "hold: nothing from cpm within 5 s\n");
			return;
		}
		unsigned char h[8];
		ssize_t n = recv(r->ipcFd, h, sizeof(h), MSG_PEEK);
		if (n <= 0) {
			fprintf(stderr, "hold: cpm closed the connection\n");
			return;
		}
		if (n == sizeof(h) && h[1] == 2)
			fprintf(stderr, "hold: got FCGI_ABORT_REQUEST\n");
		/* consume the record (or whatever came) */
		size_t len = n == sizeof(h) ? 8u + (size_t)(h[4] << 8 | h[5]) + h[6] : (size_t)n;
		if (recv(r->ipcFd, buf, len < sizeof(buf) ? len : sizeof(buf), 0) <= 0) {
			fprintf(stderr, "hold: cpm closed the connection\n");
			return;
		}
	}
}

static void handle(FCGX_Request *r)
{
	const char *q = param(r, "QUERY_STRING");
	if (strcmp(q, "stderr") == 0) {
		fprintf(stderr, "a line on stderr from %d\n", (int)getpid());
		printf("a line on stdout from %d\n", (int)getpid());
		fflush(stdout);
		FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\nok\n");
		return;
	}
	if (strcmp(q, "hold") == 0) {
		hold(r);
		return;
	}
	FCGX_FPrintF(r->out, "Content-Type: text/plain\r\n\r\n");
	char cwd[512];
	if (!getcwd(cwd, sizeof(cwd)))
		strcpy(cwd, "?");
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	struct stat st;
	int listening = 0, domain = -1;
	socklen_t sl = sizeof(listening);
	getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &sl);
	sl = sizeof(domain);
	getsockopt(0, SOL_SOCKET, SO_DOMAIN, &domain, &sl);
	fstat(r->ipcFd, &st);
	FCGX_FPrintF(r->out, "pid=%d\nuid=%d\ncwd=%s\nnofile=%ld\nfd0=%s%s\nconn-inode=%lu\n", (int)getpid(),
		     (int)getuid(), cwd, (long)rl.rlim_cur,
		     domain == AF_UNIX	? "unix"
		     : domain == AF_INET ? "inet"
					 : "other",
		     listening ? " listening" : "", (unsigned long)st.st_ino);
	size_t n = 0;
	while (environ[n])
		n++;
	char **v = malloc((n + 1) * sizeof(*v));
	memcpy(v, environ, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp);
	for (size_t i = 0; i < n; i++)
		FCGX_FPrintF(r->out, "env %s\n", v[i]);
	free(v);
	FCGX_FPrintF(r->out, "%s", fds);
}
