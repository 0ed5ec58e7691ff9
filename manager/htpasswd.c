/* Loading htpasswd files (see htpasswd.h); the line format is
 * protocol/http_auth.c's. */

#include "htpasswd.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../protocol/http_auth.h"
#include "config.h"
#include "xalloc.h"

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct htpasswd_user *)a)->name, ((const struct htpasswd_user *)b)->name);
}

struct htpasswd *htpasswd_load(const char *file, char *err, size_t errlen)
{
	size_t len;
	char *text = config_read_file(file, 1, &len, err, errlen);
	if (!text)
		return NULL;
	struct htpasswd *h = xcalloc(1, sizeof(*h));
	h->file = xstrdup(file);
	size_t cap = 0;
	int lineno = 0, bad = 0;
	for (size_t off = 0; off < len && !bad;) {
		const char *line = text + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - line) : len - off;
		off += ll + (nl ? 1 : 0);
		lineno++;
		const char *why = NULL;
		const char *u, *hs;
		size_t ul, hl;
		enum htpasswd_scheme scheme;
		int rc;
		if (ll > HTPASSWD_LINE_MAX) {
			why = "line longer than 1024 bytes";
			rc = -1;
		} else if (memchr(line, 0, ll)) {
			why = "a NUL byte";
			rc = -1;
		} else {
			rc = htpasswd_line(line, ll, &u, &ul, &hs, &hl, &scheme, &why);
		}
		if (rc == 0)
			continue;
		if (rc > 0) {
			char *hash = xmalloc(hl + 1);
			memcpy(hash, hs, hl);
			hash[hl] = 0;
			int cs = crypt_checksalt(hash);
			if (cs != CRYPT_SALT_OK && cs != CRYPT_SALT_METHOD_LEGACY) {
				/* the prefix was right, the rest is not
				 * something libcrypt can verify (this
				 * libxcrypt calls $5$ "legacy": still
				 * verified) */
				why = "a malformed hash (libcrypt does not accept it)";
				free(hash);
			} else {
				if (h->n == cap) {
					cap = cap ? cap * 2 : 16;
					h->users = xrealloc(h->users, cap * sizeof(*h->users));
				}
				char *name = xmalloc(ul + 1);
				memcpy(name, u, ul);
				name[ul] = 0;
				h->users[h->n++] = (struct htpasswd_user){name, hash, lineno};
				continue;
			}
		}
		snprintf(err, errlen, "%s:%d: %s", file, lineno, why);
		bad = 1;
	}
	free(text);
	if (!bad && h->n == 0) {
		snprintf(err, errlen, "%s: no users", file);
		bad = 1;
	}
	if (!bad) {
		qsort(h->users, h->n, sizeof(*h->users), by_name);
		for (size_t i = 1; i < h->n; i++)
			if (strcmp(h->users[i - 1].name, h->users[i].name) == 0) {
				const struct htpasswd_user *a = &h->users[i - 1], *b = &h->users[i];
				snprintf(err, errlen, "%s:%d: user \"%.64s\" again (first on line %d)", file,
					 a->line > b->line ? a->line : b->line, b->name,
					 a->line < b->line ? a->line : b->line);
				bad = 1;
				break;
			}
	}
	if (bad) {
		htpasswd_free(h);
		return NULL;
	}
	return h;
}

const struct htpasswd_user *htpasswd_find(const struct htpasswd *h, const char *user)
{
	struct htpasswd_user key = {(char *)user, NULL, 0};
	return bsearch(&key, h->users, h->n, sizeof(*h->users), by_name);
}

void htpasswd_free(struct htpasswd *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++) {
		free(h->users[i].name);
		explicit_bzero(h->users[i].hash, strlen(h->users[i].hash));
		free(h->users[i].hash);
	}
	free(h->users);
	free(h->file);
	free(h);
}
