/* Unit tests for backends/waitq.c: the one queue cgi and fastcgi requests
 * wait in, on the real loop's timers. */
#include <time.h>

#include "../../backends/waitq.h"
#include "unit.h"

struct req {
	int id;
	struct waiter wait;
};

static int expired_ids[8];
static int nexpired;

static void on_expired(struct waiter *w)
{
	struct req *r = (struct req *)((char *)w - offsetof(struct req, wait));
	expired_ids[nexpired++] = r->id;
	waitq_remove(w);
}

static int ids(const struct waitq *q, int *out)
{
	int n = 0;
	for (const struct waiter *w = q->head; w; w = w->next)
		out[n++] = ((const struct req *)((const char *)w - offsetof(struct req, wait)))->id;
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {0, ms * 1000000L};
	nanosleep(&ts, NULL);
}

/* first come, first served; leaving from the middle keeps the order */
static void test_fifo(void)
{
	struct waitq q = {0};
	struct req r[4] = {{1}, {2}, {3}, {4}};
	for (int i = 0; i < 4; i++) {
		CHECK(!waitq_waiting(&r[i].wait));
		waitq_add(&q, &r[i].wait, 60000, on_expired);
		CHECK(waitq_waiting(&r[i].wait));
	}
	CHECK_EQ_INT(q.n, 4);
	waitq_remove(&r[1].wait);
	waitq_remove(&r[1].wait); /* twice: a no-op */
	CHECK(!waitq_waiting(&r[1].wait));
	int got[4];
	CHECK_EQ_INT(ids(&q, got), 3);
	CHECK_EQ_INT(got[0], 1);
	CHECK_EQ_INT(got[1], 3);
	CHECK_EQ_INT(got[2], 4);
	waitq_remove(&r[0].wait);
	waitq_remove(&r[3].wait);
	CHECK(q.head == &r[2].wait && q.tail == &r[2].wait);
	waitq_remove(&r[2].wait);
	CHECK(q.head == NULL && q.tail == NULL);
	CHECK_EQ_INT(q.n, 0);
}

/* the deadline: the expired one is told, in order; one that left the
 * queue before its deadline never is */
static void test_deadline(void)
{
	struct waitq q = {0};
	struct req a = {1}, b = {2}, c = {3};
	waitq_add(&q, &a.wait, 5, on_expired);
	waitq_add(&q, &b.wait, 5, on_expired);
	waitq_add(&q, &c.wait, 60000, on_expired);
	waitq_remove(&b.wait);
	sleep_ms(20);
	loop_wait(0);
	loop_run_timers(100);
	CHECK_EQ_INT(nexpired, 1);
	CHECK_EQ_INT(expired_ids[0], 1);
	CHECK(!waitq_waiting(&a.wait));
	CHECK(waitq_waiting(&c.wait));
	CHECK_EQ_INT(q.n, 1);
	waitq_remove(&c.wait);
	CHECK_EQ_INT(loop_next_timer_ms(), -1); /* nothing left armed */
}

int main(void)
{
	if (loop_init() < 0)
		return 1;
	test_fifo();
	test_deadline();
	return unit_done();
}
