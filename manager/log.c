#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int level = LOG_INFO;
static int error_fd = 2;
static int access_fd = -1;
static int startup = 1;		/* errors also go to stderr until serving */
static uid_t owner = (uid_t)-1; /* log_set_owner */

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

void log_set_owner(uid_t uid)
{
	owner = uid;
}

/* Give a regular file to the workers' user, as nginx does on reopen. */
static void give_to_owner(int fd, const char *path)
{
	struct stat st;
	if (owner == (uid_t)-1 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	if (st.st_uid != owner && fchown(fd, owner, (gid_t)-1) < 0)
		log_warn("log %s: chown to uid %ld: %s", path, (long)owner, strerror(errno));
	if ((st.st_mode & S_IWUSR) == 0 && fchmod(fd, (st.st_mode & 07777) | S_IRUSR | S_IWUSR) < 0)
		log_warn("log %s: chmod: %s", path, strerror(errno));
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
		give_to_owner(fd, path);
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

static size_t escape_width(unsigned char c, const char *extra)
{
	if (c < 0x20 || c >= 0x7f || (extra && c && strchr(extra, c)))
		return 4;
	return c == '\\' ? 2 : 1;
}

size_t log_escape(char *dst, size_t cap, const char *src, size_t len, const char *extra, size_t *used)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0, i = 0;
	if (cap == 0) {
		if (used)
			*used = 0;
		return 0;
	}
	for (; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		size_t w = escape_width(c, extra);
		if (n + w > cap - 1)
			break;
		if (w == 4) {
			dst[n++] = '\\';
			dst[n++] = 'x';
			dst[n++] = hex[c >> 4];
			dst[n++] = hex[c & 15];
		} else {
			if (w == 2)
				dst[n++] = '\\';
			dst[n++] = (char)c;
		}
	}
	dst[n] = 0;
	if (used)
		*used = i;
	return n;
}

/* Write "TIME [LEVEL] cpm[PID]: " and msg[0..len) escaped as one line. */
static void write_line(int l, const char *msg, size_t len)
{
	int saved = errno;
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int h = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%s] cpm[%ld]: ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[l],
			 (long)getpid());
	size_t n = (size_t)h, used;
	/* room for the message, "..." if it is cut, and the newline */
	n += log_escape(line + n, sizeof(line) - n - 4, msg, len, NULL, &used);
	if (used < len) {
		memcpy(line + n, "...", 3);
		n += 3;
	}
	line[n++] = '\n';
	ssize_t w = write(error_fd, line, n);
	if (startup && error_fd != 2 && l >= LOG_ERROR)
		w = write(2, line, n);
	(void)w;
	errno = saved;
}

void log_vmsg(int l, const char *fmt, va_list ap)
{
	if (l < level)
		return;
	int saved = errno;
	char msg[LOG_LINE_MAX];
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1; /* cut: longer than any line */
	write_line(l, msg, len);
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

static int64_t coarse_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "PREFIX: " + bytes, escaped, at warn (a NUL in bytes is logged too). */
static void lines_write(const struct log_lines *l, const char *p, size_t n)
{
	char msg[sizeof(l->prefix) + 2 + LOG_LINES_PIECE];
	size_t k = strnlen(l->prefix, sizeof(l->prefix));
	memcpy(msg, l->prefix, k);
	memcpy(msg + k, ": ", 2);
	memcpy(msg + k + 2, p, n);
	write_line(LOG_WARN, msg, k + 2 + n);
}

static void lines_summary(struct log_lines *l)
{
	if (!l->suppressed)
		return;
	char s[64];
	int n = snprintf(s, sizeof(s), "%llu line%s suppressed", l->suppressed, l->suppressed == 1 ? "" : "s");
	lines_write(l, s, (size_t)n);
	l->suppressed = 0;
}

/* May a line be logged now? Refills the bucket; after a drop, logging
 * resumes once a second's worth of lines (LOG_LINES_RATE) has refilled,
 * with the count of what was dropped first. */
static int lines_allowed(struct log_lines *l)
{
	int64_t now = coarse_ms();
	if (l->refill_ms == 0) {
		l->tokens = LOG_LINES_BURST;
		l->refill_ms = now;
	}
	int64_t add = (now - l->refill_ms) * LOG_LINES_RATE / 1000;
	if (add > 0) {
		l->tokens = add >= LOG_LINES_BURST - l->tokens ? LOG_LINES_BURST : l->tokens + (unsigned)add;
		l->refill_ms = l->tokens == LOG_LINES_BURST ? now : l->refill_ms + add * 1000 / LOG_LINES_RATE;
	}
	if (l->tokens == 0 || (l->suppressed && l->tokens < LOG_LINES_RATE)) {
		l->suppressed++;
		return 0;
	}
	l->tokens--;
	lines_summary(l);
	return 1;
}

/* Log the buffered line (or piece of a line), rate limited. */
static void lines_emit(struct log_lines *l)
{
	if (!l->len)
		return; /* blank lines are not logged */
	if (LOG_WARN >= level && lines_allowed(l))
		lines_write(l, l->buf, l->len);
	l->len = l->width = 0;
}

void log_lines_flush(struct log_lines *l)
{
	lines_emit(l);
	if (LOG_WARN >= level)
		lines_summary(l);
}

void log_lines_feed(struct log_lines *l, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '\n') {
			lines_emit(l);
			continue;
		}
		size_t w = escape_width((unsigned char)c, NULL);
		if (l->width + w > LOG_LINES_PIECE)
			lines_emit(l);
		l->buf[l->len++] = c;
		l->width += w;
	}
}
