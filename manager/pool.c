/* FastCGI process pools, master side (see pool.h). */

#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../backends/script.h"
#include "backoff.h"
#include "log.h"
#include "process.h"
#include "xalloc.h"

#define BACKOFF_MAX_MS 30000
#define STOP_KILL_MS   5000 /* TERM, then KILL after this */
#define SCALE_UP_MS    100  /* at most one more process per pool this often */
#define HUNG_MARGIN_MS 5000 /* past the request timeout: the master kills by itself */
#define DOWN_AFTER     2    /* quick deaths in a row, none running: the pool is down */

/* What a process is started with: a private copy, so a pool outlives the
 * configuration it came from and a reload can compare. */
struct spec {
	char **argv;
	char **env;
	char *cwd;
	int has_user;
	char *user;
	uid_t uid;
	gid_t gid;
	int tcp;
	struct rlimits_conf rl;
	int nnp;
};

struct proc {
	pid_t pid;
	int lfd;		 /* its listening socket (kept across restarts) */
	int errfd;		 /* read end of its stdout/stderr pipe, or -1 */
	struct log_lines errlog; /* its stdout and stderr */
	int want;		 /* this position should run a process */
	int stopping;		 /* TERM sent (recycle, scale down, retire) */
	int killed;		 /* KILL sent for a hung request */
	int old;		 /* a rolling restart replaces it */
	const char *drain_why;	 /* the master drains it (else a worker did: max_requests) */
	int64_t term_ms;
	int64_t started_ms;
	int64_t next_spawn_ms;
	struct backoff backoff; /* of its starts */
	char path[108];		/* unix socket file, "" for tcp */
};

struct pool {
	int used;
	char name[64];
	struct spec spec;
	int min, max;
	int64_t idle_timeout_ms;
	int64_t timeout_ms;
	long max_requests;
	unsigned base;
	int npos;	/* positions (sockets, slots): max + 1, a spare for a rolling restart */
	struct proc *p; /* npos of them; at most max run, max + 1 during a rolling restart */
	int64_t last_scale_ms;
	unsigned retired_gen; /* 0: in use */
	int keep;	      /* "reload": "keep" */
	/* a rolling restart (pool_restart): roll_k is the new process on
	 * probation, -1 if none */
	int rolling, roll_k, roll_total, roll_done;
	/* quick failing deaths in a row, the last one's wait status */
	int fails, last_status;
};

static struct {
	struct scoreboard *sb;
	struct pool pools[POOLS_MAX];
	unsigned char slot_used[POOL_SLOTS_MAX];
	char *dir; /* where the unix sockets live */
	uid_t sock_uid;
	gid_t sock_gid;
} P;

static struct pool_slot *slot_of(struct pool *pl, unsigned k)
{
	return &P.sb->pool_slots[pl->base + k];
}

/* The scoreboard's header of pl. */
static struct pool_header *header(const struct pool *pl)
{
	return &P.sb->pools[pl - P.pools];
}

void pools_init(struct scoreboard *sb)
{
	P.sb = sb;
}

/* ---- specs ---- */

static char **strv_dup(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **r = xmalloc((n + 1) * sizeof(*r));
	for (size_t i = 0; i < n; i++)
		r[i] = xstrdup(v[i]);
	r[n] = NULL;
	return r;
}

static void strv_release(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int strv_equal(char *const *a, char *const *b)
{
	size_t i;
	for (i = 0; a[i] && b[i]; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return !a[i] && !b[i];
}

/* The user processes run as: the pool's, else the workers' (the same
 * identity, supplementary groups included: process_become). */
static const char *spec_user(const struct config *cf, const struct backend_conf *b, int *has, uid_t *uid, gid_t *gid)
{
	const struct pool_conf *pc = b->cgi.pool;
	*has = 0;
	if (geteuid() != 0)
		return NULL;
	if (pc->user) {
		*has = 1, *uid = pc->uid, *gid = pc->gid;
		return pc->user;
	} else if (cf->user) {
		*has = 1, *uid = cf->uid, *gid = cf->gid;
		return cf->user;
	}
	return NULL;
}

static void spec_make(struct spec *s, const struct config *cf, const struct backend_conf *b)
{
	const struct pool_conf *pc = b->cgi.pool;
	s->argv = strv_dup(pc->argv);
	s->env = strv_dup(b->cgi.env);
	s->cwd = pc->cwd ? xstrdup(pc->cwd) : NULL;
	const char *user = spec_user(cf, b, &s->has_user, &s->uid, &s->gid);
	s->user = user ? xstrdup(user) : NULL;
	s->tcp = pc->tcp;
	s->rl = b->cgi.rl;
	s->nnp = b->cgi.no_new_privs;
}

/* What differs between s and what b would start (for the log), or NULL
 * if nothing does. */
static const char *spec_diff(const struct spec *s, const struct config *cf, const struct backend_conf *b)
{
	const struct pool_conf *pc = b->cgi.pool;
	int has;
	uid_t uid = 0;
	gid_t gid = 0;
	const char *user = spec_user(cf, b, &has, &uid, &gid);
	if (!strv_equal(s->argv, pc->argv))
		return "command";
	if (!strv_equal(s->env, b->cgi.env))
		return "env";
	if (!((!s->cwd && !pc->cwd) || (s->cwd && pc->cwd && strcmp(s->cwd, pc->cwd) == 0)))
		return "cwd";
	if (s->has_user != has || (has && (s->uid != uid || s->gid != gid || strcmp(s->user, user) != 0)))
		return "user";
	if (s->tcp != pc->tcp)
		return "socket";
	if (memcmp(&s->rl, &b->cgi.rl, sizeof(s->rl)) != 0)
		return "rlimits";
	if (s->nnp != b->cgi.no_new_privs)
		return "no_new_privs";
	return NULL;
}

static void spec_free(struct spec *s)
{
	strv_release(s->argv);
	strv_release(s->env);
	free(s->cwd);
	free(s->user);
}

/* ---- sockets ---- */

static int make_dir(void)
{
	if (P.dir)
		return 0;
	const char *base = getenv("RUNTIME_DIRECTORY"); /* systemd's RuntimeDirectory= */
	if (!base || !*base || strchr(base, ':'))
		base = getenv("TMPDIR");
	if (!base || !*base || strlen(base) > 40)
		base = "/tmp";
	char *d;
	if (asprintf(&d, "%s/cpm.%ld.XXXXXX", base, (long)getpid()) < 0)
		return -1;
	if (!mkdtemp(d)) {
		log_error("pools: cannot create a socket directory under %s: %s", base, strerror(errno));
		free(d);
		return -1;
	}
	/* workers connect, as their user; nobody else gets in */
	if (geteuid() == 0 && P.sock_uid && chown(d, P.sock_uid, P.sock_gid) < 0)
		log_warn("pools: chown %s: %s", d, strerror(errno));
	P.dir = d;
	return 0;
}

/* The listening socket of position k. Returns 0, or -1 (logged). */
static int open_socket(struct pool *pl, unsigned k)
{
	struct proc *pr = &pl->p[k];
	struct pool_slot *s = slot_of(pl, k);
	if (pl->spec.tcp) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t sl = sizeof(sin);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 1024) < 0 ||
		    getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
			log_error("pool %s[%u]: a TCP socket on 127.0.0.1: %s", pl->name, k, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		pr->lfd = fd;
		pr->path[0] = 0;
		snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u", ntohs(sin.sin_port));
		return 0;
	}
	if (make_dir() < 0)
		return -1;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%u.%u.sock", P.dir, pl->base, k);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path))
		return -1;
	unlink(sun.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 1024) < 0) {
		log_error("pool %s[%u]: socket %s: %s", pl->name, k, sun.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (geteuid() == 0 && P.sock_uid && chown(sun.sun_path, P.sock_uid, P.sock_gid) < 0)
		log_warn("pool %s[%u]: chown %s: %s", pl->name, k, sun.sun_path, strerror(errno));
	chmod(sun.sun_path, 0600);
	pr->lfd = fd;
	snprintf(pr->path, sizeof(pr->path), "%s", sun.sun_path);
	snprintf(s->addr, sizeof(s->addr), "unix:%s", sun.sun_path);
	return 0;
}

/* The socket directory and the sockets kept across restarts become the
 * workers' (new) user's, so the workers of a reload that changed the user
 * can connect. Workers of the old user that are still draining lose new
 * connections to the pools (those they hold stay). */
static void sockets_chown(void)
{
	if (!P.dir)
		return;
	if (chown(P.dir, P.sock_uid, P.sock_gid) < 0)
		log_warn("pools: chown %s: %s", P.dir, strerror(errno));
	for (unsigned id = 0; id < POOLS_MAX; id++) {
		struct pool *pl = &P.pools[id];
		for (int k = 0; pl->used && k < pl->npos; k++)
			if (pl->p[k].path[0] && chown(pl->p[k].path, P.sock_uid, P.sock_gid) < 0)
				log_warn("pool %s[%d]: chown %s: %s", pl->name, k, pl->p[k].path, strerror(errno));
	}
}

static void close_socket(struct proc *pr)
{
	if (pr->lfd >= 0)
		close(pr->lfd);
	pr->lfd = -1;
	if (pr->path[0])
		unlink(pr->path);
	pr->path[0] = 0;
}

/* ---- processes ---- */

/* In the child: never returns. */
static void child_exec(struct pool *pl, unsigned k, int errw)
{
	struct proc *pr = &pl->p[k];
	const struct spec *s = &pl->spec;
	setpgid(0, 0); /* a kill reaches whatever the application started */
	if (dup2(pr->lfd, 0) < 0 || dup2(errw, 1) < 0 || dup2(errw, 2) < 0)
		_exit(126);
	if (s->cwd && chdir(s->cwd) < 0) {
		dprintf(2, "chdir %s: %s\n", s->cwd, strerror(errno));
		_exit(126);
	}
	if (s->has_user) {
		if (process_become(s->user, s->uid, s->gid) < 0) {
			dprintf(2, "cannot become user %s (uid %ld, gid %ld): %s\n", s->user, (long)s->uid,
				(long)s->gid, strerror(errno));
			_exit(126);
		}
	}
	/* limits last: RLIMIT_NPROC counts the new user's processes */
	struct cgi_conf lim = {.rl = s->rl, .no_new_privs = s->nnp};
	if (script_child_limits(&lim) < 0) {
		dprintf(2, "setting resource limits: %s\n", strerror(errno));
		_exit(126);
	}
	closefrom(3);
	size_t n = 0;
	while (s->env[n])
		n++;
	char **envp = xcalloc(n + 2, sizeof(*envp));
	memcpy(envp, s->env, n * sizeof(*envp));
	if (s->tcp)
		envp[n] = "FCGI_WEB_SERVER_ADDRS=127.0.0.1";
	/* argv as configured, argv[0] too: the application's own messages
	 * name it, not cpm (the status page shows pool, slot and pid) */
	process_unblock_signals();
	execve(s->argv[0], s->argv, envp);
	dprintf(2, "exec %s: %s\n", s->argv[0], strerror(errno));
	_exit(127);
}

/* Start the process of position k. ready: it takes requests at once (else
 * it is STARTING until roll_step promotes it). */
static void spawn(struct pool *pl, unsigned k, int ready)
{
	struct proc *pr = &pl->p[k];
	struct pool_slot *s = slot_of(pl, k);
	if (pr->lfd < 0 && open_socket(pl, k) < 0) {
		pr->next_spawn_ms = monotonic_ms() + BACKOFF_MAX_MS;
		return;
	}
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		log_error("pool %s[%u]: pipe: %s", pl->name, k, strerror(errno));
		return;
	}
	pid_t pid = process_fork();
	if (pid == 0)
		child_exec(pl, k, ep[1]);
	close(ep[1]);
	if (pid < 0) {
		log_error("pool %s[%u]: fork: %s", pl->name, k, strerror(errno));
		close(ep[0]);
		pr->next_spawn_ms = monotonic_ms() + BACKOFF_MIN_MS;
		return;
	}
	fcntl(ep[0], F_SETFL, O_NONBLOCK);
	if (pr->errfd >= 0)
		close(pr->errfd); /* a grandchild may still hold the old one: let it go */
	pr->errfd = ep[0];
	log_lines_flush(&pr->errlog); /* the previous process's last words and drop count */
	memset(&pr->errlog, 0, sizeof(pr->errlog));
	snprintf(pr->errlog.prefix, sizeof(pr->errlog.prefix), "pool %s[%u] pid %ld", pl->name, k, (long)pid);
	pr->pid = pid;
	pr->stopping = pr->killed = 0;
	pr->old = 0;
	pr->drain_why = NULL;
	__atomic_fetch_add(&header(pl)->starts, 1, __ATOMIC_RELAXED);
	pr->started_ms = monotonic_ms();
	/* the slot is DOWN (or never used): publish the new process with the
	 * release store of READY (the protocol is in scoreboard.h). owner and
	 * busy are left alone: a claim the last process left (a request its
	 * successor serves) is its worker's to let go. */
	__atomic_store_n(&s->kill, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->served, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->started_ms, pr->started_ms, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_used_ms, pr->started_ms, __ATOMIC_RELAXED);
	s->restarts++;
	int taken = -1;
	if (__atomic_compare_exchange_n(&s->busy, &taken, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) || taken != 1)
		__atomic_store_n(&s->request_start_ms, 0, __ATOMIC_RELAXED);
	/* else the request left in flight keeps its start: the hung check
	 * still covers it */
	__atomic_store_n(&s->pid, pid, __ATOMIC_RELAXED);
	__atomic_store_n(&s->state, ready ? PSLOT_READY : PSLOT_STARTING, __ATOMIC_RELEASE);
	log_info("pool %s[%u]: started pid %ld (%s)", pl->name, k, (long)pid, s->addr);
}

/* SIGKILL the process at k and its process group (what it started). */
static void kill_proc(struct pool *pl, unsigned k)
{
	struct proc *pr = &pl->p[k];
	kill(-pr->pid, SIGKILL);
	kill(pr->pid, SIGKILL);
	pr->killed = 1;
	__atomic_fetch_add(&header(pl)->kills, 1, __ATOMIC_RELAXED);
}

/* Stop the process at k: it gets no new request, TERM now. */
static void stop_proc(struct pool *pl, unsigned k, const char *why)
{
	struct proc *pr = &pl->p[k];
	if (pr->pid <= 0 || pr->stopping)
		return;
	struct pool_slot *s = slot_of(pl, k);
	__atomic_store_n(&s->state, PSLOT_DRAINING, __ATOMIC_RELEASE);
	pr->stopping = 1;
	pr->term_ms = monotonic_ms();
	log_info("pool %s[%u]: stopping pid %ld (%s)", pl->name, k, (long)pr->pid, why);
	kill(pr->pid, SIGTERM);
}

static void read_err(struct pool *pl, unsigned k)
{
	struct proc *pr = &pl->p[k];
	char buf[4096];
	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(pr->errfd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			log_lines_flush(&pr->errlog);
			close(pr->errfd);
			pr->errfd = -1;
			return;
		}
		if (n < 0)
			return;
		log_lines_feed(&pr->errlog, buf, (size_t)n);
	}
}

/* ---- pools ---- */

static int alloc_slots(unsigned n, unsigned *base)
{
	for (unsigned b = 0; b + n <= POOL_SLOTS_MAX; b++) {
		unsigned k;
		for (k = 0; k < n && !P.slot_used[b + k]; k++)
			;
		if (k == n) {
			memset(P.slot_used + b, 1, n);
			*base = b;
			return 0;
		}
		b += k;
	}
	return -1;
}

/* Positions that should run a process. */
static int live(const struct pool *pl)
{
	int n = 0;
	for (int k = 0; k < pl->npos; k++)
		n += pl->p[k].want;
	return n;
}

/* Processes running (stopping ones too). */
static int running(const struct pool *pl)
{
	int n = 0;
	for (int k = 0; k < pl->npos; k++)
		n += pl->p[k].pid > 0;
	return n;
}

/* The next start due (CLOCK_MONOTONIC ms) of a position that waits for
 * one, or 0. */
static int64_t next_start(const struct pool *pl)
{
	int64_t t = 0;
	for (int k = 0; k < pl->npos; k++) {
		const struct proc *pr = &pl->p[k];
		if (pr->want && pr->pid <= 0 && pr->next_spawn_ms && (!t || pr->next_spawn_ms < t))
			t = pr->next_spawn_ms;
	}
	return t;
}

static void pool_update(struct pool *pl, const struct backend_conf *b)
{
	const struct pool_conf *pc = b->cgi.pool;
	pl->min = pc->min;
	pl->idle_timeout_ms = pc->idle_timeout_ms;
	pl->max_requests = pc->max_requests;
	pl->timeout_ms = b->cgi.timeout_ms;
	pl->keep = pc->reload_keep;
	/* min positions run a process: after a rolling restart they are not
	 * always the first ones */
	for (int k = 0; k < pl->npos && live(pl) < pl->min; k++)
		if (!pl->p[k].want && pl->p[k].pid <= 0)
			pl->p[k].want = 1;
}

static int pool_create(const struct config *cf, const struct backend_conf *b, unsigned id)
{
	struct pool *pl = &P.pools[id];
	const struct pool_conf *pc = b->cgi.pool;
	if (alloc_slots((unsigned)pc->max + 1, &pl->base) < 0)
		return -1;
	pl->used = 1;
	pl->retired_gen = 0;
	snprintf(pl->name, sizeof(pl->name), "%s", b->name);
	spec_make(&pl->spec, cf, b);
	pl->max = pc->max;
	pl->npos = pc->max + 1;
	pl->roll_k = -1;
	pl->p = xcalloc((size_t)pl->npos, sizeof(*pl->p));
	for (int k = 0; k < pl->npos; k++) {
		pl->p[k].lfd = pl->p[k].errfd = -1;
		memset((void *)slot_of(pl, (unsigned)k), 0, sizeof(struct pool_slot));
	}
	pool_update(pl, b);
	/* nothing of a pool that had this index before (down, counters) */
	struct pool_header *h = &P.sb->pools[id];
	memset((void *)h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", b->name);
	h->base = pl->base;
	h->nslots = (unsigned)pl->npos;
	__atomic_store_n(&h->active, 1, __ATOMIC_RELEASE);
	return 0;
}

static void pool_destroy(struct pool *pl)
{
	for (int k = 0; k < pl->npos; k++) {
		close_socket(&pl->p[k]);
		log_lines_flush(&pl->p[k].errlog);
		if (pl->p[k].errfd >= 0)
			close(pl->p[k].errfd);
		memset((void *)slot_of(pl, (unsigned)k), 0, sizeof(struct pool_slot));
	}
	memset(P.slot_used + pl->base, 0, (size_t)pl->npos);
	header(pl)->active = 0;
	log_info("pool %s: closed", pl->name);
	spec_free(&pl->spec);
	free(pl->p);
	memset(pl, 0, sizeof(*pl));
}

/* What b changes in the running pool pl (for the log), or NULL. */
static const char *pool_diff(const struct pool *pl, const struct config *cf, const struct backend_conf *b)
{
	if (pl->max != b->cgi.pool->max)
		return "max";
	return spec_diff(&pl->spec, cf, b);
}

/* Which running pool (index) serves b unchanged, or -1. taken: pools
 * already matched. */
static int match(const struct config *cf, const struct backend_conf *b, const int *taken)
{
	for (unsigned id = 0; id < POOLS_MAX; id++) {
		struct pool *pl = &P.pools[id];
		if (pl->used && !pl->retired_gen && !taken[id] && strcmp(pl->name, b->name) == 0 &&
		    !pool_diff(pl, cf, b))
			return (int)id;
	}
	return -1;
}

/* The pool backend of cf named name, or NULL. */
static const struct backend_conf *pool_conf_named(const struct config *cf, const char *name)
{
	for (size_t i = 0; i < cf->nbackends; i++) {
		const struct backend_conf *b = &cf->backends[i];
		if (b->type == BACKEND_FASTCGI && b->cgi.pool && strcmp(b->name, name) == 0)
			return b;
	}
	return NULL;
}

int pools_check(const struct config *cf)
{
	int taken[POOLS_MAX] = {0};
	size_t need = 0, slots = 0, free_pools = 0, free_slots = 0;
	for (size_t i = 0; i < cf->nbackends; i++) {
		const struct backend_conf *b = &cf->backends[i];
		if (b->type != BACKEND_FASTCGI || !b->cgi.pool)
			continue;
		int id = match(cf, b, taken);
		if (id >= 0)
			taken[id] = 1;
		else
			need++, slots += (size_t)b->cgi.pool->max + 1;
	}
	for (unsigned id = 0; id < POOLS_MAX; id++)
		free_pools += !P.pools[id].used;
	for (unsigned k = 0; k < POOL_SLOTS_MAX; k++)
		free_slots += !P.slot_used[k];
	if (need > free_pools || slots > free_slots) {
		log_error("pools: %zu new pool(s) with %zu process slot(s) do not fit next to the running ones "
			  "(%zu pools and %zu slots free)",
			  need, slots, free_pools, free_slots);
		return -1;
	}
	return 0;
}

/* ---- rolling restart ---- */

/* Replace the processes of pl one at a time: mark the running ones old;
 * roll_step does the rest. Logs the pool's line. */
static void pool_restart(struct pool *pl)
{
	int n = 0;
	for (int k = 0; k < pl->npos; k++) {
		struct proc *pr = &pl->p[k];
		pr->old = pr->pid > 0 && pr->want && !pr->stopping;
		n += pr->old;
	}
	pl->rolling = n > 0;
	pl->roll_total = n;
	pl->roll_done = 0;
	if (n) {
		log_info("pool %s: restarting %d process(es) one at a time", pl->name, n);
		return;
	}
	/* nothing runs: a pool that is down, or waits for its next start,
	 * tries again now (the code may be fixed) */
	for (int k = 0; k < pl->npos; k++)
		if (pl->p[k].want && pl->p[k].pid <= 0)
			pl->p[k].next_spawn_ms = 0;
	log_info("pool %s: %s", pl->name, header(pl)->down ? "down; trying a new process now" : "restarted (0 of 0)");
}

/* Stop a rolling restart: what is left of the old processes stays.
 * Returns how many old processes are running. */
static int roll_stop(struct pool *pl)
{
	int n = 0;
	for (int k = 0; k < pl->npos; k++) {
		n += pl->p[k].old && pl->p[k].pid > 0;
		pl->p[k].old = 0;
	}
	pl->rolling = 0;
	pl->roll_k = -1;
	return n;
}

/* The master drains the process at k: no new request reaches it, and
 * pool_tick stops it once it has taken busy (an idle connection a worker
 * keeps to it does not hold it up). */
static void drain(struct pool *pl, unsigned k, const char *why)
{
	pl->p[k].want = 0;
	pl->p[k].drain_why = why;
	__atomic_store_n(&slot_of(pl, k)->state, PSLOT_DRAINING, __ATOMIC_RELEASE);
}

/* One step of pl's rolling restart. A new process starts on a free
 * position (there is a spare one) as STARTING: no request reaches it
 * yet. Once it has lived BACKOFF_QUICK_MS it is READY and one old process
 * drains; once that one is gone, the next new one starts. A new process
 * that dies on probation stops the restart (pools_reaped). Returns the ms
 * until it wants to run again. */
static int roll_step(struct pool *pl, int64_t now)
{
	if (pl->roll_k >= 0) {
		unsigned k = (unsigned)pl->roll_k;
		int64_t left = pl->p[k].started_ms + BACKOFF_QUICK_MS - now;
		if (left > 0)
			return (int)left;
		__atomic_store_n(&slot_of(pl, k)->state, PSLOT_READY, __ATOMIC_RELEASE);
		pl->roll_k = -1;
		for (int o = 0; o < pl->npos; o++) {
			const struct proc *op = &pl->p[o];
			if (o != (int)k && op->old && op->pid > 0 && op->want && !op->stopping) {
				drain(pl, (unsigned)o, "replaced by a new one");
				pl->roll_done++;
				return 0;
			}
		}
		/* the old ones died meanwhile and were replaced: one too many */
		if (live(pl) > pl->max)
			drain(pl, k, "not needed");
		return 0;
	}
	int old = 0;
	for (int k = 0; k < pl->npos; k++) {
		const struct proc *pr = &pl->p[k];
		if (pr->old && pr->pid > 0) {
			if (!pr->want)
				return 1000; /* one is draining: its exit brings the next step */
			old++;
		}
	}
	if (!old) {
		if (pl->roll_done >= pl->roll_total)
			log_info("pool %s: restarted (%d of %d)", pl->name, pl->roll_done, pl->roll_total);
		else /* the others ended meanwhile (max_requests, idle, a crash) and were replaced as usual */
			log_info("pool %s: restarted (%d of %d; %d old process(es) ended on their own meanwhile)",
				 pl->name, pl->roll_done, pl->roll_total, pl->roll_total - pl->roll_done);
		pl->rolling = 0;
		return 1000;
	}
	for (int k = 0; k < pl->npos; k++) {
		struct proc *pr = &pl->p[k];
		if (pr->want || pr->pid > 0)
			continue;
		pr->want = 1;
		pr->next_spawn_ms = 0;
		spawn(pl, (unsigned)k, 0);
		if (pr->pid <= 0) { /* logged */
			pr->want = 0;
			log_error("pool %s: restart stopped: no new process could be started; %d old process(es) keep "
				  "serving",
				  pl->name, roll_stop(pl));
			return 1000;
		}
		pl->roll_k = k;
		return BACKOFF_QUICK_MS;
	}
	return 100; /* no free position yet */
}

int pools_restart(const char *name)
{
	int found = 0;
	for (unsigned id = 0; id < POOLS_MAX; id++) {
		struct pool *pl = &P.pools[id];
		if (!pl->used || pl->retired_gen || (name ? strcmp(pl->name, name) != 0 : pl->keep))
			continue;
		pool_restart(pl);
		found = 1;
	}
	return name && !found ? -1 : 0;
}

int pools_reconcile(struct config *cf, unsigned gen)
{
	if (pools_check(cf) < 0)
		return -1;
	if (geteuid() == 0 && cf->user && (cf->uid != P.sock_uid || cf->gid != P.sock_gid)) {
		P.sock_uid = cf->uid, P.sock_gid = cf->gid;
		sockets_chown(); /* the workers' user changed: theirs now */
	}
	int keep[POOLS_MAX] = {0}, replaced[POOLS_MAX] = {0};
	for (size_t i = 0; i < cf->nbackends; i++) {
		struct backend_conf *b = &cf->backends[i];
		if (b->type != BACKEND_FASTCGI || !b->cgi.pool)
			continue;
		b->cgi.pool->id = match(cf, b, keep);
		if (b->cgi.pool->id >= 0)
			keep[b->cgi.pool->id] = 1;
	}
	/* one line per pool: replaced, removed, kept, restarting, or new */
	for (unsigned id = 0; id < POOLS_MAX; id++) {
		struct pool *pl = &P.pools[id];
		if (!pl->used || pl->retired_gen || keep[id])
			continue;
		/* stopped once the workers using it are gone; not restarted
		 * meanwhile (a rolling restart would start processes again) */
		pl->retired_gen = gen;
		roll_stop(pl);
		const struct backend_conf *b = pool_conf_named(cf, pl->name);
		if (b) {
			const char *what = pool_diff(pl, cf, b);
			log_info("pool %s: replaced (%s changed)", pl->name, what ? what : "configuration");
			for (size_t i = 0; i < cf->nbackends; i++)
				replaced[i] |= &cf->backends[i] == b;
		} else {
			log_info("pool %s: removed", pl->name);
		}
	}
	for (size_t i = 0; i < cf->nbackends; i++) {
		struct backend_conf *b = &cf->backends[i];
		if (b->type != BACKEND_FASTCGI || !b->cgi.pool)
			continue;
		if (b->cgi.pool->id >= 0) {
			struct pool *pl = &P.pools[b->cgi.pool->id];
			pool_update(pl, b);
			if (pl->keep)
				log_info("pool %s: kept", pl->name);
			else
				pool_restart(pl);
			continue;
		}
		for (unsigned id = 0; id < POOLS_MAX; id++)
			if (!P.pools[id].used) {
				if (pool_create(cf, b, id) < 0) {
					log_error("pool %s: its slots are fragmented; not started", b->name);
					break;
				}
				b->cgi.pool->id = (int)id;
				if (!replaced[i])
					log_info("pool %s: %d to %d process(es) of %s", b->name, b->cgi.pool->min,
						 b->cgi.pool->max, b->cgi.pool->argv[0]);
				break;
			}
	}
	pools_tick(0); /* start what is new; nothing retired stops before its workers are gone */
	return 0;
}

/* ---- crash loops ---- */

/* The header's reason, byte by byte (see scoreboard.h). */
static void set_reason(struct pool_header *h, const char *text)
{
	size_t n = strlen(text);
	for (size_t i = 0; i + 1 < sizeof(h->down_reason); i++)
		__atomic_store_n(&h->down_reason[i], i < n ? text[i] : 0, __ATOMIC_RELAXED);
}

/* No process of pl runs and its last starts failed quickly: the pool is
 * down (workers answer 502 at once), with a reason that says why and when
 * the next try is; called again after each failed try while down. */
static void pool_down(struct pool *pl, int64_t now)
{
	struct pool_header *h = header(pl);
	int64_t next = next_start(pl);
	char how[48], why[sizeof(h->down_reason)];
	if (WIFEXITED(pl->last_status))
		snprintf(how, sizeof(how), "last exit code %d", WEXITSTATUS(pl->last_status));
	else
		snprintf(how, sizeof(how), "last killed by signal %d", WTERMSIG(pl->last_status));
	/* the rest, ", next try in S s)", is added by whoever reads it
	 * (scoreboard_pool_down), from next_start_ms: never stale */
	snprintf(why, sizeof(why), "no process running (crash loop: %s, %d restarts", how, pl->fails);
	set_reason(h, why);
	__atomic_store_n(&h->next_start_ms, next, __ATOMIC_RELAXED);
	if (!h->down) {
		__atomic_fetch_add(&h->crash_loops, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&h->down, 1, __ATOMIC_RELEASE);
		char text[sizeof(h->down_reason) + 32];
		scoreboard_pool_down(h, now, text, sizeof(text));
		log_error("pool %s: %s", pl->name, text);
	}
	/* requests left in the backlog of a dead process would wait for a
	 * successor that dies too: reset them (their workers, seeing down,
	 * answer 502 with the reason) */
	for (int k = 0; k < pl->npos; k++)
		if (pl->p[k].pid <= 0 && slot_of(pl, (unsigned)k)->busy == 1)
			close_socket(&pl->p[k]);
}

/* A process that has lived BACKOFF_QUICK_MS or served a request ends a
 * run of quick deaths: a pool that was down is up (its process on
 * probation takes requests now). Returns the ms until a process on
 * probation has lived that long, or 1000. */
static int check_up(struct pool *pl, int64_t now)
{
	struct pool_header *h = header(pl);
	int next = 1000;
	for (int k = 0; k < pl->npos; k++) {
		const struct proc *pr = &pl->p[k];
		struct pool_slot *s = slot_of(pl, (unsigned)k);
		if (pr->pid <= 0 || pr->stopping || k == pl->roll_k)
			continue;
		int64_t left = pr->started_ms + BACKOFF_QUICK_MS - now;
		if (left > 0 && !s->served) {
			next = left < next ? (int)left : next;
			continue;
		}
		pl->fails = 0;
		if (!h->down)
			return 1000;
		int starting = PSLOT_STARTING;
		__atomic_compare_exchange_n(&s->state, &starting, PSLOT_READY, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
		__atomic_store_n(&h->down, 0, __ATOMIC_RELEASE);
		log_info("pool %s: up again (pid %ld has run %lld ms)", pl->name, (long)pr->pid,
			 (long long)(now - pr->started_ms));
		return 1000;
	}
	return next;
}

/* ---- the master's rounds ---- */

static int pool_tick(struct pool *pl, unsigned id, unsigned oldest_gen, int64_t now)
{
	int next = 1000;
	struct pool_header *h = &P.sb->pools[id];
	if (pl->retired_gen && oldest_gen >= pl->retired_gen) {
		int n = 0;
		for (int k = 0; k < pl->npos; k++) {
			pl->p[k].want = 0;
			if (pl->p[k].pid > 0) {
				n++;
				stop_proc(pl, (unsigned)k, "pool retired");
			}
		}
		if (!n) {
			pool_destroy(pl);
			return next;
		}
	}
	if (pl->fails)
		next = check_up(pl, now);
	/* scale up: a worker has requests waiting and every process is taken
	 * (not while down: nothing would serve them) */
	int down = __atomic_load_n(&h->down, __ATOMIC_RELAXED);
	if (!pl->retired_gen && !down && h->waiting > 0 && live(pl) < pl->max &&
	    now - pl->last_scale_ms >= SCALE_UP_MS) {
		for (int k = 0; k < pl->npos; k++)
			if (!pl->p[k].want && pl->p[k].pid <= 0) {
				pl->p[k].want = 1;
				pl->p[k].next_spawn_ms = 0;
				pl->last_scale_ms = now;
				log_info("pool %s: requests are waiting; starting process %d of at most %d", pl->name,
					 live(pl), pl->max);
				break;
			}
	}
	if (!down && h->waiting > 0 && live(pl) < pl->max)
		next = next > SCALE_UP_MS ? SCALE_UP_MS : next;
	for (int k = 0; k < pl->npos; k++) {
		struct proc *pr = &pl->p[k];
		struct pool_slot *s = slot_of(pl, (unsigned)k);
		if (pr->pid <= 0) {
			/* a retired pool too, while old workers use it; a pool
			 * that is down tries one process at a time, on probation */
			if (pr->want && !(down && running(pl) > 0)) {
				if (now >= pr->next_spawn_ms) {
					spawn(pl, (unsigned)k, !down);
					if (down)
						next = next > BACKOFF_QUICK_MS ? BACKOFF_QUICK_MS : next;
				} else if (pr->next_spawn_ms - now < next) {
					next = (int)(pr->next_spawn_ms - now);
				}
			}
			continue;
		}
		/* a worker gave up on a request here, or nobody did and it is far
		 * past the timeout (its worker died): kill it */
		int64_t started = s->request_start_ms;
		int hung =
		    s->kill == pr->pid || (s->busy == 1 && started && now - started > pl->timeout_ms + HUNG_MARGIN_MS);
		if (hung && !pr->killed) {
			log_error("pool %s[%u]: pid %ld did not answer within %lld ms; killing it", pl->name, k,
				  (long)pr->pid, (long long)pl->timeout_ms);
			__atomic_store_n(&s->state, PSLOT_DOWN, __ATOMIC_RELEASE);
			kill_proc(pl, (unsigned)k);
			continue;
		}
		if (pr->stopping) {
			if (!pr->killed && now - pr->term_ms > STOP_KILL_MS) {
				log_warn("pool %s[%u]: pid %ld still running %d ms after TERM; killing it", pl->name, k,
					 (long)pr->pid, STOP_KILL_MS);
				kill_proc(pl, (unsigned)k);
			}
			continue;
		}
		/* draining (max_requests reached, marked by a worker; or a
		 * rolling restart): stop it once idle, or once its request
		 * has had as long as the hung rule above gives one (the pool's
		 * timeout, not a fixed limit that a reload would cut a longer
		 * request at) */
		if (s->state == PSLOT_DRAINING) {
			int zero = 0;
			if (__atomic_compare_exchange_n(&s->busy, &zero, -1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) ||
			    now - s->last_used_ms > pl->timeout_ms + HUNG_MARGIN_MS)
				stop_proc(pl, (unsigned)k, pr->drain_why ? pr->drain_why : "max_requests reached");
			else
				next = next > 20 ? 20 : next;
			continue;
		}
		/* scale down: idle past idle_timeout, more than min running (not
		 * during a rolling restart: it counts on the processes it sees) */
		if (pl->min < pl->max && !pl->rolling && live(pl) > pl->min && s->busy == 0 && h->waiting == 0) {
			int64_t left = s->last_used_ms + pl->idle_timeout_ms - now;
			int zero = 0;
			if (left >= 0) {
				if (left < next)
					next = (int)left + 1;
			} else if (__atomic_compare_exchange_n(&s->busy, &zero, -1, 0, __ATOMIC_ACQ_REL,
							       __ATOMIC_ACQUIRE)) {
				pr->want = 0;
				stop_proc(pl, (unsigned)k, "idle");
			}
		}
	}
	if (pl->rolling) {
		int n = roll_step(pl, now);
		next = n < next ? n : next;
	}
	h->next_start_ms = next_start(pl);
	return next;
}

int pools_tick(unsigned oldest_gen)
{
	int64_t now = monotonic_ms();
	int next = 1000;
	for (unsigned id = 0; id < POOLS_MAX; id++)
		if (P.pools[id].used) {
			int n = pool_tick(&P.pools[id], id, oldest_gen, now);
			if (n < next)
				next = n;
		}
	return next;
}

/* The process of slot s (pid) is gone. Take busy (CAS 0 -> -1) and clear
 * the claim, unless a request is still in flight there (busy 1) whose
 * worker has not given up on it (no kill asked, not killed by us): its
 * connection may be waiting in the listening socket's backlog for the next
 * process, and its worker lets go when it is done (scoreboard.h). Returns
 * 1 if such a claim stays. */
static int reap_slot(struct pool_slot *s, pid_t pid, int killed)
{
	__atomic_store_n(&s->state, PSLOT_DOWN, __ATOMIC_RELEASE);
	__atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
	int busy = 0;
	if (!__atomic_compare_exchange_n(&s->busy, &busy, -1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		if (busy == 1 && !killed && __atomic_load_n(&s->kill, __ATOMIC_ACQUIRE) != pid)
			return 1;
		__atomic_store_n(&s->busy, -1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&s->owner, 0, __ATOMIC_RELEASE);
	return 0;
}

static void describe_exit(char *buf, size_t len, int status)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with code %d", WEXITSTATUS(status));
	else
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
}

/* The process at k (pid) is gone, as status says: what it means for its
 * position, a rolling restart and the pool. */
static void proc_reaped(struct pool *pl, unsigned k, pid_t pid, int status)
{
	struct proc *pr = &pl->p[k];
	struct pool_slot *s = slot_of(pl, k);
	int64_t now = monotonic_ms();
	double secs = (double)(now - pr->started_ms) / 1000.0;
	int expected = pr->stopping || pr->killed;
	char how[48];
	describe_exit(how, sizeof(how), status);
	if (pr->errfd >= 0)
		read_err(pl, k); /* its last words first */
	log_msg(expected ? LOG_INFO : LOG_ERROR, "pool %s[%u]: pid %ld %s after %.3f s", pl->name, k, (long)pid, how,
		secs);
	int claim = reap_slot(s, pid, pr->killed);
	pr->pid = 0;
	pr->old = 0;
	pr->drain_why = NULL;
	/* failing: dead soon after its start without serving anything
	 * (one that exits after its own request limit is not) */
	enum backoff_death death = expected ? BACKOFF_OURS : s->served ? BACKOFF_OK : BACKOFF_FAILED;
	int64_t delay = backoff_died(&pr->backoff, BACKOFF_MAX_MS, pr->started_ms, now, death);
	pr->next_spawn_ms = delay ? now + delay : 0;
	if (delay)
		log_warn("pool %s[%u]: died %d time(s) in a row within %d ms of starting; next start in %lld ms",
			 pl->name, k, pr->backoff.failures, BACKOFF_QUICK_MS, (long long)delay);
	int quick = now - pr->started_ms < BACKOFF_QUICK_MS;
	if (death == BACKOFF_FAILED && quick)
		pl->fails++, pl->last_status = status;
	else if (death == BACKOFF_OK || !quick)
		pl->fails = 0;
	pr->stopping = pr->killed = 0;
	if (pl->rolling && (int)k == pl->roll_k) {
		pl->roll_k = -1;
		if (!expected) {
			/* the new code does not run: keep the old processes */
			pr->want = 0;
			log_error("pool %s: restart stopped: the new process %s%s within %.1f s; %d old process(es) "
				  "keep serving",
				  pl->name, WIFEXITED(status) ? "" : "was ", how, secs, roll_stop(pl));
		}
	}
	struct pool_header *h = header(pl);
	if (!pl->retired_gen && running(pl) == 0 && pl->fails >= DOWN_AFTER) {
		if (live(pl) == 0)
			pr->want = 1; /* min 0: keep trying all the same */
		pool_down(pl, now);
	} else if (h->down && !pl->fails) {
		/* its try lived long enough (check_up did not see it in time) */
		__atomic_store_n(&h->down, 0, __ATOMIC_RELEASE);
		log_info("pool %s: up again (pid %ld ran %.3f s)", pl->name, (long)pid, secs);
	}
	/* no process takes over this socket's backlog: reset what waits
	 * there (its workers answer 502 now, not after their timeout) */
	if (!pr->want) {
		if (claim)
			close_socket(pr);
		__atomic_store_n(&s->state, PSLOT_FREE, __ATOMIC_RELEASE);
	}
}

int pools_reaped(pid_t pid, int status)
{
	for (unsigned id = 0; id < POOLS_MAX; id++) {
		struct pool *pl = &P.pools[id];
		for (int k = 0; pl->used && k < pl->npos; k++)
			if (pl->p[k].pid == pid) {
				proc_reaped(pl, (unsigned)k, pid, status);
				return 1;
			}
	}
	return 0;
}

void pools_worker_gone(pid_t pid, unsigned worker_index)
{
	uint64_t mask = P.sb->slots[worker_index].pools_waiting;
	for (unsigned id = 0; id < POOLS_MAX; id++) {
		if (mask & (1ULL << id))
			__atomic_fetch_sub(&P.sb->pools[id].waiting, 1, __ATOMIC_RELAXED);
		struct pool *pl = &P.pools[id];
		if (!pl->used)
			continue;
		for (int k = 0; k < pl->npos; k++) {
			struct pool_slot *s = slot_of(pl, (unsigned)k);
			pid_t owner = pid;
			int one = 1;
			if (__atomic_compare_exchange_n(&s->owner, &owner, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				/* its request died with it */
				__atomic_compare_exchange_n(&s->busy, &one, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
		}
	}
	P.sb->slots[worker_index].pools_waiting = 0;
}

void pools_close_fds(void)
{
	for (unsigned id = 0; id < POOLS_MAX; id++)
		for (int k = 0; P.pools[id].used && k < P.pools[id].npos; k++) {
			struct proc *pr = &P.pools[id].p[k];
			if (pr->lfd >= 0)
				close(pr->lfd);
			if (pr->errfd >= 0)
				close(pr->errfd);
		}
}

size_t pools_pollfds(struct pollfd *p, size_t max)
{
	size_t n = 0;
	for (unsigned id = 0; id < POOLS_MAX; id++) {
		struct pool *pl = &P.pools[id];
		for (int k = 0; pl->used && k < pl->npos && n < max; k++)
			if (pl->p[k].errfd >= 0)
				p[n++] = (struct pollfd){.fd = pl->p[k].errfd, .events = POLLIN};
	}
	return n;
}

void pools_on_poll(const struct pollfd *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		for (unsigned id = 0; id < POOLS_MAX; id++) {
			struct pool *pl = &P.pools[id];
			for (int k = 0; pl->used && k < pl->npos; k++)
				if (pl->p[k].errfd == p[i].fd)
					read_err(pl, (unsigned)k);
		}
	}
}

unsigned pools_alive(void)
{
	unsigned n = 0;
	for (unsigned id = 0; id < POOLS_MAX; id++)
		for (int k = 0; P.pools[id].used && k < P.pools[id].npos; k++)
			n += P.pools[id].p[k].pid > 0;
	return n;
}

void pools_shutdown(int64_t timeout_ms)
{
	for (unsigned id = 0; id < POOLS_MAX; id++)
		for (int k = 0; P.pools[id].used && k < P.pools[id].npos; k++) {
			P.pools[id].p[k].want = 0;
			stop_proc(&P.pools[id], (unsigned)k, "shutting down");
		}
	int64_t end = monotonic_ms() + timeout_ms;
	int killed = 0;
	while (pools_alive() > 0) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			pools_reaped(pid, status);
			continue;
		}
		if (pid < 0 && errno == ECHILD)
			break;
		if (!killed && monotonic_ms() > end) {
			for (unsigned id = 0; id < POOLS_MAX; id++)
				for (int k = 0; P.pools[id].used && k < P.pools[id].npos; k++)
					if (P.pools[id].p[k].pid > 0) {
						log_warn("pool %s[%d]: pid %ld ignored TERM; killing it",
							 P.pools[id].name, k, (long)P.pools[id].p[k].pid);
						kill_proc(&P.pools[id], (unsigned)k);
					}
			killed = 1;
		}
		usleep(20000);
	}
	for (unsigned id = 0; id < POOLS_MAX; id++)
		if (P.pools[id].used)
			pool_destroy(&P.pools[id]);
	if (P.dir) {
		rmdir(P.dir);
		free(P.dir);
		P.dir = NULL;
	}
}
