/* The worker: accepts on the shared listeners, runs connections and their
 * backends on one epoll loop, keeps its scoreboard slot fresh, and stops
 * gracefully (QUIT), at once (TERM/INT) or after max_requests. */

#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../backends/cgi.h"
#include "../backends/fastcgi.h"
#include "../protocol/http_response.h"
#include "conn.h"
#include "log.h"
#include "process.h"
#include "proctitle.h"
#include "xalloc.h"

#define MAX_EVENTS	128
#define ACCEPT_BATCH	1
#define TIMERS_PER_TURN 256

static struct {
	const struct config *cf;
	struct listener *ls;
	size_t nls;
	struct ev *lev;
	struct worker_slot *slot;
	struct scoreboard *sb;
	unsigned id;
	int epfd;
	struct ev sig;
	struct timer_heap timers;
	int64_t now_ms;
	time_t date_sec;
	char http_date[32];
	char log_date[40];
	int accepting;	   /* listeners in the loop */
	int accept_paused; /* after EMFILE */
	struct timer accept_timer;
	int draining; /* QUIT or max_requests: finish and exit */
	int64_t drain_since;
	unsigned nconns;
	long served;
	long max_requests;
} w;

/* ---- loop services for conn.c and backends ---- */

int loop_add(struct ev *ev, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};
	ev->events = events;
	if (epoll_ctl(w.epfd, EPOLL_CTL_ADD, ev->fd, &e) < 0) {
		log_error("epoll_ctl add fd %d: %s", ev->fd, strerror(errno));
		return -1;
	}
	return 0;
}

int loop_mod(struct ev *ev, uint32_t events)
{
	if (ev->events == events)
		return 0;
	struct epoll_event e = {.events = events, .data.ptr = ev};
	ev->events = events;
	return epoll_ctl(w.epfd, EPOLL_CTL_MOD, ev->fd, &e);
}

void loop_del(struct ev *ev)
{
	if (ev->fd < 0)
		return;
	epoll_ctl(w.epfd, EPOLL_CTL_DEL, ev->fd, NULL);
	close(ev->fd);
	ev->fd = -1;
	ev->events = 0;
}

/* Objects that own an fd in the loop are freed after the current batch of
 * events, so an event already fetched for them never meets freed memory. */
static void **deferred;
static size_t ndeferred, deferred_cap;

void loop_free_later(void *p)
{
	if (ndeferred == deferred_cap) {
		deferred_cap = deferred_cap ? deferred_cap * 2 : 64;
		deferred = xrealloc(deferred, deferred_cap * sizeof(*deferred));
	}
	deferred[ndeferred++] = p;
}

static void free_deferred(void)
{
	for (size_t i = 0; i < ndeferred; i++)
		free(deferred[i]);
	ndeferred = 0;
}

int64_t loop_now_ms(void)
{
	return w.now_ms;
}

struct timer_heap *loop_timers(void)
{
	return &w.timers;
}

const struct config *worker_config(void)
{
	return w.cf;
}

struct scoreboard *loop_scoreboard(void)
{
	return w.sb;
}

struct worker_slot *loop_worker_slot(void)
{
	return w.slot;
}

int loop_move(struct ev *ev, struct ev *to, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = to};
	to->fd = ev->fd;
	to->events = events;
	ev->fd = -1;
	ev->events = 0;
	return epoll_ctl(w.epfd, EPOLL_CTL_MOD, to->fd, &e);
}

int worker_draining(void)
{
	return w.draining;
}

static void refresh_time(void)
{
	w.now_ms = monotonic_ms();
	time_t t = time(NULL);
	if (t == w.date_sec)
		return;
	w.date_sec = t;
	http_format_date(t, w.http_date);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(w.log_date, sizeof(w.log_date), "%d/%b/%Y:%H:%M:%S +0000", &tm);
}

const char *worker_http_date(void)
{
	return w.http_date;
}

const char *worker_log_date(void)
{
	return w.log_date;
}

/* ---- accepting ---- */

static void set_accepting(int on)
{
	if (w.accepting == on)
		return;
	w.accepting = on;
	for (size_t i = 0; i < w.nls; i++) {
		if (w.lev[i].fd < 0)
			continue;
		if (on) {
			struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &w.lev[i]};
			epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.lev[i].fd, &e);
		} else {
			epoll_ctl(w.epfd, EPOLL_CTL_DEL, w.lev[i].fd, NULL);
		}
	}
}

static void update_accepting(void)
{
	set_accepting(!w.draining && !w.accept_paused && w.nconns < (unsigned)w.cf->max_connections);
}

static void on_accept_timer(struct timer *t)
{
	(void)t;
	w.accept_paused = 0;
	update_accepting();
}

static void on_listener(struct ev *ev, uint32_t events)
{
	(void)events;
	struct listener *l = &w.ls[ev - w.lev];
	for (int i = 0; i < ACCEPT_BATCH && w.accepting; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(ev->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* out of descriptors: pause instead of spinning */
				log_warn("accept on %s: %s; pausing accepts for 100 ms", l->addr, strerror(errno));
				w.accept_paused = 1;
				update_accepting();
				timer_arm(&w.timers, &w.accept_timer, w.now_ms + 100);
			}
			return;
		}
		if (conn_open(fd, l, &ss, sl) < 0) {
			close(fd);
			continue;
		}
		w.nconns++;
		w.slot->connections = w.nconns;
		update_accepting();
	}
}

void worker_conn_closed(void)
{
	w.nconns--;
	w.slot->connections = w.nconns;
	update_accepting();
}

/* close_idle: a graceful stop closes idle keep-alive connections at once
 * (as nginx does); a max_requests recycle lets each one carry one more
 * request (answered with Connection: close) or reach its keepalive
 * timeout, so a client never races a close it could not expect. */
static int drain_close_idle;

static void start_draining(const char *why, int close_idle)
{
	drain_close_idle |= close_idle;
	if (w.draining)
		return;
	log_info("worker %u: %s; finishing %u connection(s)", w.id, why, w.nconns);
	w.draining = 1;
	w.drain_since = w.now_ms;
	w.slot->state = SLOT_DRAINING;
	update_accepting();
	for (size_t i = 0; i < w.nls; i++)
		if (w.lev[i].fd >= 0) {
			close(w.lev[i].fd);
			w.lev[i].fd = -1;
		}
	if (close_idle)
		conn_close_idle();
}

void worker_request_done(int status)
{
	w.served++;
	w.slot->requests = (uint64_t)w.served;
	scoreboard_count(w.sb, status);
	if (w.max_requests && w.served >= w.max_requests)
		start_draining("max_requests reached", 0);
}

/* ---- signals ---- */

static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		backend_child_exited(pid, status);
}

static void on_signal(struct ev *ev, uint32_t events)
{
	(void)events;
	struct signalfd_siginfo si;
	while (read(ev->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD: reap(); break;
		case SIGQUIT: start_draining("graceful stop", 1); break;
		case SIGUSR2:
			/* the master replaces this worker (reload, TTOU, WINCH) */
			start_draining("retired by the master", 0);
			break;
		case SIGURG:
			/* another worker waits for a pool process we hold idle */
			fastcgi_release_idle();
			break;
		case SIGUSR1:
			if (log_open_error(w.cf->error_log) < 0 || log_open_access(w.cf->access_log) < 0)
				log_error("worker %u: reopening logs failed", w.id);
			break;
		case SIGTERM:
		case SIGINT: cgi_kill_all(); _exit(WORKER_EXIT_OK);
		default: break; /* HUP, USR1, ...: the master's business */
		}
	}
}

void worker_run(const struct config *cf, struct listener *ls, size_t nls, struct scoreboard *sb, unsigned id,
		long max_requests)
{
	w.cf = cf;
	w.ls = ls;
	w.nls = nls;
	w.id = id;
	w.slot = &sb->slots[id];
	w.sb = sb;
	w.max_requests = max_requests;
	proctitle_set("cpm: worker %u", id);
	refresh_time();
	w.slot->heartbeat_ms = w.now_ms;

	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGCHLD, SIGQUIT, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU, SIGURG};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_SETMASK, &set, NULL); /* all were blocked since the fork */
	signal(SIGPIPE, SIG_IGN);

	w.epfd = epoll_create1(EPOLL_CLOEXEC);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (w.epfd < 0 || sfd < 0) {
		log_error("worker %u: cannot set up its event loop: %s", id, strerror(errno));
		_exit(WORKER_EXIT_BOOT_ERROR);
	}
	w.sig = (struct ev){.fd = sfd, .handler = on_signal};
	loop_add(&w.sig, EPOLLIN);
	w.lev = calloc(nls, sizeof(*w.lev));
	for (size_t i = 0; i < nls; i++)
		w.lev[i] = (struct ev){.fd = ls[i].fd, .handler = on_listener};
	w.accept_timer.fire = on_accept_timer;
	if (conn_init(cf) < 0 || process_drop_privileges(cf) < 0)
		_exit(WORKER_EXIT_BOOT_ERROR);
	update_accepting();
	w.slot->state = SLOT_READY;
	log_debug("worker %u booted", id);

	struct epoll_event events[MAX_EVENTS];
	for (;;) {
		int timeout = timer_next_ms(&w.timers, w.now_ms);
		if (timeout < 0 || timeout > 1000)
			timeout = 1000; /* heartbeat at least once a second */
		if (conn_pending())
			timeout = 0;
		int n = epoll_wait(w.epfd, events, MAX_EVENTS, timeout);
		refresh_time();
		w.slot->heartbeat_ms = w.now_ms;
		for (int i = 0; i < n; i++) {
			struct ev *ev = events[i].data.ptr;
			if (ev->fd >= 0) /* not closed by an earlier event of this batch */
				ev->handler(ev, events[i].events);
		}
		conn_run_pending();
		timer_run(&w.timers, w.now_ms, TIMERS_PER_TURN);
		conn_run_pending();
		w.slot->cgi_running = cgi_running();
		free_deferred();
		if (w.draining) {
			if (drain_close_idle)
				conn_close_idle();
			if (w.nconns == 0 && cgi_running() == 0) {
				log_info("worker %u: exiting after %ld request(s)", id, w.served);
				_exit(WORKER_EXIT_OK);
			}
			if (w.now_ms - w.drain_since > cf->graceful_timeout_ms) {
				log_warn("worker %u: graceful_timeout, %u connection(s) cut", id, w.nconns);
				cgi_kill_all();
				_exit(WORKER_EXIT_OK);
			}
		}
	}
}
