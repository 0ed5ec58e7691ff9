/* Deadlines for the worker loop: a binary min-heap of intrusive timers,
 * O(log n) to arm, move or cancel. */
#ifndef CPM_TIMER_H
#define CPM_TIMER_H

#include <stddef.h>
#include <stdint.h>

struct timer {
	int64_t when_ms; /* CLOCK_MONOTONIC */
	size_t idx;	 /* position in the heap + 1; 0 = not armed */
	void (*fire)(struct timer *t);
};

struct timer_heap {
	struct timer **v;
	size_t n, cap;
};

void timer_arm(struct timer_heap *h, struct timer *t, int64_t when_ms);
void timer_cancel(struct timer_heap *h, struct timer *t);
/* Milliseconds until the earliest deadline (-1 if none, 0 if due). */
int timer_next_ms(const struct timer_heap *h, int64_t now_ms);
/* Fire due timers, at most max of them (so I/O keeps making progress).
 * A fired timer is disarmed before its callback runs. */
void timer_run(struct timer_heap *h, int64_t now_ms, int max);

/* Pause t (a deadline that must not count a wait): it is disarmed and the
 * milliseconds it had left are returned, at least 1; 0 if it was not
 * armed. timer_resume arms it again with them (nothing for 0). */
int64_t timer_suspend(struct timer_heap *h, struct timer *t, int64_t now_ms);
void timer_resume(struct timer_heap *h, struct timer *t, int64_t now_ms, int64_t left);

#endif
