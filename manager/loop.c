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

/* Interest bits the owner asks for (the rest are flags or always on). */
#define WANT_BITS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI)

/* What the kernel has for each fd, by fd number. The epoll data of an fd
 * is its number and a generation (not its struct ev): an fd that moves to
 * another owner (a kept FastCGI connection between requests) changes the
 * table, not the kernel. And interest is dropped lazily: an owner that
 * stops reading (a client while its request runs) keeps EPOLLIN in the
 * kernel until an unwanted event actually comes, which is when the kernel
 * is told; most requests end before any does, and the owner asks for
 * reading again with no system call either way. EPOLLOUT is dropped at
 * once: a writable socket would report it at the next wait. */
struct fdslot {
	struct ev *owner;
	uint32_t gen;	 /* bumped by every registration: older events are stale */
	uint32_t kernel; /* the interest registered, when in epoll */
	uint32_t moved;	 /* the batch (its low bits) in which it changed owner */
};

static struct {
	int epfd;
	struct timer_heap timers;
	int64_t now_ms;
	uint64_t batch; /* increases every loop_wait; 0 is never a batch */
	void **deferred;
	size_t ndeferred, deferred_cap;
	struct fdslot *fds;
	size_t nfds;
} L = {.epfd = -1};

int loop_init(void)
{
	L.epfd = epoll_create1(EPOLL_CLOEXEC);
	L.now_ms = monotonic_ms();
	return L.epfd < 0 ? -1 : 0;
}

static struct fdslot *slot(int fd)
{
	if ((size_t)fd >= L.nfds) {
		size_t n = L.nfds ? L.nfds : 256;
		while (n <= (size_t)fd)
			n *= 2;
		L.fds = xrealloc(L.fds, n * sizeof(*L.fds));
		memset(L.fds + L.nfds, 0, (n - L.nfds) * sizeof(*L.fds));
		L.nfds = n;
	}
	return &L.fds[fd];
}

static int ctl(int op, struct fdslot *s, int fd, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.u64 = (uint64_t)s->gen << 32 | (uint32_t)fd};
	if (epoll_ctl(L.epfd, op, fd, &e) < 0)
		return -1;
	s->kernel = events;
	return 0;
}

static int attach(struct ev *ev, uint32_t events)
{
	struct fdslot *s = slot(ev->fd);
	s->owner = ev;
	s->gen++;
	ev->events = events;
	ev->parked = 0;
	return ctl(EPOLL_CTL_ADD, s, ev->fd, events);
}

int loop_add(struct ev *ev, uint32_t events)
{
	if (attach(ev, events) < 0) {
		log_error("epoll_ctl add fd %d: %s", ev->fd, strerror(errno));
		return -1;
	}
	return 0;
}

/* Bring the kernel's interest in line with what ev now wants: at once when
 * it wants more, or less writing; else when an unwanted event comes. */
static int sync_interest(struct ev *ev, struct fdslot *s)
{
	uint32_t more = ev->events & ~s->kernel, less = s->kernel & ~ev->events;
	/* (EPOLLEXCLUSIVE cannot be modified: a watched listener is exact) */
	if (!more && !(less & EPOLLOUT) && !((s->kernel & EPOLLEXCLUSIVE) && less))
		return 0;
	return ctl(EPOLL_CTL_MOD, s, ev->fd, ev->events);
}

int loop_mod(struct ev *ev, uint32_t events)
{
	if (ev->fd < 0)
		return -1;
	struct fdslot *s = slot(ev->fd);
	ev->events = events;
	if (ev->parked) {
		/* it hung up while paused: stay out until asked for something,
		 * then the kernel reports the hang-up again */
		if (!events)
			return 0;
		ev->parked = 0;
		return ctl(EPOLL_CTL_ADD, s, ev->fd, events);
	}
	return sync_interest(ev, s);
}

static void lost(struct ev *ev)
{
	ev->lost_batch = L.batch;
	ev->events = 0;
	ev->parked = 0;
}

static void detach(struct ev *ev)
{
	struct fdslot *s = slot(ev->fd);
	if (!ev->parked)
		epoll_ctl(L.epfd, EPOLL_CTL_DEL, ev->fd, NULL);
	s->owner = NULL;
	s->gen++; /* events still in this batch for it are stale */
	s->kernel = 0;
}

void loop_del(struct ev *ev)
{
	if (ev->fd < 0)
		return;
	detach(ev);
	close(ev->fd);
	ev->fd = -1;
	lost(ev);
}

int loop_move(struct ev *ev, struct ev *to, uint32_t events)
{
	struct fdslot *s = slot(ev->fd);
	to->fd = ev->fd;
	to->events = events;
	to->parked = 0;
	int parked = ev->parked;
	ev->fd = -1;
	lost(ev);
	s->owner = to;
	s->moved = (uint32_t)L.batch; /* what this batch fetched was the old owner's */
	if (parked)
		return ctl(EPOLL_CTL_ADD, s, to->fd, events);
	return sync_interest(to, s);
}

int loop_watch(struct ev *ev, uint32_t events)
{
	return attach(ev, events);
}

void loop_unwatch(struct ev *ev)
{
	if (ev->fd >= 0)
		detach(ev);
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

/* The one place events meet handlers. A handler gets only what its owner
 * asks for (and HUP/ERR); an event it did not ask for is the kernel's
 * interest lagging behind (dropped lazily): the kernel is told now. */
static void deliver(uint64_t data, uint32_t events)
{
	int fd = (int)(uint32_t)data;
	if ((size_t)fd >= L.nfds)
		return;
	struct fdslot *s = &L.fds[fd];
	struct ev *ev = s->owner;
	if (!ev || s->gen != (uint32_t)(data >> 32) || ev->fd != fd || s->moved == (uint32_t)L.batch ||
	    ev->lost_batch == L.batch)
		return; /* closed, replaced or moved by an earlier event of this batch */
	uint32_t wanted = ev->events & WANT_BITS;
	uint32_t fault = events & (EPOLLHUP | EPOLLERR);
	if (!wanted) {
		/* paused, yet HUP/ERR (or an event from before the pause):
		 * leave epoll until the owner asks for events again */
		if (fault) {
			epoll_ctl(L.epfd, EPOLL_CTL_DEL, fd, NULL);
			s->kernel = 0;
			ev->parked = 1;
		} else if (events & s->kernel & WANT_BITS) {
			ctl(EPOLL_CTL_MOD, s, fd, ev->events);
		}
		return;
	}
	if (events & ~wanted & WANT_BITS & s->kernel)
		ctl(EPOLL_CTL_MOD, s, fd, ev->events);
	events &= wanted | EPOLLHUP | EPOLLERR;
	if (events)
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
		deliver(events[i].data.u64, events[i].events);
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
