/* The worker's event loop: epoll, timers, deferred frees.
 *
 * Every fd in the loop has a struct ev, its owner; the kernel knows the fd
 * by number (loop.c keeps the table), so giving an fd to another owner
 * (loop_move) costs no system call, and neither does asking for less
 * reading for a while: the kernel's interest follows lazily, when an
 * unwanted event comes (a handler never sees one). The
 * loop owns pausing: an fd whose interest is 0 (paused) still gets
 * EPOLLHUP and EPOLLERR from the kernel, whatever it asked for, so a paused
 * fd that reports one is taken out of epoll and remembered; it comes back
 * (with its hang-up reported again by the kernel) the next time its owner
 * asks for events with loop_mod. A handler is never called for an fd that
 * asked for nothing, so a paused fd cannot spin the loop.
 *
 * An event fetched in a batch is not delivered once its struct ev has
 * lost the fd it was fetched for (loop_del, loop_move), even if the
 * struct ev has a new fd by then: it belonged to the old one. */
#ifndef CPM_LOOP_H
#define CPM_LOOP_H

#include <stdint.h>

#include "timer.h"

struct ev {
	int fd;
	uint32_t events; /* current epoll interest */
	void (*handler)(struct ev *ev, uint32_t events);
	/* the loop's: */
	int parked;	     /* out of epoll: HUP/ERR while paused */
	uint64_t lost_batch; /* its fd went away during this batch */
};

int loop_init(void);
int loop_add(struct ev *ev, uint32_t events);
/* Change the interest (0 pauses). Re-registers a parked fd. */
int loop_mod(struct ev *ev, uint32_t events);
void loop_del(struct ev *ev); /* removes and closes ev->fd; sets it to -1 */
/* Move ev's fd (still registered) to to, with events: one epoll_ctl. ev
 * is left without an fd. */
int loop_move(struct ev *ev, struct ev *to, uint32_t events);
/* Register an fd the loop must not close (listeners, owned elsewhere). */
int loop_watch(struct ev *ev, uint32_t events);
void loop_unwatch(struct ev *ev);

int64_t loop_now_ms(void);
struct timer_heap *loop_timers(void);
/* free(p) once the current batch of events is handled: for anything that
 * owns a struct ev, since the batch may still hold an event for it. */
void loop_free_later(void *p);

/* One turn: loop_wait (epoll_wait up to timeout_ms, -1 for no limit, then
 * the ready handlers), loop_run_timers, and loop_end_turn (deferred frees).
 * loop_wait returns the number of events, -1 on a failure other than EINTR. */
int loop_wait(int timeout_ms);
void loop_run_timers(int max);
void loop_end_turn(void);
/* Milliseconds until the next timer (-1: none, 0: due). */
int loop_next_timer_ms(void);

#endif
