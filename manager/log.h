/* Error and access logs. Each line is one write(2) to an O_APPEND fd. */
#ifndef CPM_LOG_H
#define CPM_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Parse "debug", "info", "warn", "error"; -1 if unknown. */
int log_level_parse(const char *s);
void log_set_level(int level);
int log_get_level(void);
/* Open the error log (NULL or "-" = stderr). Returns 0 / -1. */
int log_open_error(const char *path);
/* Open the access log (NULL = off, "-" = stderr). Returns 0 / -1. */
int log_open_access(const char *path);
int log_access_enabled(void);
/* Startup is over: errors stop being copied to stderr. */
void log_started(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *fmt, va_list ap);
#define log_debug(...) (log_get_level() <= LOG_DEBUG ? log_msg(LOG_DEBUG, __VA_ARGS__) : (void)0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* A program's stderr (or stdout), logged at warn a line at a time as
 * "PREFIX: LINE": control characters other than tab become '?', and a
 * line longer than the buffer is logged in pieces. The owner sets prefix. */
struct log_lines {
	char prefix[300]; /* e.g. "cgi SCRIPT[PID]" */
	size_t len;
	char buf[1024];
};
void log_lines_feed(struct log_lines *l, const char *p, size_t n);
/* Log what is buffered (a last line without its newline). */
void log_lines_flush(struct log_lines *l);

/* Write one preformatted access log line (without its newline). */
void log_access_line(const char *line, int len);

#endif
