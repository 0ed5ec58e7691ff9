/* The master loop reads like the operator's manual: handle signals in the
 * order they came, reap, kill silent workers, start missing ones. Signal
 * handlers only write the signal number into a self-pipe. */

#include "arbiter.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "proctitle.h"
#include "scoreboard.h"
#include "worker.h"

#define STOP_KILL_MS 5000	/* fast stop: TERM, then KILL after this */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define QUICK_DEATH_MS 1000	/* a worker dying sooner than this is failing */
#define BOOT_FAILURES_MAX 10	/* ...and this many such deaths in a row halt */

static int sigpipe[2] = {-1, -1};

struct wk {
	pid_t pid;
	int64_t started_ms;
	int killed; /* timeout kill sent */
};

static struct {
	struct config *cf;
	struct listener *ls;
	size_t nls;
	struct scoreboard *sb;
	struct wk *w;
	unsigned nworkers;
	int stopping;	/* 0, 'g' graceful, 'f' fast */
	int64_t stop_since;
	int kill_sent;
	int failures;	/* consecutive quick deaths */
	int64_t next_spawn_ms;
	int halt;	/* a worker could not boot */
} A;

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;
	ssize_t r = write(sigpipe[1], &c, 1);
	(void)r;
	errno = saved;
}

static const int handled[] = {SIGCHLD, SIGQUIT, SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN,
			      SIGTTOU};

static int setup_signals(void)
{
	if (pipe2(sigpipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("pipe: %s", strerror(errno));
		return -1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		sigaction(handled[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static long jitter(long max)
{
	return max > 0 ? random() % (max + 1) : 0;
}

static void spawn_worker(unsigned i)
{
	struct worker_slot *slot = &A.sb->slots[i];
	memset((void *)slot, 0, sizeof(*slot));
	slot->state = SLOT_BOOTING;
	slot->started_ms = slot->heartbeat_ms = monotonic_ms();
	long maxreq = A.cf->max_requests ? A.cf->max_requests + jitter(A.cf->max_requests_jitter) : 0;

	/* signals blocked around fork: the child never runs our handlers */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		for (size_t k = 0; k < sizeof(handled) / sizeof(handled[0]); k++)
			sigaction(handled[k], &sa, NULL);
		close(sigpipe[0]);
		close(sigpipe[1]);
		srandom((unsigned)getpid());
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		worker_run(A.cf, A.ls, A.nls, A.sb, i, maxreq);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		slot->state = SLOT_FREE;
		return;
	}
	slot->pid = pid;
	A.w[i] = (struct wk){.pid = pid, .started_ms = monotonic_ms()};
	log_info("worker %u started (pid %ld)", i, (long)pid);
}

static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		unsigned i;
		for (i = 0; i < A.nworkers; i++)
			if (A.w[i].pid == pid)
				break;
		if (i == A.nworkers)
			continue;
		int64_t now = monotonic_ms();
		double secs = (double)(now - A.w[i].started_ms) / 1000.0;
		int clean = WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_OK;
		if (WIFEXITED(status))
			log_msg(clean ? LOG_INFO : LOG_ERROR, "worker %u (pid %ld) exited with code %d after %.3f seconds",
				i, (long)pid, WEXITSTATUS(status), secs);
		else
			log_error("worker %u (pid %ld) killed by signal %d after %.3f seconds", i, (long)pid,
				  WTERMSIG(status), secs);
		if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_BOOT_ERROR && !A.stopping) {
			log_error("worker %u failed to boot; stopping", i);
			A.halt = 1;
		}
		if (!clean && !A.w[i].killed && now - A.w[i].started_ms < QUICK_DEATH_MS) {
			A.failures++;
			int64_t delay = BACKOFF_MIN_MS << (A.failures < 8 ? A.failures : 8);
			if (delay > BACKOFF_MAX_MS)
				delay = BACKOFF_MAX_MS;
			A.next_spawn_ms = now + delay;
			log_warn("workers are dying at start (%d in a row); next start in %lld ms", A.failures,
				 (long long)delay);
			if (A.failures >= BOOT_FAILURES_MAX && !A.stopping) {
				log_error("%d workers in a row died within %d ms of starting; stopping", A.failures,
					  QUICK_DEATH_MS);
				A.halt = 1;
			}
		} else if (clean || now - A.w[i].started_ms >= QUICK_DEATH_MS) {
			A.failures = 0;
		}
		A.w[i].pid = 0;
		A.sb->slots[i].state = SLOT_FREE;
		A.sb->slots[i].pid = 0;
	}
}

static void kill_all(int sig)
{
	for (unsigned i = 0; i < A.nworkers; i++)
		if (A.w[i].pid > 0)
			kill(A.w[i].pid, sig);
}

static unsigned alive(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < A.nworkers; i++)
		n += A.w[i].pid > 0;
	return n;
}

static void check_heartbeats(void)
{
	int64_t now = monotonic_ms();
	for (unsigned i = 0; i < A.nworkers; i++) {
		struct wk *w = &A.w[i];
		if (w->pid <= 0 || w->killed)
			continue;
		int64_t age = now - A.sb->slots[i].heartbeat_ms;
		if (age > A.cf->timeout_ms) {
			log_error("worker %u (pid %ld) timeout: no heartbeat for %lld ms; killing it", i, (long)w->pid,
				  (long long)age);
			kill(w->pid, SIGKILL);
			w->killed = 1;
		}
	}
}

static void spawn_missing(void)
{
	if (A.stopping || A.halt || monotonic_ms() < A.next_spawn_ms)
		return;
	for (unsigned i = 0; i < A.nworkers; i++) {
		if (A.w[i].pid > 0)
			continue;
		spawn_worker(i);
		if (A.failures)
			return; /* one at a time while failing */
	}
}

static void begin_stop(int how)
{
	if (A.stopping == 'f' || A.stopping == how)
		return;
	A.stopping = how;
	A.stop_since = monotonic_ms();
	log_info("%s stop: signalling %u worker(s)", how == 'g' ? "graceful" : "fast", alive());
	kill_all(how == 'g' ? SIGQUIT : SIGTERM);
}

static void handle_signal(int sig)
{
	switch (sig) {
	case SIGCHLD:
		reap();
		break;
	case SIGQUIT:
		begin_stop('g');
		break;
	case SIGINT:
	case SIGTERM:
		begin_stop('f');
		break;
	default:
		log_info("signal %d ignored (not implemented yet)", sig);
		break;
	}
}

static void write_pidfile(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0 || rename(tmp, path) < 0)
		log_error("pidfile %s: %s", path, strerror(errno));
}

int arbiter_run(struct config *cf)
{
	A.cf = cf;
	proctitle_set("cpm: master");
	if (setup_signals() < 0)
		return 1;
	if (listeners_open(&A.ls, &A.nls, cf->listen, cf->nlisten, cf->backlog) < 0)
		return 1;
	A.nworkers = (unsigned)cf->workers;
	A.sb = scoreboard_create(A.nworkers);
	if (!A.sb)
		return 1;
	A.w = calloc(A.nworkers, sizeof(*A.w));
	if (cf->pidfile)
		write_pidfile(cf->pidfile);
	srandom((unsigned)(getpid() ^ time(NULL)));
	log_info("cpm %s master (pid %ld) starting %u worker(s)", CPM_VERSION, (long)getpid(), A.nworkers);
	log_started();

	for (;;) {
		spawn_missing();
		if (A.halt && !A.stopping)
			begin_stop('f');
		if (A.stopping && alive() == 0)
			break;
		if (A.stopping && !A.kill_sent) {
			int64_t limit = A.stopping == 'g' ? cf->graceful_timeout_ms + 1000 : STOP_KILL_MS;
			if (monotonic_ms() - A.stop_since > limit) {
				log_warn("workers still running after %lld ms; killing them", (long long)limit);
				kill_all(SIGKILL);
				A.kill_sent = 1;
			}
		}
		struct pollfd pfd = {.fd = sigpipe[0], .events = POLLIN};
		int timeout = 1000;
		if (A.next_spawn_ms) {
			int64_t d = A.next_spawn_ms - monotonic_ms();
			if (d < timeout)
				timeout = d < 0 ? 0 : (int)d;
		}
		if (A.stopping)
			timeout = 100;
		poll(&pfd, 1, timeout);
		unsigned char sigs[64];
		ssize_t n;
		while ((n = read(sigpipe[0], sigs, sizeof(sigs))) > 0)
			for (ssize_t k = 0; k < n; k++)
				handle_signal(sigs[k]);
		reap(); /* in case a SIGCHLD was coalesced */
		check_heartbeats();
	}
	if (cf->pidfile)
		unlink(cf->pidfile);
	listeners_close(A.ls, A.nls);
	for (size_t i = 0; i < cf->nlisten; i++)
		if (strncmp(cf->listen[i], "unix:", 5) == 0)
			unlink(cf->listen[i] + 5);
	log_info("master exiting");
	return A.halt ? 1 : 0;
}
