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
struct log_lines {
	char prefix[300]; /* e.g. "cgi SCRIPT[PID]" */
	size_t len;	  /* bytes in buf */
	size_t width;	  /* ...and their length once escaped */
	char buf[LOG_LINES_PIECE];
	int64_t refill_ms;	       /* token bucket: last refill, 0 = full */
	unsigned tokens;	       /* lines that may be logged now */
	unsigned long long suppressed; /* lines dropped since the last summary */
};
void log_lines_feed(struct log_lines *l, const char *p, size_t n);
/* The program is done: log what is buffered (a last line without its
 * newline) and the count of suppressed lines, if any. */
void log_lines_flush(struct log_lines *l);

/* Write one preformatted access log line (without its newline). */
void log_access_line(const char *line, int len);

#endif
