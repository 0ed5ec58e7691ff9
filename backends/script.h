/* What the cgi and fastcgi backends share: finding the script a URL names
 * under a root, and the CGI environment for it. */
#ifndef CPM_SCRIPT_H
#define CPM_SCRIPT_H

#include "backend.h"

struct script {
	char filename[4096]; /* absolute path to exec */
	char dir[4096];	     /* its directory: the script's cwd */
	char name[4096];     /* SCRIPT_NAME */
	const char *path_info;
};

struct script_conf {
	const char *root;
	char *const *index;
	size_t nindex;
	int need_exec; /* cgi: the file must be executable (else 403) */
};

/* Walk info->rest under root: the first regular file is the script, the
 * rest of the path is PATH_INFO. A symlink is followed only while it stays
 * under root. Returns 0 or an HTTP status (403, 404, 414, 500); on a 403
 * for a file that has no execute bit (need_exec), s->filename is that file
 * (else it is ""), for the caller's log line. */
int script_find(const struct script_conf *g, const struct exchange_info *info, struct script *s);

/* A backend with one fixed program: s is that program (its directory is
 * the cwd), SCRIPT_NAME the route prefix and PATH_INFO info->rest.
 * Returns 0 or 414 (a name too long). */
int script_fixed(const char *program, const struct exchange_info *info, struct script *s);

/* The CGI/1.1 environment for s, with extra "NAME=value" strings last.
 * Returns a NULL-terminated array whose strings live in *arena (free both),
 * or NULL when out of memory. Both are sized from what they hold
 * (cgi_env_size). A document_root of "" gives no PATH_TRANSLATED. */
char **script_env(const struct exchange_info *info, const struct script *s, const char *document_root,
		  char *const *extra, size_t nextra, char **arena);

/* The Retry-After header (without CRLF) of a 503 for backend b: a quarter
 * of its timeout, 1 to 60 seconds. */
void script_retry_after(const struct backend_conf *b, char *buf, size_t len);

/* In a child about to exec (after fork or vfork: syscalls only): the
 * backend's resource limits and no_new_privs. Returns 0, or -1 with errno. */
int script_child_limits(const struct cgi_conf *g);

/* Why exec of filename (which exists) failed with err, as the operator
 * needs it, into buf: for a script, from its #! line ("interpreter
 * /usr/bin/nonexistent not found", "#! line ends in CR (CRLF line
 * endings)", no #! line at all); else strerror(err). Reads at most the
 * first 256 bytes (what the kernel reads of a #! line). */
void script_exec_error(const char *filename, int err, char *buf, size_t len);

/* 1 if g asks for any of them (the child sets them between vfork and
 * exec). */
int script_has_limits(const struct cgi_conf *g);

#endif
