/* Unit tests for manager/timer.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../manager/timer.h"
#include "unit.h"

#define N 1000

struct item {
	struct timer t; /* first: the callback casts back */
	int id;
	int fired;
	int armed_in_cb; /* idx seen by the callback */
};

static struct item items[N];
static int order[N * 4];
static int norder;
static struct timer_heap *cur_heap;
static int rearm_id = -1;
static int64_t rearm_when;

static void on_fire(struct timer *t)
{
	struct item *it = (struct item *)t;
	it->fired++;
	it->armed_in_cb = t->idx != 0;
	if (norder < N * 4)
		order[norder++] = it->id;
	if (it->id == rearm_id) {
		rearm_id = -1;
		timer_arm(cur_heap, t, rearm_when);
	}
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The heap property and back pointers hold. */
static int heap_ok(const struct timer_heap *h)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->v[i]->idx != i + 1)
			return 0;
		if (i > 0 && h->v[(i - 1) / 2]->when_ms > h->v[i]->when_ms)
			return 0;
	}
	return 1;
}

static void init_items(void)
{
	memset(items, 0, sizeof(items));
	for (int i = 0; i < N; i++) {
		items[i].id = i;
		items[i].t.fire = on_fire;
	}
	norder = 0;
}

static void test_basic(void)
{
	struct timer_heap h = {0};
	cur_heap = &h;
	init_items();
	CHECK_EQ_INT(timer_next_ms(&h, 0), -1);
	timer_run(&h, 1000000, 100); /* nothing to do */
	CHECK_EQ_INT(norder, 0);

	timer_arm(&h, &items[0].t, 500);
	CHECK_EQ_INT(h.n, 1);
	CHECK(items[0].t.idx != 0);
	CHECK_EQ_INT(items[0].t.when_ms, 500);
	CHECK_EQ_INT(timer_next_ms(&h, 100), 400);
	CHECK_EQ_INT(timer_next_ms(&h, 500), 0);
	CHECK_EQ_INT(timer_next_ms(&h, 900), 0);
	CHECK_EQ_INT(timer_next_ms(&h, -10000000), 1000000); /* capped */
	timer_arm(&h, &items[1].t, 200);
	CHECK_EQ_INT(timer_next_ms(&h, 100), 100);
	/* re-arm later and earlier */
	timer_arm(&h, &items[1].t, 800);
	CHECK_EQ_INT(h.n, 2);
	CHECK_EQ_INT(timer_next_ms(&h, 100), 400);
	timer_arm(&h, &items[0].t, 900);
	CHECK_EQ_INT(timer_next_ms(&h, 100), 700);
	timer_arm(&h, &items[0].t, 50);
	CHECK_EQ_INT(timer_next_ms(&h, 0), 50);
	CHECK(heap_ok(&h));
	/* cancel */
	timer_cancel(&h, &items[0].t);
	CHECK_EQ_INT(items[0].t.idx, 0);
	CHECK_EQ_INT(h.n, 1);
	timer_cancel(&h, &items[0].t); /* not armed: no-op */
	CHECK_EQ_INT(h.n, 1);
	CHECK_EQ_INT(timer_next_ms(&h, 0), 800);
	/* not due yet */
	timer_run(&h, 799, 10);
	CHECK_EQ_INT(norder, 0);
	timer_run(&h, 800, 10); /* due exactly at its deadline */
	CHECK_EQ_INT(norder, 1);
	CHECK_EQ_INT(order[0], 1);
	CHECK_EQ_INT(items[1].fired, 1);
	CHECK_EQ_INT(items[1].armed_in_cb, 0); /* disarmed before the callback */
	CHECK_EQ_INT(items[1].t.idx, 0);
	CHECK_EQ_INT(h.n, 0);
	CHECK_EQ_INT(timer_next_ms(&h, 0), -1);
	free(h.v);
}

static void test_random(void)
{
	struct timer_heap h = {0};
	cur_heap = &h;
	init_items();
	int64_t when[N];
	int armed[N];
	memset(armed, 0, sizeof(armed));
	/* random arms, re-arms and cancels */
	int bad_heap = 0;
	for (int step = 0; step < 20000; step++) {
		int i = (int)(next_rand() % N);
		int op = (int)(next_rand() % 4);
		if (op < 3) {
			when[i] = (int64_t)(next_rand() % 100000);
			timer_arm(&h, &items[i].t, when[i]);
			armed[i] = 1;
		} else {
			timer_cancel(&h, &items[i].t);
			armed[i] = 0;
		}
		if (step % 97 == 0 && !heap_ok(&h))
			bad_heap++;
	}
	CHECK_EQ_INT(bad_heap, 0);
	CHECK(heap_ok(&h));
	size_t count = 0;
	int64_t min = INT64_MAX;
	int idx_ok = 1;
	for (int i = 0; i < N; i++) {
		if (armed[i]) {
			count++;
			if (when[i] < min)
				min = when[i];
			idx_ok &= items[i].t.idx != 0 && items[i].t.when_ms == when[i];
		} else {
			idx_ok &= items[i].t.idx == 0;
		}
	}
	CHECK(idx_ok);
	CHECK_EQ_INT(h.n, count);
	CHECK_EQ_INT(timer_next_ms(&h, 0), min);

	/* fire up to 50000: every timer due then fires once, in deadline order;
	 * max per run is honoured */
	size_t due = 0;
	for (int i = 0; i < N; i++)
		due += armed[i] && when[i] <= 50000;
	int runs = 0;
	size_t before;
	int max_ok = 1;
	do {
		before = (size_t)norder;
		timer_run(&h, 50000, 7);
		if ((size_t)norder - before > 7)
			max_ok = 0;
		runs++;
	} while ((size_t)norder != before && runs < 10000);
	CHECK(max_ok);
	CHECK_EQ_INT(norder, due);
	CHECK_EQ_INT(runs, (int)((due + 6) / 7) + 1);
	int sorted = 1, fired_ok = 1;
	for (int k = 1; k < norder; k++)
		sorted &= when[order[k - 1]] <= when[order[k]];
	for (int i = 0; i < N; i++)
		fired_ok &= items[i].fired == (armed[i] && when[i] <= 50000);
	CHECK(sorted);
	CHECK(fired_ok);
	CHECK_EQ_INT(h.n, count - due);
	CHECK(heap_ok(&h));
	/* the rest */
	timer_run(&h, INT64_MAX, N);
	CHECK_EQ_INT(norder, count);
	CHECK_EQ_INT(h.n, 0);
	sorted = 1;
	for (int k = 1; k < norder; k++)
		sorted &= when[order[k - 1]] <= when[order[k]];
	CHECK(sorted);
	free(h.v);
}

static void test_max_and_rearm_in_callback(void)
{
	struct timer_heap h = {0};
	cur_heap = &h;
	init_items();
	for (int i = 0; i < 10; i++)
		timer_arm(&h, &items[i].t, 100 - i); /* 91..100 */
	timer_run(&h, 1000, 3);
	CHECK_EQ_INT(norder, 3);
	CHECK_EQ_INT(order[0], 9);
	CHECK_EQ_INT(order[1], 8);
	CHECK_EQ_INT(order[2], 7);
	CHECK_EQ_INT(h.n, 7);
	timer_run(&h, 1000, 0);
	CHECK_EQ_INT(norder, 3);
	timer_run(&h, 1000, -1);
	CHECK_EQ_INT(norder, 3);
	/* only due ones fire, even with a large max */
	timer_run(&h, 94, 100);
	CHECK_EQ_INT(norder, 4);
	CHECK_EQ_INT(order[3], 6);
	/* a callback that re-arms its own timer: it runs again only when due */
	rearm_id = 5;
	rearm_when = 2000;
	timer_run(&h, 1000, 100);
	CHECK_EQ_INT(norder, 10);
	CHECK_EQ_INT(items[5].fired, 1);
	CHECK(items[5].t.idx != 0);
	CHECK_EQ_INT(h.n, 1);
	CHECK_EQ_INT(timer_next_ms(&h, 1000), 1000);
	timer_run(&h, 2000, 100);
	CHECK_EQ_INT(items[5].fired, 2);
	CHECK_EQ_INT(h.n, 0);
	/* a callback that re-arms into the past fires again in the same run,
	 * within max */
	init_items();
	timer_arm(&h, &items[0].t, 10);
	rearm_id = 0;
	rearm_when = 5;
	timer_run(&h, 100, 2);
	CHECK_EQ_INT(items[0].fired, 2);
	CHECK_EQ_INT(h.n, 0);
	/* equal deadlines all fire */
	init_items();
	for (int i = 0; i < 20; i++)
		timer_arm(&h, &items[i].t, 42);
	timer_run(&h, 42, 100);
	CHECK_EQ_INT(norder, 20);
	int all = 1;
	for (int i = 0; i < 20; i++)
		all &= items[i].fired == 1;
	CHECK(all);
	free(h.v);
}

/* A paused deadline keeps what it had left; a wait does not count. */
static void test_suspend_resume(void)
{
	struct timer_heap h = {0};
	cur_heap = &h;
	init_items();
	CHECK_EQ_INT(timer_suspend(&h, &items[0].t, 0), 0); /* not armed */
	timer_arm(&h, &items[0].t, 1000);
	timer_arm(&h, &items[1].t, 300);
	int64_t left = timer_suspend(&h, &items[0].t, 400);
	CHECK_EQ_INT(left, 600);
	CHECK_EQ_INT(items[0].t.idx, 0);
	CHECK_EQ_INT(h.n, 1);
	timer_run(&h, 5000, 100); /* only items[1] fires while items[0] waits */
	CHECK_EQ_INT(norder, 1);
	timer_resume(&h, &items[0].t, 5000, left);
	CHECK_EQ_INT(items[0].t.when_ms, 5600);
	/* past due when paused: 1 ms left, so it fires right after resuming */
	left = timer_suspend(&h, &items[0].t, 9000);
	CHECK_EQ_INT(left, 1);
	timer_resume(&h, &items[0].t, 9000, left);
	CHECK_EQ_INT(items[0].t.when_ms, 9001);
	timer_cancel(&h, &items[0].t);
	timer_resume(&h, &items[0].t, 9000, 0); /* nothing left: stays disarmed */
	CHECK_EQ_INT(items[0].t.idx, 0);
	CHECK(heap_ok(&h));
	free(h.v);
}

int main(void)
{
	test_suspend_resume();
	test_basic();
	test_random();
	test_max_and_rearm_in_callback();
	return unit_done();
}
