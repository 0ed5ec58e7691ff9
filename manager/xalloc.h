/* Allocation that cannot fail quietly: cpm's memory is bounded by its
 * limits, so running out is not a state to limp on. */
#ifndef CPM_XALLOC_H
#define CPM_XALLOC_H

#include <stdlib.h>

static inline void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q && n)
		abort();
	return q;
}

#endif
