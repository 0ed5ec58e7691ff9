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
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../backends/backend.h"
#include "../protocol/http_response.h"
#include "conn.h"
#include "log.h"
#include "loop.h"
#include "process.h"
#include "proctitle.h"
#include "xalloc.h"

#define ACCEPT_BATCH	1
#define YIELD_MS	2 /* a worker ahead of another stops accepting this long */
#define TIMERS_PER_TURN 256

static struct {
	const struct config *cf;
	struct listener *ls;
	size_t nls;
	struct ev *lev;
	struct worker_slot *slot;
	struct scoreboard *sb;
	unsigned id;
	struct ev sig;
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
	unsigned *bidx; /* cf->backends[i]'s entry in sb->backends */
} w;

/* ---- services for conn.c and backends ---- */

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

unsigned loop_backend_index(const struct backend_conf *b)
{
	if (!b)
		return BSTAT_NONE;
	if (!w.bidx || b < w.cf->backends || b >= w.cf->backends + w.cf->nbackends)
		return BSTAT_OTHER;
	return w.bidx[b - w.cf->backends];
}

int worker_draining(void)
{
	return w.draining || (w.sb && __atomic_load_n(&w.sb->draining, __ATOMIC_RELAXED));
}

static void refresh_time(void)
{
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
		if (on)
			loop_watch(&w.lev[i], EPOLLIN | EPOLLEXCLUSIVE);
		else
			loop_unwatch(&w.lev[i]);
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

/* EPOLLEXCLUSIVE wakes the first worker in the listening socket's wait
 * queue whether it waits or not, so the worker that registered first
 * takes nearly every connection of a burst (seen: wrk's 32 connections
 * all on one worker of two, and half the requests per second). A worker
 * with more connections than another live one goes to the back of that
 * queue after an accept (EPOLL_CTL_DEL and ADD, only while it is ahead),
 * so that the next connection wakes another, and wakes the one with the
 * fewest (SIGURG: it tries to accept at once) for the connections already
 * queued, which wake nobody: it stops accepting for YIELD_MS, and comes
 * back at the end of the queue. Returns that worker's pid, or 0. */
static pid_t behind_us(void)
{
	pid_t pid = 0;
	uint32_t fewest = w.nconns > 1 ? w.nconns - 1 : 0;
	for (unsigned i = 0, n = scoreboard_slots_used(w.sb); i < n; i++) {
		const struct worker_slot *o = &w.sb->slots[i];
		if (o != w.slot && o->pid > 0 && o->state == SLOT_READY && o->connections < fewest) {
			fewest = o->connections;
			pid = o->pid;
		}
	}
	return pid;
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
				timer_arm(loop_timers(), &w.accept_timer, loop_now_ms() + 100);
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
		pid_t laggard = w.accepting && !w.accept_paused ? behind_us() : 0;
		if (laggard) {
			/* step aside for a moment: the queued connections are
			 * the other's if it takes them by then; coming back,
			 * this worker is at the back of the wait queue */
			w.accept_paused = 1;
			update_accepting();
			timer_arm(loop_timers(), &w.accept_timer, loop_now_ms() + YIELD_MS);
			kill(laggard, SIGURG);
			return;
		}
	}
}

/* Connections already queued on the listeners (another worker is ahead
 * of us: see behind_us). */
static void accept_queued(void)
{
	for (size_t i = 0; i < w.nls && w.accepting; i++)
		if (w.lev[i].fd >= 0)
			on_listener(&w.lev[i], EPOLLIN);
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
	w.drain_since = loop_now_ms();
	w.slot->state = SLOT_DRAINING;
	update_accepting();
	backends_stop(0);
	for (size_t i = 0; i < w.nls; i++)
		if (w.lev[i].fd >= 0) {
			close(w.lev[i].fd);
			w.lev[i].fd = -1;
		}
	if (close_idle)
		conn_close_idle();
}

void worker_request_done(int status, const struct backend_conf *b, int64_t duration_us, int64_t wait_us)
{
	w.served++;
	w.slot->requests = (uint64_t)w.served;
	scoreboard_count(w.sb, loop_backend_index(b), status, duration_us, wait_us);
	if (w.max_requests && w.served >= w.max_requests)
		start_draining("max_requests reached", 0);
}

void worker_tls_handshake(int outcome)
{
	__atomic_fetch_add(&w.sb->tls_handshakes[outcome], 1, __ATOMIC_RELAXED);
}

/* ---- signals ---- */

static void reap(void)
{
	int status;
	pid_t pid;
	struct rusage ru;
	/* wait4: the usage of a CGI program goes into its access-log line */
	while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0)
		backends_child_exited(pid, status, &ru);
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
			/* another worker waits for a pool process we hold
			 * idle, or has more connections than we have */
			backends_release_idle();
			accept_queued();
			break;
		case SIGUSR1:
			if (log_open_error(w.cf->error_log) < 0 || log_open_access(w.cf->access_log) < 0)
				log_error("worker %u: reopening logs failed", w.id);
			break;
		case SIGTERM:
		case SIGINT:
			conn_close_all();
			backends_stop(1);
			_exit(WORKER_EXIT_OK);
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
	if (loop_init() < 0) {
		log_error("worker %u: cannot set up its event loop: %s", id, strerror(errno));
		_exit(WORKER_EXIT_BOOT_ERROR);
	}
	refresh_time();
	w.slot->heartbeat_ms = loop_now_ms();

	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGCHLD, SIGQUIT, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU, SIGURG};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_SETMASK, &set, NULL); /* all were blocked since the fork */
	signal(SIGPIPE, SIG_IGN);

	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		log_error("worker %u: cannot set up its event loop: %s", id, strerror(errno));
		_exit(WORKER_EXIT_BOOT_ERROR);
	}
	w.sig = (struct ev){.fd = sfd, .handler = on_signal};
	loop_add(&w.sig, EPOLLIN);
	w.lev = xcalloc(nls, sizeof(*w.lev));
	for (size_t i = 0; i < nls; i++)
		w.lev[i] = (struct ev){.fd = ls[i].fd, .handler = on_listener};
	w.accept_timer.fire = on_accept_timer;
	if (conn_init(cf) < 0 || process_drop_privileges(cf) < 0)
		_exit(WORKER_EXIT_BOOT_ERROR);
	/* the backends' entries in the scoreboard, by name: a name kept
	 * across reloads and worker restarts keeps counting where it was */
	w.bidx = xcalloc(cf->nbackends ? cf->nbackends : 1, sizeof(*w.bidx));
	for (size_t i = 0; i < cf->nbackends; i++)
		w.bidx[i] = scoreboard_backend(sb, cf->backends[i].name, (int)cf->backends[i].type);
	update_accepting();
	w.slot->state = SLOT_READY;
	log_debug("worker %u booted", id);

	for (;;) {
		int timeout = loop_next_timer_ms();
		if (timeout < 0 || timeout > 1000)
			timeout = 1000; /* heartbeat at least once a second */
		if (conn_pending())
			timeout = 0;
		loop_wait(timeout);
		refresh_time();
		w.slot->heartbeat_ms = loop_now_ms();
		conn_run_pending();
		loop_run_timers(TIMERS_PER_TURN);
		conn_run_pending();
		w.slot->cgi_running = backends_running();
		loop_end_turn();
		if (w.draining) {
			if (drain_close_idle)
				conn_close_idle();
			if (w.nconns == 0 && backends_running() == 0) {
				log_info("worker %u: exiting after %ld request(s)", id, w.served);
				_exit(WORKER_EXIT_OK);
			}
			if (loop_now_ms() - w.drain_since > cf->graceful_timeout_ms) {
				log_warn("worker %u: graceful_timeout, %u connection(s) cut", id, w.nconns);
				conn_close_all();
				backends_stop(1);
				_exit(WORKER_EXIT_OK);
			}
		}
	}
}
