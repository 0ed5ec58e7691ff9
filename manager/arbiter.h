/* The master process: binds, forks and supervises workers, handles
 * signals. Knows no client. */
#ifndef CPM_ARBITER_H
#define CPM_ARBITER_H

#include "config.h"

/* What the command line said, kept for reloads. */
struct arbiter_opts {
	const char *config_file; /* NULL in --cgi mode */
	const char *cgi_dir;
	char **binds; /* -b, replacing listen */
	size_t nbinds;
	int workers;	       /* -w, 0 = from the config */
	int daemon;	       /* -D */
	const char *exe;       /* this binary's path, for USR2 */
	char **argv;	       /* the command line, for USR2 */
	const char *start_dir; /* where it was given, for USR2 after "chdir" */
};

/* Run until stopped; returns the process exit status. Takes cf over (a
 * reload replaces and frees it). */
int arbiter_run(struct config *cf, const struct arbiter_opts *opts);
/* Open (or reopen) the logs of cf at its level, as files the workers'
 * user owns, so that workers can reopen them. Returns 0 or -1 (logged). */
int arbiter_open_logs(const struct config *cf);

#endif
