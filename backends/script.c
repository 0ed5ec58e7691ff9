#include "script.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../protocol/cgi_env.h"

static int open_beneath(int rootfd, const char *rel)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
	return (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
}

/* The script rel (rl bytes) ends in one of the route's suffixes, or the
 * route has none. */
static int suffix_ok(const struct exchange_info *info, const char *rel, size_t rl)
{
	if (!info->nsuffix)
		return 1;
	for (size_t k = 0; k < info->nsuffix; k++) {
		size_t sl = strlen(info->suffix[k]);
		if (sl <= rl && memcmp(rel + rl - sl, info->suffix[k], sl) == 0)
			return 1;
	}
	return 0;
}

int script_find(const struct script_conf *g, const struct exchange_info *info, struct script *s)
{
	int rootfd = open(g->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		log_error("%s: cannot open root %s: %s", info->backend->name, g->root, strerror(errno));
		return 500;
	}
	char rel[4096] = "";
	size_t rl = 0;
	const char *p = info->rest;
	int status = 404;
	s->filename[0] = 0;
	for (;;) {
		while (*p == '/')
			p++;
		const char *seg = p;
		while (*p && *p != '/')
			p++;
		size_t sl = (size_t)(p - seg);
		int last = 0;
		if (sl == 0) {
			/* the path names a directory: try the index files */
			last = 1;
		} else {
			if (rl + sl + 2 >= sizeof(rel)) {
				status = 414;
				break;
			}
			if (rl)
				rel[rl++] = '/';
			memcpy(rel + rl, seg, sl);
			rl += sl;
			rel[rl] = 0;
		}
		struct stat st;
		int fd = -1;
		if (!last) {
			fd = open_beneath(rootfd, rel);
			if (fd < 0) {
				status = errno == EXDEV || errno == ELOOP ? 403 : errno == EACCES ? 403 : 404;
				break;
			}
			if (fstat(fd, &st) < 0) {
				close(fd);
				break;
			}
			close(fd);
			if (S_ISDIR(st.st_mode))
				continue;
		} else {
			/* index files of the directory rel */
			int found = 0;
			for (size_t i = 0; i < g->nindex && !found; i++) {
				char cand[sizeof(rel)];
				if ((size_t)snprintf(cand, sizeof(cand), "%s%s%s", rel, rl ? "/" : "", g->index[i]) >=
				    sizeof(cand))
					continue;
				fd = open_beneath(rootfd, cand);
				if (fd < 0)
					continue;
				if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
					found = 1;
					memcpy(rel, cand, sizeof(rel));
					rl = strlen(rel);
				}
				close(fd);
			}
			if (!found)
				break;
		}
		if (!S_ISREG(st.st_mode))
			break;
		if (!suffix_ok(info, rel, rl))
			break; /* 404, as nginx's try_files $uri =404 */
		if (g->need_exec && !(st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH))) {
			if ((size_t)snprintf(s->filename, sizeof(s->filename), "%s/%s", g->root, rel) >=
			    sizeof(s->filename))
				s->filename[0] = 0;
			status = 403;
			break;
		}
		if ((size_t)snprintf(s->filename, sizeof(s->filename), "%s/%s", g->root, rel) >= sizeof(s->filename) ||
		    (size_t)snprintf(s->name, sizeof(s->name), "%s/%s", info->route_prefix, rel) >= sizeof(s->name)) {
			status = 414;
			break;
		}
		memcpy(s->dir, s->filename, sizeof(s->dir));
		char *slash = strrchr(s->dir, '/');
		*slash = 0;
		if (s->dir[0] == 0)
			strcpy(s->dir, "/");
		s->path_info = last ? "" : p;
		status = 0;
		break;
	}
	close(rootfd);
	return status;
}

int script_fixed(const char *program, const struct exchange_info *info, struct script *s)
{
	size_t pl = strlen(program), nl = strlen(info->route_prefix);
	if (pl >= sizeof(s->filename) || nl >= sizeof(s->name))
		return 414;
	memcpy(s->filename, program, pl + 1);
	memcpy(s->name, info->route_prefix, nl + 1);
	/* the program's directory: program is absolute (the configuration
	 * says so), so there is a '/' */
	const char *slash = strrchr(program, '/');
	size_t dl = slash && slash > program ? (size_t)(slash - program) : 0;
	memcpy(s->dir, program, dl);
	s->dir[dl] = 0;
	if (dl == 0)
		strcpy(s->dir, "/");
	s->path_info = info->rest;
	return 0;
}

char **script_env(const struct exchange_info *info, const struct script *s, const char *document_root,
		  char *const *extra, size_t nextra, char **arena)
{
	struct cgi_env_in ein = {
	    .req = info->req,
	    .request_uri = info->request_uri,
	    .script_name = s->name,
	    .path_info = s->path_info,
	    .script_filename = s->filename,
	    .document_root = document_root,
	    .server_name = info->server_name,
	    .pinned_server_name = info->pinned_server_name,
	    .server_port = info->server_port,
	    .server_software = "cpm/" CPM_VERSION,
	    .remote_addr = info->remote_addr,
	    .remote_port = info->remote_port,
	    .https = info->https,
	    .has_body = info->has_body,
	    .content_length = info->content_length,
	    .remote_user = info->remote_user,
	    .auth_type = info->auth_type,
	    .pass_authorization = info->backend->cgi.pass_authorization,
	    .request_id = info->request_id,
	    .extra = (const char *const *)extra,
	    .nextra = nextra,
	};
	/* sized from what it holds: a valid request always fits */
	size_t arena_cap, nvars;
	cgi_env_size(&ein, &arena_cap, &nvars);
	*arena = xmalloc(arena_cap);
	char **envp = xmalloc((nvars + 1) * sizeof(char *));
	if (!*arena || !envp || cgi_env_build(&ein, *arena, arena_cap, envp, nvars + 1) < 0) {
		free(*arena);
		free(envp);
		*arena = NULL;
		return NULL;
	}
	return envp;
}

void script_exec_error(const char *filename, int err, char *buf, size_t len)
{
	char line[256];
	ssize_t n = -1;
	if (err == ENOENT || err == EACCES || err == ENOEXEC) {
		int fd = open(filename, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd >= 0) {
			n = read(fd, line, sizeof(line));
			close(fd);
		}
	}
	if (n < 0) {
		snprintf(buf, len, "%s", strerror(err));
		return;
	}
	size_t m = (size_t)n;
	if (m >= 4 && line[0] == 0x7f && memcmp(line + 1, "ELF", 3) == 0) {
		if (err == ENOENT)
			snprintf(buf, len, "a binary whose dynamic loader is missing (built for another system?)");
		else
			snprintf(buf, len, "%s", strerror(err));
		return;
	}
	if (m < 2 || line[0] != '#' || line[1] != '!') {
		if (err == ENOEXEC)
			snprintf(buf, len, "no #! line and not a binary (start it with one, such as #!/bin/sh)");
		else
			snprintf(buf, len, "%s", strerror(err));
		return;
	}
	/* the interpreter is the first word after #!, as the kernel reads it */
	size_t i = 2;
	while (i < m && (line[i] == ' ' || line[i] == '\t'))
		i++;
	size_t start = i;
	while (i < m && line[i] != ' ' && line[i] != '\t' && line[i] != '\n' && line[i] != '\r' && line[i] != 0)
		i++;
	/* the log line escapes what is not printable (a CR shows as \x0d) */
	char interp[sizeof(line) + 2];
	memcpy(interp, line + start, i - start);
	interp[i - start] = 0;
	struct stat st;
	int serr = stat(interp, &st) < 0 ? errno : 0;
	char quoted[sizeof(interp) * 3];
	if (i < m && line[i] == '\r')
		snprintf(buf, len, "#! line ends in CR (CRLF line endings): interpreter \"%s\r\" not found",
			 log_field(quoted, sizeof(quoted), interp, strlen(interp)));
	else if (i == start)
		snprintf(buf, len, "#! line names no interpreter");
	else if (i == m && m == sizeof(line))
		snprintf(buf, len, "#! line longer than %zu bytes", sizeof(line));
	else if (serr == ENOENT)
		snprintf(buf, len, "interpreter %s not found", interp);
	else if (serr)
		snprintf(buf, len, "interpreter %s: %s", interp, strerror(serr));
	else if (S_ISDIR(st.st_mode))
		snprintf(buf, len, "interpreter %s is a directory", interp);
	else if (access(interp, X_OK) < 0)
		snprintf(buf, len, "interpreter %s is not executable", interp);
	else
		snprintf(buf, len, "%s (interpreter %s)", strerror(err), interp);
}

int script_has_limits(const struct cgi_conf *g)
{
	return g->rl.cpu >= 0 || g->rl.as >= 0 || g->rl.nofile >= 0 || g->rl.nproc >= 0 || g->no_new_privs;
}

int script_child_limits(const struct cgi_conf *g)
{
	const struct {
		int res;
		int64_t v;
	} lim[] = {
	    {RLIMIT_CPU, g->rl.cpu}, {RLIMIT_AS, g->rl.as}, {RLIMIT_NOFILE, g->rl.nofile}, {RLIMIT_NPROC, g->rl.nproc}};
	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		if (lim[i].v < 0)
			continue;
		struct rlimit rl = {(rlim_t)lim[i].v, (rlim_t)lim[i].v};
		/* a hard limit below the current one needs no privilege; raising
		 * one does: then keep the hard limit and lower the soft one */
		if (setrlimit(lim[i].res, &rl) < 0) {
			struct rlimit cur;
			if (getrlimit(lim[i].res, &cur) < 0)
				return -1;
			rl.rlim_max = cur.rlim_max;
			if (rl.rlim_cur > cur.rlim_max)
				rl.rlim_cur = cur.rlim_max;
			if (setrlimit(lim[i].res, &rl) < 0)
				return -1;
		}
	}
	if (g->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return 0;
}

void script_retry_after(const struct backend_conf *b, char *buf, size_t len)
{
	long s = (long)(b->cgi.timeout_ms / 1000 / 4);
	snprintf(buf, len, "Retry-After: %ld", s < 1 ? 1 : s > 60 ? 60 : s);
}
