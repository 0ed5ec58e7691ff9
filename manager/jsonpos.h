/* Finds where a value (or its key) sits in JSON text, for config errors:
 * jansson reports positions of syntax errors only. */
#ifndef CPM_JSONPOS_H
#define CPM_JSONPOS_H

#include <stddef.h>

struct jsonpos_step {
	const char *key; /* object member, or NULL for an array element */
	size_t index;
};

/* Locate path[0..n) in text. want_key: the position of the last member's
 * key instead of its value. Sets 1-based *line and *col; returns 0, or -1 if
 * not found (then the position is that of at the deepest part found). */
int jsonpos_locate(const char *text, size_t len, const struct jsonpos_step *path, size_t n, int want_key, int *line,
		   int *col);

#endif
