#include "waitq.h"

static void on_deadline(struct timer *t)
{
	struct waiter *w = (struct waiter *)((char *)t - offsetof(struct waiter, deadline));
	w->expired(w);
}

void waitq_add(struct waitq *q, struct waiter *w, int64_t timeout_ms, void (*expired)(struct waiter *w))
{
	w->q = q;
	w->next = NULL;
	w->prev = q->tail;
	if (q->tail)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
	q->n++;
	w->since = loop_now_ms();
	w->expired = expired;
	w->deadline.fire = on_deadline;
	timer_arm(loop_timers(), &w->deadline, w->since + timeout_ms);
}

void waitq_remove(struct waiter *w)
{
	struct waitq *q = w->q;
	if (!q)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		q->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		q->tail = w->prev;
	q->n--;
	w->q = NULL;
	w->next = w->prev = NULL;
	timer_cancel(loop_timers(), &w->deadline);
}
