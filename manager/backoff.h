/* The master's quick-death backoff, for workers and for pool processes: a
 * process that dies on its own soon after its start is failing, and the
 * next start waits, twice as long after each such death in a row. */
#ifndef CPM_BACKOFF_H
#define CPM_BACKOFF_H

#include <stdint.h>

#define BACKOFF_MIN_MS	 100
#define BACKOFF_QUICK_MS 1000 /* dying sooner than this after the start is failing */

struct backoff {
	int failures; /* quick deaths in a row */
};

enum backoff_death {
	BACKOFF_FAILED, /* died on its own: failing if it was quick */
	BACKOFF_OK,	/* ended well (a clean exit, or it served requests) */
	BACKOFF_OURS,	/* the master stopped it: says nothing unless it lived long */
};

/* A process started at started_ms died at now, as how says. Returns how
 * long to wait before the next start: 0, or after a quick failing death
 * BACKOFF_MIN_MS << failures, at most max_ms. A death that is not quick,
 * or an OK one, resets the count; a quick one of ours leaves it. */
int64_t backoff_died(struct backoff *b, int64_t max_ms, int64_t started_ms, int64_t now, enum backoff_death how);

#endif
