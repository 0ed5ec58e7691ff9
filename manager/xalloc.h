/* Allocation that cannot fail quietly: cpm's memory is bounded by its
 * limits, so running out is not a state to limp on. */
#ifndef CPM_XALLOC_H
#define CPM_XALLOC_H

#include <stdlib.h>
#include <string.h>

static inline void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q && n)
		abort();
	return q;
}

static inline void *xmalloc(size_t n)
{
	return xrealloc(NULL, n ? n : 1);
}

static inline void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		abort();
	return p;
}

static inline char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		abort();
	return p;
}

static inline char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		abort();
	return p;
}

#endif
