/* The fastcgi backend's connections: which pool process or external
 * server a request talks to, and over which connection.
 *
 * External servers (php-fpm, spawn-fcgi): one connection per request, tried
 * in turn over the configured addresses; with keep_conn, clean connections
 * are kept for the backend's next requests.
 *
 * Pools (processes the master runs, one socket each): a process serves one
 * connection at a time, so a worker owns the process it has a connection
 * to (the scoreboard slot's owner) and keeps that connection open
 * (FCGI_KEEP_CONN) for its next request while nobody else waits. Requests
 * that find every process taken wait in a per-worker queue; the worker
 * then asks the owners of idle connections to let go (SIGURG) and retries
 * every few milliseconds, until queue_timeout (503). A request past its
 * timeout gets 504 and its process is killed by the master. A pool the
 * master says is down (no process running, the last ones died at start)
 * queues nothing: a request that finds no process gets 502 at once, and so
 * do the ones waiting when it goes down, each logged with the reason. */
#include "fastcgi.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "script.h"

#define RETRY_MS    5	  /* a queued request looks for a free process this often */
#define TURN_MS	    20	  /* a process goes on to this worker's next request this long while others wait */
#define EXT_IDLE_MS 60000 /* a kept connection to an external server, unused this long, is closed */

static size_t next_addr; /* round-robin start, per worker */

/* A kept connection to a pool process, between requests. */
struct idle_conn {
	struct ev sock;
	unsigned rid; /* the request id its last request had */
	int pool;     /* -1: an external server's */
	unsigned slot;
	pid_t pid;
	const struct backend_conf *b; /* external: its backend and address */
	size_t addr;
	struct timer idle; /* external: closed after EXT_IDLE_MS */
	struct idle_conn *next;
};

/* Kept connections to external servers ("keep_conn"), this worker's. */
static struct idle_conn *ext_idle;

static struct pool_state {
	struct waitq waiting; /* requests of this worker waiting for a process */
	struct idle_conn *idle;
	struct timer retry;
	unsigned rot; /* where the next search for a free process starts */
} PS[POOLS_MAX];

static pid_t me;

static void pool_release(struct fcgi_req *r, int keep);

/* A non-blocking connection to ss (named addr in the log) for r's
 * request: the fd, *connected set if it is already up, or -1 (logged). */
static int connect_to(const struct fcgi_req *r, const char *addr, const struct sockaddr_storage *ss, socklen_t sl,
		      int *connected)
{
	const struct backend_conf *b = r->b;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		exchange_log(r->x, LOG_WARN, "fastcgi %s: socket: %s", b->name, strerror(errno));
		return -1;
	}
	if (ss->ss_family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	*connected = connect(fd, (const struct sockaddr *)ss, sl) == 0;
	if (!*connected && errno != EINPROGRESS) {
		exchange_log(r->x, LOG_WARN, "fastcgi %s: connect %s: %s", b->name, addr, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Connect to the next address not tried yet. Returns 0 (connecting or
 * connected) or -1 when every address failed. */
static int start_connect(struct fcgi_req *r)
{
	const struct cgi_conf *g = &r->b->cgi;
	while (r->tries < g->naddrs) {
		r->addr = (next_addr + r->tries) % g->naddrs;
		r->tries++;
		int connected;
		int fd = connect_to(r, g->addrs[r->addr], &g->sa[r->addr], g->salen[r->addr], &connected);
		if (fd < 0)
			continue;
		r->connected = connected;
		r->sock = (struct ev){.fd = fd, .handler = fastcgi_on_socket};
		loop_add(&r->sock, EPOLLOUT);
		return 0;
	}
	return -1;
}

/* ---- pools ---- */

static struct pool_slot *pslot(unsigned k)
{
	return &loop_scoreboard()->pool_slots[k];
}

static struct pool_header *phdr(int id)
{
	return &loop_scoreboard()->pools[id];
}

/* 1 if pool id is down (no process can run: a crash loop), with the
 * master's reason copied into why (see scoreboard.h); else 0. */
static int pool_down(int id, char *why, size_t len)
{
	return scoreboard_pool_down(phdr(id), loop_now_ms(), why, len);
}

int fastcgi_conn_pool_down(const struct fcgi_req *r, char *why, size_t len)
{
	return r->pool >= 0 && pool_down(r->pool, why, len);
}

/* r's pool is down: say why, for r's log line (the 502 is the caller's). */
static void log_down(struct fcgi_req *r, const char *why)
{
	exchange_log(r->x, LOG_ERROR, "pool %s: %s", r->b->name, why);
}

const char *fastcgi_conn_addr(const struct fcgi_req *r)
{
	if (r->pool < 0)
		return r->b->cgi.addrs[r->addr];
	return r->has_slot ? pslot(r->slot)->addr : "pool";
}

/* Let go of an idle claim (busy 0) on the process at slot k, if it is
 * still the one we knew: the master clears the claims of a process it
 * reaps, and this worker may hold a new one on the slot's next process.
 * (The ownership protocol is in scoreboard.h.) */
static void owner_drop(unsigned k, pid_t pid)
{
	struct pool_slot *s = pslot(k);
	pid_t mine = me;
	if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) == pid)
		__atomic_compare_exchange_n(&s->owner, &mine, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Let go of the claim on slot k of a request (busy 1), whatever process
 * serves it now (one that died may have left our connection to its
 * successor): owner first, then busy, so that whoever claims the slot in
 * between fails on busy. No-op if the master has cleared the claim. */
static void slot_let_go(unsigned k)
{
	struct pool_slot *s = pslot(k);
	pid_t mine = me;
	if (__atomic_compare_exchange_n(&s->owner, &mine, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
}

static void idle_unlink(struct idle_conn *ic)
{
	struct idle_conn **pp = ic->pool >= 0 ? &PS[ic->pool].idle : &ext_idle;
	while (*pp && *pp != ic)
		pp = &(*pp)->next;
	if (*pp)
		*pp = ic->next;
}

static void idle_close(struct idle_conn *ic)
{
	idle_unlink(ic);
	loop_del(&ic->sock);
	if (ic->pool >= 0)
		owner_drop(ic->slot, ic->pid);
	timer_cancel(loop_timers(), &ic->idle);
	loop_free_later(ic);
}

static void on_ext_idle_timeout(struct timer *t)
{
	idle_close((struct idle_conn *)((char *)t - offsetof(struct idle_conn, idle)));
}

static void on_idle(struct ev *ev, uint32_t events);

/* A clean connection to an external server: keep it for the next request
 * of its backend, up to keep_conn of them. */
static int ext_park(struct fcgi_req *r)
{
	size_t n = 0;
	for (struct idle_conn *ic = ext_idle; ic; ic = ic->next)
		n += ic->b == r->b;
	if (n >= (size_t)r->b->cgi.keep_conn || r->sock.fd < 0)
		return 0;
	struct idle_conn *ic = xcalloc(1, sizeof(*ic));
	ic->pool = -1;
	ic->b = r->b;
	ic->addr = r->addr;
	ic->rid = r->rid;
	ic->sock.handler = on_idle;
	loop_move(&r->sock, &ic->sock, EPOLLIN);
	ic->idle.fire = on_ext_idle_timeout;
	timer_arm(loop_timers(), &ic->idle, loop_now_ms() + EXT_IDLE_MS);
	ic->next = ext_idle;
	ext_idle = ic;
	return 1;
}

/* A kept connection to r's backend, if there is one. */
static int ext_take(struct fcgi_req *r)
{
	for (struct idle_conn *ic = ext_idle; ic; ic = ic->next) {
		if (ic->b != r->b)
			continue;
		idle_unlink(ic);
		timer_cancel(loop_timers(), &ic->idle);
		loop_move(&ic->sock, &r->sock, EPOLLIN);
		r->sock.handler = fastcgi_on_socket;
		r->addr = ic->addr;
		r->connected = 1;
		fastcgi_take_kept(r, ic->rid);
		loop_free_later(ic);
		return 1;
	}
	return 0;
}

/* Anything on an idle connection (the process closed it or died) ends it. */
static void on_idle(struct ev *ev, uint32_t events)
{
	(void)events;
	idle_close((struct idle_conn *)((char *)ev - offsetof(struct idle_conn, sock)));
}

/* A kept connection the peer has closed (EOF or an error waiting) or sent
 * something on unasked, seen without consuming anything. A unix socket fails the first write anyway
 * (EPIPE); over TCP that write would succeed and leave us unsure whether
 * the application read it. */
int fastcgi_conn_kept_closed(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	/* bytes waiting before we asked anything are not ours either: the
	 * application sent more after its last END_REQUEST */
	return n >= 0 || (errno != EAGAIN && errno != EINTR);
}

/* Workers other than this one with requests waiting for pool id. */
static int others_waiting(int id)
{
	return phdr(id)->waiting - (PS[id].waiting.head != NULL);
}

static void on_retry(struct timer *t);

/* A process of pool id was let go while other workers wait for one: tell
 * them now (SIGURG), not at their next retry (RETRY_MS), so that a pool
 * taking turns between workers does not stand idle meanwhile. */
static void wake_waiting(int id)
{
	const struct scoreboard *sb = loop_scoreboard();
	uint64_t bit = 1ULL << id;
	for (unsigned i = 0, n = scoreboard_slots_used(sb); i < n; i++) {
		const struct worker_slot *w = &sb->slots[i];
		pid_t pid = w->pid;
		if (pid > 0 && pid != me && (w->pools_waiting & bit))
			kill(pid, SIGURG);
	}
}

/* SIGURG: another worker waits for a pool process; close the idle
 * connections this worker keeps to processes others are waiting for. Or
 * one was let go: requests of ours that wait look again now. */
void fastcgi_conn_release_idle(void)
{
	for (int id = 0; id < POOLS_MAX; id++)
		if (PS[id].waiting.head) {
			PS[id].retry.fire = on_retry;
			timer_arm(loop_timers(), &PS[id].retry, loop_now_ms());
		}
	for (int id = 0; id < POOLS_MAX; id++)
		if (PS[id].idle && others_waiting(id) > 0)
			while (PS[id].idle)
				idle_close(PS[id].idle);
}

static void set_waiting(const struct fcgi_req *r, int on)
{
	int id = r->pool;
	struct worker_slot *ws = loop_worker_slot();
	uint64_t bit = 1ULL << id;
	if (on && !(ws->pools_waiting & bit)) {
		ws->pools_waiting |= bit;
		__atomic_fetch_add(&phdr(id)->waiting, 1, __ATOMIC_ACQ_REL);
		/* the master may start another process; a fixed-size pool it
		 * has no use for (a wake here per queued burst is a syscall on
		 * the hot path and a master loop turn) */
		if (r->b->cgi.pool->min < r->b->cgi.pool->max)
			scoreboard_wake(loop_scoreboard());
	} else if (!on && (ws->pools_waiting & bit)) {
		ws->pools_waiting &= ~bit;
		__atomic_fetch_sub(&phdr(id)->waiting, 1, __ATOMIC_ACQ_REL);
	}
}

/* The first request of ours waiting for a process of the pool, or NULL. */
static struct fcgi_req *first_waiting(const struct pool_state *ps)
{
	struct waiter *w = ps->waiting.head;
	return w ? (struct fcgi_req *)((char *)w - offsetof(struct fcgi_req, wait)) : NULL;
}

static void queue_remove(struct fcgi_req *r)
{
	waitq_remove(&r->wait);
	if (!PS[r->pool].waiting.head)
		set_waiting(r, 0);
}

/* Processes of pool id this worker holds, and its fair share of them. */
static int over_share(int id)
{
	const struct pool_header *h = phdr(id);
	unsigned mine = 0, ready = 0;
	for (unsigned k = h->base; k < h->base + h->nslots; k++) {
		mine += pslot(k)->owner == me;
		ready += pslot(k)->state == PSLOT_READY;
	}
	unsigned wanting = h->waiting > 0 ? (unsigned)h->waiting : 1;
	unsigned share = ready / wanting ? ready / wanting : 1;
	return mine > share;
}

/* r has its process: send. */
static void pool_begin(struct fcgi_req *r)
{
	struct pool_slot *s = pslot(r->slot);
	exchange_upstream(r->x, r->pid);
	__atomic_store_n(&s->request_start_ms, loop_now_ms(), __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_used_ms, loop_now_ms(), __ATOMIC_RELAXED);
	fastcgi_arm_timeout(r);
	fastcgi_send_now(r);
	fastcgi_update_events(r);
}

/* Claim a free process for r: a kept connection of ours first, then a
 * process nobody holds. Returns 1 when r has one (connecting or connected,
 * its fd in the loop). */
static int pool_acquire(struct fcgi_req *r)
{
	struct pool_state *ps = &PS[r->pool];
	while (ps->idle) {
		struct idle_conn *ic = ps->idle;
		struct pool_slot *s = pslot(ic->slot);
		int zero = 0;
		if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) != ic->pid ||
		    __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != PSLOT_READY ||
		    !__atomic_compare_exchange_n(&s->busy, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			idle_close(ic);
			continue;
		}
		idle_unlink(ic);
		loop_move(&ic->sock, &r->sock, EPOLLIN);
		r->sock.handler = fastcgi_on_socket;
		loop_free_later(ic);
		r->slot = ic->slot;
		r->pid = ic->pid;
		r->claimed_ms = loop_now_ms();
		r->has_slot = 1;
		fastcgi_take_kept(r, ic->rid);
		r->connected = 1;
		return 1;
	}
	const struct pool_header *h = phdr(r->pool);
	for (unsigned i = 0; i < h->nslots; i++) {
		unsigned k = h->base + (ps->rot + i) % h->nslots;
		struct pool_slot *s = pslot(k);
		pid_t none = 0;
		int zero = 0;
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != PSLOT_READY || s->owner != 0 ||
		    !__atomic_compare_exchange_n(&s->owner, &none, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			continue;
		pid_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != PSLOT_READY || pid <= 0 ||
		    !__atomic_compare_exchange_n(&s->busy, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			/* the claim just made is ours whatever the pid is now
			 * (the master may have reaped the process meanwhile) */
			pid_t mine = me;
			__atomic_compare_exchange_n(&s->owner, &mine, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
			continue;
		}
		/* the master wrote the numeric address before the slot became
		 * READY: no lookup here */
		int connected, fd = -1;
		struct sockaddr_storage ss;
		socklen_t sl;
		const char *err;
		if (config_sockaddrs(s->addr, 1, &ss, &sl, 1, &err) == 1)
			fd = connect_to(r, s->addr, &ss, sl, &connected);
		else
			exchange_log(r->x, LOG_WARN, "fastcgi %s: pool address %s: %s", r->b->name, s->addr, err);
		if (fd < 0) {
			slot_let_go(k);
			continue;
		}
		ps->rot = (ps->rot + i + 1) % h->nslots;
		r->sock = (struct ev){.fd = fd, .handler = fastcgi_on_socket};
		loop_add(&r->sock, EPOLLOUT);
		r->connected = connected;
		r->slot = k;
		r->pid = pid;
		r->claimed_ms = loop_now_ms();
		r->has_slot = 1;
		r->reused = 0;
		return 1;
	}
	return 0;
}

static void on_retry(struct timer *t)
{
	struct pool_state *ps = (struct pool_state *)((char *)t - offsetof(struct pool_state, retry));
	int id = (int)(ps - PS);
	for (struct fcgi_req *r; (r = first_waiting(ps));) {
		if (!pool_acquire(r))
			break;
		queue_remove(r);
		pool_begin(r);
	}
	/* the pool went down while they waited: nothing will serve them */
	char why[sizeof(phdr(id)->down_reason) + 32];
	if (ps->waiting.head && pool_down(id, why, sizeof(why))) {
		for (struct fcgi_req *r; (r = first_waiting(ps));) {
			struct exchange *x = r->x;
			queue_remove(r);
			log_down(r, why);
			fastcgi_req_free(r);
			exchange_error(x, 502, NULL);
		}
	}
	if (!ps->waiting.head)
		return;
	/* ask the workers holding idle processes to let them go */
	const struct pool_header *h = phdr(id);
	for (unsigned k = h->base; k < h->base + h->nslots; k++) {
		struct pool_slot *s = pslot(k);
		pid_t owner = s->owner;
		if (owner > 0 && owner != me && s->busy == 0 && s->state == PSLOT_READY)
			kill(owner, SIGURG);
	}
	timer_arm(loop_timers(), &ps->retry, loop_now_ms() + RETRY_MS);
}

static void on_wait_expired(struct waiter *w)
{
	struct fcgi_req *r = (struct fcgi_req *)((char *)w - offsetof(struct fcgi_req, wait));
	exchange_log(r->x, LOG_WARN, "fastcgi %s: no free process within %lld ms; 503", r->b->name,
		     (long long)r->b->cgi.queue_timeout_ms);
	struct exchange *x = r->x;
	char ra[64];
	script_retry_after(r->b, ra, sizeof(ra));
	fastcgi_req_free(r);
	exchange_error(x, 503, ra);
}

/* Start r on a process of its pool, or queue it. Returns 0, or -1 when the
 * pool is down (why says why): r is neither started nor queued. */
static int pool_dispatch(struct fcgi_req *r, char *why, size_t len)
{
	struct pool_state *ps = &PS[r->pool];
	if (!ps->waiting.head && pool_acquire(r)) {
		pool_begin(r);
		return 0;
	}
	if (pool_down(r->pool, why, len))
		return -1;
	exchange_wait_begin(r->x);
	waitq_add(&ps->waiting, &r->wait, r->b->cgi.queue_timeout_ms, on_wait_expired);
	set_waiting(r, 1);
	if (!ps->retry.idx) {
		ps->retry.fire = on_retry;
		timer_arm(loop_timers(), &ps->retry, loop_now_ms()); /* this turn: others may let go at once */
	}
	return 0;
}

/* r is done with its process. keep: the connection is clean. */
static void pool_release(struct fcgi_req *r, int keep)
{
	if (!r->has_slot)
		return;
	r->has_slot = 0;
	struct pool_slot *s = pslot(r->slot);
	struct pool_state *ps = &PS[r->pool];
	if (r->killed) {
		/* busy and the claim stay: the master kills the process and
		 * clears them when it reaps it */
		loop_del(&r->sock);
		keep = 0;
	} else {
		int same = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) == r->pid;
		__atomic_store_n(&s->request_start_ms, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&s->last_used_ms, loop_now_ms(), __ATOMIC_RELAXED);
		if (!same || r->sock.fd < 0)
			keep = 0;
		if (r->completed) {
			/* a complete request, whatever becomes of its connection
			 * (one with a body is not kept): count it against
			 * max_requests, and as a sign of life for the master. A
			 * request that waited in the socket's backlog was the
			 * slot's next process's (not the same pid): its own. */
			uint64_t served = __atomic_add_fetch(&s->served, 1, __ATOMIC_ACQ_REL);
			__atomic_fetch_add(&phdr(r->pool)->requests, 1, __ATOMIC_RELAXED);
			long max = r->b->cgi.pool->max_requests;
			int ready = PSLOT_READY;
			if (max > 0 && served >= (uint64_t)max) {
				keep = 0;
				if (__atomic_compare_exchange_n(&s->state, &ready, PSLOT_DRAINING, 0, __ATOMIC_ACQ_REL,
								__ATOMIC_ACQUIRE))
					scoreboard_wake(loop_scoreboard());
			}
		}
		if (keep && __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != PSLOT_READY)
			keep = 0;
	}
	int others = keep ? others_waiting(r->pool) : 0;
	/* while other workers wait, this one hands the process on to its own
	 * next request for one turn at most: else a pool smaller than the
	 * workers serves one worker's clients as long as it has any (seen
	 * with 1 process, 2 workers, 32 clients: p99 1.5 s) */
	int turn_over = others > 0 && loop_now_ms() - r->claimed_ms >= TURN_MS;
	if (keep && ps->waiting.head && (others <= 0 || (!over_share(r->pool) && !turn_over))) {
		/* hand the connection, claim and busy as they are, to the next
		 * request of ours */
		struct fcgi_req *n = first_waiting(ps);
		queue_remove(n);
		loop_move(&r->sock, &n->sock, EPOLLIN);
		n->sock.handler = fastcgi_on_socket;
		n->slot = r->slot;
		n->pid = r->pid;
		n->claimed_ms = r->claimed_ms;
		n->has_slot = 1;
		fastcgi_take_kept(n, r->rid);
		n->connected = 1;
		pool_begin(n);
		return;
	}
	if (keep && !ps->waiting.head && others <= 0) {
		/* keep the connection and the claim; the process is free */
		__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
		struct idle_conn *ic = xcalloc(1, sizeof(*ic));
		ic->pool = r->pool;
		ic->slot = r->slot;
		ic->pid = r->pid;
		ic->rid = r->rid;
		ic->sock.handler = on_idle;
		loop_move(&r->sock, &ic->sock, EPOLLIN);
		ic->next = ps->idle;
		ps->idle = ic;
		return;
	}
	if (!r->killed) {
		loop_del(&r->sock);
		slot_let_go(r->slot);
		if (others > 0)
			wake_waiting(r->pool);
	}
	if (ps->waiting.head) {
		/* a process may be free now; but one let go for the others'
		 * turn is theirs first */
		ps->retry.fire = on_retry;
		timer_arm(loop_timers(), &ps->retry, loop_now_ms() + (turn_over ? RETRY_MS : 0));
	}
}

void fastcgi_conn_release(struct fcgi_req *r, int keep)
{
	if (waitq_waiting(&r->wait))
		queue_remove(r);
	if (r->pool >= 0)
		pool_release(r, keep);
	else if (keep)
		ext_park(r);
}

int fastcgi_conn_open(struct fcgi_req *r)
{
	if (r->pool >= 0) {
		if (!me)
			me = getpid();
		char why[sizeof(phdr(r->pool)->down_reason) + 32];
		if (pool_dispatch(r, why, sizeof(why)) < 0) {
			log_down(r, why);
			return -1;
		}
		return 0;
	}
	exchange_upstream(r->x, 0);
	if (r->b->cgi.keep_conn > 0 && ext_take(r)) {
		fastcgi_arm_timeout(r);
		fastcgi_send_now(r);
		fastcgi_update_events(r);
		return 0;
	}
	next_addr++;
	if (start_connect(r) < 0)
		return -1;
	fastcgi_arm_timeout(r);
	return 0;
}

int fastcgi_conn_next_addr(struct fcgi_req *r)
{
	loop_del(&r->sock);
	return start_connect(r);
}

int fastcgi_conn_reopen(struct fcgi_req *r)
{
	if (r->pool >= 0)
		pool_release(r, 0);
	loop_del(&r->sock);
	r->connected = 0;
	r->reused = 0;
	if (r->pool >= 0) {
		char why[sizeof(phdr(r->pool)->down_reason) + 32];
		return pool_dispatch(r, why, sizeof(why));
	}
	r->tries = 0;
	if (start_connect(r) < 0)
		return -1;
	fastcgi_arm_timeout(r);
	return 0;
}

void fastcgi_conn_slot_started(struct fcgi_req *r, int64_t start_ms)
{
	if (r->pool >= 0 && r->has_slot)
		__atomic_store_n(&pslot(r->slot)->request_start_ms, start_ms, __ATOMIC_RELAXED);
}

void fastcgi_conn_timed_out(struct fcgi_req *r)
{
	if (r->pool >= 0 && r->has_slot) {
		/* that process is stuck: the master kills it and starts another */
		exchange_log(r->x, LOG_ERROR,
			     "fastcgi %s: pool process %ld did not answer within %lld ms; asking the master to kill it",
			     r->b->name, (long)r->pid, (long long)r->b->cgi.timeout_ms);
		r->killed = 1;
		__atomic_store_n(&pslot(r->slot)->kill, r->pid, __ATOMIC_RELEASE);
		scoreboard_wake(loop_scoreboard());
	}
}
