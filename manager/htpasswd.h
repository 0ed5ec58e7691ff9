/* An htpasswd file loaded with the configuration: user names and their
 * bcrypt, SHA-crypt or yescrypt hashes, checked at load time (so cpm -t
 * checks it and a HUP re-reads it). */
#ifndef CPM_HTPASSWD_H
#define CPM_HTPASSWD_H

#include <stddef.h>

#define HTPASSWD_LINE_MAX 1024 /* longer lines are refused */

struct htpasswd_user {
	char *name;
	char *hash;
	int line; /* in the file */
};

struct htpasswd {
	char *file;
	struct htpasswd_user *users; /* sorted by name */
	size_t n;
};

/* Load file. On error returns NULL with "FILE:LINE: why" (or "FILE: why")
 * in err. */
struct htpasswd *htpasswd_load(const char *file, char *err, size_t errlen);

/* The entry of user, or NULL. */
const struct htpasswd_user *htpasswd_find(const struct htpasswd *h, const char *user);

void htpasswd_free(struct htpasswd *h);

#endif
