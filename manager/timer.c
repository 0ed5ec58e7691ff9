#include "timer.h"
#include "xalloc.h"

#include <stdlib.h>

static void set(struct timer_heap *h, size_t i, struct timer *t)
{
	h->v[i] = t;
	t->idx = i + 1;
}

static void up(struct timer_heap *h, size_t i)
{
	struct timer *t = h->v[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (h->v[p]->when_ms <= t->when_ms)
			break;
		set(h, i, h->v[p]);
		i = p;
	}
	set(h, i, t);
}

static void down(struct timer_heap *h, size_t i)
{
	struct timer *t = h->v[i];
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		int64_t best = t->when_ms;
		if (l < h->n && h->v[l]->when_ms < best)
			m = l, best = h->v[l]->when_ms;
		if (l + 1 < h->n && h->v[l + 1]->when_ms < best)
			m = l + 1;
		if (m == i)
			break;
		set(h, i, h->v[m]);
		i = m;
	}
	set(h, i, t);
}

void timer_cancel(struct timer_heap *h, struct timer *t)
{
	if (!t->idx)
		return;
	size_t i = t->idx - 1;
	t->idx = 0;
	h->n--;
	if (i == h->n)
		return;
	set(h, i, h->v[h->n]);
	up(h, i);
	down(h, h->v[i]->idx - 1);
}

void timer_arm(struct timer_heap *h, struct timer *t, int64_t when_ms)
{
	if (t->idx) {
		int64_t old = t->when_ms;
		t->when_ms = when_ms;
		if (when_ms < old)
			up(h, t->idx - 1);
		else
			down(h, t->idx - 1);
		return;
	}
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 64;
		h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
	}
	t->when_ms = when_ms;
	set(h, h->n, t);
	h->n++;
	up(h, h->n - 1);
}

int timer_next_ms(const struct timer_heap *h, int64_t now_ms)
{
	if (h->n == 0)
		return -1;
	int64_t d = h->v[0]->when_ms - now_ms;
	if (d < 0)
		return 0;
	return d > 1000000 ? 1000000 : (int)d;
}

void timer_run(struct timer_heap *h, int64_t now_ms, int max)
{
	while (h->n && h->v[0]->when_ms <= now_ms && max-- > 0) {
		struct timer *t = h->v[0];
		timer_cancel(h, t);
		t->fire(t);
	}
}

int64_t timer_suspend(struct timer_heap *h, struct timer *t, int64_t now_ms)
{
	if (!t->idx)
		return 0;
	int64_t left = t->when_ms - now_ms;
	timer_cancel(h, t);
	return left > 0 ? left : 1;
}

void timer_resume(struct timer_heap *h, struct timer *t, int64_t now_ms, int64_t left)
{
	if (left > 0)
		timer_arm(h, t, now_ms + left);
}
