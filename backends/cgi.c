/* The cgi backend. A request becomes: script lookup under the backend's
 * root, vfork and exec with pipes on 0/1/2 in its own process group, request
 * body streamed to its stdin, its stdout parsed as a CGI response and
 * streamed to the client, its stderr logged line by line. */

#include "backend.h"
#include "cgi_output.h"
#include "script.h"
#include "waitq.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KILL_GRACE_MS 5000
#define DROP_MAX      (1024 * 1024)

extern char **environ;

struct cgi_req {
	struct exchange *x; /* NULL once the client side is finished */
	const struct backend_conf *b;
	pid_t pid;
	struct ev in, out, err;
	struct cgi_output output; /* its stdout becoming the response */
	int discard;		  /* reading output only to throw it away */
	int exited;
	int term_sent;
	struct timer timeout;
	int64_t held_left;	     /* > 0: output held for a slow client, this much timeout left */
	int tracked;		     /* its group is listed in the worker's scoreboard slot */
	size_t dropped;		     /* output read and thrown away */
	char script[256];	     /* for log lines */
	char id[72];		     /* the request's id, for log lines after it ended */
	struct log_lines errlog;     /* its stderr */
	int body_done;		     /* stdin closed */
	struct cgi_req *next, *prev; /* running list */
	/* waiting for a slot under max_concurrent: nothing else is set up,
	 * and it starts again from info when a slot is free */
	struct waiter wait;
	struct exchange_info info;
};

static struct cgi_req *running;
static unsigned nrunning;

/* per backend: running count and waiting requests, indexed by pointer */
struct bstat {
	const struct backend_conf *b;
	int running;
	struct waitq waiting;
	struct backend_gauges *g; /* their copy in the scoreboard, or NULL */
};
static struct bstat *bstats;
static size_t nbstats;

static struct bstat *bstat(const struct backend_conf *b)
{
	for (size_t i = 0; i < nbstats; i++)
		if (bstats[i].b == b)
			return &bstats[i];
	bstats = xrealloc(bstats, (nbstats + 1) * sizeof(*bstats));
	struct worker_slot *ws = loop_worker_slot();
	bstats[nbstats] = (struct bstat){.b = b, .g = ws ? &ws->backend[loop_backend_index(b)] : NULL};
	return &bstats[nbstats++];
}

/* After running or waiting changed: the status page's view of them. */
static void bstat_publish(const struct bstat *bs)
{
	if (!bs->g)
		return;
	bs->g->cgi_running = (uint32_t)bs->running;
	bs->g->cgi_queued = bs->waiting.n;
}

static unsigned cgi_running(void)
{
	return nrunning;
}

static void *cgi_start(struct exchange *x, const struct exchange_info *info);
static void reap_now(struct cgi_req *r);

/* ---- script lookup ---- */

/* ---- process lifecycle ---- */

/* The worker's scoreboard slot lists its programs' process groups (see
 * scoreboard.h): the master stops them if this worker dies first. */
static void track_group(struct cgi_req *r, int on)
{
	struct worker_slot *ws = loop_worker_slot();
	if (!ws)
		return;
	if (!on && !r->tracked) {
		ws->cgi_untracked--;
		return;
	}
	pid_t want = on ? 0 : r->pid;
	for (unsigned i = 0; i < SLOT_CGI_MAX; i++)
		if (ws->cgi_pgids[i] == want) {
			ws->cgi_pgids[i] = on ? r->pid : 0;
			r->tracked = on;
			return;
		}
	if (on)
		ws->cgi_untracked++;
}

static void req_free_if_done(struct cgi_req *r)
{
	if (r->x || !r->exited || r->out.fd >= 0 || r->err.fd >= 0)
		return;
	track_group(r, 0);
	timer_cancel(loop_timers(), &r->timeout);
	if (r->in.fd >= 0)
		loop_del(&r->in);
	if (r->prev)
		r->prev->next = r->next;
	else
		running = r->next;
	if (r->next)
		r->next->prev = r->prev;
	cgi_output_free(&r->output);
	loop_free_later(r);
}

static void kill_group(struct cgi_req *r, int sig)
{
	if (r->pid > 0 && kill(-r->pid, sig) < 0 && errno == ESRCH && !r->exited)
		kill(r->pid, sig);
}

/* The output is held because the client is slower than the program: the
 * program waits for cpm, so its timeout stops until the client catches
 * up. */
static void hold_output(struct cgi_req *r)
{
	loop_mod(&r->out, 0);
	if (r->held_left == 0 && !r->term_sent)
		r->held_left = timer_suspend(loop_timers(), &r->timeout, loop_now_ms());
}

static void release_output(struct cgi_req *r)
{
	timer_resume(loop_timers(), &r->timeout, loop_now_ms(), r->held_left);
	r->held_left = 0;
	loop_mod(&r->out, EPOLLIN);
}

/* The client side is finished (response complete, error sent or client
 * gone). The process may still run; it is reaped later. keep_output: its
 * stdout stays open and what it writes is read and dropped, so a program
 * that runs on after its response (or after its client left, with
 * ignore_client_abort) is neither blocked on a full pipe nor killed by
 * SIGPIPE; otherwise its stdout is closed. */
static void detach_output(struct cgi_req *r, int keep_output)
{
	r->x = NULL;
	if (r->in.fd >= 0)
		loop_del(&r->in);
	if (r->out.fd < 0)
		return;
	if (keep_output)
		r->discard = 1;
	release_output(r); /* nobody waits for it now: its timeout runs again */
	if (!keep_output)
		loop_del(&r->out);
}

static void detach(struct cgi_req *r)
{
	detach_output(r, 0);
}

/* The client is gone or the response broke after its head: stop the
 * script and tell the worker this exchange is over. */
static void give_up(struct cgi_req *r)
{
	struct exchange *x = r->x;
	detach(r);
	kill_group(r, SIGTERM);
	if (x)
		exchange_response_end(x, 0);
}

static void on_timeout(struct timer *t)
{
	struct cgi_req *r = (struct cgi_req *)((char *)t - offsetof(struct cgi_req, timeout));
	if (!r->term_sent) {
		/* the request may be over (the program ran on): the prefix names it */
		if (r->x)
			exchange_log(r->x, LOG_WARN, "cgi %s[%ld]: timeout after %lld ms, killing its process group",
				     r->script, (long)r->pid, (long long)r->b->cgi.timeout_ms);
		else
			log_warn("cgi %s[%ld]: timeout after %lld ms, killing its process group (id=%s)", r->script,
				 (long)r->pid, (long long)r->b->cgi.timeout_ms, r->id);
		r->term_sent = 1;
		kill_group(r, SIGTERM);
		timer_arm(loop_timers(), &r->timeout, loop_now_ms() + KILL_GRACE_MS);
		if (r->x) {
			struct exchange *x = r->x;
			detach(r);
			if (r->output.head_done && !r->discard && !r->output.redirect)
				exchange_response_end(x, 0);
			else
				exchange_error(x, 504, NULL);
		}
	} else {
		kill_group(r, SIGKILL);
		if (!r->exited || r->out.fd >= 0 || r->err.fd >= 0)
			timer_arm(loop_timers(), &r->timeout, loop_now_ms() + KILL_GRACE_MS);
	}
	req_free_if_done(r);
}

/* ---- I/O handlers ---- */

static void on_stdin(struct ev *ev, uint32_t events);

static void feed_stdin(struct cgi_req *r)
{
	if (!r->x)
		return;
	for (;;) {
		const char *p;
		int eof = 0;
		size_t n = exchange_body_peek(r->x, &p, &eof);
		if (n == 0) {
			if (eof && r->in.fd >= 0) {
				loop_del(&r->in);
				r->body_done = 1;
			} else if (r->in.fd >= 0 && r->in.events) {
				loop_mod(&r->in, 0);
			}
			return;
		}
		if (r->in.fd < 0) {
			/* the script closed its stdin: discard the rest */
			exchange_body_consume(r->x, n);
			continue;
		}
		ssize_t w = write(r->in.fd, p, n);
		if (w > 0) {
			exchange_body_consume(r->x, (size_t)w);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			if (!(r->in.events & EPOLLOUT))
				loop_mod(&r->in, EPOLLOUT);
			return;
		}
		/* EPIPE: the script does not read its body */
		loop_del(&r->in);
		r->body_done = 1;
	}
}

static void on_stdin(struct ev *ev, uint32_t events)
{
	(void)events;
	struct cgi_req *r = (struct cgi_req *)((char *)ev - offsetof(struct cgi_req, in));
	feed_stdin(r);
}

static void cgi_body_ready(void *st)
{
	feed_stdin(st);
}

static void bad_gateway(struct cgi_req *r, const char *why)
{
	struct exchange *x = r->x;
	exchange_log(x, LOG_ERROR, "cgi %s[%ld]: %s", r->script, (long)r->pid, why);
	detach(r);
	kill_group(r, SIGTERM);
	if (x)
		exchange_error(x, 502, NULL);
}

static void stdout_eof(struct cgi_req *r)
{
	loop_del(&r->out);
	reap_now(r);
	struct exchange *x = r->x;
	if (!x)
		return;
	if (cgi_output_eof(&r->output) == CGI_OUTPUT_BAD) {
		bad_gateway(r, r->output.why);
		return;
	}
	detach(r);
	if (r->output.redirect)
		exchange_redirect(x, r->output.redirect, strlen(r->output.redirect));
	else
		exchange_response_end(x, 1);
}

static int out_head(void *pdata, const struct cgi_response *resp)
{
	return exchange_response_head(((struct cgi_req *)pdata)->x, resp);
}

static int out_body(void *pdata, const char *p, size_t n)
{
	return exchange_response_body(((struct cgi_req *)pdata)->x, p, n);
}

static int out_complete(void *pdata)
{
	return exchange_response_complete(((struct cgi_req *)pdata)->x);
}

static const struct cgi_output_opts output_opts = {out_head, out_body, out_complete};

static void on_stdout(struct ev *ev, uint32_t events)
{
	(void)events;
	struct cgi_req *r = (struct cgi_req *)((char *)ev - offsetof(struct cgi_req, out));
	for (int rounds = 0; rounds < 16 && r->out.fd >= 0; rounds++) {
		char buf[CGI_OUTPUT_READ_CHUNK];
		ssize_t n = read(r->out.fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			n = 0;
		}
		if (n == 0) {
			stdout_eof(r);
			break;
		}
		if (r->discard || !r->x || r->output.redirect) {
			/* output nobody will see (after a complete response, a
			 * client gone with ignore_client_abort, a local redirect's
			 * body): read and drop it, but not without end, or a
			 * program writing on would keep the worker busy until its
			 * timeout; past DROP_MAX its stdout is closed (it gets
			 * EPIPE or SIGPIPE if it writes on) */
			r->dropped += (size_t)n;
			if (r->dropped > DROP_MAX) {
				if (r->x)
					stdout_eof(r); /* the redirect goes ahead now */
				else
					loop_del(&r->out);
				break;
			}
			continue;
		}
		enum cgi_output_rc rc = cgi_output_feed(&r->output, buf, (size_t)n);
		if (rc == CGI_OUTPUT_BAD) {
			bad_gateway(r, r->output.why);
			break;
		}
		if (rc == CGI_OUTPUT_GONE) {
			give_up(r);
			break;
		}
		if (rc == CGI_OUTPUT_COMPLETE) {
			/* the response has all its bytes (Content-Length
			 * reached, or no body): the request is done now, even if
			 * the program runs on; it exits by itself within its
			 * timeout */
			struct exchange *x = r->x;
			detach_output(r, 1);
			exchange_response_end(x, 1);
			continue; /* read on, dropping what comes */
		}
		if (rc == CGI_OUTPUT_HOLD) {
			hold_output(r);
			break;
		}
	}
	req_free_if_done(r);
}

static void cgi_resume(void *st)
{
	struct cgi_req *r = st;
	if (r->out.fd >= 0 && !(r->out.events & EPOLLIN)) {
		release_output(r);
		on_stdout(&r->out, EPOLLIN);
	}
}

static void on_stderr(struct ev *ev, uint32_t events)
{
	(void)events;
	struct cgi_req *r = (struct cgi_req *)((char *)ev - offsetof(struct cgi_req, err));
	char buf[4096];
	for (int rounds = 0; rounds < 16; rounds++) { /* a flood shares the loop */
		ssize_t n = read(r->err.fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			log_lines_flush(&r->errlog);
			loop_del(&r->err);
			req_free_if_done(r);
			return;
		}
		log_lines_feed(&r->errlog, buf, (size_t)n);
	}
}

static void cgi_abort(void *st)
{
	struct cgi_req *r = st;
	if (!r->x)
		return;
	if (r->b->cgi.ignore_client_abort) {
		exchange_log(r->x, LOG_INFO, "cgi %s[%ld]: client gone; the script runs on (ignore_client_abort)",
			     r->script, (long)r->pid);
		detach_output(r, 1);
		req_free_if_done(r);
		return;
	}
	exchange_log(r->x, LOG_INFO, "cgi %s[%ld]: client gone, killing the script", r->script, (long)r->pid);
	detach(r);
	if (!r->exited) {
		kill_group(r, SIGTERM);
		r->term_sent = 1;
		timer_arm(loop_timers(), &r->timeout, loop_now_ms() + KILL_GRACE_MS);
	}
	req_free_if_done(r);
}

/* ---- waiting for a slot under max_concurrent ---- */

static struct cgi_req *waiting_req(struct waiter *w)
{
	return (struct cgi_req *)((char *)w - offsetof(struct cgi_req, wait));
}

static void on_wait_expired(struct waiter *w)
{
	struct cgi_req *q = waiting_req(w);
	char ra[64];
	script_retry_after(q->b, ra, sizeof(ra));
	waitq_remove(w);
	bstat_publish(bstat(q->b));
	exchange_log(q->x, LOG_WARN, "cgi %s: request waited %lld ms for a slot, 503", q->b->name,
		     (long long)(loop_now_ms() - w->since));
	exchange_error(q->x, 503, ra);
	free(q);
}

static void release_slot(const struct backend_conf *b)
{
	struct bstat *bs = bstat(b);
	bs->running--;
	struct cgi_req *q = bs->waiting.head ? waiting_req(bs->waiting.head) : NULL;
	if (q)
		waitq_remove(&q->wait);
	bstat_publish(bs);
	if (!q)
		return;
	struct exchange *x = q->x;
	struct exchange_info info = q->info;
	free(q);
	exchange_set_state(x, cgi_start(x, &info));
}

static void child_exited(struct cgi_req *r, int status, const struct rusage *ru)
{
	pid_t pid = r->pid;
	r->exited = 1;
	exchange_child_reaped(pid, ru);
	nrunning--;
	/* the request may be over: its id names it */
	if (WIFSIGNALED(status))
		log_info("cgi %s[%ld]: killed by signal %d (id=%s)", r->script, (long)pid, WTERMSIG(status), r->id);
	else if (WEXITSTATUS(status))
		log_info("cgi %s[%ld]: exited with code %d (id=%s)", r->script, (long)pid, WEXITSTATUS(status), r->id);
	else
		log_debug("cgi %s[%ld]: exited with code 0 (id=%s)", r->script, (long)pid, r->id);
	/* its group may live on (a background child holding a pipe):
	 * the timeout still kills it */
	release_slot(r->b);
}

static int cgi_child_exited(pid_t pid, int status, const struct rusage *ru)
{
	for (struct cgi_req *r = running; r; r = r->next) {
		if (r->pid != pid)
			continue;
		child_exited(r, status, ru);
		req_free_if_done(r);
		return 1;
	}
	return 0;
}

/* Its stdout is closed: a program that has exited is reaped now, so its
 * usage (wait4) is known before its request ends and the access-log line
 * goes out at once. One that has not (it runs on, or its exit is still
 * under way) is reaped as usual, and the line waits for it. */
static void reap_now(struct cgi_req *r)
{
	int status;
	struct rusage ru;
	if (!r->exited && wait4(r->pid, &status, WNOHANG, &ru) == r->pid)
		child_exited(r, status, &ru);
}

/* A graceful stop lets the scripts finish; a fast one kills every running
 * script's process group. */
static void cgi_stop(int now)
{
	if (!now)
		return;
	for (struct cgi_req *r = running; r; r = r->next)
		if (!r->exited)
			kill_group(r, SIGKILL);
}

/* ---- spawning ---- */

/* vfork, set up 0/1/2, the directory, the process group and, if
 * configured, the limits, then exec. The child shares our memory until it
 * execs, so it only makes system calls, and says why exec failed through
 * child_errno. What posix_spawn would do, minus the parent's part of it
 * (glibc checks each of its five file actions with getrlimit, maps a
 * stack for the child and blocks every signal around the clone: 11
 * system calls a request), which this worker does not need: it handles
 * no signal (signalfd; only SIGPIPE is ignored, and the child's
 * dispositions are its own), and blocks the ones it reads. */
static int spawn(struct cgi_req *r, const struct script *s, char **envp, int in_fd, int out_fd, int err_fd)
{
	static volatile int child_errno;
	char *argv[] = {(char *)s->filename, NULL};
	sigset_t none;
	sigemptyset(&none);
	int limits = script_has_limits(&r->b->cgi);
	child_errno = 0;
	pid_t pid = vfork();
	if (pid == 0) {
		/* the child's fds are all >= 3 (0-2 stay open in the worker),
		 * so dup2 always clears close-on-exec */
		if (setpgid(0, 0) < 0 || dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0 ||
		    chdir(s->dir) < 0 || (limits && script_child_limits(&r->b->cgi) < 0)) {
			child_errno = errno;
			_exit(127);
		}
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		closefrom(3);
		execve(s->filename, argv, envp);
		child_errno = errno;
		_exit(127);
	}
	if (pid < 0)
		return errno;
	if (child_errno) {
		int e = child_errno;
		waitpid(pid, NULL, 0);
		return e;
	}
	r->pid = pid;
	return 0;
}

static int nb_pipe(int fds[2], int nonblock_end)
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	fcntl(fds[nonblock_end], F_SETFL, O_NONBLOCK);
	return 0;
}

static void *cgi_start(struct exchange *x, const struct exchange_info *info)
{
	const struct backend_conf *b = info->backend;
	const struct cgi_conf *g = &b->cgi;
	struct bstat *bs = bstat(b);

	if (g->max_concurrent && bs->running >= g->max_concurrent) {
		char ra[64];
		script_retry_after(b, ra, sizeof(ra));
		if (bs->waiting.n >= (unsigned)g->queue || g->queue_timeout_ms == 0) {
			exchange_log(x, LOG_WARN, "cgi %s: %d running, queue full, 503", b->name, bs->running);
			exchange_error(x, 503, ra);
			return NULL;
		}
		struct cgi_req *q = xcalloc(1, sizeof(*q));
		q->x = x;
		q->b = b;
		q->info = *info;
		exchange_wait_begin(x);
		waitq_add(&bs->waiting, &q->wait, g->queue_timeout_ms, on_wait_expired);
		bstat_publish(bs);
		return q;
	}

	struct script s;
	struct script_conf sc = {g->root, g->index, g->nindex, 1};
	int st = g->script ? script_fixed(g->script, info, &s) : script_find(&sc, info, &s);
	if (st) {
		if (st == 403 && s.filename[0])
			exchange_log(x, LOG_ERROR, "cgi: %s is not executable (chmod +x)", s.filename);
		exchange_error(x, st, NULL);
		return NULL;
	}

	char *arena;
	char **envp = script_env(info, &s, g->root ? g->root : "", g->env, g->nenv, &arena);
	if (!envp) {
		exchange_log(x, LOG_ERROR, "cgi %s: environment too large", s.filename);
		exchange_error(x, 500, NULL);
		return NULL;
	}

	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
	int child_in = -1;
	int ok = nb_pipe(pout, 0) == 0 && nb_pipe(perr, 0) == 0;
	if (ok) {
		if (info->body_fd >= 0)
			child_in = info->body_fd;
		else if (info->has_body && info->content_length > 0) {
			ok = nb_pipe(pin, 1) == 0;
			child_in = pin[0];
		} else {
			child_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
			ok = child_in >= 0;
		}
	}
	struct cgi_req *r = xcalloc(1, sizeof(*r));
	r->x = x;
	r->b = b;
	r->in.fd = r->out.fd = r->err.fd = -1;
	cgi_output_init(&r->output, &output_opts, r);
	const char *base = strrchr(s.filename, '/');
	base = base ? base + 1 : s.filename;
	size_t bl = strlen(base);
	if (bl >= sizeof(r->script))
		bl = sizeof(r->script) - 1;
	memcpy(r->script, base, bl);
	int rc = ok ? spawn(r, &s, envp, child_in, pout[1], perr[1]) : errno;
	free(arena);
	free(envp);
	if (child_in >= 0 && child_in != info->body_fd)
		close(child_in);
	if (pout[1] >= 0)
		close(pout[1]);
	if (perr[1] >= 0)
		close(perr[1]);
	if (!ok || rc) {
		char why[512];
		if (ok)
			script_exec_error(s.filename, rc, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s", strerror(errno));
		exchange_log(x, LOG_ERROR, "cgi: cannot run %s: %s", s.filename, why);
		if (pin[1] >= 0)
			close(pin[1]);
		if (pout[0] >= 0)
			close(pout[0]);
		if (perr[0] >= 0)
			close(perr[0]);
		free(r);
		exchange_error(x, 502, NULL);
		return NULL;
	}
	bs->running++;
	bstat_publish(bs);
	nrunning++;
	track_group(r, 1);
	r->next = running;
	if (running)
		running->prev = r;
	running = r;
	r->out = (struct ev){.fd = pout[0], .handler = on_stdout};
	r->err = (struct ev){.fd = perr[0], .handler = on_stderr};
	snprintf(r->id, sizeof(r->id), "%s", info->request_id ? info->request_id : "-");
	snprintf(r->errlog.prefix, sizeof(r->errlog.prefix), "cgi %.200s[%ld] id=%s", r->script, (long)r->pid, r->id);
	loop_add(&r->out, EPOLLIN);
	loop_add(&r->err, EPOLLIN);
	if (pin[1] >= 0) {
		r->in = (struct ev){.fd = pin[1], .handler = on_stdin};
		loop_add(&r->in, 0);
	}
	r->timeout.fire = on_timeout;
	timer_arm(loop_timers(), &r->timeout, loop_now_ms() + g->timeout_ms);
	exchange_upstream(x, r->pid);
	exchange_upstream_child(x);
	exchange_log(x, LOG_DEBUG, "cgi %s[%ld]: started", r->script, (long)r->pid);
	if (r->in.fd >= 0)
		feed_stdin(r);
	return r;
}

/* A waiting request has no process: nothing to feed or resume, and a
 * client gone only takes it out of the queue. */
static void ops_body_ready(void *st)
{
	struct cgi_req *r = st;
	if (!waitq_waiting(&r->wait))
		cgi_body_ready(r);
}

static void ops_resume(void *st)
{
	struct cgi_req *r = st;
	if (!waitq_waiting(&r->wait))
		cgi_resume(r);
}

static void ops_abort(void *st)
{
	struct cgi_req *r = st;
	if (waitq_waiting(&r->wait)) {
		waitq_remove(&r->wait);
		bstat_publish(bstat(r->b));
		free(r);
	} else {
		cgi_abort(r);
	}
}

const struct backend_ops cgi_backend_ops = {
    .start = cgi_start,
    .body_ready = ops_body_ready,
    .resume = ops_resume,
    .abort = ops_abort,
    .child_exited = cgi_child_exited,
    .stop = cgi_stop,
    .running = cgi_running,
};
