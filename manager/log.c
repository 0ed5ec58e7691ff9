#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int level = LOG_INFO;
static int error_fd = 2;
static int access_fd = -1;
static int startup = 1; /* errors also go to stderr until serving */

static const char *const names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

void log_set_level(int l)
{
	level = l;
}

int log_get_level(void)
{
	return level;
}

static int open_log(const char *path, int *fdp)
{
	int fd;
	if (!path || strcmp(path, "-") == 0) {
		fd = 2;
	} else {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			log_error("cannot open log %s: %s", path, strerror(errno));
			return -1;
		}
	}
	if (*fdp > 2)
		close(*fdp);
	*fdp = fd;
	return 0;
}

int log_open_error(const char *path)
{
	return open_log(path, &error_fd);
}

int log_open_access(const char *path)
{
	if (!path) {
		if (access_fd > 2)
			close(access_fd);
		access_fd = -1;
		return 0;
	}
	return open_log(path, &access_fd);
}

void log_started(void)
{
	startup = 0;
}

int log_access_enabled(void)
{
	return access_fd >= 0;
}

void log_vmsg(int l, const char *fmt, va_list ap)
{
	if (l < level)
		return;
	int saved = errno;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%s] cpm[%ld]: ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[l],
			 (long)getpid());
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	if ((size_t)(n + m) > sizeof(line) - 2)
		m = (int)sizeof(line) - 2 - n;
	n += m;
	line[n++] = '\n';
	ssize_t w = write(error_fd, line, (size_t)n);
	if (startup && error_fd != 2 && l >= LOG_ERROR)
		w = write(2, line, (size_t)n);
	(void)w;
	errno = saved;
}

void log_msg(int l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(l, fmt, ap);
	va_end(ap);
}

void log_access_line(const char *line, int len)
{
	if (access_fd < 0)
		return;
	ssize_t w = write(access_fd, line, (size_t)len);
	(void)w;
}

void log_lines_flush(struct log_lines *l)
{
	if (!l->len)
		return;
	log_warn("%s: %.*s", l->prefix, (int)l->len, l->buf);
	l->len = 0;
}

void log_lines_feed(struct log_lines *l, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '\n') {
			log_lines_flush(l);
			continue;
		}
		if (l->len == sizeof(l->buf))
			log_lines_flush(l);
		l->buf[l->len++] = ((unsigned char)c < 0x20 && c != '\t') ? '?' : c;
	}
}
