/* The worker's event loop (see loop.h). */

#include "loop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "scoreboard.h"
#include "xalloc.h"

#define MAX_EVENTS 128

static struct {
	int epfd;
	struct timer_heap timers;
	int64_t now_ms;
	uint64_t batch; /* increases every loop_wait; 0 is never a batch */
	void **deferred;
	size_t ndeferred, deferred_cap;
} L = {.epfd = -1};

int loop_init(void)
{
	L.epfd = epoll_create1(EPOLL_CLOEXEC);
	L.now_ms = monotonic_ms();
	return L.epfd < 0 ? -1 : 0;
}

static int ctl(int op, struct ev *ev, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};
	return epoll_ctl(L.epfd, op, ev->fd, &e);
}

int loop_add(struct ev *ev, uint32_t events)
{
	ev->events = events;
	ev->parked = 0;
	if (ctl(EPOLL_CTL_ADD, ev, events) < 0) {
		log_error("epoll_ctl add fd %d: %s", ev->fd, strerror(errno));
		return -1;
	}
	return 0;
}

int loop_mod(struct ev *ev, uint32_t events)
{
	if (ev->fd < 0)
		return -1;
	if (ev->parked) {
		/* it hung up while paused: stay out until asked for something,
		 * then the kernel reports the hang-up again */
		ev->events = events;
		if (!events)
			return 0;
		ev->parked = 0;
		return ctl(EPOLL_CTL_ADD, ev, events);
	}
	if (ev->events == events)
		return 0;
	ev->events = events;
	return ctl(EPOLL_CTL_MOD, ev, events);
}

static void lost(struct ev *ev)
{
	ev->lost_batch = L.batch;
	ev->events = 0;
	ev->parked = 0;
}

void loop_del(struct ev *ev)
{
	if (ev->fd < 0)
		return;
	if (!ev->parked)
		epoll_ctl(L.epfd, EPOLL_CTL_DEL, ev->fd, NULL);
	close(ev->fd);
	ev->fd = -1;
	lost(ev);
}

int loop_move(struct ev *ev, struct ev *to, uint32_t events)
{
	to->fd = ev->fd;
	to->events = events;
	to->parked = 0;
	int parked = ev->parked;
	ev->fd = -1;
	lost(ev);
	return ctl(parked ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, to, events);
}

int loop_watch(struct ev *ev, uint32_t events)
{
	ev->events = events;
	ev->parked = 0;
	return ctl(EPOLL_CTL_ADD, ev, events);
}

void loop_unwatch(struct ev *ev)
{
	if (ev->fd >= 0 && !ev->parked)
		epoll_ctl(L.epfd, EPOLL_CTL_DEL, ev->fd, NULL);
	lost(ev);
}

int64_t loop_now_ms(void)
{
	return L.now_ms;
}

struct timer_heap *loop_timers(void)
{
	return &L.timers;
}

void loop_free_later(void *p)
{
	if (L.ndeferred == L.deferred_cap) {
		L.deferred_cap = L.deferred_cap ? L.deferred_cap * 2 : 64;
		L.deferred = xrealloc(L.deferred, L.deferred_cap * sizeof(*L.deferred));
	}
	L.deferred[L.ndeferred++] = p;
}

int loop_next_timer_ms(void)
{
	return timer_next_ms(&L.timers, L.now_ms);
}

/* The one place events meet handlers. */
static void deliver(struct ev *ev, uint32_t events)
{
	if (ev->fd < 0 || ev->lost_batch == L.batch)
		return; /* closed or moved by an earlier event of this batch */
	uint32_t wanted = ev->events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI);
	if (!wanted) {
		/* paused, yet HUP/ERR (or an event fetched before the pause):
		 * leave epoll until the owner asks for events again */
		if (events & (EPOLLHUP | EPOLLERR)) {
			epoll_ctl(L.epfd, EPOLL_CTL_DEL, ev->fd, NULL);
			ev->parked = 1;
		}
		return;
	}
	ev->handler(ev, events);
}

int loop_wait(int timeout_ms)
{
	struct epoll_event events[MAX_EVENTS];
	int n = epoll_wait(L.epfd, events, MAX_EVENTS, timeout_ms);
	int err = n < 0 ? errno : 0;
	L.now_ms = monotonic_ms();
	L.batch++;
	if (n < 0)
		return err == EINTR ? 0 : -1;
	for (int i = 0; i < n; i++)
		deliver(events[i].data.ptr, events[i].events);
	return n;
}

void loop_run_timers(int max)
{
	L.now_ms = monotonic_ms();
	timer_run(&L.timers, L.now_ms, max);
}

void loop_end_turn(void)
{
	for (size_t i = 0; i < L.ndeferred; i++)
		free(L.deferred[i]);
	L.ndeferred = 0;
}
