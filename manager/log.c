#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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

char *log_field(char *dst, size_t cap, const char *src, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len && cap; i++) {
		if (src[i] == '"') {
			if (n + 3 >= cap)
				break;
			memcpy(dst + n, "%22", 3);
			n += 3;
		} else {
			if (n + 1 >= cap)
				break;
			dst[n++] = src[i];
		}
	}
	if (cap)
		dst[n] = 0;
	return dst;
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

/* Now, UTC, as "YYYY-MM-DDTHH:MM:SS.mmmZ" into dst (cap bytes): the time
 * of error-log lines and of the access log's time fields. Returns the
 * length written. */
static size_t iso8601_now(char *dst, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(dst, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap ? cap - 1 : 0;
}

/* Write "TIME [LEVEL] cpm[PID]: " and msg[0..len) escaped as one line. */
static void write_line(int l, const char *msg, size_t len)
{
	int saved = errno;
	char line[LOG_LINE_MAX];
	size_t n = iso8601_now(line, sizeof(line)), used;
	n += (size_t)snprintf(line + n, sizeof(line) - n, " [%s] cpm[%ld]: ", names[l], (long)getpid());
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

static void lines_summary(struct log_lines *l, unsigned long long dropped)
{
	if (!dropped)
		return;
	char s[64];
	int n = snprintf(s, sizeof(s), "%llu line%s suppressed", dropped, dropped == 1 ? "" : "s");
	lines_write(l, s, (size_t)n);
}

int log_rate_allowed(struct log_rate *r, unsigned burst, unsigned rate, unsigned long long *dropped)
{
	int64_t now = coarse_ms();
	if (r->refill_ms == 0) {
		r->tokens = burst;
		r->refill_ms = now;
	}
	int64_t add = (now - r->refill_ms) * rate / 1000;
	if (add > 0) {
		r->tokens = add >= burst - r->tokens ? burst : r->tokens + (unsigned)add;
		r->refill_ms = r->tokens == burst ? now : r->refill_ms + add * 1000 / rate;
	}
	if (r->tokens == 0 || (r->suppressed && r->tokens < rate)) {
		r->suppressed++;
		return 0;
	}
	r->tokens--;
	*dropped = r->suppressed;
	r->suppressed = 0;
	return 1;
}

/* May a line be logged now? After a drop, with the count of what was
 * dropped first. */
static int lines_allowed(struct log_lines *l)
{
	unsigned long long dropped;
	if (!log_rate_allowed(&l->rate, LOG_LINES_BURST, LOG_LINES_RATE, &dropped))
		return 0;
	lines_summary(l, dropped);
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
	if (LOG_WARN >= level) {
		lines_summary(l, l->rate.suppressed);
		l->rate.suppressed = 0;
	}
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

/* ---- access log formats ---- */

struct log_item {
	enum log_field field;
	int json;	/* the field as a JSON value */
	size_t reserve; /* bytes kept for what follows it in the line */
	size_t lit, litlen;
};

struct log_format {
	size_t n;
	struct log_item *items;
	char *lits;
};

static const char *const field_names[] = {
    [LF_TIME_ISO8601] = "time_iso8601",
    [LF_TIME_LOCAL] = "time_local",
    [LF_REMOTE_ADDR] = "remote_addr",
    [LF_REMOTE_PORT] = "remote_port",
    [LF_REMOTE_USER] = "remote_user",
    [LF_REQUEST] = "request",
    [LF_METHOD] = "method",
    [LF_TARGET] = "target",
    [LF_PROTOCOL] = "protocol",
    [LF_STATUS] = "status",
    [LF_BYTES_SENT] = "bytes_sent",
    [LF_BODY_BYTES_SENT] = "body_bytes_sent",
    [LF_REQUEST_LENGTH] = "request_length",
    [LF_REQUEST_TIME] = "request_time",
    [LF_REQUEST_TIME_US] = "request_time_us",
    [LF_QUEUE_TIME] = "queue_time",
    [LF_UPSTREAM_TIME] = "upstream_time",
    [LF_UPSTREAM_PID] = "upstream_pid",
    [LF_BACKEND] = "backend",
    [LF_REQUEST_ID] = "request_id",
    [LF_REFERER] = "referer",
    [LF_USER_AGENT] = "user_agent",
    [LF_CGI_CPU_USER] = "cgi_cpu_user",
    [LF_CGI_CPU_SYS] = "cgi_cpu_sys",
    [LF_CGI_MAXRSS] = "cgi_maxrss",
    [LF_SCHEME] = "scheme",
    [LF_SSL_PROTOCOL] = "ssl_protocol",
    [LF_SSL_CIPHER] = "ssl_cipher",
    [LF_SSL_SERVER_NAME] = "ssl_server_name",
    [LF_SSL_SESSION_REUSED] = "ssl_session_reused",
    [LF_PEER_ADDR] = "peer_addr",
    [LF_PEER_PORT] = "peer_port",
};

/* today's line (nginx's combined plus the request time in microseconds) */
static const char combined[] = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent "
			       "\"$referer\" \"$user_agent\" $request_time_us";
static const char json[] = "{\"time\":$time_iso8601,\"remote_addr\":$remote_addr,\"remote_port\":$remote_port,"
			   "\"peer_addr\":$peer_addr,"
			   "\"remote_user\":$remote_user,\"method\":$method,\"target\":$target,"
			   "\"protocol\":$protocol,\"status\":$status,\"bytes_sent\":$bytes_sent,"
			   "\"body_bytes_sent\":$body_bytes_sent,\"request_length\":$request_length,"
			   "\"request_time\":$request_time,\"queue_time\":$queue_time,"
			   "\"upstream_time\":$upstream_time,\"upstream_pid\":$upstream_pid,\"backend\":$backend,"
			   "\"request_id\":$request_id,\"referer\":$referer,\"user_agent\":$user_agent,"
			   "\"cgi_cpu_user\":$cgi_cpu_user,\"cgi_cpu_sys\":$cgi_cpu_sys,\"cgi_maxrss\":$cgi_maxrss,"
			   "\"scheme\":$scheme,\"ssl_protocol\":$ssl_protocol,\"ssl_cipher\":$ssl_cipher}";

#define FIELD_ROOM 32 /* the widest number a field writes, and then some */

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static int field_lookup(const char *s, size_t len)
{
	/* nginx's names for the two headers */
	if (len == 12 && memcmp(s, "http_referer", 12) == 0)
		return LF_REFERER;
	if (len == 15 && memcmp(s, "http_user_agent", 15) == 0)
		return LF_USER_AGENT;
	for (int i = 0; i < LF_LITERAL; i++)
		if (strlen(field_names[i]) == len && memcmp(field_names[i], s, len) == 0)
			return i;
	return -1;
}

static struct log_format *compile(const char *spec, int json_values, size_t *err_off, char *err, size_t errlen)
{
	size_t len = strlen(spec);
	struct log_format *f = calloc(1, sizeof(*f));
	/* at most one item per byte, and the literal text is no longer than spec */
	if (f) {
		f->items = calloc(len + 1, sizeof(*f->items));
		f->lits = malloc(len + 1);
	}
	if (!f || !f->items || !f->lits) {
		log_format_free(f);
		snprintf(err, errlen, "out of memory");
		*err_off = 0;
		return NULL;
	}
	size_t nl = 0;
	for (size_t i = 0; i < len;) {
		if (spec[i] != '$' || (i + 1 < len && spec[i + 1] == '$')) {
			struct log_item *it =
			    f->n && f->items[f->n - 1].field == LF_LITERAL ? &f->items[f->n - 1] : NULL;
			if (!it) {
				it = &f->items[f->n++];
				*it = (struct log_item){.field = LF_LITERAL, .lit = nl};
			}
			f->lits[nl++] = spec[i];
			it->litlen++;
			i += spec[i] == '$' ? 2 : 1;
			continue;
		}
		size_t at = i++, b = i, e;
		int braces = i < len && spec[i] == '{';
		if (braces) {
			b = ++i;
			while (i < len && spec[i] != '}')
				i++;
			e = i;
			if (i < len)
				i++;
			else
				e = (size_t)-1;
		} else {
			while (i < len && name_char(spec[i]))
				i++;
			e = i;
		}
		int id = e == (size_t)-1 || e == b ? -1 : field_lookup(spec + b, e - b);
		if (id < 0) {
			*err_off = at;
			if (e == (size_t)-1)
				snprintf(err, errlen, "\"${\" without its \"}\"");
			else if (e == b)
				snprintf(err, errlen, "a '$' without a field name (\"$$\" is a '$')");
			else
				snprintf(err, errlen, "unknown field \"$%.*s\"", (int)(e - b > 64 ? 64 : e - b),
					 spec + b);
			log_format_free(f);
			return NULL;
		}
		f->items[f->n++] = (struct log_item){.field = (enum log_field)id, .json = json_values};
	}
	/* what each item leaves room for: the text after it, FIELD_ROOM for
	 * each field after it, and the newline */
	size_t reserve = 1;
	for (size_t k = f->n; k-- > 0;) {
		f->items[k].reserve = reserve;
		reserve += f->items[k].field == LF_LITERAL ? f->items[k].litlen : FIELD_ROOM;
	}
	if (reserve > LOG_ACCESS_MAX / 2) {
		*err_off = 0;
		snprintf(err, errlen, "the format is too long (%zu bytes of text and fields; at most %d)", reserve,
			 LOG_ACCESS_MAX / 2);
		log_format_free(f);
		return NULL;
	}
	return f;
}

struct log_format *log_format_compile(const char *spec, size_t *err_off, char *err, size_t errlen)
{
	if (strcmp(spec, "combined") == 0)
		return compile(combined, 0, err_off, err, errlen);
	if (strcmp(spec, "json") == 0)
		return compile(json, 1, err_off, err, errlen);
	return compile(spec, 0, err_off, err, errlen);
}

void log_format_free(struct log_format *f)
{
	if (!f)
		return;
	free(f->items);
	free(f->lits);
	free(f);
}

struct lbuf {
	char *p;
	size_t n;
};

static void put(struct lbuf *b, const char *s, size_t len)
{
	memcpy(b->p + b->n, s, len);
	b->n += len;
}

/* A JSON string of client bytes: the escaping of log_escape (so the value
 * reads as in the combined line), then that text as JSON ('"' and '\\'
 * escaped). limit: where the closing quote must still fit. */
static void put_json_string(struct lbuf *b, const char *s, size_t len, size_t limit)
{
	static const char hex[] = "0123456789abcdef";
	b->p[b->n++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t w = c < 0x20 || c >= 0x7f ? 5 : c == '"' || c == '\\' ? 2 : 1;
		if (b->n + w + 1 > limit)
			break;
		if (w == 5) {
			put(b, "\\\\x", 3);
			b->p[b->n++] = hex[c >> 4];
			b->p[b->n++] = hex[c & 15];
		} else {
			if (w == 2)
				b->p[b->n++] = '\\';
			b->p[b->n++] = (char)c;
		}
	}
	b->p[b->n++] = '"';
}

/* Client bytes (NULL: "-" or null), escaped, within limit. */
static void put_client(struct lbuf *b, const char *s, size_t len, int json_value, const char *extra, size_t limit)
{
	if (!s) {
		if (json_value)
			put(b, "null", 4);
		else
			b->p[b->n++] = '-';
		return;
	}
	if (json_value)
		put_json_string(b, s, len, limit);
	else if (b->n < limit)
		b->n += log_escape(b->p + b->n, limit - b->n + 1, s, len, extra, NULL);
}

static void put_num(struct lbuf *b, long long v)
{
	b->n += (size_t)snprintf(b->p + b->n, FIELD_ROOM, "%lld", v);
}

/* microseconds as seconds: "0.000123" */
static void put_seconds(struct lbuf *b, int64_t us)
{
	if (us < 0)
		us = 0;
	b->n += (size_t)snprintf(b->p + b->n, FIELD_ROOM, "%lld.%06lld", (long long)(us / 1000000),
				 (long long)(us % 1000000));
}

static void put_none(struct lbuf *b, int json_value)
{
	put_client(b, NULL, 0, json_value, NULL, 0);
}

static void put_iso8601(struct lbuf *b)
{
	b->n += iso8601_now(b->p + b->n, FIELD_ROOM);
}

static void put_usage(struct lbuf *b, const struct log_access_rec *r, enum log_field f, int json_value)
{
	if (r->usage != LOG_USAGE_SET)
		put_none(b, json_value);
	else if (f == LF_CGI_MAXRSS)
		put_num(b, r->maxrss_kb);
	else
		put_seconds(b, f == LF_CGI_CPU_USER ? r->cpu_user_us : r->cpu_sys_us);
}

static void put_field(struct lbuf *b, const struct log_access_rec *r, const struct log_item *it, size_t limit)
{
	int j = it->json;
	switch (it->field) {
	case LF_TIME_ISO8601:
		if (j)
			b->p[b->n++] = '"';
		put_iso8601(b);
		if (j)
			b->p[b->n++] = '"';
		return;
	case LF_TIME_LOCAL: put_client(b, r->time_local, strlen(r->time_local), j, NULL, limit); return;
	case LF_REMOTE_ADDR: put_client(b, r->remote_addr, strlen(r->remote_addr), j, NULL, limit); return;
	case LF_REMOTE_PORT:
		if (j)
			put_num(b, atoll(r->remote_port));
		else
			put_client(b, r->remote_port, strlen(r->remote_port), 0, NULL, limit);
		return;
	case LF_PEER_ADDR: {
		const char *a = r->peer_addr ? r->peer_addr : r->remote_addr;
		put_client(b, a, strlen(a), j, NULL, limit);
		return;
	}
	case LF_PEER_PORT: {
		const char *pt = r->peer_port ? r->peer_port : r->remote_port;
		if (j)
			put_num(b, atoll(pt));
		else
			put_client(b, pt, strlen(pt), 0, NULL, limit);
		return;
	}
	case LF_REMOTE_USER: /* one field: a space is escaped too */
		put_client(b, r->remote_user, r->remote_user ? strlen(r->remote_user) : 0, j, "\" ", limit);
		return;
	case LF_REQUEST:
		if (j)
			b->p[b->n++] = '"';
		if (r->method) {
			size_t lim = j ? limit - 1 : limit;
			put_client(b, r->method, r->method_len, 0, "\"", lim);
			b->p[b->n++] = ' ';
			put_client(b, r->target, r->target_len, 0, "\"", lim);
			b->n += (size_t)snprintf(b->p + b->n, FIELD_ROOM, " HTTP/1.%d", r->version_minor);
		}
		if (j)
			b->p[b->n++] = '"';
		return;
	case LF_METHOD: put_client(b, r->method, r->method_len, j, "\"", limit); return;
	case LF_TARGET: put_client(b, r->method ? r->target : NULL, r->target_len, j, "\"", limit); return;
	case LF_PROTOCOL:
		if (!r->method) {
			put_none(b, j);
			return;
		}
		b->n += (size_t)snprintf(b->p + b->n, FIELD_ROOM, j ? "\"HTTP/1.%d\"" : "HTTP/1.%d", r->version_minor);
		return;
	case LF_STATUS: put_num(b, r->status); return;
	case LF_BYTES_SENT: put_num(b, (long long)r->bytes_sent); return;
	case LF_BODY_BYTES_SENT: put_num(b, (long long)r->body_bytes_sent); return;
	case LF_REQUEST_LENGTH: put_num(b, (long long)r->request_length); return;
	case LF_REQUEST_TIME: put_seconds(b, r->request_time_us); return;
	case LF_REQUEST_TIME_US: put_num(b, r->request_time_us); return;
	case LF_QUEUE_TIME: put_seconds(b, r->queue_time_us); return;
	case LF_UPSTREAM_TIME:
		if (r->upstream_time_us < 0)
			put_none(b, j);
		else
			put_seconds(b, r->upstream_time_us);
		return;
	case LF_UPSTREAM_PID:
		if (r->upstream_pid > 0)
			put_num(b, r->upstream_pid);
		else
			put_none(b, j);
		return;
	case LF_BACKEND: put_client(b, r->backend, r->backend ? strlen(r->backend) : 0, j, "\"", limit); return;
	case LF_REQUEST_ID:
		put_client(b, r->request_id, r->request_id ? strlen(r->request_id) : 0, j, "\"", limit);
		return;
	case LF_REFERER: put_client(b, r->referer, r->referer_len, j, "\"", limit); return;
	case LF_USER_AGENT: put_client(b, r->user_agent, r->user_agent_len, j, "\"", limit); return;
	case LF_CGI_CPU_USER:
	case LF_CGI_CPU_SYS:
	case LF_CGI_MAXRSS: put_usage(b, r, it->field, j); return;
	case LF_SCHEME: {
		const char *sc = r->scheme ? r->scheme : r->ssl_protocol ? "https" : "http";
		put_client(b, sc, strlen(sc), j, NULL, limit);
		return;
	}
	case LF_SSL_PROTOCOL:
		put_client(b, r->ssl_protocol, r->ssl_protocol ? strlen(r->ssl_protocol) : 0, j, "\"", limit);
		return;
	case LF_SSL_CIPHER:
		put_client(b, r->ssl_cipher, r->ssl_cipher ? strlen(r->ssl_cipher) : 0, j, "\"", limit);
		return;
	case LF_SSL_SERVER_NAME:
		put_client(b, r->ssl_server_name, r->ssl_server_name ? strlen(r->ssl_server_name) : 0, j, "\" ", limit);
		return;
	case LF_SSL_SESSION_REUSED: /* nginx's "r" or "." */
		put_client(b, !r->ssl_protocol ? NULL : r->ssl_session_reused ? "r" : ".", 1, j, NULL, limit);
		return;
	case LF_LITERAL: return;
	}
}

size_t log_format_render(const struct log_format *f, const struct log_access_rec *r, char *buf, struct log_holes *holes)
{
	struct lbuf b = {buf, 0};
	if (holes)
		holes->n = 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct log_item *it = &f->items[i];
		if (it->field == LF_LITERAL) {
			put(&b, f->lits + it->lit, it->litlen);
			continue;
		}
		size_t limit = LOG_ACCESS_MAX - it->reserve - FIELD_ROOM;
		if (b.n > limit)
			limit = b.n; /* cannot happen: each item had its room kept */
		int usage = it->field == LF_CGI_CPU_USER || it->field == LF_CGI_CPU_SYS || it->field == LF_CGI_MAXRSS;
		if (usage && r->usage == LOG_USAGE_PENDING && holes && holes->n < LOG_HOLES_MAX) {
			holes->h[holes->n].off = (unsigned short)b.n;
			holes->h[holes->n].field = (unsigned char)it->field;
			holes->h[holes->n].json = (unsigned char)it->json;
			holes->n++;
			continue;
		}
		put_field(&b, r, it, limit);
	}
	b.p[b.n++] = '\n';
	return b.n;
}

size_t log_format_fill(const char *line, size_t len, const struct log_holes *holes, const struct log_access_rec *u,
		       char *out)
{
	struct lbuf b = {out, 0};
	size_t from = 0;
	for (unsigned i = 0; i < holes->n; i++) {
		put(&b, line + from, holes->h[i].off - from);
		from = holes->h[i].off;
		struct log_item it = {.field = (enum log_field)holes->h[i].field, .json = holes->h[i].json};
		put_field(&b, u, &it, b.n);
	}
	put(&b, line + from, len - from);
	return b.n;
}
