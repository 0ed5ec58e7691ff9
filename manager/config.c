#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../protocol/http_auth.h"
#include "../protocol/http_file.h"
#include "../protocol/http_parser.h"
#include "../protocol/url.h"
#include "htpasswd.h"
#include "jsonpos.h"
#include "log.h"
#include "process.h"
#include "scoreboard.h"
#include "tls.h"
#include "xalloc.h"

#define MAX_DEPTH 8

/* Validation context: the key path to the value being checked. */
struct ctx {
	const char *file;
	const char *text;
	size_t textlen;
	struct jsonpos_step path[MAX_DEPTH];
	size_t depth;
	char *err;
	size_t errlen;
	int failed;
	/* relative paths in the file are taken from here: the directory of
	 * the configuration file (the start directory in --cgi mode) */
	const char *dir;
	/* started as root: the workers' user, whom roots must admit (NULL:
	 * nothing to check, we are that user or root) */
	const char *run_user;
	uid_t run_uid;
	gid_t run_gid;
	int col_add; /* an error inside a string value: columns past its start */
};

static void push_key(struct ctx *c, const char *key)
{
	c->path[c->depth++] = (struct jsonpos_step){key, 0};
}

static void push_index(struct ctx *c, size_t i)
{
	c->path[c->depth++] = (struct jsonpos_step){NULL, i};
}

static void pop(struct ctx *c)
{
	c->depth--;
}

static void fail_at(struct ctx *c, int at_key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Where the current path is in the text (1:1 without a text), and the
 * path as "a.b[2].c" into path[0..len). */
static void locate(const struct ctx *c, int at_key, int *line, int *col, char *path, size_t len)
{
	*line = *col = 1;
	if (c->text)
		jsonpos_locate(c->text, c->textlen, c->path, c->depth, at_key, line, col);
	size_t n = 0;
	path[0] = 0;
	for (size_t i = 0; i < c->depth && n + 32 < len; i++) {
		if (c->path[i].key)
			n += (size_t)snprintf(path + n, len - n, "%s%s", i ? "." : "", c->path[i].key);
		else
			n += (size_t)snprintf(path + n, len - n, "[%zu]", c->path[i].index);
	}
}

static void fail_at(struct ctx *c, int at_key, const char *fmt, ...)
{
	if (c->failed)
		return;
	c->failed = 1;
	int line, col;
	char path[512];
	locate(c, at_key, &line, &col, path, sizeof(path));
	col += c->col_add;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* at the top level there is no key path to show */
	const char *sep = path[0] ? ": " : "";
	if (c->text)
		snprintf(c->err, c->errlen, "%s:%d:%d: %s%s%s", c->file, line, col, path, sep, msg);
	else
		snprintf(c->err, c->errlen, "%s: %s%s%s", c->file, path, sep, msg);
}

#define fail(c, ...) fail_at(c, 0, __VA_ARGS__)

/* ---- typed getters: each checks the value at the current path ---- */

static int get_int(struct ctx *c, json_t *v, long long min, long long max, long long *out)
{
	if (!json_is_integer(v)) {
		fail(c, "expected an integer");
		return -1;
	}
	long long n = json_integer_value(v);
	if (n < min || n > max) {
		if (min == 1 && max >= INT_MAX)
			fail(c, "expected a positive integer");
		else
			fail(c, "expected an integer between %lld and %lld", min, max);
		return -1;
	}
	*out = n;
	return 0;
}

/* Size: integer bytes or "10M" style string. */
static int get_size(struct ctx *c, json_t *v, int64_t min, int64_t max, int64_t *out)
{
	int64_t n;
	if (json_is_integer(v)) {
		n = json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		errno = 0;
		long long x = strtoll(s, &end, 10);
		if (end == s || errno || x < 0 || s[0] == '-' || s[0] == '+' || s[0] == ' ') {
			fail(c, "expected a size (bytes, or a number with K, M or G)");
			return -1;
		}
		int shift = 0;
		if (*end == 'K' || *end == 'k')
			shift = 10, end++;
		else if (*end == 'M' || *end == 'm')
			shift = 20, end++;
		else if (*end == 'G' || *end == 'g')
			shift = 30, end++;
		if (*end || x > (INT64_MAX >> shift)) {
			fail(c, "expected a size (bytes, or a number with K, M or G)");
			return -1;
		}
		n = (int64_t)x << shift;
	} else {
		fail(c, "expected a size (bytes, or a number with K, M or G)");
		return -1;
	}
	if (n < min || n > max) {
		fail(c, "size out of range (%lld to %lld bytes)", (long long)min, (long long)max);
		return -1;
	}
	*out = n;
	return 0;
}

/* Duration: integer seconds or "500ms", "30s", "5m", "1h" (digits alone:
 * seconds). Stored in ms. Zero ("0", 0, "0s", "0ms") only where the key
 * gives it a meaning (allow_zero); a timeout has no "off". */
#define DURATION_FORMS "seconds, or a string such as \"500ms\", \"30s\", \"5m\", \"1h\""
static int get_duration(struct ctx *c, json_t *v, int allow_zero, int64_t *out_ms)
{
	int64_t ms;
	if (json_is_integer(v)) {
		long long n = json_integer_value(v);
		if (n < 0 || n > 100000000) {
			fail(c, "expected a duration (" DURATION_FORMS ")");
			return -1;
		}
		ms = n * 1000;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		errno = 0;
		long long x = strtoll(s, &end, 10);
		if (end == s || errno || x < 0 || x > 100000000 || s[0] == '-' || s[0] == '+' || s[0] == ' ') {
			fail(c, "expected a duration (" DURATION_FORMS ")");
			return -1;
		}
		if (strcmp(end, "ms") == 0)
			ms = x;
		else if (strcmp(end, "s") == 0 || *end == 0)
			ms = x * 1000;
		else if (strcmp(end, "m") == 0)
			ms = x * 60000;
		else if (strcmp(end, "h") == 0)
			ms = x * 3600000;
		else {
			fail(c, "expected a duration (" DURATION_FORMS ")");
			return -1;
		}
	} else {
		fail(c, "expected a duration (" DURATION_FORMS ")");
		return -1;
	}
	if (ms == 0 && !allow_zero) {
		fail(c, "expected a duration greater than 0 (this wait has no \"off\": every wait is bounded)");
		return -1;
	}
	*out_ms = ms;
	return 0;
}

static int get_string(struct ctx *c, json_t *v, char **out)
{
	if (!json_is_string(v) || json_string_length(v) == 0) {
		fail(c, "expected a non-empty string");
		return -1;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		fail(c, "string contains a NUL character");
		return -1;
	}
	free(*out);
	*out = xstrdup(json_string_value(v));
	return 0;
}

/* A string or null (null = off). */
static int get_string_or_null(struct ctx *c, json_t *v, char **out)
{
	if (json_is_null(v)) {
		free(*out);
		*out = NULL;
		return 0;
	}
	return get_string(c, v, out);
}

/* A key whose value is one of two strings: *out = 0 for first, 1 for
 * second; anything else fails naming both. */
static int get_either(struct ctx *c, json_t *o, const char *key, const char *first, const char *second, int *out)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	push_key(c, key);
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	if (strcmp(s, first) == 0)
		*out = 0;
	else if (strcmp(s, second) == 0)
		*out = 1;
	else
		fail(c, "expected \"%s\" or \"%s\"", first, second);
	pop(c);
	return c->failed ? -1 : 0;
}

static char **strv_append(char **v, size_t *n, char *s)
{
	char **nv = xrealloc(v, (*n + 2) * sizeof(*v));
	if (!nv)
		abort();
	nv[(*n)++] = s;
	nv[*n] = NULL;
	return nv;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int check_unknown(struct ctx *c, json_t *obj, const char *const *known)
{
	const char *key;
	json_t *v;
	json_object_foreach (obj, key, v) {
		int ok = 0;
		for (size_t i = 0; known[i]; i++)
			ok |= strcmp(key, known[i]) == 0;
		if (!ok) {
			push_key(c, key);
			fail_at(c, 1, "unknown key");
			pop(c);
			return -1;
		}
	}
	return 0;
}

static int valid_env_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

/* ---- sections ---- */

static void defaults(struct config *cf)
{
	cf->backlog = 1024;
	cf->workers = 2;
	cf->timeout_ms = 30000;
	cf->graceful_timeout_ms = 30000;
	cf->keepalive_ms = 5000;
	cf->header_timeout_ms = 10000;
	cf->client_timeout_ms = 60000;
	cf->lingering_time_ms = 30000;
	cf->lingering_timeout_ms = 5000;
	cf->max_connections = 1024;
	cf->limit_request_line = 8192;
	cf->limit_header_size = 32768;
	cf->limit_header_count = 100;
	cf->limit_header_field = 8192;
	cf->limit_body = 10 << 20;
	cf->body_buffer = 64 << 10;
	cf->limit_temp_files = (int64_t)4 << 30;
	cf->access_log = xstrdup("-");
	cf->access_log_format = xstrdup("combined");
	cf->umask = -1;
	cf->log_level = LOG_INFO;
}

static void cgi_defaults(struct cgi_conf *g)
{
	g->rl = (struct rlimits_conf){-1, -1, -1, -1};
	g->timeout_ms = 60000;
	g->max_concurrent = 32; /* per worker: a few slow clients cannot fork without bound */
	g->queue = 100;
	g->queue_timeout_ms = 10000;
	g->response_buffer = 64 << 10;
	g->response_temp_max = (int64_t)1 << 30;
}

/* The directory cpm started in: a relative configuration file (and, in
 * --cgi mode, the directory) is taken from it, also when a reload runs
 * after "chdir". */
static char *base_dir;

void config_set_base_dir(const char *dir)
{
	free(base_dir);
	base_dir = dir ? xstrdup(dir) : NULL;
}

/* The one reading of every path-valued key: p made absolute against the
 * configuration file's directory, as nginx takes paths from its prefix
 * (a new string), or a copy ("-" for a log is stderr, not a file). */
static char *absolute(const struct ctx *c, const char *p)
{
	char *r;
	if (!p || p[0] == '/' || strcmp(p, "-") == 0 || !c->dir)
		return p ? xstrdup(p) : NULL;
	if (asprintf(&r, "%s%s%s", c->dir, strcmp(c->dir, "/") ? "/" : "", p) < 0)
		abort();
	return r;
}

static void make_absolute(const struct ctx *c, char **p)
{
	char *a = absolute(c, *p);
	free(*p);
	*p = a;
}

static int check_reach_run(struct ctx *c, const char *path, int mode, const char *what);

static int set_root_path(struct ctx *c, char **out, const char *root)
{
	char *abs = absolute(c, root);
	char *real = realpath(abs, NULL);
	if (!real) {
		fail(c, "cannot use %s: %s", abs, strerror(errno));
		free(abs);
		return -1;
	}
	free(abs);
	struct stat st;
	if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fail(c, "%s is not a directory", real);
		free(real);
		return -1;
	}
	if (access(real, R_OK | X_OK) < 0) {
		fail(c, "cannot read %s: %s", real, strerror(errno));
		free(real);
		return -1;
	}
	if (check_reach_run(c, real, R_OK | X_OK, "read and search") < 0) {
		free(real);
		return -1;
	}
	*out = real;
	return 0;
}

static int set_root(struct ctx *c, struct cgi_conf *g, const char *root)
{
	return set_root_path(c, &g->root, root);
}

static int cgi_finish(struct cgi_conf *g, const char *path)
{
	/* PATH from "env" or "pass_env" wins over "path" and the default */
	for (size_t i = 0; i < g->nenv; i++)
		if (strncmp(g->env[i], "PATH=", 5) == 0)
			return 0;
	char *p = NULL;
	if (asprintf(&p, "PATH=%s", path ? path : "/usr/local/bin:/usr/bin:/bin") < 0)
		return -1;
	g->env = strv_append(g->env, &g->nenv, p);
	return 0;
}

static int parse_common(struct ctx *c, json_t *o, struct cgi_conf *g);

/* A cgi backend's "script": the one program every request runs. It is
 * never looked up through PATH (a relative path with a '/' is taken from
 * the configuration's directory), and must be an executable regular file for
 * the workers' user now, so a typo is a configuration error, not a 502 per
 * request. */
static void set_cgi_script(struct ctx *c, struct cgi_conf *g, json_t *v)
{
	char *s = NULL;
	struct stat st;
	push_key(c, "script");
	if (get_string(c, v, &s) < 0) {
		/* failed at the value */
	} else if (!strchr(s, '/')) {
		fail(c,
		     "expected a path with a '/' (a program is not looked up through PATH; \"./%s\" is in the "
		     "configuration's directory)",
		     s);
	} else if (make_absolute(c, &s), stat(s, &st) < 0) {
		fail(c, "cannot use %s: %s", s, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		fail(c, "%s is not a regular file", s);
	} else if (access(s, X_OK) < 0) {
		fail(c, "cannot run %s: %s", s, strerror(errno));
	} else if (check_reach_run(c, s, X_OK, "execute") == 0) {
		g->script = s;
		s = NULL;
	}
	free(s);
	pop(c);
}

/* "pass_authorization": the Authorization header goes on to the program
 * (default: fastcgi yes, as nginx and php-fpm expect; cgi no, as RFC 3875
 * and Apache's CGIPassAuth). */
static int parse_pass_authorization(struct ctx *c, json_t *o, struct cgi_conf *g, int dflt)
{
	json_t *v = json_object_get(o, "pass_authorization");
	g->pass_authorization = dflt;
	if (!v)
		return 0;
	push_key(c, "pass_authorization");
	if (!json_is_boolean(v))
		fail(c, "expected true or false");
	else
		g->pass_authorization = json_is_true(v);
	pop(c);
	return c->failed ? -1 : 0;
}

static int parse_cgi(struct ctx *c, json_t *o, struct cgi_conf *g)
{
	static const char *const known[] = {"type",
					    "script",
					    "root",
					    "timeout",
					    "max_concurrent",
					    "queue",
					    "queue_timeout",
					    "env",
					    "pass_env",
					    "path",
					    "index",
					    "rlimits",
					    "no_new_privs",
					    "response_buffer",
					    "response_temp_max",
					    "ignore_client_abort",
					    "pass_authorization",
					    NULL};
	if (check_unknown(c, o, known) < 0)
		return -1;
	json_t *v = json_object_get(o, "script");
	if (v) {
		/* "root" may come along, as for fastcgi: it only sets DOCUMENT_ROOT */
		if (json_object_get(o, "index")) {
			push_key(c, "index");
			fail_at(c, 1, "only without \"script\" (there is nothing to look up)");
			pop(c);
			return -1;
		}
		set_cgi_script(c, g, v);
		if (c->failed)
			return -1;
	} else if (!json_object_get(o, "root")) {
		fail(c, "needs \"root\" (programs under a directory) or \"script\" (one program)");
		return -1;
	}
	return parse_common(c, o, g) < 0 ? -1 : parse_pass_authorization(c, o, g, 0);
}

/* "rlimits": {"cpu": 10, "as": "512M", "nofile": 1024, "nproc": 64} */
static void parse_rlimits(struct ctx *c, json_t *o, struct rlimits_conf *rl)
{
	static const char *const known[] = {"cpu", "as", "nofile", "nproc", NULL};
	if (!json_is_object(o)) {
		fail(c, "expected an object (cpu, as, nofile, nproc)");
		return;
	}
	if (check_unknown(c, o, known) < 0)
		return;
	json_t *v;
	long long n;
	if ((v = json_object_get(o, "cpu"))) {
		push_key(c, "cpu");
		int64_t ms;
		if (get_duration(c, v, 0, &ms) == 0) {
			if (ms < 1000)
				fail(c, "expected at least one second");
			rl->cpu = ms / 1000;
		}
		pop(c);
	}
	if ((v = json_object_get(o, "as"))) {
		push_key(c, "as");
		get_size(c, v, 1 << 20, INT64_MAX, &rl->as);
		pop(c);
	}
	if ((v = json_object_get(o, "nofile"))) {
		push_key(c, "nofile");
		if (get_int(c, v, 3, 1 << 20, &n) == 0)
			rl->nofile = n;
		pop(c);
	}
	if ((v = json_object_get(o, "nproc"))) {
		push_key(c, "nproc");
		if (get_int(c, v, 1, 1 << 22, &n) == 0)
			rl->nproc = n;
		pop(c);
	}
}

/* A user name: its uid and, unless gid_set, its group. */
static int parse_user(struct ctx *c, json_t *v, char **name_out, uid_t *uid, gid_t *gid, int gid_set)
{
	char *name = NULL;
	if (get_string(c, v, &name) < 0)
		return -1;
	struct passwd *pw = getpwnam(name);
	if (!pw) {
		fail(c, "no such user \"%s\"", name);
		free(name);
		return -1;
	}
	*uid = pw->pw_uid;
	if (!gid_set)
		*gid = pw->pw_gid;
	free(*name_out);
	*name_out = name;
	return 0;
}

static int parse_group(struct ctx *c, json_t *v, gid_t *gid)
{
	char *name = NULL;
	if (get_string(c, v, &name) < 0)
		return -1;
	struct group *gr = getgrnam(name);
	if (!gr)
		fail(c, "no such group \"%s\"", name);
	else
		*gid = gr->gr_gid;
	free(name);
	return gr ? 0 : -1;
}

/* ---- what the unprivileged user can reach ---- */

static int privileged; /* cpm runs as root */

void config_set_privileged(int yes)
{
	privileged = yes;
}

/* In a child that has become the user: search permission on every
 * directory above path, then mode on path. 0, or the length of the reason
 * written into why. */
static int reach_here(const char *path, int mode, const char *what, char *why, size_t whylen)
{
	char buf[PATH_MAX];
	if (strlen(path) >= sizeof(buf))
		return snprintf(why, whylen, "path too long");
	strcpy(buf, path);
	for (char *s = strchr(buf + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = 0;
		if (access(buf, X_OK) < 0)
			return errno == EACCES ? snprintf(why, whylen, "search permission denied on %s", buf)
					       : snprintf(why, whylen, "%s: %s", buf, strerror(errno));
		*s = '/';
	}
	if (access(path, mode) < 0)
		return errno == EACCES ? snprintf(why, whylen, "%s permission denied on %s", what, path)
				       : snprintf(why, whylen, "%s: %s", path, strerror(errno));
	return 0;
}

/* Can user (uid, gid) reach path and use it with mode ("what" names mode
 * in the reason)? The master is root, so its own access() says nothing: a
 * child becomes the user, exactly as a worker or pool process does, and
 * tries. 0, or -1 with the first component denied in why. */
static int reach_as(const char *user, uid_t uid, gid_t gid, const char *path, int mode, const char *what, char *why,
		    size_t whylen)
{
	int p[2];
	why[0] = 0;
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "cannot check: pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = process_fork();
	if (pid == 0) {
		close(p[0]);
		int n = process_become(user, uid, gid) < 0
			    ? snprintf(why, whylen, "cannot become user %s: %s", user, strerror(errno))
			    : reach_here(path, mode, what, why, whylen);
		if (n > 0 && write(p[1], why, (size_t)n < whylen ? (size_t)n : whylen - 1) < 0)
			_exit(2);
		_exit(n > 0);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		snprintf(why, whylen, "cannot check: fork: %s", strerror(errno));
		return -1;
	}
	size_t len = 0;
	ssize_t r;
	while (len < whylen - 1 && ((r = read(p[0], why + len, whylen - 1 - len)) > 0 || (r < 0 && errno == EINTR)))
		len += r > 0 ? (size_t)r : 0;
	why[len] = 0;
	close(p[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (!why[0])
		snprintf(why, whylen, "the check failed");
	return -1;
}

/* reach_as, failing at the current key: the path, the user and why. */
static int check_reach(struct ctx *c, const char *user, uid_t uid, gid_t gid, const char *path, int mode,
		       const char *what)
{
	char why[600];
	if (reach_as(user, uid, gid, path, mode, what, why, sizeof(why)) == 0)
		return 0;
	fail(c, "%s is not reachable by user %s (%s)", path, user, why);
	return -1;
}

/* The same for the workers' user (nothing to check if there is none). */
static int check_reach_run(struct ctx *c, const char *path, int mode, const char *what)
{
	return c->run_user ? check_reach(c, c->run_user, c->run_uid, c->run_gid, path, mode, what) : 0;
}

/* A program to run: absolute, relative to the start directory, or found
 * in PATH now (so a typo is a configuration error, not a crash loop). */
static char *find_program(struct ctx *c, const char *name)
{
	if (strchr(name, '/')) {
		char *abs = absolute(c, name);
		if (access(abs, X_OK) < 0) {
			fail(c, "cannot run %s: %s", abs, strerror(errno));
			free(abs);
			return NULL;
		}
		return abs;
	}
	const char *path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; *p;) {
		const char *e = strchrnul(p, ':');
		char *cand;
		if (asprintf(&cand, "%.*s/%s", (int)(e - p), p, name) < 0)
			abort();
		if (access(cand, X_OK) == 0)
			return cand;
		free(cand);
		p = *e ? e + 1 : e;
	}
	fail(c, "%s: not found in /usr/local/bin:/usr/bin:/bin (give a path)", name);
	return NULL;
}

static void parse_pool(struct ctx *c, json_t *o, struct pool_conf *p)
{
	json_t *v = json_object_get(o, "command");
	long long n;
	push_key(c, "command");
	if (!json_is_array(v) || json_array_size(v) == 0) {
		fail(c, "expected an array: the program and its arguments");
	} else {
		size_t i;
		json_t *a;
		json_array_foreach (v, i, a) {
			push_index(c, i);
			char *s = NULL;
			if (get_string(c, a, &s) == 0) {
				if (i == 0) {
					char *prog = find_program(c, s);
					free(s);
					s = prog;
				}
				if (s)
					p->argv = strv_append(p->argv, &p->argc, s);
			}
			pop(c);
		}
	}
	pop(c);
	p->min = p->max = 1;
	p->idle_timeout_ms = 10000;
	json_t *procs = json_object_get(o, "processes"), *mn = json_object_get(o, "min"),
	       *mx = json_object_get(o, "max");
	if (procs) {
		push_key(c, "processes");
		if (mn || mx)
			fail_at(c, 1, "give either \"processes\" or \"min\" and \"max\"");
		else if (get_int(c, procs, 1, 256, &n) == 0)
			p->min = p->max = (int)n;
		pop(c);
	} else if (mn || mx) {
		if (!mn || !mx) {
			push_key(c, mn ? "min" : "max");
			fail_at(c, 1, "\"min\" and \"max\" go together");
			pop(c);
		} else {
			push_key(c, "min");
			if (get_int(c, mn, 0, 256, &n) == 0)
				p->min = (int)n;
			pop(c);
			push_key(c, "max");
			if (get_int(c, mx, 1, 256, &n) == 0) {
				p->max = (int)n;
				if (p->max < p->min)
					fail(c, "smaller than \"min\"");
			}
			pop(c);
		}
	}
	if ((v = json_object_get(o, "idle_timeout"))) {
		push_key(c, "idle_timeout");
		get_duration(c, v, 0, &p->idle_timeout_ms);
		pop(c);
	}
	if ((v = json_object_get(o, "max_requests"))) {
		push_key(c, "max_requests");
		if (get_int(c, v, 0, LONG_MAX, &n) == 0)
			p->max_requests = (long)n;
		pop(c);
	}
	if ((v = json_object_get(o, "cwd"))) {
		push_key(c, "cwd");
		if (get_string(c, v, &p->cwd) == 0) {
			make_absolute(c, &p->cwd);
			struct stat st;
			if (stat(p->cwd, &st) < 0 || !S_ISDIR(st.st_mode))
				fail(c, "%s is not a directory", p->cwd);
		}
		pop(c);
	}
	json_t *grp = json_object_get(o, "group");
	if (grp) {
		push_key(c, "group");
		parse_group(c, grp, &p->gid);
		pop(c);
	}
	if ((v = json_object_get(o, "user"))) {
		push_key(c, "user");
		parse_user(c, v, &p->user, &p->uid, &p->gid, grp != NULL);
		pop(c);
	} else if (grp) {
		push_key(c, "group");
		fail_at(c, 1, "\"group\" needs \"user\"");
		pop(c);
	}
	/* its processes run as its user, else as the workers' */
	const char *pu = p->user ? p->user : c->run_user;
	uid_t puid = p->user ? p->uid : c->run_uid;
	gid_t pgid = p->user ? p->gid : c->run_gid;
	if (privileged && pu && puid != 0 && !c->failed) {
		if (p->argc) {
			push_key(c, "command");
			push_index(c, 0);
			check_reach(c, pu, puid, pgid, p->argv[0], X_OK, "execute");
			pop(c);
			pop(c);
		}
		if (p->cwd) {
			push_key(c, "cwd");
			check_reach(c, pu, puid, pgid, p->cwd, X_OK, "search");
			pop(c);
		}
	}
	get_either(c, o, "socket", "unix", "tcp", &p->tcp);
	get_either(c, o, "reload", "restart", "keep", &p->reload_keep);
	p->id = -1;
}

int config_sockaddrs(const char *a, int numeric, struct sockaddr_storage *ss, socklen_t *len, size_t max,
		     const char **err)
{
	*err = "not an address";
	if (max == 0 || config_listen_valid(a) < 0)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (strncmp(a, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		sun->sun_family = AF_UNIX;
		snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", a + 5);
		len[0] = sizeof(*sun);
		return 1;
	}
	char host[256];
	const char *port = config_host_port(a, host, sizeof(host));
	if (!port) {
		*err = "host name too long";
		return -1;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
	if (numeric)
		hints.ai_flags |= AI_NUMERICHOST;
	int rc = getaddrinfo(host[0] ? host : "127.0.0.1", port, &hints, &res);
	if (rc) {
		*err = gai_strerror(rc);
		return -1;
	}
	int n = 0;
	for (struct addrinfo *ai = res; ai && (size_t)n < max; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(*ss))
			continue;
		memset(&ss[n], 0, sizeof(ss[n]));
		memcpy(&ss[n], ai->ai_addr, ai->ai_addrlen);
		len[n++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	if (n == 0)
		*err = "no usable address";
	return n ? n : -1;
}

#define ADDRS_PER_NAME 8

/* Append a to g's addresses: a host name is looked up here, when the
 * configuration is loaded (so again on each reload), never by a worker;
 * each address it has is an entry of its own. */
static void add_fcgi_address(struct ctx *c, struct cgi_conf *g, const char *a)
{
	struct sockaddr_storage ss[ADDRS_PER_NAME];
	socklen_t len[ADDRS_PER_NAME];
	const char *err;
	if (config_listen_valid(a) < 0) {
		fail(c, "expected \"HOST:PORT\", \"[V6]:PORT\" or \"unix:/PATH\"");
		return;
	}
	int n = config_sockaddrs(a, 0, ss, len, ADDRS_PER_NAME, &err);
	if (n < 0) {
		fail(c, "cannot resolve %s: %s", a, err);
		return;
	}
	g->sa = xrealloc(g->sa, (g->naddrs + (size_t)n) * sizeof(*g->sa));
	g->salen = xrealloc(g->salen, (g->naddrs + (size_t)n) * sizeof(*g->salen));
	for (int i = 0; i < n; i++) {
		g->sa[g->naddrs] = ss[i];
		g->salen[g->naddrs] = len[i];
		g->addrs = strv_append(g->addrs, &g->naddrs, xstrdup(a));
	}
}

static int parse_fastcgi(struct ctx *c, json_t *o, struct cgi_conf *g)
{
	static const char *const known[] = {"type",
					    "address",
					    "script",
					    "root",
					    "timeout",
					    "env",
					    "pass_env",
					    "path",
					    "index",
					    "command",
					    "processes",
					    "min",
					    "max",
					    "idle_timeout",
					    "max_requests",
					    "cwd",
					    "user",
					    "group",
					    "socket",
					    "reload",
					    "rlimits",
					    "no_new_privs",
					    "queue_timeout",
					    "keep_conn",
					    "response_buffer",
					    "response_temp_max",
					    "pass_authorization",
					    NULL};
	static const char *const pool_only[] = {
	    "processes", "min",	   "max",    "idle_timeout", "max_requests", "cwd",	      "user",
	    "group",	 "socket", "reload", "rlimits",	     "no_new_privs", "queue_timeout", NULL};
	if (check_unknown(c, o, known) < 0)
		return -1;
	json_t *v = json_object_get(o, "address"), *cmd = json_object_get(o, "command");
	if (!v && !cmd) {
		fail(c, "needs \"command\" (cpm runs the application) or \"address\" (it runs elsewhere)");
		return -1;
	}
	if (v && cmd) {
		push_key(c, "command");
		fail_at(c, 1, "give \"command\" or \"address\", not both");
		pop(c);
		return -1;
	}
	if (cmd) {
		if (json_object_get(o, "keep_conn")) {
			push_key(c, "keep_conn");
			fail_at(c, 1, "only for an external server (a pool always keeps its connections)");
			pop(c);
			return -1;
		}
		g->pool = xcalloc(1, sizeof(*g->pool));
		parse_pool(c, o, g->pool);
	} else {
		json_t *kc = json_object_get(o, "keep_conn");
		long long n;
		if (kc) {
			push_key(c, "keep_conn");
			if (get_int(c, kc, 0, 1024, &n) == 0)
				g->keep_conn = (int)n;
			pop(c);
		}
		for (size_t i = 0; pool_only[i]; i++)
			if (json_object_get(o, pool_only[i])) {
				push_key(c, pool_only[i]);
				fail_at(c, 1, "only for a pool (a backend with \"command\")");
				pop(c);
				return -1;
			}
		push_key(c, "address");
		if (json_is_string(v)) {
			add_fcgi_address(c, g, json_string_value(v));
		} else if (json_is_array(v) && json_array_size(v) > 0) {
			size_t i;
			json_t *a;
			json_array_foreach (v, i, a) {
				push_index(c, i);
				if (!json_is_string(a))
					fail(c, "expected \"HOST:PORT\", \"[V6]:PORT\" or \"unix:/PATH\"");
				else
					add_fcgi_address(c, g, json_string_value(a));
				pop(c);
			}
		} else {
			fail(c, "expected an address or a non-empty array of addresses");
		}
		pop(c);
	}
	if ((v = json_object_get(o, "script"))) {
		push_key(c, "script");
		if (get_string(c, v, &g->script) == 0 && g->script[0] != '/')
			fail(c, "expected an absolute path");
		pop(c);
	} else if (!json_object_get(o, "root")) {
		if (g->pool && g->pool->argc)
			g->script = xstrdup(g->pool->argv[0]); /* the application is the script */
		else if (!g->pool)
			fail(c, "needs \"script\" (one application file) or \"root\" (files under a directory)");
	}
	if (c->failed)
		return -1;
	return parse_common(c, o, g) < 0 ? -1 : parse_pass_authorization(c, o, g, 1);
}

static int header_safe(const char *s, int space_ok);

/* "index": file names tried for a directory, in order. One rule for every
 * backend: a name that could also be read as a URL (the static backend
 * redirects to it) is refused, not just a name with a '/'. */
static void parse_index(struct ctx *c, json_t *v, char ***index, size_t *n)
{
	push_key(c, "index");
	if (!json_is_array(v)) {
		fail(c, "expected an array of file names");
	} else {
		size_t i;
		json_t *ev;
		json_array_foreach (v, i, ev) {
			push_index(c, i);
			const char *s = json_is_string(ev) ? json_string_value(ev) : NULL;
			if (!s || !*s || strchr(s, '/') || s[0] == '.' || !header_safe(s, 0) || strchr(s, '?') ||
			    strchr(s, '%') || strchr(s, '#'))
				fail(c,
				     "expected a file name (no '/', '?', '%%', '#' or space, not starting with '.')");
			else
				*index = strv_append(*index, n, xstrdup(s));
			pop(c);
		}
	}
	pop(c);
}

static int parse_common(struct ctx *c, json_t *o, struct cgi_conf *g)
{
	cgi_defaults(g);
	json_t *v;
	long long n;
	char *path = NULL;
	if ((v = json_object_get(o, "root"))) {
		push_key(c, "root");
		char *root = NULL;
		if (get_string(c, v, &root) == 0 && set_root(c, g, root) == 0 && privileged && g->pool &&
		    g->pool->user && g->pool->uid != 0 && (!c->run_user || g->pool->uid != c->run_uid))
			check_reach(c, g->pool->user, g->pool->uid, g->pool->gid, g->root, R_OK | X_OK,
				    "read and search"); /* the pool's own user reads the scripts too */
		free(root);
		pop(c);
	}
	if ((v = json_object_get(o, "timeout"))) {
		push_key(c, "timeout");
		get_duration(c, v, 0, &g->timeout_ms);
		pop(c);
	}
	if ((v = json_object_get(o, "max_concurrent"))) {
		push_key(c, "max_concurrent");
		if (get_int(c, v, 0, 100000, &n) == 0)
			g->max_concurrent = (int)n;
		pop(c);
	}
	if ((v = json_object_get(o, "queue"))) {
		push_key(c, "queue");
		if (get_int(c, v, 0, 1000000, &n) == 0)
			g->queue = (int)n;
		pop(c);
	}
	if ((v = json_object_get(o, "queue_timeout"))) {
		push_key(c, "queue_timeout");
		get_duration(c, v, 0, &g->queue_timeout_ms);
		pop(c);
	}
	if ((v = json_object_get(o, "path"))) {
		push_key(c, "path");
		get_string(c, v, &path);
		pop(c);
	}
	if ((v = json_object_get(o, "env"))) {
		push_key(c, "env");
		if (!json_is_object(v)) {
			fail(c, "expected an object of strings");
		} else {
			const char *k;
			json_t *ev;
			json_object_foreach (v, k, ev) {
				push_key(c, k);
				if (!valid_env_name(k))
					fail_at(c, 1, "not a valid environment variable name");
				else if (!json_is_string(ev))
					fail(c, "expected a string");
				else {
					char *s;
					if (asprintf(&s, "%s=%s", k, json_string_value(ev)) < 0)
						abort();
					g->env = strv_append(g->env, &g->nenv, s);
				}
				pop(c);
			}
		}
		pop(c);
	}
	if ((v = json_object_get(o, "pass_env"))) {
		push_key(c, "pass_env");
		if (!json_is_array(v)) {
			fail(c, "expected an array of variable names");
		} else {
			size_t i;
			json_t *ev;
			json_array_foreach (v, i, ev) {
				push_index(c, i);
				if (!json_is_string(ev) || !valid_env_name(json_string_value(ev))) {
					fail(c, "expected an environment variable name");
				} else {
					const char *val = getenv(json_string_value(ev));
					if (val) {
						char *s;
						if (asprintf(&s, "%s=%s", json_string_value(ev), val) < 0)
							abort();
						g->env = strv_append(g->env, &g->nenv, s);
					}
				}
				pop(c);
			}
		}
		pop(c);
	}
	if ((v = json_object_get(o, "rlimits"))) {
		push_key(c, "rlimits");
		parse_rlimits(c, v, &g->rl);
		pop(c);
	}
	if ((v = json_object_get(o, "response_buffer"))) {
		push_key(c, "response_buffer");
		int64_t sz;
		if (get_size(c, v, 4096, (int64_t)1 << 30, &sz) == 0)
			g->response_buffer = (size_t)sz;
		pop(c);
	}
	if ((v = json_object_get(o, "response_temp_max"))) {
		push_key(c, "response_temp_max");
		get_size(c, v, 0, INT64_MAX, &g->response_temp_max);
		pop(c);
	}
	if ((v = json_object_get(o, "ignore_client_abort"))) {
		push_key(c, "ignore_client_abort");
		if (!json_is_boolean(v))
			fail(c, "expected true or false");
		else
			g->ignore_client_abort = json_is_true(v);
		pop(c);
	}
	if ((v = json_object_get(o, "no_new_privs"))) {
		push_key(c, "no_new_privs");
		if (!json_is_boolean(v))
			fail(c, "expected true or false");
		else
			g->no_new_privs = json_is_true(v);
		pop(c);
	}
	if ((v = json_object_get(o, "index")))
		parse_index(c, v, &g->index, &g->nindex);
	if (!c->failed)
		cgi_finish(g, path);
	free(path);
	return c->failed ? -1 : 0;
}

static int get_bool(struct ctx *c, json_t *o, const char *key, int *out)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return 0;
	push_key(c, key);
	if (!json_is_boolean(v))
		fail(c, "expected true or false");
	else
		*out = json_is_true(v);
	pop(c);
	return c->failed ? -1 : 0;
}

/* A string cpm writes into a response head or a request target as is:
 * printable ASCII (spaces allowed only if space_ok). */
static int header_safe(const char *s, int space_ok)
{
	for (; *s; s++)
		if ((unsigned char)*s < (space_ok ? 0x20 : 0x21) || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* The media types of a static backend: the mime.types file named, else
 * /etc/mime.types if it exists, else the built-in table. */
static void static_mime(struct ctx *c, json_t *o, struct static_conf *st)
{
	char *file = NULL;
	json_t *v = json_object_get(o, "mime_types");
	if (v) {
		push_key(c, "mime_types");
		if (get_string(c, v, &file) == 0)
			make_absolute(c, &file);
	}
	const char *path = file ? file : "/etc/mime.types";
	char why[512];
	size_t len = 0;
	char *text = (file || access(path, F_OK) == 0) ? config_read_file(path, 0, &len, why, sizeof(why)) : NULL;
	if (!text && file && !c->failed)
		fail(c, "%s", why);
	if (text) {
		size_t bad;
		size_t n = mime_types_parse(text, len, NULL, 0, &bad);
		if (n == 0 && !c->failed) {
			if (file)
				fail(c, "%s: no media types in it", file);
			free(text);
			text = NULL;
		} else {
			st->mime_alloc = xcalloc(n, sizeof(*st->mime_alloc));
			st->nmime = mime_types_parse(text, len, st->mime_alloc, n, NULL);
			st->mime = st->mime_alloc;
			st->mime_text = text;
		}
	}
	if (!st->mime) {
		st->mime = mime_builtin;
		st->nmime = mime_builtin_count;
	}
	if (v)
		pop(c);
	free(file);
}

static int parse_static(struct ctx *c, json_t *o, struct static_conf *st)
{
	static const char *const known[] = {"type",	     "root",	      "index",	  "autoindex",	"symlinks",
					    "precompressed", "cache_control", "fallback", "mime_types", NULL};
	if (check_unknown(c, o, known) < 0)
		return -1;
	json_t *v = json_object_get(o, "root");
	if (!v) {
		fail(c, "missing key \"root\"");
		return -1;
	}
	push_key(c, "root");
	char *root = NULL;
	if (get_string(c, v, &root) == 0)
		set_root_path(c, &st->root, root);
	free(root);
	pop(c);
	st->precompressed = 1;
	if ((v = json_object_get(o, "index"))) {
		parse_index(c, v, &st->index, &st->nindex);
	} else {
		st->index = strv_append(st->index, &st->nindex, xstrdup("index.html"));
	}
	get_bool(c, o, "autoindex", &st->autoindex);
	get_bool(c, o, "precompressed", &st->precompressed);
	get_either(c, o, "symlinks", "beneath", "follow", &st->follow_symlinks);
	if ((v = json_object_get(o, "cache_control"))) {
		push_key(c, "cache_control");
		if (get_string(c, v, &st->cache_control) == 0 && !header_safe(st->cache_control, 1))
			fail(c, "expected a header value (printable ASCII)");
		pop(c);
	}
	if ((v = json_object_get(o, "fallback"))) {
		push_key(c, "fallback");
		if (get_string(c, v, &st->fallback) == 0 && (st->fallback[0] != '/' || !header_safe(st->fallback, 0) ||
							     strchr(st->fallback, '?') || strchr(st->fallback, '#')))
			fail(c, "expected a local path (\"/index.php\"; no query: the request's is passed on)");
		pop(c);
	}
	if (!c->failed)
		static_mime(c, o, st);
	return c->failed ? -1 : 0;
}

/* The scoreboard's pool headers and backend statistics, and the pools,
 * keep a name in 64 bytes: a longer one would be cut there (a reload
 * would not find its pool again, cpm -s restart-pool would not find it
 * at all); a control character would reach the logs and metrics escaped
 * or dropped (two names, one series). */
#define BACKEND_NAME_MAX (sizeof(((struct pool_header *)0)->name) - 1)
_Static_assert(sizeof(((struct backend_stats *)0)->name) == BACKEND_NAME_MAX + 1, "one name size");

static int backend_name_check(struct ctx *c, const char *name)
{
	size_t n = strlen(name);
	if (n > BACKEND_NAME_MAX) {
		fail_at(c, 1, "a backend name has at most %zu bytes (it has %zu)", BACKEND_NAME_MAX, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
			fail_at(c, 1, "a backend name has no control characters");
			return -1;
		}
	return 0;
}

static int parse_backends(struct ctx *c, json_t *o, struct config *cf)
{
	if (!json_is_object(o) || json_object_size(o) == 0) {
		fail(c, "expected an object of backends (name -> backend)");
		return -1;
	}
	cf->backends = xcalloc(json_object_size(o), sizeof(*cf->backends));
	const char *name;
	json_t *b;
	json_object_foreach (o, name, b) {
		push_key(c, name);
		if (backend_name_check(c, name) < 0)
			return -1;
		struct backend_conf *bc = &cf->backends[cf->nbackends++];
		bc->name = xstrdup(name);
		json_t *t = json_is_object(b) ? json_object_get(b, "type") : NULL;
		if (!json_is_object(b)) {
			fail(c, "expected an object");
		} else if (!t) {
			fail(c, "missing key \"type\"");
		} else if (json_is_string(t) && strcmp(json_string_value(t), "status") == 0) {
			static const char *const known[] = {"type", NULL};
			bc->type = BACKEND_STATUS;
			check_unknown(c, b, known);
		} else if (json_is_string(t) && strcmp(json_string_value(t), "health") == 0) {
			static const char *const known[] = {"type", NULL};
			bc->type = BACKEND_HEALTH;
			check_unknown(c, b, known);
		} else if (json_is_string(t) && strcmp(json_string_value(t), "fastcgi") == 0) {
			bc->type = BACKEND_FASTCGI;
			parse_fastcgi(c, b, &bc->cgi);
		} else if (json_is_string(t) && strcmp(json_string_value(t), "static") == 0) {
			bc->type = BACKEND_STATIC;
			parse_static(c, b, &bc->st);
		} else if (!json_is_string(t) || strcmp(json_string_value(t), "cgi") != 0) {
			push_key(c, "type");
			fail(c, "unknown backend type (expected \"cgi\", \"fastcgi\", \"static\", \"status\" or "
				"\"health\")");
			pop(c);
		} else {
			bc->type = BACKEND_CGI;
			parse_cgi(c, b, &bc->cgi);
		}
		pop(c);
		if (c->failed)
			return -1;
	}
	return 0;
}

/* A non-empty array of strings, each checked by ok (NULL: any non-empty
 * string); the failing element is named. */
static char **get_strlist(struct ctx *c, json_t *a, size_t *n, int (*ok)(struct ctx *c, const char *s))
{
	char **v = NULL;
	*n = 0;
	if (!json_is_array(a) || json_array_size(a) == 0) {
		fail(c, "expected a non-empty array of strings");
		return NULL;
	}
	size_t i;
	json_t *e;
	json_array_foreach (a, i, e) {
		push_index(c, i);
		char *str = NULL;
		if (get_string(c, e, &str) == 0 && (!ok || ok(c, str) == 0))
			v = strv_append(v, n, str);
		else
			free(str);
		pop(c);
		if (c->failed)
			break;
	}
	if (c->failed) {
		strv_free(v, *n);
		*n = 0;
		return NULL;
	}
	return v;
}

static int suffix_ok(struct ctx *c, const char *s)
{
	if (strchr(s, '/')) {
		fail(c, "a suffix is the end of a file name (like \".php\"): no '/'");
		return -1;
	}
	return 0;
}

static int method_ok(struct ctx *c, const char *s)
{
	for (const char *p = s; *p; p++)
		if (!strchr("!#$%&'*+-.^_`|~", *p) && !(*p >= '0' && *p <= '9') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= 'a' && *p <= 'z')) {
			fail(c, "not an HTTP method name (a token, like \"GET\")");
			return -1;
		}
	return 0;
}

/* "allow" / "deny": addresses, ADDR/BITS, "all", "unix:". */
static struct cidr *parse_acl(struct ctx *c, json_t *a, size_t *n)
{
	size_t ns;
	char **v = get_strlist(c, a, &ns, NULL);
	if (!v)
		return NULL;
	struct cidr *list = xcalloc(ns, sizeof(*list));
	for (size_t i = 0; i < ns && !c->failed; i++) {
		const char *why;
		if (cidr_parse(v[i], &list[i], &why) < 0) {
			push_index(c, i);
			fail(c, "\"%s\": %s", v[i], why);
			pop(c);
		}
	}
	strv_free(v, ns);
	if (c->failed) {
		free(list);
		return NULL;
	}
	*n = ns;
	return list;
}

/* "methods": ["GET", "POST"]; HEAD is allowed with GET (as nginx's
 * limit_except does). */
static void parse_methods(struct ctx *c, json_t *a, struct route_conf *rc)
{
	rc->methods = get_strlist(c, a, &rc->nmethods, method_ok);
	if (!rc->methods)
		return;
	int get = 0, head = 0;
	size_t len = strlen("Allow: ") + 8;
	for (size_t i = 0; i < rc->nmethods; i++) {
		get |= strcmp(rc->methods[i], "GET") == 0;
		head |= strcmp(rc->methods[i], "HEAD") == 0;
		len += strlen(rc->methods[i]) + 2;
	}
	if (get && !head)
		rc->methods = strv_append(rc->methods, &rc->nmethods, xstrdup("HEAD"));
	rc->allow_header = xmalloc(len);
	size_t o = (size_t)snprintf(rc->allow_header, len, "Allow: ");
	for (size_t i = 0; i < rc->nmethods; i++)
		o += (size_t)snprintf(rc->allow_header + o, len - o, "%s%s", i ? ", " : "", rc->methods[i]);
}

/* "auth": {"basic": {"realm": "...", "user_file": "/etc/cpm/htpasswd"}} */
static void parse_auth(struct ctx *c, json_t *o, struct route_conf *rc)
{
	static const char *const known[] = {"basic", NULL};
	static const char *const known_basic[] = {"realm", "user_file", NULL};
	json_t *b = json_is_object(o) ? json_object_get(o, "basic") : NULL;
	if (!json_is_object(o) || !b) {
		fail(c, "expected {\"basic\": {\"realm\": ..., \"user_file\": ...}}");
		return;
	}
	if (check_unknown(c, o, known) < 0)
		return;
	push_key(c, "basic");
	struct auth_basic_conf *a = rc->auth = xcalloc(1, sizeof(*a));
	json_t *realm = json_is_object(b) ? json_object_get(b, "realm") : NULL;
	json_t *uf = json_is_object(b) ? json_object_get(b, "user_file") : NULL;
	if (!json_is_object(b)) {
		fail(c, "expected {\"realm\": ..., \"user_file\": ...}");
	} else if (check_unknown(c, b, known_basic) == 0) {
		if (!realm || !uf)
			fail(c, "missing key \"%s\"", realm ? "user_file" : "realm");
	}
	if (!c->failed) {
		push_key(c, "realm");
		if (get_string(c, realm, &a->realm) == 0) {
			for (const char *p = a->realm; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f) {
					fail(c, "a control character in the realm");
					break;
				}
		}
		if (!c->failed) {
			char chal[1024];
			if (http_auth_challenge(a->realm, chal, sizeof(chal)) == 0)
				fail(c, "the realm is too long");
			else if (asprintf(&a->challenge, "WWW-Authenticate: %s", chal) < 0)
				abort();
		}
		pop(c);
	}
	if (!c->failed) {
		push_key(c, "user_file");
		if (get_string(c, uf, &a->user_file) == 0) {
			make_absolute(c, &a->user_file);
			char why[1024];
			a->users = htpasswd_load(a->user_file, why, sizeof(why));
			if (!a->users)
				fail(c, "%s", why);
		}
		pop(c);
	}
	pop(c);
}

/* A name a client could send as Host, without a port. */
static int server_name_valid(const char *s)
{
	struct http_slice name, port;
	struct http_slice v = {s, strlen(s)};
	return http_host_split(v, &name, &port) == 0 && name.len == v.len;
}

/* Whether every request route a matches is also matched by route e (so,
 * e coming first, a is never used). Only the prefix and the suffixes
 * choose a route (see conn.c's route()): methods, allow/deny and auth
 * answer 405/403/401 rather than pass a request on, and server_name only
 * sets SERVER_NAME. e's prefix matches a's prefix as a path (then every
 * path under a's), and e has no suffix or each of a's suffixes ends with
 * one of e's. */
static int route_covers(const struct route_conf *e, const struct route_conf *a)
{
	if (!url_prefix_match(a->prefix, a->prefix_len, e->prefix, e->prefix_len))
		return 0;
	if (!e->nsuffix)
		return 1;
	if (!a->nsuffix)
		return 0;
	for (size_t i = 0; i < a->nsuffix; i++) {
		size_t al = strlen(a->suffix[i]);
		int ok = 0;
		for (size_t k = 0; k < e->nsuffix && !ok; k++) {
			size_t el = strlen(e->suffix[k]);
			ok = el <= al && memcmp(a->suffix[i] + al - el, e->suffix[k], el) == 0;
		}
		if (!ok)
			return 0;
	}
	return 1;
}

/* Routes are first-match, as written: a route that an earlier one
 * shadows completely is a warning (nginx habits put "/" first), at the
 * shadowed route, naming the earlier one. */
static void warn_shadowed_routes(struct ctx *c, const struct config *cf)
{
	for (size_t j = 1; j < cf->nroutes; j++) {
		for (size_t i = 0; i < j; i++) {
			const struct route_conf *e = &cf->routes[i];
			if (!route_covers(e, &cf->routes[j]))
				continue;
			int line, col, eline, ecol;
			char path[512], epath[512];
			push_index(c, i);
			locate(c, 0, &eline, &ecol, epath, sizeof(epath));
			pop(c);
			push_index(c, j);
			locate(c, 0, &line, &col, path, sizeof(path));
			pop(c);
			log_warn("%s:%d:%d: %s: this route is never used: %s (line %d, prefix \"%s\"%s) comes "
				 "first and matches every request it would (the first matching route wins: put the "
				 "longer prefix first)%s",
				 c->file, line, col, path, epath, eline, e->prefix, e->nsuffix ? " with suffixes" : "",
				 e->methods || e->allow || e->deny || e->auth
				     ? "; methods, allow, deny and auth do not pass a request on to a later route"
				     : "");
			break;
		}
	}
}

static int parse_routes(struct ctx *c, json_t *a, struct config *cf)
{
	if (!json_is_array(a) || json_array_size(a) == 0) {
		fail(c, "expected a non-empty array of routes");
		return -1;
	}
	cf->routes = xcalloc(json_array_size(a), sizeof(*cf->routes));
	size_t i;
	json_t *r;
	json_array_foreach (a, i, r) {
		push_index(c, i);
		static const char *const known[] = {"prefix", "backend", "server_name", "suffix", "allow",
						    "deny",   "methods", "auth",	NULL};
		if (!json_is_object(r)) {
			fail(c, "expected an object {\"prefix\": ..., \"backend\": ...}");
			return -1;
		}
		if (check_unknown(c, r, known) < 0)
			return -1;
		struct route_conf *rc = &cf->routes[cf->nroutes++];
		json_t *p = json_object_get(r, "prefix"), *b = json_object_get(r, "backend");
		if (!p || !b) {
			fail(c, "missing key \"%s\"", p ? "backend" : "prefix");
			return -1;
		}
		push_key(c, "prefix");
		if (get_string(c, p, &rc->prefix) == 0 && rc->prefix[0] != '/')
			fail(c, "a prefix must start with '/'");
		else if (!c->failed && strstr(rc->prefix, "//"))
			fail(c, "a prefix with \"//\" matches nothing (a request path has each run of '/' as one)");
		pop(c);
		if (c->failed)
			return -1;
		rc->prefix_len = strlen(rc->prefix);
		push_key(c, "backend");
		if (!json_is_string(b)) {
			fail(c, "expected a backend name");
		} else {
			for (size_t k = 0; k < cf->nbackends; k++)
				if (strcmp(cf->backends[k].name, json_string_value(b)) == 0)
					rc->backend = &cf->backends[k];
			if (!rc->backend)
				fail(c, "no backend named \"%s\"", json_string_value(b));
		}
		pop(c);
		json_t *sn = json_object_get(r, "server_name");
		if (sn) {
			push_key(c, "server_name");
			if (get_string(c, sn, &rc->server_name) == 0 && !server_name_valid(rc->server_name))
				fail(c, "expected a host name or IP address, without a port");
			pop(c);
		}
		json_t *v;
		if (!c->failed && (v = json_object_get(r, "suffix"))) {
			push_key(c, "suffix");
			rc->suffix = get_strlist(c, v, &rc->nsuffix, suffix_ok);
			pop(c);
		}
		if (!c->failed && (v = json_object_get(r, "deny"))) {
			push_key(c, "deny");
			rc->deny = parse_acl(c, v, &rc->ndeny);
			pop(c);
		}
		if (!c->failed && (v = json_object_get(r, "allow"))) {
			push_key(c, "allow");
			rc->allow = parse_acl(c, v, &rc->nallow);
			pop(c);
		}
		if (!c->failed && (v = json_object_get(r, "methods"))) {
			push_key(c, "methods");
			parse_methods(c, v, rc);
			pop(c);
		}
		if (!c->failed && (v = json_object_get(r, "auth"))) {
			push_key(c, "auth");
			parse_auth(c, v, rc);
			pop(c);
		}
		pop(c);
		if (c->failed)
			return -1;
	}
	return 0;
}

const char *config_host_port(const char *a, char *host, size_t cap)
{
	const char *colon = strrchr(a, ':');
	size_t hl = (size_t)(colon - a);
	if (a[0] == '[') {
		a++;
		hl -= 2;
	}
	if (hl >= cap)
		return NULL;
	memcpy(host, a, hl);
	host[hl] = 0;
	return colon + 1;
}

int config_listen_valid(const char *s)
{
	if (strncmp(s, "unix:", 5) == 0)
		return s[5] == '/' && strlen(s) - 5 < 108 ? 0 : -1;
	const char *colon = strrchr(s, ':');
	if (!colon || !colon[1])
		return -1;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -1;
	if (s[0] == '[' && (colon == s || colon[-1] != ']'))
		return -1;
	return 0;
}

static void add_listen(struct config *cf, const char *addr)
{
	cf->listen = strv_append(cf->listen, &cf->nlisten, xstrdup(addr));
	cf->lconf = xrealloc(cf->lconf, cf->nlisten * sizeof(*cf->lconf));
	cf->lconf[cf->nlisten - 1] = (struct listen_conf){0};
}

static void tls_conf_free(struct tls_conf *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncerts; i++) {
		free(t->certs[i].certificate);
		free(t->certs[i].key);
		strv_free(t->certs[i].names, t->certs[i].nnames);
	}
	free(t->certs);
	free(t->ciphers);
	free(t->ciphersuites);
	tls_ctx_free(t->ctx);
	free(t);
}

static void listen_conf_free(struct listen_conf *l, size_t n)
{
	for (size_t i = 0; l && i < n; i++) {
		tls_conf_free(l[i].tls);
		free(l[i].redirect_to);
	}
	free(l);
}

/* A host name, or "*." and one (one label of any name under it): letters,
 * digits, '-' and '.'. */
static int valid_server_name(const char *n)
{
	if (!n)
		return 0;
	if (n[0] == '*' && n[1] == '.')
		n += 2;
	size_t len = strlen(n);
	return len > 0 && len < 254 &&
	       strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == len;
}

/* {"certificate": FILE, "key": FILE, "names": [...]} (names only inside
 * "certificates") into t->certs. */
static void parse_cert_pair(struct ctx *c, json_t *o, struct tls_conf *t, int with_names)
{
	struct tls_cert_conf cc = {0};
	const char *keys[] = {"certificate", "key"};
	char **out[] = {&cc.certificate, &cc.key};
	for (size_t i = 0; i < 2 && !c->failed; i++) {
		json_t *v = json_object_get(o, keys[i]);
		if (!v) {
			fail(c, "missing key \"%s\" (%s)", keys[i],
			     i ? "the PEM private key" : "the PEM certificate followed by its chain");
			break;
		}
		push_key(c, keys[i]);
		if (get_string(c, v, out[i]) == 0)
			make_absolute(c, out[i]);
		pop(c);
	}
	json_t *names = with_names ? json_object_get(o, "names") : NULL;
	if (names && !c->failed) {
		push_key(c, "names");
		if (!json_is_array(names) || json_array_size(names) == 0)
			fail(c, "expected a non-empty array of server names (\"example.org\", \"*.example.org\")");
		size_t i;
		json_t *v;
		json_array_foreach (names, i, v) {
			push_index(c, i);
			const char *n = json_is_string(v) ? json_string_value(v) : NULL;
			if (!c->failed && !valid_server_name(n))
				fail(c, "expected a server name such as \"example.org\" or \"*.example.org\"");
			else if (!c->failed)
				cc.names = strv_append(cc.names, &cc.nnames, xstrdup(n));
			pop(c);
		}
		pop(c);
	}
	t->certs = xrealloc(t->certs, (t->ncerts + 1) * sizeof(*t->certs));
	t->certs[t->ncerts++] = cc;
}

static int tls_version(const char *s)
{
	if (strcmp(s, "TLSv1.2") == 0)
		return CPM_TLS12;
	if (strcmp(s, "TLSv1.3") == 0)
		return CPM_TLS13;
	return 0;
}

static void parse_tls(struct ctx *c, json_t *o, struct listen_conf *lc)
{
	static const char *const known[] = {"certificate", "key",	   "certificates",    "protocols",
					    "ciphers",	   "ciphersuites", "session_tickets", "session_timeout",
					    NULL};
	if (!json_is_object(o)) {
		fail(c, "expected an object: {\"certificate\": FILE, \"key\": FILE}");
		return;
	}
	if (check_unknown(c, o, known) < 0)
		return;
	struct tls_conf *t = lc->tls = xcalloc(1, sizeof(*t));
	t->min_version = CPM_TLS12;
	t->max_version = CPM_TLS13;
	t->session_tickets = 1;
	t->session_timeout_ms = 86400000; /* Mozilla intermediate: 1d */
	if (json_object_get(o, "certificate") || json_object_get(o, "key"))
		parse_cert_pair(c, o, t, 0);
	json_t *v = json_object_get(o, "certificates");
	if (v && !c->failed) {
		push_key(c, "certificates");
		if (!json_is_array(v) || json_array_size(v) == 0)
			fail(c,
			     "expected a non-empty array of {\"certificate\": FILE, \"key\": FILE, \"names\": [...]}");
		size_t i;
		json_t *e;
		static const char *const pair_known[] = {"certificate", "key", "names", NULL};
		json_array_foreach (v, i, e) {
			if (c->failed)
				break;
			push_index(c, i);
			if (!json_is_object(e))
				fail(c, "expected {\"certificate\": FILE, \"key\": FILE, \"names\": [...]}");
			else if (check_unknown(c, e, pair_known) == 0)
				parse_cert_pair(c, e, t, 1);
			pop(c);
		}
		pop(c);
	}
	if (!c->failed && t->ncerts == 0)
		fail(c, "a TLS listener needs \"certificate\" and \"key\" (or \"certificates\")");
	if ((v = json_object_get(o, "protocols")) && !c->failed) {
		push_key(c, "protocols");
		int lo = 0, hi = 0;
		size_t i;
		json_t *e;
		if (!json_is_array(v) || json_array_size(v) == 0)
			fail(c, "expected an array of \"TLSv1.2\", \"TLSv1.3\"");
		json_array_foreach (v, i, e) {
			int ver = json_is_string(e) ? tls_version(json_string_value(e)) : 0;
			if (!ver && !c->failed) {
				push_index(c, i);
				fail(c, "expected \"TLSv1.2\" or \"TLSv1.3\" (nothing older is offered)");
				pop(c);
			}
			if (ver && (!lo || ver < lo))
				lo = ver;
			if (ver > hi)
				hi = ver;
		}
		t->min_version = lo;
		t->max_version = hi;
		pop(c);
	}
	const char *skeys[] = {"ciphers", "ciphersuites"};
	char **sout[] = {&t->ciphers, &t->ciphersuites};
	for (size_t i = 0; i < 2; i++)
		if ((v = json_object_get(o, skeys[i])) && !c->failed) {
			push_key(c, skeys[i]);
			get_string(c, v, sout[i]);
			pop(c);
		}
	if ((v = json_object_get(o, "session_tickets")) && !c->failed) {
		push_key(c, "session_tickets");
		if (!json_is_boolean(v))
			fail(c, "expected true or false");
		t->session_tickets = json_is_true(v);
		pop(c);
	}
	if ((v = json_object_get(o, "session_timeout")) && !c->failed) {
		push_key(c, "session_timeout");
		get_duration(c, v, 0, &t->session_timeout_ms);
		pop(c);
	}
	if (c->failed)
		return;
	/* every certificate and key now, in the master (which may be the
	 * only one that can read the key): cpm -t and a reload see a problem
	 * here, before any worker needs the file */
	int which;
	const char *field;
	char why[600];
	if (tls_conf_load(t, &which, &field, why, sizeof(why)) < 0) {
		/* about a certificate's file, or a key of the tls object
		 * ("ciphers") */
		int pair = field && (strcmp(field, "certificate") == 0 || strcmp(field, "key") == 0);
		int in_list = json_object_get(o, "certificate") == NULL;
		if (which >= 0 && !in_list && which > 0)
			which--, in_list = 1; /* certs[0] is the top-level pair */
		in_list &= pair && which >= 0;
		if (in_list) {
			push_key(c, "certificates");
			push_index(c, (size_t)which);
		}
		if (field)
			push_key(c, field);
		fail(c, "%s", why);
		if (field)
			pop(c);
		if (in_list) {
			pop(c);
			pop(c);
		}
	}
}

/* A "listen" entry: "ADDRESS", or {"address": ..., "tls": {...},
 * "redirect_http": true | "https://HOST[:PORT]", "proxy_protocol": BOOL}. */
static void parse_listen_object(struct ctx *c, json_t *o, struct config *cf)
{
	static const char *const known[] = {"address", "tls", "redirect_http", "proxy_protocol", NULL};
	if (check_unknown(c, o, known) < 0)
		return;
	json_t *a = json_object_get(o, "address");
	if (!a) {
		fail(c, "missing key \"address\" (\"HOST:PORT\", \"[V6]:PORT\" or \"unix:/PATH\")");
		return;
	}
	push_key(c, "address");
	if (!json_is_string(a) || config_listen_valid(json_string_value(a)) < 0)
		fail(c, "expected \"HOST:PORT\", \"[V6]:PORT\" or \"unix:/PATH\"");
	pop(c);
	if (c->failed)
		return;
	add_listen(cf, json_string_value(a));
	struct listen_conf *lc = &cf->lconf[cf->nlisten - 1];
	json_t *v = json_object_get(o, "tls");
	if (v) {
		push_key(c, "tls");
		parse_tls(c, v, lc);
		pop(c);
	}
	if ((v = json_object_get(o, "redirect_http")) && !c->failed) {
		push_key(c, "redirect_http");
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;
		if (lc->tls)
			fail_at(c, 1, "redirect_http is for a plain listener (this one has \"tls\")");
		else if (json_is_true(v))
			lc->redirect_http = 1;
		else if (json_is_false(v))
			;
		else if (s && strncmp(s, "https://", 8) == 0 && s[8] && !strpbrk(s + 8, "/?# \t\r\n\"") &&
			 strlen(s) < 256)
			lc->redirect_http = 1, lc->redirect_to = xstrdup(s);
		else
			fail(c, "expected true, or an origin such as \"https://example.org\" or "
				"\"https://example.org:8443\"");
		pop(c);
	}
	if (!c->failed)
		get_bool(c, o, "proxy_protocol", &lc->proxy_protocol);
}

static int parse_listen(struct ctx *c, json_t *a, struct config *cf)
{
	if (!json_is_array(a) || json_array_size(a) == 0) {
		fail(c, "expected a non-empty array of addresses");
		return -1;
	}
	size_t i;
	json_t *v;
	json_array_foreach (a, i, v) {
		push_index(c, i);
		if (json_is_object(v)) {
			parse_listen_object(c, v, cf);
		} else if (!json_is_string(v) || config_listen_valid(json_string_value(v)) < 0) {
			fail(c, "expected \"HOST:PORT\", \"[V6]:PORT\", \"unix:/PATH\" or {\"address\": ..., \"tls\": "
				"...}");
		} else {
			add_listen(cf, json_string_value(v));
		}
		pop(c);
		if (c->failed)
			return -1;
	}
	for (size_t k = 0; k < cf->nlisten && !cf->https_port[0]; k++) {
		char host[256];
		const char *port = cf->lconf[k].tls && strncmp(cf->listen[k], "unix:", 5) != 0
				       ? config_host_port(cf->listen[k], host, sizeof(host))
				       : NULL;
		if (port)
			snprintf(cf->https_port, sizeof(cf->https_port), "%s", port);
	}
	for (size_t k = 0; k < cf->nlisten && !cf->https_port[0]; k++)
		if (cf->lconf[k].redirect_http && !cf->lconf[k].redirect_to) {
			push_index(c, k);
			push_key(c, "redirect_http");
			fail(c, "no listener has \"tls\" on a port to redirect to: give the origin "
				"(\"https://HOST:PORT\")");
			pop(c);
			pop(c);
			return -1;
		}
	return 0;
}

static void parse_limits(struct ctx *c, json_t *o, struct config *cf)
{
	static const char *const known[] = {"request_line", "header_count", "header_size", "header_field",
					    "body",	    "body_buffer",  "temp_files",  NULL};
	if (!json_is_object(o)) {
		fail(c, "expected an object");
		return;
	}
	if (check_unknown(c, o, known) < 0)
		return;
	json_t *v;
	int64_t n;
	long long ln;
	if ((v = json_object_get(o, "request_line"))) {
		push_key(c, "request_line");
		if (get_size(c, v, 64, 1 << 20, &n) == 0)
			cf->limit_request_line = (size_t)n;
		pop(c);
	}
	if ((v = json_object_get(o, "header_count"))) {
		push_key(c, "header_count");
		if (get_int(c, v, 1, 10000, &ln) == 0)
			cf->limit_header_count = (unsigned)ln;
		pop(c);
	}
	if ((v = json_object_get(o, "header_size"))) {
		push_key(c, "header_size");
		if (get_size(c, v, 256, 1 << 20, &n) == 0)
			cf->limit_header_size = (size_t)n;
		pop(c);
	}
	if ((v = json_object_get(o, "header_field"))) {
		push_key(c, "header_field");
		if (get_size(c, v, 64, 1 << 20, &n) == 0)
			cf->limit_header_field = (size_t)n;
		pop(c);
	}
	if ((v = json_object_get(o, "body"))) {
		push_key(c, "body");
		if (get_size(c, v, 0, INT64_MAX / 2, &n) == 0)
			cf->limit_body = n;
		pop(c);
	}
	if ((v = json_object_get(o, "body_buffer"))) {
		push_key(c, "body_buffer");
		if (get_size(c, v, 0, 1 << 30, &n) == 0)
			cf->body_buffer = (size_t)n;
		pop(c);
	}
	if ((v = json_object_get(o, "temp_files"))) {
		push_key(c, "temp_files");
		get_size(c, v, 0, INT64_MAX, &cf->limit_temp_files);
		pop(c);
	}
	if (!c->failed && cf->limit_request_line > cf->limit_header_size) {
		push_key(c, "request_line");
		fail(c, "larger than limits.header_size");
		pop(c);
	}
}

/* path's directory (a new string) */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
}

/* A file the master will create at path: its directory exists and
 * takes new files (fails at the current key). */
static void check_creatable(struct ctx *c, const char *path)
{
	char *dir = dir_of(path);
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		fail(c, "cannot create %s: the directory %s does not exist", path, dir);
	else if (access(dir, W_OK | X_OK) < 0)
		fail(c, "cannot create %s in %s: %s", path, dir, strerror(errno));
	free(dir);
}

/* The master opens (creates) the log files, as the user it runs as,
 * before anything starts and again on each reload: one it cannot open for
 * appending is an error here, at its key, not a failed start or a reload
 * that keeps the old logs. Nothing is created by the check. */
static void check_log_file(struct ctx *c, const char *key, const char *path)
{
	if (c->failed || !path || path[0] != '/')
		return; /* "-" (standard error) or none */
	push_key(c, key);
	struct stat st;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			fail(c, "%s is a directory", path);
		else if (access(path, W_OK) < 0)
			fail(c, "cannot open %s for appending: %s", path, strerror(errno));
	} else if (errno != ENOENT) {
		fail(c, "cannot open %s for appending: %s", path, strerror(errno));
	} else {
		check_creatable(c, path);
	}
	pop(c);
}

/* The pidfile is written after the start, when an error is late: its
 * directory must exist (and take the file) now. */
static void check_pidfile_dir(struct ctx *c, const char *path)
{
	if (c->failed || !path || path[0] != '/')
		return;
	push_key(c, "pidfile");
	check_creatable(c, path);
	pop(c);
}

/* Who the workers, CGI programs and pools run as: "user", or, started as
 * root without it, "nobody" (as nginx does); "user": "root" insists. */
static int run_as(struct ctx *c, struct config *cf)
{
	if (!privileged)
		return 0;
	if (!cf->user) {
		struct passwd *pw = getpwnam("nobody");
		if (!pw) {
			fail(c, "started as root without \"user\", and there is no user \"nobody\" to run the "
				"workers as: set \"user\"");
			return -1;
		}
		cf->user = xstrdup("nobody");
		cf->uid = pw->pw_uid;
		cf->gid = pw->pw_gid;
		cf->user_default = 1;
	}
	if (cf->uid != 0) {
		c->run_user = cf->user;
		c->run_uid = cf->uid;
		c->run_gid = cf->gid;
	}
	return 0;
}

/* The control socket: "control" as given (null: none), else next to the
 * pidfile, its ".pid" replaced by ".ctl" (cpm.pid -> cpm.ctl), else none.
 * *path is the parsed "control" (absolute pidfile given); -1 if the result
 * is too long for a unix socket. */
static int control_resolve(const struct ctx *c, const json_t *given, char **path, const char *pidfile)
{
	if (given) {
		make_absolute(c, path);
	} else if (pidfile) {
		size_t n = strlen(pidfile);
		if (n > 4 && strcmp(pidfile + n - 4, ".pid") == 0)
			n -= 4;
		if (asprintf(path, "%.*s.ctl", (int)n, pidfile) < 0)
			abort();
	}
	return *path && strlen(*path) > CONTROL_PATH_MAX ? -1 : 0;
}

/* Columns from the opening quote of the string value at the current path
 * to byte off of its decoded text (an escape counts as what it decodes
 * to). */
static int string_col(struct ctx *c, size_t off)
{
	int line = 1, col = 1;
	if (!c->text || jsonpos_locate(c->text, c->textlen, c->path, c->depth, 0, &line, &col) < 0)
		return 0;
	const char *p = c->text, *end = c->text + c->textlen;
	for (int l = 1; l < line && p < end; p++)
		l += *p == '\n';
	p += col - 1; /* the opening quote */
	const char *q = p + 1;
	for (size_t dec = 0; dec < off && q < end && *q != '"';) {
		if (*q != '\\') {
			q++;
			dec++;
		} else if (q + 1 < end && q[1] == 'u') {
			unsigned cp = (unsigned)strtoul((char[5]){q[2], q[3], q[4], q[5], 0}, NULL, 16);
			dec += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
			q += 6;
		} else {
			q += 2;
			dec++;
		}
	}
	return (int)(q - p);
}

/* "combined", "json" or a template, compiled now (never per request). */
static void parse_access_log_format(struct ctx *c, json_t *v, struct config *cf)
{
	if (get_string(c, v, &cf->access_log_format) < 0)
		return;
	char why[256];
	size_t off = 0;
	struct log_format *f = log_format_compile(cf->access_log_format, &off, why, sizeof(why));
	if (!f) {
		c->col_add = string_col(c, off);
		fail(c, "%s", why);
		c->col_add = 0;
		return;
	}
	log_format_free(cf->access_fmt);
	cf->access_fmt = f;
}

static void parse_top(struct ctx *c, json_t *root, struct config *cf)
{
	static const char *const known[] = {"listen",
					    "backlog",
					    "workers",
					    "timeout",
					    "graceful_timeout",
					    "drain_delay",
					    "sigterm",
					    "trusted_proxies",
					    "forwarded_header",
					    "keepalive",
					    "header_timeout",
					    "client_timeout",
					    "lingering_time",
					    "lingering_timeout",
					    "max_connections",
					    "max_requests",
					    "max_requests_jitter",
					    "limits",
					    "access_log",
					    "access_log_format",
					    "error_log",
					    "log_level",
					    "pidfile",
					    "control",
					    "server_name",
					    "routes",
					    "backends",
					    "user",
					    "group",
					    "umask",
					    "chdir",
					    NULL};
	if (!json_is_object(root)) {
		fail(c, "the configuration must be a JSON object");
		return;
	}
	if (check_unknown(c, root, known) < 0)
		return;
	json_t *v;
	long long n;
#define KEY(k)                                                                                                         \
	for (int once_ = ((v = json_object_get(root, k)) != NULL) ? (push_key(c, k), 1) : 0; once_; once_ = 0, pop(c))
	KEY("listen") parse_listen(c, v, cf);
	KEY("backlog") if (get_int(c, v, 1, 65535, &n) == 0) cf->backlog = (int)n;
	KEY("workers") if (get_int(c, v, 1, 1024, &n) == 0) cf->workers = (int)n;
	KEY("timeout") get_duration(c, v, 0, &cf->timeout_ms);
	KEY("graceful_timeout") get_duration(c, v, 1, &cf->graceful_timeout_ms);
	KEY("drain_delay") get_duration(c, v, 1, &cf->drain_delay_ms);
	KEY("sigterm")
	{
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		if (strcmp(s, "graceful") == 0 || strcmp(s, "fast") == 0)
			cf->sigterm_graceful = s[0] == 'g';
		else
			fail(c, "expected \"fast\" (TERM stops at once, as INT) or \"graceful\" (TERM is QUIT)");
	}
	KEY("trusted_proxies") cf->trusted_proxies = parse_acl(c, v, &cf->ntrusted_proxies);
	KEY("forwarded_header")
	{
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		if (strcasecmp(s, "X-Forwarded-For") == 0)
			cf->forwarded_header = FWD_HEADER_X_FORWARDED_FOR;
		else if (strcasecmp(s, "Forwarded") == 0)
			cf->forwarded_header = FWD_HEADER_FORWARDED;
		else
			fail(c, "expected \"X-Forwarded-For\" (with X-Forwarded-Proto) or \"Forwarded\" (RFC 7239)");
	}
	KEY("keepalive") get_duration(c, v, 1, &cf->keepalive_ms);
	KEY("header_timeout") get_duration(c, v, 0, &cf->header_timeout_ms);
	KEY("client_timeout") get_duration(c, v, 0, &cf->client_timeout_ms);
	KEY("lingering_time") get_duration(c, v, 1, &cf->lingering_time_ms);
	KEY("lingering_timeout") get_duration(c, v, 0, &cf->lingering_timeout_ms);
	KEY("max_connections") if (get_int(c, v, 1, 1000000, &n) == 0) cf->max_connections = (int)n;
	KEY("max_requests") if (get_int(c, v, 0, LONG_MAX, &n) == 0) cf->max_requests = (long)n;
	KEY("max_requests_jitter") if (get_int(c, v, 0, LONG_MAX, &n) == 0) cf->max_requests_jitter = (long)n;
	KEY("limits") parse_limits(c, v, cf);
	KEY("access_log") get_string_or_null(c, v, &cf->access_log);
	KEY("access_log_format") parse_access_log_format(c, v, cf);
	KEY("error_log") get_string(c, v, &cf->error_log);
	KEY("log_level")
	{
		if (!json_is_string(v) || (cf->log_level = log_level_parse(json_string_value(v))) < 0)
			fail(c, "expected one of \"debug\", \"info\", \"warn\", \"error\"");
	}
	KEY("pidfile") get_string_or_null(c, v, &cf->pidfile);
	KEY("control") get_string_or_null(c, v, &cf->control);
	KEY("server_name") get_string(c, v, &cf->server_name);
	KEY("user") parse_user(c, v, &cf->user, &cf->uid, &cf->gid, cf->group_set);
	KEY("group") if (parse_group(c, v, &cf->gid) == 0) cf->group_set = 1;
	KEY("umask")
	{
		/* JSON has no octal: only a string of octal digits. The integer
		 * 22 is twenty-two (mode 026), not what "umask 022" means in a
		 * shell, so an integer is refused rather than guessed at */
		long long m = -1;
		if (json_is_string(v)) {
			char *end;
			const char *str = json_string_value(v);
			m = strtoll(str, &end, 8);
			if (*end || !*str || *str == '-' || *str == '+' || *str == ' ')
				m = -1;
		}
		long long iv = json_is_integer(v) ? json_integer_value(v) : -1;
		char digits[32];
		snprintf(digits, sizeof(digits), "%lld", iv);
		if (json_is_integer(v) && iv >= 0 && iv <= 777 && strspn(digits, "01234567") == strlen(digits))
			fail(c,
			     "expected an octal mode as a string: \"%03lld\", not %lld (JSON has no octal numbers: "
			     "the integer %lld would be mode %03llo)",
			     iv, iv, iv, iv);
		else if (json_is_integer(v))
			fail(c, "expected an octal mode as a string, such as \"022\" (JSON has no octal numbers)");
		else if (m < 0 || m > 0777)
			fail(c, "expected an octal mode such as \"022\"");
		else
			cf->umask = (int)m;
	}
	KEY("chdir") get_string(c, v, &cf->chdir);
#undef KEY
	if (!c->failed && json_object_get(root, "group") && !cf->user) {
		push_key(c, "group");
		fail_at(c, 1, "\"group\" needs \"user\"");
		pop(c);
	}
	if (c->failed)
		return;
	make_absolute(c, &cf->access_log);
	make_absolute(c, &cf->error_log);
	make_absolute(c, &cf->pidfile);
	make_absolute(c, &cf->chdir);
	check_log_file(c, "error_log", cf->error_log);
	check_log_file(c, "access_log", cf->access_log);
	check_pidfile_dir(c, cf->pidfile);
	if (c->failed)
		return;
	if (control_resolve(c, json_object_get(root, "control"), &cf->control, cf->pidfile) < 0) {
		push_key(c, json_object_get(root, "control") ? "control" : "pidfile");
		fail_at(c, 1, "the control socket's path %s is longer than %d bytes", cf->control, CONTROL_PATH_MAX);
		pop(c);
		return;
	}
	for (size_t i = 0; cf->control && i < cf->nlisten; i++)
		if (strncmp(cf->listen[i], "unix:", 5) == 0 && strcmp(cf->listen[i] + 5, cf->control) == 0) {
			push_key(c, json_object_get(root, "control") ? "control" : "pidfile");
			fail_at(c, 1, "the control socket %s is also in \"listen\"", cf->control);
			pop(c);
			return;
		}
	if (run_as(c, cf) < 0)
		return;
	/* workers reopen the logs on USR1, as their user: only a warning, the
	 * logs themselves work (the master opens them) */
	const char *logs[] = {"error_log", "access_log"};
	char *paths[] = {cf->error_log, cf->access_log};
	for (size_t i = 0; i < 2; i++) {
		char *slash = paths[i] && paths[i][0] == '/' ? strrchr(paths[i], '/') : NULL;
		if (!slash || !c->run_user)
			continue;
		char *dir = slash == paths[i] ? xstrdup("/") : xstrndup(paths[i], (size_t)(slash - paths[i]));
		char why[600];
		if (reach_as(c->run_user, c->run_uid, c->run_gid, dir, X_OK, "search", why, sizeof(why)) < 0)
			log_warn("%s: %s: %s is not reachable by user %s (%s): the workers cannot reopen %s on USR1",
				 c->file, logs[i], dir, c->run_user, why, paths[i]);
		free(dir);
	}
	v = json_object_get(root, "backends");
	if (!v) {
		fail(c, "missing key \"backends\" (an object: backend name -> {\"type\": ...})");
		return;
	}
	push_key(c, "backends");
	parse_backends(c, v, cf);
	pop(c);
	if (c->failed)
		return;
	v = json_object_get(root, "routes");
	if (!v) {
		fail(c, "missing key \"routes\" (an array: [{\"prefix\": \"/\", \"backend\": NAME}, ...])");
		return;
	}
	push_key(c, "routes");
	if (parse_routes(c, v, cf) == 0)
		warn_shadowed_routes(c, cf);
	pop(c);
}

char *config_read_file(const char *file, int regular_only, size_t *len, char *err, size_t errlen)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer before fstat
	 * can refuse it (a regular file reads the same either way) */
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | (regular_only ? O_NONBLOCK : 0));
	struct stat st;
	if (fd < 0 || (regular_only && fstat(fd, &st) < 0)) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (regular_only && !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", file);
		close(fd);
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = xmalloc(cap + 1);
	for (;;) {
		if (n == cap) {
			if (cap > CONFIG_FILE_MAX) {
				snprintf(err, errlen, "%s: larger than 16 MiB", file);
				goto fail;
			}
			cap = cap * 2 > CONFIG_FILE_MAX ? CONFIG_FILE_MAX + 1 : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s: %s", file, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	*len = n;
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

/* The directory of a configuration file, as the file is named (a
 * symlink's own, not its target's), against the start directory if it is
 * relative: relative paths in it are taken from there. NULL (the current
 * directory) if no start directory is known. */
static char *config_dir(const char *file)
{
	char *dir = NULL;
	if (file[0] == '/' || !base_dir)
		dir = xstrdup(file);
	else if (asprintf(&dir, "%s/%s", base_dir, file) < 0)
		abort();
	char *slash = strrchr(dir, '/');
	if (!slash) {
		free(dir);
		return NULL;
	}
	slash[slash == dir ? 1 : 0] = 0;
	return dir;
}

struct config *config_load(const char *file, char *err, size_t errlen)
{
	size_t len;
	char *text = config_read_file(file, 0, &len, err, errlen);
	if (!text)
		return NULL;
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: %s", file, je.line, je.column, je.text);
		free(text);
		return NULL;
	}
	struct config *cf = xcalloc(1, sizeof(*cf));
	defaults(cf);
	cf->file = xstrdup(file);
	char *dir = config_dir(file);
	struct ctx c = {.file = file, .text = text, .textlen = len, .err = err, .errlen = errlen, .dir = dir};
	parse_top(&c, root, cf);
	free(dir);
	if (!c.failed && !cf->listen)
		add_listen(cf, "127.0.0.1:8000");
	json_decref(root);
	free(text);
	if (c.failed) {
		config_free(cf);
		return NULL;
	}
	return cf;
}

struct config *config_quick_cgi(const char *dir, char *err, size_t errlen)
{
	struct config *cf = xcalloc(1, sizeof(*cf));
	defaults(cf);
	struct ctx c = {.file = "--cgi", .err = err, .errlen = errlen, .dir = base_dir};
	if (run_as(&c, cf) < 0) {
		config_free(cf);
		return NULL;
	}
	push_key(&c, "root");
	cf->backends = xcalloc(1, sizeof(*cf->backends));
	cf->nbackends = 1;
	cf->backends[0].name = xstrdup("cgi");
	cf->backends[0].type = BACKEND_CGI;
	cgi_defaults(&cf->backends[0].cgi);
	if (set_root(&c, &cf->backends[0].cgi, dir) < 0 || cgi_finish(&cf->backends[0].cgi, NULL) < 0) {
		config_free(cf);
		return NULL;
	}
	cf->routes = xcalloc(1, sizeof(*cf->routes));
	cf->nroutes = 1;
	cf->routes[0].prefix = xstrdup("/");
	cf->routes[0].prefix_len = 1;
	cf->routes[0].backend = &cf->backends[0];
	add_listen(cf, "127.0.0.1:8000");
	return cf;
}

int config_set_listen(struct config *cf, char *const *addrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (config_listen_valid(addrs[i]) < 0)
			return -1;
	strv_free(cf->listen, cf->nlisten);
	listen_conf_free(cf->lconf, cf->nlisten);
	cf->listen = NULL;
	cf->lconf = NULL;
	cf->nlisten = 0;
	cf->https_port[0] = 0; /* -b listeners are plain */
	for (size_t i = 0; i < n; i++)
		add_listen(cf, addrs[i]);
	return 0;
}

void config_free(struct config *cf)
{
	if (!cf)
		return;
	free(cf->file);
	strv_free(cf->listen, cf->nlisten);
	listen_conf_free(cf->lconf, cf->nlisten);
	free(cf->access_log);
	free(cf->access_log_format);
	log_format_free(cf->access_fmt);
	free(cf->error_log);
	free(cf->pidfile);
	free(cf->control);
	free(cf->trusted_proxies);
	free(cf->server_name);
	free(cf->user);
	free(cf->chdir);
	for (size_t i = 0; i < cf->nroutes; i++) {
		free(cf->routes[i].prefix);
		struct route_conf *rc = &cf->routes[i];
		free(rc->server_name);
		strv_free(rc->suffix, rc->nsuffix);
		free(rc->deny);
		free(rc->allow);
		strv_free(rc->methods, rc->nmethods);
		free(rc->allow_header);
		if (rc->auth) {
			free(rc->auth->realm);
			free(rc->auth->user_file);
			free(rc->auth->challenge);
			htpasswd_free(rc->auth->users);
			free(rc->auth);
		}
	}
	free(cf->routes);
	for (size_t i = 0; i < cf->nbackends; i++) {
		struct backend_conf *b = &cf->backends[i];
		free(b->name);
		free(b->cgi.root);
		strv_free(b->cgi.env, b->cgi.nenv);
		strv_free(b->cgi.index, b->cgi.nindex);
		strv_free(b->cgi.addrs, b->cgi.naddrs);
		free(b->cgi.sa);
		free(b->cgi.salen);
		free(b->cgi.script);
		free(b->st.root);
		strv_free(b->st.index, b->st.nindex);
		free(b->st.cache_control);
		free(b->st.fallback);
		free(b->st.mime_text);
		free(b->st.mime_alloc);
		if (b->cgi.pool) {
			strv_free(b->cgi.pool->argv, b->cgi.pool->argc);
			free(b->cgi.pool->cwd);
			free(b->cgi.pool->user);
			free(b->cgi.pool);
		}
	}
	free(cf->backends);
	free(cf);
}

char *config_control_path(const char *file, char *err, size_t errlen)
{
	size_t len;
	char *text = config_read_file(file, 0, &len, err, errlen);
	if (!text)
		return NULL;
	json_error_t je;
	json_t *root = json_loadb(text, len, 0, &je);
	free(text);
	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: %s", file, je.line, je.column, je.text);
		return NULL;
	}
	/* paths as the master reads them: from the file's directory */
	struct ctx cx = {.file = file, .dir = config_dir(file)};
	json_t *c = json_object_get(root, "control"), *p = json_object_get(root, "pidfile");
	char *path = json_is_string(c) ? xstrdup(json_string_value(c)) : NULL;
	char *pidfile = json_is_string(p) ? absolute(&cx, json_string_value(p)) : NULL;
	int r = json_is_object(root) ? control_resolve(&cx, c, &path, pidfile) : 0;
	json_decref(root);
	free(pidfile);
	free((char *)cx.dir);
	if (r < 0 || !path) {
		snprintf(err, errlen, "%s: %s", file,
			 r < 0 ? "the control socket's path is too long for a unix socket"
			       : "no control socket: set \"control\" (or \"pidfile\", next to which it goes)");
		free(path);
		return NULL;
	}
	return path;
}
