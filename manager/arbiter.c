/* The master loop reads like the operator's manual: handle signals in the
 * order they came, reap, kill silent workers, start missing ones. Signal
 * handlers only write the signal number into a self-pipe. */

#include "arbiter.h"
#include "xalloc.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "listener.h"
#include "pool.h"
#include "log.h"
#include "process.h"
#include "backoff.h"
#include "proctitle.h"
#include "scoreboard.h"
#include "tls.h"
#include "worker.h"

#define STOP_KILL_MS	  5000 /* fast stop: TERM, then KILL after this */
#define BACKOFF_MAX_MS	  10000
#define BOOT_FAILURES_MAX 10 /* quick deaths in a row (backoff.h) that halt */

static int sigpipe[2] = {-1, -1};
static int wakepipe[2] = {-1, -1}; /* workers -> master: a pool needs attention */

struct wk {
	pid_t pid;
	int64_t started_ms;
	int killed;   /* timeout kill sent */
	unsigned gen; /* configuration generation it runs */
	int retiring; /* told to finish and exit */
};

/* Scoreboard slots: room for the largest worker count twice over, since
 * old and new workers overlap during a reload. */
#define SLOTS (2 * 1024 + 64)

static struct {
	struct config *cf;
	struct listener *ls;
	size_t nls;
	struct scoreboard *sb;
	const struct arbiter_opts *opts;
	struct wk *w;
	unsigned nworkers; /* slots */
	unsigned target;   /* workers wanted for the current generation */
	unsigned gen;
	int stopping; /* 0, 'g' graceful, 'f' fast */
	int64_t stop_since;
	int64_t drain_until; /* a graceful stop's drain_delay runs until then (0: not) */
	int kill_sent;
	struct backoff backoff; /* of worker starts */
	int64_t next_spawn_ms;
	int halt;	   /* a worker could not boot */
	pid_t upgrade_pid; /* the new master started by USR2 */
	int upgraded;	   /* we are such a new master */
	pid_t old_master;  /* ...started by this one (our parent while it lives) */
	char *pidfile;	   /* the pidfile we own now (".oldbin" after USR2) */
	char *control;	   /* the control socket's path, or NULL */
} A;

static void upgrade_exited(int status);

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;
	ssize_t r = write(sigpipe[1], &c, 1);
	(void)r;
	errno = saved;
}

static const int handled[] = {SIGCHLD, SIGQUIT, SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGTTIN, SIGTTOU};

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

#define INHERIT_ENV "CPM_INHERIT_FDS"

/* Started by USR2 and the master that started us still runs. */
static int old_master_alive(void)
{
	return A.old_master > 0 && getppid() == A.old_master;
}

/* USR2: start the binary again with the listening sockets inherited. The
 * pidfile becomes PIDFILE.oldbin; it is renamed back if the new master
 * dies. Then WINCH + QUIT here finish the upgrade, or HUP here + QUIT
 * there roll it back. */
static void upgrade(void)
{
	if (A.upgrade_pid > 0) {
		log_warn("USR2: a new master (pid %ld) is already running", (long)A.upgrade_pid);
		return;
	}
	if (old_master_alive()) {
		log_warn("USR2 ignored: the previous master (pid %ld) still runs; finish that upgrade first",
			 (long)getppid());
		return;
	}
	char fds[4096];
	size_t n = 0;
	fds[0] = 0;
	for (size_t i = 0; i < A.nls && n < sizeof(fds) - 16; i++)
		n += (size_t)snprintf(fds + n, sizeof(fds) - n, "%s%d", i ? ";" : "", A.ls[i].fd);
	char *oldbin = NULL;
	if (A.pidfile) {
		if (asprintf(&oldbin, "%s.oldbin", A.pidfile) < 0 || rename(A.pidfile, oldbin) < 0) {
			log_error("USR2: renaming the pidfile %s: %s", A.pidfile, strerror(errno));
			free(oldbin);
			return;
		}
	}
	pid_t pid = process_fork();
	if (pid == 0) {
		for (size_t i = 0; i < A.nls; i++)
			fcntl(A.ls[i].fd, F_SETFD, 0); /* exactly these survive exec */
		setenv(INHERIT_ENV, fds, 1);
		if (A.opts->start_dir && A.opts->start_dir[0] && chdir(A.opts->start_dir) < 0)
			_exit(127);
		process_unblock_signals();
		execv(A.opts->exe, A.opts->argv);
		log_error("USR2: exec %s: %s", A.opts->exe, strerror(errno));
		_exit(127);
	}
	if (pid < 0) {
		log_error("USR2: fork: %s", strerror(errno));
		if (oldbin)
			rename(oldbin, A.pidfile);
		free(oldbin);
		return;
	}
	A.upgrade_pid = pid;
	if (oldbin) {
		free(A.pidfile);
		A.pidfile = oldbin;
	}
	log_info("USR2: started a new master (pid %ld) with %zu inherited listener(s)", (long)pid, A.nls);
}

static void upgrade_exited(int status)
{
	char ready[64];
	snprintf(ready, sizeof(ready), "MAINPID=%ld\nREADY=1", (long)getpid());
	process_notify(ready); /* a rollback: this master is the main one again */
	log_error("the new master (pid %ld) exited (%s %d); this master keeps serving", (long)A.upgrade_pid,
		  WIFEXITED(status) ? "code" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	A.upgrade_pid = 0;
	/* the new master removed its control socket on exit (or died with it
	 * in place): take the path back */
	if (A.control && control_open(A.control, 0) < 0)
		log_error("cpm -s cannot reach this master until a reload or restart");
	size_t n = A.pidfile ? strlen(A.pidfile) : 0;
	if (n > 7 && strcmp(A.pidfile + n - 7, ".oldbin") == 0) {
		char *orig = xstrndup(A.pidfile, n - 7);
		if (rename(A.pidfile, orig) == 0) {
			free(A.pidfile);
			A.pidfile = orig;
		} else {
			free(orig);
		}
	}
}

/* Started by USR2: take the listening sockets the old master passed. */
static int adopt_inherited(void)
{
	const char *v = getenv(INHERIT_ENV);
	if (!v)
		return 0;
	int fds[1024];
	size_t n = 0;
	for (const char *p = v; *p && n < 1024;) {
		char *end;
		long fd = strtol(p, &end, 10);
		if (end == p)
			break;
		if (fd > 2 && fcntl((int)fd, F_GETFD) >= 0)
			fds[n++] = (int)fd;
		p = *end == ';' ? end + 1 : end;
	}
	unsetenv(INHERIT_ENV);
	listeners_adopt(fds, n, 0);
	log_info("inherited %zu listening socket(s) from the previous master", n);
	return 1;
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
	if (scoreboard_slots_used(A.sb) < i + 1)
		__atomic_store_n(&A.sb->slots_used, i + 1, __ATOMIC_RELEASE);
	slot->started_ms = slot->heartbeat_ms = monotonic_ms();
	long maxreq = A.cf->max_requests ? A.cf->max_requests + jitter(A.cf->max_requests_jitter) : 0;

	pid_t pid = process_fork(); /* the worker sets its own signal mask */
	if (pid == 0) {
		close(sigpipe[0]);
		close(sigpipe[1]);
		close(wakepipe[0]);
		control_close_fds();
		pools_close_fds();
		srandom((unsigned)getpid());
		/* a master killed outright (SIGKILL, the OOM killer) is no
		 * longer there to stop its workers: each stops gracefully on
		 * its own (QUIT, blocked until the worker's handler is set)
		 * rather than serving on, orphaned, on the port */
		prctl(PR_SET_PDEATHSIG, SIGQUIT);
		if (getppid() != A.sb->master_pid)
			_exit(WORKER_EXIT_OK);
		worker_run(A.cf, A.ls, A.nls, A.sb, i, maxreq);
	}
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		slot->state = SLOT_FREE;
		return;
	}
	slot->pid = pid;
	A.w[i] = (struct wk){.pid = pid, .started_ms = monotonic_ms(), .gen = A.gen};
	log_info("worker %u started (pid %ld, generation %u)", i, (long)pid, A.gen);
}

/* A worker that died without stopping its CGI programs (killed for a
 * missed heartbeat, crashed) leaves them to init: stop their process
 * groups, as the worker's own timeouts would have. */
static void stop_orphaned_cgi(unsigned i, int clean)
{
	struct worker_slot *ws = &A.sb->slots[i];
	unsigned n = 0;
	for (unsigned k = 0; k < SLOT_CGI_MAX; k++) {
		pid_t g = ws->cgi_pgids[k];
		ws->cgi_pgids[k] = 0;
		if (g > 0 && !clean && kill(-g, SIGKILL) == 0)
			n++;
	}
	if (n)
		log_warn("worker %u: killed %u CGI process group(s) it left running", i, n);
	if (ws->cgi_untracked && !clean)
		log_warn("worker %u: %u CGI program(s) started past the scoreboard's %d may still run", i,
			 (unsigned)ws->cgi_untracked, SLOT_CGI_MAX);
	ws->cgi_untracked = 0;
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
		if (i == A.nworkers) {
			if (pid == A.upgrade_pid)
				upgrade_exited(status);
			else
				pools_reaped(pid, status);
			continue;
		}
		pools_worker_gone(pid, i);
		int64_t now = monotonic_ms();
		double secs = (double)(now - A.w[i].started_ms) / 1000.0;
		int clean = WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_OK;
		if (WIFEXITED(status))
			log_msg(clean ? LOG_INFO : LOG_ERROR,
				"worker %u (pid %ld) exited with code %d after %.3f seconds", i, (long)pid,
				WEXITSTATUS(status), secs);
		else
			log_error("worker %u (pid %ld) killed by signal %d after %.3f seconds", i, (long)pid,
				  WTERMSIG(status), secs);
		if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_BOOT_ERROR && !A.stopping) {
			log_error("worker %u failed to boot; stopping", i);
			A.halt = 1;
		}
		enum backoff_death how = clean ? BACKOFF_OK : A.w[i].killed ? BACKOFF_OURS : BACKOFF_FAILED;
		int64_t delay = backoff_died(&A.backoff, BACKOFF_MAX_MS, A.w[i].started_ms, now, how);
		if (delay) {
			A.next_spawn_ms = now + delay;
			log_warn("workers are dying at start (%d in a row); next start in %lld ms", A.backoff.failures,
				 (long long)delay);
			if (A.backoff.failures >= BOOT_FAILURES_MAX && !A.stopping) {
				log_error("%d workers in a row died within %d ms of starting; stopping",
					  A.backoff.failures, BACKOFF_QUICK_MS);
				A.halt = 1;
			}
		}
		stop_orphaned_cgi(i, clean);
		A.w[i].pid = 0;
		A.sb->slots[i].state = SLOT_FREE;
		A.sb->slots[i].pid = 0;
		unsigned used = scoreboard_slots_used(A.sb);
		while (used > 0 && A.w[used - 1].pid <= 0)
			used--;
		__atomic_store_n(&A.sb->slots_used, used, __ATOMIC_RELEASE);
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

/* The oldest configuration generation a live worker runs. */
static unsigned oldest_gen(void)
{
	unsigned g = UINT32_MAX;
	for (unsigned i = 0; i < A.nworkers; i++)
		if (A.w[i].pid > 0 && A.w[i].gen < g)
			g = A.w[i].gen;
	return g;
}

static unsigned current(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < A.nworkers; i++)
		n += A.w[i].pid > 0 && A.w[i].gen == A.gen && !A.w[i].retiring;
	return n;
}

static void spawn_missing(void)
{
	/* a drain still takes work: a worker that dies then is replaced */
	if ((A.stopping && !A.drain_until) || A.halt || monotonic_ms() < A.next_spawn_ms)
		return;
	for (unsigned i = 0, have = current(); i < A.nworkers && have < A.target; i++) {
		if (A.w[i].pid > 0)
			continue;
		spawn_worker(i);
		have++;
		if (A.backoff.failures)
			return; /* one at a time while failing */
	}
}

/* Tell a worker to finish its requests and exit. SIGUSR2 lets its idle
 * keep-alive connections carry one more request (answered with
 * Connection: close), so a reload never races a client. */
static void retire(unsigned i)
{
	if (A.w[i].pid <= 0 || A.w[i].retiring)
		return;
	A.w[i].retiring = 1;
	kill(A.w[i].pid, SIGUSR2);
}

static void retire_old(void)
{
	for (unsigned i = 0; i < A.nworkers; i++)
		if (A.w[i].pid > 0 && A.w[i].gen != A.gen)
			retire(i);
}

static struct config *load_config(char *err, size_t errlen)
{
	const struct arbiter_opts *o = A.opts;
	struct config *cf =
	    o->cgi_dir ? config_quick_cgi(o->cgi_dir, err, errlen) : config_load(o->config_file, err, errlen);
	if (!cf)
		return NULL;
	if (o->nbinds)
		config_set_listen(cf, o->binds, o->nbinds);
	if (o->workers)
		cf->workers = o->workers;
	return cf;
}

/* Each listener serves what its entry in cf says (TLS, redirect): the
 * workers forked from now on see it. */
static void listeners_conf(const struct config *cf)
{
	for (size_t i = 0; i < A.nls && i < cf->nlisten; i++) {
		A.ls[i].conf = &cf->lconf[i];
		A.ls[i].tls = cf->lconf[i].tls ? cf->lconf[i].tls->ctx : NULL;
	}
}

/* Listeners for cf: the ones already open for the same address are kept
 * (so no connection is refused), new ones are bound, the rest closed. */
static int swap_listeners(const struct config *cf)
{
	struct listener *nl = xcalloc(cf->nlisten, sizeof(*nl));
	int *reused = xcalloc(A.nls, sizeof(int));
	size_t i;
	for (i = 0; i < cf->nlisten; i++) {
		size_t k;
		for (k = 0; k < A.nls; k++)
			if (!reused[k] && listener_matches(&A.ls[k], cf->listen[i]))
				break;
		if (k < A.nls) {
			nl[i] = A.ls[k];
			nl[i].addr = xstrdup(cf->listen[i]); /* as written now */
			reused[k] = 1;
			continue;
		}
		struct listener *one;
		size_t n1;
		if (listeners_open(&one, &n1, &cf->listen[i], 1, cf->backlog) < 0)
			break;
		nl[i] = one[0];
		free(one);
	}
	if (i < cf->nlisten) {
		/* undo: close only what was opened for this attempt */
		for (size_t k = 0; k < i; k++) {
			int was_reused = 0;
			for (size_t j = 0; j < A.nls; j++)
				was_reused |= A.ls[j].fd == nl[k].fd;
			if (!was_reused)
				close(nl[k].fd);
			free(nl[k].addr);
		}
		free(nl);
		free(reused);
		return -1;
	}
	for (size_t k = 0; k < A.nls; k++) {
		if (!reused[k]) {
			log_info("closing listener %s", A.ls[k].addr);
			if (A.ls[k].is_unix && !A.ls[k].from_systemd)
				unlink(A.ls[k].addr + 5);
			close(A.ls[k].fd);
		}
		free(A.ls[k].addr);
	}
	free(A.ls);
	free(reused);
	A.ls = nl;
	A.nls = cf->nlisten;
	return 0;
}

/* The master opens the log files first (creating them), giving them to
 * the workers' user, so workers that dropped privileges can reopen them
 * when the master relays USR1 (nginx does the same). */
int arbiter_open_logs(const struct config *cf)
{
	log_set_level(cf->log_level);
	log_set_owner(geteuid() == 0 && cf->user ? cf->uid : (uid_t)-1);
	return log_open_error(cf->error_log) < 0 || log_open_access(cf->access_log) < 0 ? -1 : 0;
}

static int reopen_logs(const struct config *cf, char *msg, size_t cap)
{
	if (arbiter_open_logs(cf) < 0) {
		snprintf(msg, cap, "reopening logs failed; keeping the previous ones where possible");
		log_error("%s", msg);
		return -1;
	}
	snprintf(msg, cap, "logs reopened");
	return 0;
}

static int reload_config(char *msg, size_t cap);

/* HUP: a new configuration, or none at all if it does not load. msg gets
 * the one line logged about the outcome. */
static int reload(char *msg, size_t cap)
{
	process_notify("RELOADING=1");
	int r = reload_config(msg, cap);
	process_notify("READY=1");
	return r;
}

static int reload_failed(char *msg, size_t cap, const char *why)
{
	snprintf(msg, cap, "reload failed, keeping the running configuration: %s", why);
	log_error("%s", msg);
	return -1;
}

/* The control socket follows "control" across reloads; if the new one
 * cannot be made, the old one stays. */
static void control_follow(const struct config *cf)
{
	if (A.control && cf->control && strcmp(A.control, cf->control) == 0)
		return;
	if (cf->control && control_open(cf->control, 1) < 0) {
		log_error("keeping the control socket %s", A.control ? A.control : "(none)");
		return;
	}
	if (!cf->control)
		control_close();
	free(A.control);
	A.control = cf->control ? xstrdup(cf->control) : NULL;
}

static int reload_config(char *msg, size_t cap)
{
	char err[1024];
	struct config *cf = load_config(err, sizeof(err));
	if (!cf)
		return reload_failed(msg, cap, err);
	if (pools_check(cf) < 0) {
		config_free(cf);
		return reload_failed(msg, cap, "too many pools");
	}
	if (swap_listeners(cf) < 0) {
		config_free(cf);
		return reload_failed(msg, cap, "cannot listen as configured");
	}
	pools_reconcile(cf, A.gen + 1);
	struct config *old = A.cf;
	A.cf = cf;
	listeners_conf(cf);
	char lmsg[128];
	reopen_logs(cf, lmsg, sizeof(lmsg));
	config_free(old);
	control_follow(cf);
	A.gen++;
	A.sb->generation = A.gen;
	A.target = (unsigned)cf->workers;
	A.backoff.failures = 0;
	A.next_spawn_ms = 0;
	snprintf(msg, cap, "reloaded %s: generation %u, %u worker(s)", cf->file ? cf->file : "--cgi", A.gen, A.target);
	log_info("%s", msg);
	spawn_missing();
	retire_old();
	return 0;
}

/* The workers stop: gracefully (QUIT: they close their listeners and
 * finish what they carry) or at once (TERM). The master closes its copies
 * of the listening sockets too, as nginx's does: a connection that comes
 * now is refused at once (a balancer tries another server) instead of
 * waiting in a backlog nobody accepts from until the master exits. A
 * master that carries the service on (after USR2) has sockets of its own;
 * systemd keeps its copy of sockets it passed. */
static void stop_workers(int how)
{
	A.stop_since = monotonic_ms();
	log_info("%s stop: signalling %u worker(s)", how == 'g' ? "graceful" : "fast", alive());
	kill_all(how == 'g' ? SIGQUIT : SIGTERM);
	for (size_t i = 0; i < A.nls; i++)
		if (A.ls[i].fd >= 0) {
			close(A.ls[i].fd);
			A.ls[i].fd = -1;
		}
}

/* A stop begins. The instance says it is draining (health backends answer
 * 503, responses close their connections), except when another master
 * carries the service on: the new one after an upgrade, or the old one we
 * roll back to. A graceful stop with drain_delay keeps the workers taking
 * work that long first, so a balancer sees the drain before the listeners
 * close; QUIT again ends that wait, a fast stop skips it. */
static void begin_stop(int how)
{
	if (how == 'g' && A.stopping == 'g' && A.drain_until) {
		log_info("graceful stop asked again: the drain ends now");
		A.drain_until = 0;
		stop_workers('g');
		return;
	}
	if (A.stopping == 'f' || A.stopping == how)
		return;
	A.stopping = how;
	A.stop_since = monotonic_ms();
	A.drain_until = 0;
	if (A.upgrade_pid <= 0 && !old_master_alive()) {
		process_notify("STOPPING=1");
		__atomic_store_n(&A.sb->draining, 1, __ATOMIC_RELAXED);
		if (how == 'g' && A.cf->drain_delay_ms > 0) {
			A.drain_until = A.stop_since + A.cf->drain_delay_ms;
			log_info("graceful stop: draining for %lld ms (health checks answer 503, connections close "
				 "after their response), then the workers stop",
				 (long long)A.cf->drain_delay_ms);
			return;
		}
	}
	stop_workers(how);
}

static void handle_signal(int sig)
{
	char msg[2048];
	switch (sig) {
	case SIGCHLD: reap(); break;
	case SIGQUIT: begin_stop('g'); break;
	case SIGTERM: begin_stop(A.cf->sigterm_graceful ? 'g' : 'f'); break;
	case SIGINT: begin_stop('f'); break;
	case SIGHUP:
		if (!A.stopping)
			reload(msg, sizeof(msg));
		break;
	case SIGTTIN:
		if (A.target < 1024 && !A.stopping) {
			A.target++;
			log_info("TTIN: %u worker(s)", A.target);
		}
		break;
	case SIGTTOU:
		if (A.target > 1 && !A.stopping) {
			A.target--;
			log_info("TTOU: %u worker(s)", A.target);
			for (unsigned i = A.nworkers; i-- > 0;)
				if (A.w[i].pid > 0 && A.w[i].gen == A.gen && !A.w[i].retiring) {
					retire(i);
					break;
				}
		}
		break;
	case SIGWINCH:
		if (!A.stopping) {
			log_info("WINCH: stopping workers gracefully; HUP starts them again");
			A.target = 0;
			for (unsigned i = 0; i < A.nworkers; i++)
				retire(i);
		}
		break;
	case SIGUSR2:
		if (!A.stopping)
			upgrade();
		break;
	case SIGUSR1:
		log_info("USR1: reopening logs");
		reopen_logs(A.cf, msg, sizeof(msg));
		kill_all(SIGUSR1);
		break;
	default: log_info("signal %d ignored (not implemented yet)", sig); break;
	}
}

/* cpm -s: what the signals do, with the outcome as the answer. */
static int control_command(const char *cmd, const char *arg, char *reply, size_t cap)
{
	if (strcmp(cmd, "reopen") == 0) {
		int r = reopen_logs(A.cf, reply, cap);
		kill_all(SIGUSR1);
		return r;
	}
	if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "stop") == 0) {
		int how = cmd[0] == 'q' ? 'g' : 'f';
		if (how == 'g' && A.stopping == 'g' && A.drain_until) {
			begin_stop(how);
			snprintf(reply, cap, "graceful stop: the drain ends now (master pid %ld)", (long)getpid());
			return 0;
		}
		if (A.stopping == 'f' || A.stopping == how) {
			snprintf(reply, cap, "already stopping");
			return 0;
		}
		begin_stop(how);
		snprintf(reply, cap, "%s stop begun (master pid %ld)", how == 'g' ? "graceful" : "fast",
			 (long)getpid());
		return 0;
	}
	if (A.stopping) {
		snprintf(reply, cap, "the master is stopping");
		return -1;
	}
	if (strcmp(cmd, "reload") == 0)
		return reload(reply, cap);
	if (strcmp(cmd, "restart-pool") == 0) {
		if (pools_restart(arg) < 0) {
			snprintf(reply, cap, "no pool named \"%s\"", arg);
			log_warn("control: %s", reply);
			return -1;
		}
		snprintf(reply, cap, "restarting pool %s", arg);
		return 0;
	}
	snprintf(reply, cap, "unknown command \"%s\"", cmd); /* control_command_check knows it */
	return -1;
}

int arbiter_run(struct config *cf, const struct arbiter_opts *opts)
{
	A.cf = cf;
	A.opts = opts;
	proctitle_set("cpm: master");
	if (setup_signals() < 0)
		return 1;
	int upgraded = A.upgraded = adopt_inherited();
	if (upgraded)
		A.old_master = getppid();
	int nfds = process_listen_fds();
	if (nfds > 0) {
		int fds[1024];
		for (int k = 0; k < nfds; k++)
			fds[k] = 3 + k;
		listeners_adopt(fds, (size_t)nfds, 1);
		log_info("systemd passed %d listening socket(s)", nfds);
	}
	if (cf->pidfile && pidfile_check(cf->pidfile) < 0)
		return 1;
	if (listeners_open(&A.ls, &A.nls, cf->listen, cf->nlisten, cf->backlog) < 0)
		return 1;
	listeners_adopt_done();
	listeners_conf(cf);
	/* a master started by USR2 takes the path over from the old one */
	if (cf->control && control_open(cf->control, !upgraded) < 0)
		return 1;
	A.control = cf->control ? xstrdup(cf->control) : NULL;
	if (cf->user_default)
		log_info("started as root without \"user\": workers, CGI programs and pools run as nobody");
	else if (cf->user && cf->uid == 0 && geteuid() == 0)
		log_warn("\"user\": \"root\": workers, CGI programs and pools run as root");
	if (cf->user && geteuid() != 0)
		log_warn("not started as root: workers keep running as uid %ld, not as %s", (long)geteuid(), cf->user);
	if (cf->umask >= 0)
		umask((mode_t)cf->umask);
	if (cf->chdir && chdir(cf->chdir) < 0) {
		log_error("chdir %s: %s", cf->chdir, strerror(errno));
		return 1;
	}
	/* a master started by USR2 is already in the background: forking
	 * again would look like its death to the old master */
	if (opts->daemon && !upgraded && process_daemonize(!cf->error_log || strcmp(cf->error_log, "-") == 0) < 0)
		return 1;
	A.nworkers = SLOTS;
	A.target = (unsigned)cf->workers;
	A.sb = scoreboard_create(A.nworkers);
	if (!A.sb)
		return 1;
	A.sb->master_pid = getpid(); /* after -D: the daemon's pid */
	A.sb->started_ms = monotonic_ms();
	A.sb->started_unix = time(NULL);
	A.w = xcalloc(A.nworkers, sizeof(*A.w));
	if (pipe2(wakepipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("pipe: %s", strerror(errno));
		return 1;
	}
	A.sb->wake_fd = wakepipe[1];
	pools_init(A.sb);
	if (pools_reconcile(cf, A.gen) < 0)
		return 1;
	A.pidfile = cf->pidfile ? xstrdup(cf->pidfile) : NULL; /* the one written, whatever a reload says */
	if (A.pidfile && pidfile_write(A.pidfile) < 0)
		return 1;
	srandom((unsigned)(getpid() ^ time(NULL)));
	log_info("cpm %s master (pid %ld) starting %u worker(s)", CPM_VERSION, (long)getpid(), A.target);
	/* the init of a container (PID namespace): what CGI programs leave
	 * behind is reparented here when it ends, and reap() takes every
	 * child, known or not */
	if (getpid() == 1)
		log_info("running as PID 1: orphaned processes are reaped by the master");
	log_started();
	spawn_missing();
	char ready[64];
	snprintf(ready, sizeof(ready), "READY=1\nMAINPID=%ld", (long)getpid());
	process_notify(ready);

	for (;;) {
		spawn_missing();
		if (A.halt && !A.stopping)
			begin_stop('f');
		if (A.drain_until && monotonic_ms() >= A.drain_until) {
			A.drain_until = 0;
			stop_workers('g');
		}
		if (A.stopping && !A.drain_until && alive() == 0)
			break;
		if (A.stopping && !A.drain_until && !A.kill_sent) {
			int64_t limit = A.stopping == 'g' ? A.cf->graceful_timeout_ms + 1000 : STOP_KILL_MS;
			if (monotonic_ms() - A.stop_since > limit) {
				log_warn("workers still running after %lld ms; killing them", (long long)limit);
				kill_all(SIGKILL);
				A.kill_sent = 1;
			}
		}
		struct pollfd pfd[2 + CONTROL_POLLFDS + POOL_SLOTS_MAX] = {{.fd = sigpipe[0], .events = POLLIN},
									   {.fd = wakepipe[0], .events = POLLIN}};
		size_t nctl = control_pollfds(pfd + 2, CONTROL_POLLFDS);
		size_t npfd = 2 + nctl + pools_pollfds(pfd + 2 + nctl, POOL_SLOTS_MAX);
		int timeout = pools_tick(oldest_gen());
		int tls_timeout = tls_shared_tick(monotonic_ms());
		if (tls_timeout < timeout)
			timeout = tls_timeout;
		int ctl_timeout = control_timeout();
		if (ctl_timeout >= 0 && ctl_timeout < timeout)
			timeout = ctl_timeout;
		if (A.next_spawn_ms) {
			int64_t d = A.next_spawn_ms - monotonic_ms();
			if (d < timeout)
				timeout = d < 0 ? 0 : (int)d;
		}
		if (A.stopping && timeout > 100)
			timeout = 100;
		poll(pfd, npfd, timeout);
		unsigned char sigs[64];
		ssize_t n;
		while ((n = read(sigpipe[0], sigs, sizeof(sigs))) > 0)
			for (ssize_t k = 0; k < n; k++)
				handle_signal(sigs[k]);
		while (read(wakepipe[0], sigs, sizeof(sigs)) > 0)
			;
		control_on_poll(pfd + 2, nctl, control_command);
		pools_on_poll(pfd + 2 + nctl, npfd - 2 - nctl);
		reap(); /* in case a SIGCHLD was coalesced */
		check_heartbeats();
	}
	control_close();
	free(A.control);
	pools_shutdown(STOP_KILL_MS);
	if (A.pidfile)
		unlink(A.pidfile);
	free(A.pidfile);
	/* unix socket files stay when another master serves them (a new one
	 * after USR2, or the old one we roll back to) and when systemd owns
	 * them */
	for (size_t i = 0; i < A.nls && A.upgrade_pid <= 0 && !old_master_alive(); i++)
		if (A.ls[i].is_unix && !A.ls[i].from_systemd)
			unlink(A.ls[i].addr + 5);
	listeners_close(A.ls, A.nls);
	log_info("master exiting");
	return A.halt ? 1 : 0;
}
