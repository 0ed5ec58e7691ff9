/* Requests waiting for what their backend has run out of (a cgi slot
 * under max_concurrent, a fastcgi pool process): first come, first
 * served, each with a deadline. A waiting request is the backend's own
 * request state with a struct waiter in it, so the ops tell a waiting
 * request from a running one by waitq_waiting(), the same way in every
 * backend. */
#ifndef CPM_WAITQ_H
#define CPM_WAITQ_H

#include "backend.h"

struct waitq;

struct waiter {
	struct waitq *q; /* the queue it waits in, NULL when not waiting */
	struct waiter *next, *prev;
	int64_t since;
	struct timer deadline;
	/* The deadline passed: the backend answers (503) and takes w out of
	 * its queue (waitq_remove). */
	void (*expired)(struct waiter *w);
};

struct waitq {
	struct waiter *head, *tail;
	unsigned n;
};

/* w waits at the end of q until waitq_remove, or expired after
 * timeout_ms. */
void waitq_add(struct waitq *q, struct waiter *w, int64_t timeout_ms, void (*expired)(struct waiter *w));
/* w stops waiting (no-op if it was not). */
void waitq_remove(struct waiter *w);

static inline int waitq_waiting(const struct waiter *w)
{
	return w->q != NULL;
}

#endif
