/* Error and access logs. Each line is one write(2) to an O_APPEND fd. */
#ifndef CPM_LOG_H
#define CPM_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Parse "debug", "info", "warn", "error"; -1 if unknown. */
int log_level_parse(const char *s);
void log_set_level(int level);
int log_get_level(void);
/* In the master started as root with workers running as uid: every log
 * file opened from now on that is a regular file not owned by uid is
 * given to uid (fchown) and made owner-writable, so the workers can open it
 * again on USR1, as nginx does. (uid_t)-1 = leave owners alone. */
void log_set_owner(uid_t uid);
/* Open the error log (NULL or "-" = stderr). Returns 0 / -1. */
int log_open_error(const char *path);
/* Open the access log (NULL = off, "-" = stderr). Returns 0 / -1. */
int log_open_access(const char *path);
int log_access_enabled(void);
/* Startup is over: errors stop being copied to stderr. */
void log_started(void);

/* One line in the error log: "TIME [LEVEL] cpm[PID]: MESSAGE", at most
 * LOG_LINE_MAX bytes. The formatted message is escaped (log_escape), so no
 * caller can write a newline, a terminal escape or a forged line, whatever
 * it passes; a message cut to fit ends with "...". */
#define LOG_LINE_MAX 2048
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* The one escaping of log text: copy src[0..len) into dst (cap bytes,
 * NUL included) with every byte that is not printable ASCII (< 0x20, 0x7f,
 * >= 0x80) written as \xNN, a backslash as \\, and each byte found in
 * extra (NULL, or e.g. "\"" for a quoted access log field) as \xNN. An
 * escape is never cut: output stops before the first byte whose escape does
 * not fit. Returns the length written (dst is NUL-terminated if cap > 0);
 * *used (if not NULL) gets how many bytes of src were consumed. */
size_t log_escape(char *dst, size_t cap, const char *src, size_t len, const char *extra, size_t *used);

/* Foreign bytes (a request target, a user name, a program's output) for a
 * quoted field of an error-log message: src[0..len) into dst (cap bytes,
 * NUL included) with '"' written as %22, so the field cannot be made to
 * look closed; the rest is escaped when the line is written. Returns dst. */
char *log_field(char *dst, size_t cap, const char *src, size_t len);
#define log_debug(...) (log_get_level() <= LOG_DEBUG ? log_msg(LOG_DEBUG, __VA_ARGS__) : (void)0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* A program's stderr (or stdout), logged at warn a line at a time as
 * "PREFIX: LINE", escaped like every log line; a line longer than
 * LOG_LINES_PIECE bytes once escaped is logged in pieces. Lines are rate
 * limited per log_lines (a token bucket: a burst of LOG_LINES_BURST, then
 * LOG_LINES_RATE a second; once lines are dropped, logging resumes when a
 * second's worth has refilled) and the drops are counted: "PREFIX: N lines
 * suppressed" is logged when logging resumes and by log_lines_flush. The
 * owner zeroes the struct and sets prefix. */
#define LOG_LINES_PIECE 1024
#define LOG_LINES_BURST 100
#define LOG_LINES_RATE	20

/* A token bucket for lines of one kind: a burst of `burst`, then `rate` a
 * second; once lines are dropped, logging resumes when a second's worth
 * has refilled. The owner zeroes it. */
struct log_rate {
	int64_t refill_ms;	       /* last refill, 0 = full */
	unsigned tokens;	       /* lines that may be logged now */
	unsigned long long suppressed; /* lines dropped since the last summary */
};
/* May a line be logged now? 1 (and *dropped: the lines dropped before it,
 * to be said first; the count starts again) or 0 (counted as dropped). */
int log_rate_allowed(struct log_rate *r, unsigned burst, unsigned rate, unsigned long long *dropped);

struct log_lines {
	char prefix[300]; /* e.g. "cgi SCRIPT[PID]" */
	size_t len;	  /* bytes in buf */
	size_t width;	  /* ...and their length once escaped */
	char buf[LOG_LINES_PIECE];
	struct log_rate rate;
};
void log_lines_feed(struct log_lines *l, const char *p, size_t n);
/* The program is done: log what is buffered (a last line without its
 * newline) and the count of suppressed lines, if any. */
void log_lines_flush(struct log_lines *l);

/* Write one preformatted access log line (without its newline). */
void log_access_line(const char *line, int len);

/* ---- access log formats ---- */

/* The fields of an access-log line; cpm.json(5) access_log_format. */
enum log_field {
	LF_TIME_ISO8601,
	LF_TIME_LOCAL,
	LF_REMOTE_ADDR,
	LF_REMOTE_PORT,
	LF_REMOTE_USER,
	LF_REQUEST,
	LF_METHOD,
	LF_TARGET,
	LF_PROTOCOL,
	LF_STATUS,
	LF_BYTES_SENT,
	LF_BODY_BYTES_SENT,
	LF_REQUEST_LENGTH,
	LF_REQUEST_TIME,
	LF_REQUEST_TIME_US,
	LF_QUEUE_TIME,
	LF_UPSTREAM_TIME,
	LF_UPSTREAM_PID,
	LF_BACKEND,
	LF_REQUEST_ID,
	LF_REFERER,
	LF_USER_AGENT,
	LF_CGI_CPU_USER,
	LF_CGI_CPU_SYS,
	LF_CGI_MAXRSS,
	LF_SCHEME,
	LF_SSL_PROTOCOL,
	LF_SSL_CIPHER,
	LF_SSL_SERVER_NAME,
	LF_SSL_SESSION_REUSED,
	LF_PEER_ADDR,
	LF_PEER_PORT,
	LF_LITERAL /* not a field: text of the template */
};

/* A CGI child's resource usage (wait4): not one, still running, known. */
enum log_usage { LOG_USAGE_NONE, LOG_USAGE_PENDING, LOG_USAGE_SET };

/* One request as the access log sees it. Client bytes are (pointer,
 * length) and escaped when written; a NULL pointer is "-" (null in JSON). */
struct log_access_rec {
	const char *time_local;		       /* "26/Nov/2026:13:31:38 +0000" */
	const char *remote_addr, *remote_port; /* the client as believed (PROXY, trusted proxies) */
	const char *peer_addr, *peer_port;     /* the connection's peer; NULL: remote_addr's */
	const char *scheme;		       /* "http" or "https"; NULL: by ssl_protocol */
	const char *remote_user;	       /* verified user, or NULL */
	const char *method;		       /* NULL: no request line */
	size_t method_len;
	const char *target;
	size_t target_len;
	int version_minor;
	int status;
	uint64_t bytes_sent, body_bytes_sent, request_length;
	int64_t request_time_us;
	int64_t queue_time_us;	  /* time waited for a backend's process or slot */
	int64_t upstream_time_us; /* -1: no backend process served it */
	long upstream_pid;	  /* 0: none */
	const char *backend;	  /* NULL: no route */
	const char *request_id;
	const char *referer;
	size_t referer_len;
	const char *user_agent;
	size_t user_agent_len;
	enum log_usage usage;
	int64_t cpu_user_us, cpu_sys_us;
	long maxrss_kb;
	/* TLS (all NULL on a plain connection) */
	const char *ssl_protocol, *ssl_cipher;
	const char *ssl_server_name; /* the client's SNI, or NULL */
	int ssl_session_reused;
};

/* A compiled format: "combined" (the default), "json" (one object a line
 * with every field) or a template of $name / ${name} fields ($$ is a '$').
 * Compiled once, at configuration load. */
struct log_format;
/* NULL if spec names an unknown field or has a stray '$': *err_off is
 * where in spec, err says what. */
struct log_format *log_format_compile(const char *spec, size_t *err_off, char *err, size_t errlen);
void log_format_free(struct log_format *f);

/* Where the CGI usage fields of a line rendered with usage pending go
 * (their values are not known yet; log_format_fill puts them in). */
#define LOG_HOLES_MAX 8
struct log_holes {
	unsigned n;
	struct {
		unsigned short off;
		unsigned char field, json;
	} h[LOG_HOLES_MAX];
};
/* An access-log line, newline included, is at most LOG_ACCESS_MAX bytes:
 * client strings are cut (never inside an escape) so that the line's
 * other fields and text always fit. */
#define LOG_ACCESS_MAX 8192
/* Render r with f into buf (LOG_ACCESS_MAX bytes); returns the length.
 * holes: filled when r->usage is LOG_USAGE_PENDING (may be NULL then the
 * fields are "-"). */
size_t log_format_render(const struct log_format *f, const struct log_access_rec *r, char *buf,
			 struct log_holes *holes);
/* line[0..len) rendered with holes, with the usage fields of u put in:
 * into out (LOG_ACCESS_MAX bytes); returns the length. */
size_t log_format_fill(const char *line, size_t len, const struct log_holes *holes, const struct log_access_rec *u,
		       char *out);

#endif
