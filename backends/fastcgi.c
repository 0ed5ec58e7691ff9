/* The fastcgi backend, client side. The request is BEGIN_REQUEST, the CGI
 * environment as PARAMS, the body as STDIN records with backpressure;
 * STDOUT goes through the CGI response parser and streams to the client,
 * STDERR to the error log, END_REQUEST ends it.
 *
 * External servers (php-fpm, spawn-fcgi): one connection per request, tried
 * in turn over the configured addresses.
 *
 * Pools (processes the master runs, one socket each): a process serves one
 * connection at a time, so a worker owns the process it has a connection
 * to (the scoreboard slot's owner) and keeps that connection open
 * (FCGI_KEEP_CONN) for its next request while nobody else waits. Requests
 * that find every process taken wait in a per-worker queue; the worker
 * then asks the owners of idle connections to let go (SIGURG) and retries
 * every few milliseconds, until queue_timeout (503). A request past its
 * timeout gets 504 and its process is killed by the master. */
#include <errno.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../protocol/fcgi.h"
#include "backend.h"
#include "cgi_output.h"
#include "script.h"
#include "waitq.h"

#define OUT_MAX	    (64 * 1024) /* STDIN buffered toward the app */
#define REQUEST_ID  1
#define RETRY_MAX   4		 /* kept connections found dead, one after another */
#define RETRY_MS    5		 /* a queued request looks for a free process this often */
#define REPLAY_MAX  (128 * 1024) /* request bytes kept to send again on a new connection */
#define EXT_IDLE_MS 60000	 /* a kept connection to an external server, unused this long, is closed */

struct fcgi_req {
	struct exchange *x;
	const struct backend_conf *b;
	struct ev sock;
	int connected;
	size_t addr; /* index of the address in use */
	size_t tries;
	unsigned char *out;
	size_t out_len, out_off, out_cap;
	int stdin_done;
	int body_fd; /* a spooled (chunked) body, read from here; or -1 */
	struct fcgi_decoder dec;
	struct cgi_output output; /* STDOUT becoming the response */
	int cut;		  /* the application answered before taking the whole body */
	int paused;
	int64_t held_left; /* > 0: paused for a slow client with this much timeout left */
	struct timer timeout;
	struct log_lines errlog; /* FCGI_STDERR */
	/* pools */
	int pool;      /* pool id, -1 for an external server */
	int has_slot;  /* holds a process: slot, pid */
	unsigned slot; /* index into the scoreboard's pool slots */
	pid_t pid;
	int reused;	/* on a kept connection */
	unsigned rid;	/* its FastCGI request id: another one on each request of a connection */
	int has_body;	/* a request body of at least one byte */
	int wrote;	/* a byte of it went out on this connection */
	int idempotent; /* RFC 9110 9.2.2: may be sent again */
	int retried;
	int got_bytes;	    /* the application said something */
	int killed;	    /* timed out: the master kills the process */
	int replay;	    /* out still holds every byte sent, from 0: it can be sent again */
	struct waiter wait; /* waiting for a pool process */
};

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
static void queue_remove(struct fcgi_req *r);
static int ext_park(struct fcgi_req *r);

static void out_put(struct fcgi_req *r, const void *p, size_t n)
{
	if (r->replay && r->out_len + n > REPLAY_MAX)
		r->replay = 0; /* too much to keep: no second attempt */
	if (r->replay) {
		if (r->out_len + n > r->out_cap) {
			r->out_cap = (r->out_len + n) * 2;
			r->out = xrealloc(r->out, r->out_cap);
		}
		memcpy(r->out + r->out_len, p, n);
		r->out_len += n;
		return;
	}
	if (r->out_off == r->out_len)
		r->out_off = r->out_len = 0;
	if (r->out_len + n > r->out_cap) {
		if (r->out_off) {
			memmove(r->out, r->out + r->out_off, r->out_len - r->out_off);
			r->out_len -= r->out_off;
			r->out_off = 0;
		}
		if (r->out_len + n > r->out_cap) {
			r->out_cap = (r->out_len + n) * 2;
			r->out = xrealloc(r->out, r->out_cap);
		}
	}
	memcpy(r->out + r->out_len, p, n);
	r->out_len += n;
}

/* keep: the connection is clean (END_REQUEST after the whole request was
 * sent) and may carry another request. */
static void req_free_keep(struct fcgi_req *r, int keep)
{
	timer_cancel(loop_timers(), &r->timeout);
	if (waitq_waiting(&r->wait))
		queue_remove(r);
	if (r->pool >= 0)
		pool_release(r, keep);
	else if (keep)
		ext_park(r);
	loop_del(&r->sock);
	free(r->out);
	cgi_output_free(&r->output);
	loop_free_later(r);
}

static void req_free(struct fcgi_req *r)
{
	req_free_keep(r, 0);
}

/* The exchange is over (answered or gone): drop everything. */
static void finish(struct fcgi_req *r)
{
	req_free(r);
}

static int pool_retry(struct fcgi_req *r);
static const char *req_addr(const struct fcgi_req *r);

static void fail(struct fcgi_req *r, int status, const char *why)
{
	if (status == 502 && pool_retry(r))
		return;
	log_lines_flush(&r->errlog);
	exchange_log(r->x, LOG_ERROR, "fastcgi %s (%s): %s", r->b->name, req_addr(r), why);
	struct exchange *x = r->x;
	int head = r->output.head_done && !r->output.redirect;
	finish(r);
	if (head)
		exchange_response_end(x, 0);
	else
		exchange_error(x, status, NULL);
}

static void on_timeout(struct timer *t);
static struct pool_slot *pslot(unsigned k);

/* The client is slower than the application and cpm's buffers for this
 * response are full: stop reading. The application now waits for cpm, so
 * its timeout stops, and a pool slot shows no request start (the master
 * never takes a process that waits for cpm for a hung one). */
static void hold(struct fcgi_req *r)
{
	r->paused = 1;
	if (r->held_left > 0 || r->timeout.fire != on_timeout)
		return;
	r->held_left = timer_suspend(loop_timers(), &r->timeout, loop_now_ms());
	if (r->held_left > 0 && r->pool >= 0 && r->has_slot)
		__atomic_store_n(&pslot(r->slot)->request_start_ms, 0, __ATOMIC_RELAXED);
}

static void unhold(struct fcgi_req *r)
{
	r->paused = 0;
	if (r->held_left <= 0)
		return;
	timer_resume(loop_timers(), &r->timeout, loop_now_ms(), r->held_left);
	if (r->pool >= 0 && r->has_slot)
		__atomic_store_n(&pslot(r->slot)->request_start_ms, loop_now_ms() + r->held_left - r->b->cgi.timeout_ms,
				 __ATOMIC_RELAXED);
	r->held_left = 0;
}

static int out_head(void *pdata, const struct cgi_response *resp)
{
	return exchange_response_head(((struct fcgi_req *)pdata)->x, resp);
}

static int out_body(void *pdata, const char *p, size_t n)
{
	return exchange_response_body(((struct fcgi_req *)pdata)->x, p, n);
}

static const struct cgi_output_opts output_opts = {out_head, out_body, NULL};

/* STDOUT bytes, whatever the records and reads that brought them. Returns
 * -1 when r is gone. */
static int on_stdout(struct fcgi_req *r, const unsigned char *p, size_t n)
{
	enum cgi_output_rc rc = cgi_output_feed(&r->output, (const char *)p, n);
	if (rc == CGI_OUTPUT_BAD) {
		fail(r, 502, r->output.why);
		return -1;
	}
	if (rc == CGI_OUTPUT_GONE) {
		struct exchange *x = r->x;
		finish(r);
		exchange_response_end(x, 0);
		return -1;
	}
	if (rc == CGI_OUTPUT_HOLD)
		hold(r);
	return 0;
}

static void on_end(struct fcgi_req *r, const struct fcgi_event *ev)
{
	log_lines_flush(&r->errlog);
	if (ev->protocol_status == FCGI_CANT_MPX_CONN || ev->protocol_status == FCGI_OVERLOADED) {
		fail(r, 503, "the application is overloaded (END_REQUEST protocolStatus)");
		return;
	}
	if (ev->protocol_status != FCGI_REQUEST_COMPLETE) {
		fail(r, 502, "the application refused the request (END_REQUEST protocolStatus)");
		return;
	}
	if (cgi_output_eof(&r->output) == CGI_OUTPUT_BAD) {
		fail(r, 502, r->output.why);
		return;
	}
	struct exchange *x = r->x;
	char *redirect = r->output.redirect;
	r->output.redirect = NULL;
	/* reusable: the whole request went out, nothing came after the
	 * answer, and the decoder is at a record boundary (END_REQUEST's
	 * padding may still be on its way: the next request's decoder would
	 * take it for a header) */
	/* A request with a body does not leave its connection for another:
	 * libfcgi processes were seen closing a kept connection right after
	 * END_REQUEST of a request with a large body (an application that
	 * reads CONTENT_LENGTH bytes leaves the empty STDIN record after
	 * them, which, as we read it, libfcgi's next accept takes for a
	 * broken connection). A request sent on it in that moment may be
	 * lost, and if it is not idempotent it cannot be sent again (seen:
	 * 13-16 POSTs in 300 pipelines got 502). */
	int clean = r->stdin_done && r->out_off == r->out_len && !r->cut && r->dec.padding_left == 0 && !r->has_body;
	req_free_keep(r, clean);
	if (redirect) {
		exchange_redirect(x, redirect, strlen(redirect));
		free(redirect);
	} else {
		exchange_response_end(x, 1);
	}
}

/* Move request body into STDIN records while the buffer has room. */
static void feed_stdin(struct fcgi_req *r)
{
	while (!r->stdin_done && r->out_len - r->out_off < OUT_MAX) {
		const char *p;
		int eof;
		size_t n;
		char fbuf[16384];
		if (r->body_fd >= 0) {
			ssize_t k = read(r->body_fd, fbuf, sizeof(fbuf));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				exchange_log(r->x, LOG_ERROR, "fastcgi %s: reading the spooled body: %s", r->b->name,
					     strerror(errno));
				k = 0; /* the app sees a short body and CONTENT_LENGTH tells it */
			}
			n = (size_t)k;
			p = fbuf;
			eof = k == 0;
		} else {
			n = exchange_body_peek(r->x, &p, &eof);
		}
		if (n == 0) {
			if (!eof)
				return;
			unsigned char h[FCGI_HEADER_LEN];
			size_t pad;
			size_t hl = fcgi_encode_stdin_header(h, r->rid, 0, &pad);
			out_put(r, h, hl);
			r->stdin_done = 1;
			return;
		}
		if (n > FCGI_MAX_LENGTH)
			n = FCGI_MAX_LENGTH;
		unsigned char h[FCGI_HEADER_LEN];
		static const unsigned char zeros[8];
		size_t pad;
		size_t hl = fcgi_encode_stdin_header(h, r->rid, n, &pad);
		out_put(r, h, hl);
		out_put(r, p, n);
		out_put(r, zeros, pad);
		if (r->body_fd < 0) {
			exchange_body_consume(r->x, n);
		}
	}
}

static void update_events(struct fcgi_req *r)
{
	uint32_t ev = 0;
	if (!r->connected || r->out_len > r->out_off)
		ev |= EPOLLOUT;
	if (r->connected && !r->paused)
		ev |= EPOLLIN;
	loop_mod(&r->sock, ev);
}

static int start_connect(struct fcgi_req *r);

/* r goes out on a kept connection whose last request had id prev: it takes
 * the next id, so that anything the application still sends for an
 * earlier request (records after END_REQUEST) can never pass for this
 * one's answer; the decoder refuses other ids. r has sent nothing yet. */
static void take_kept(struct fcgi_req *r, unsigned prev)
{
	r->reused = 1;
	r->rid = prev % 0xffff + 1;
	fcgi_set_request_id(r->out, r->out_len, r->rid);
	fcgi_decoder_init(&r->dec, r->rid);
}

/* A kept connection the peer has closed (EOF or an error waiting) or sent
 * something on unasked, seen without consuming anything. A unix socket fails the first write anyway
 * (EPIPE); over TCP that write would succeed and leave us unsure whether
 * the application read it. */
static int kept_conn_closed(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	/* bytes waiting before we asked anything are not ours either: the
	 * application sent more after its last END_REQUEST */
	return n >= 0 || (errno != EAGAIN && errno != EINTR);
}

static void on_socket(struct ev *ev, uint32_t events)
{
	struct fcgi_req *r = (struct fcgi_req *)((char *)ev - offsetof(struct fcgi_req, sock));
	if (!r->connected) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(r->sock.fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			exchange_log(r->x, LOG_WARN, "fastcgi %s: connect %s: %s", r->b->name, req_addr(r),
				     strerror(err));
			if (r->pool >= 0) {
				fail(r, 502, "cannot connect to the pool process");
				return;
			}
			loop_del(&r->sock);
			if (start_connect(r) < 0)
				fail(r, 502, "no address accepts connections");
			return;
		}
		r->connected = 1;
	}
	if (r->reused && !r->wrote && kept_conn_closed(r->sock.fd)) {
		/* found closed before a byte went out: nothing delivered */
		fail(r, 502, "kept connection closed");
		return;
	}
	if (events & EPOLLOUT || r->out_len > r->out_off) {
		feed_stdin(r);
		while (r->out_len > r->out_off) {
			ssize_t n = write(r->sock.fd, r->out + r->out_off, r->out_len - r->out_off);
			if (n > 0) {
				r->wrote = 1;
				r->out_off += (size_t)n;
				feed_stdin(r);
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (r->output.head_done) {
				/* the app answered without reading all of its body */
				r->out_off = r->out_len;
				r->stdin_done = 1;
				r->cut = 1;
				break;
			}
			fail(r, 502, "connection lost while sending the request");
			return;
		}
	}
	/* HUP or ERR come whatever the interest, paused or not: the
	 * application closed (after END_REQUEST, or died). Read on to the end
	 * of what it sent, buffering toward the slow client, or fail; never
	 * leave the event pending (epoll would report it again at once). */
	int hup = (events & (EPOLLHUP | EPOLLERR)) != 0;
	if ((events & EPOLLIN && !r->paused) || hup) {
		unsigned char buf[CGI_OUTPUT_READ_CHUNK];
		for (int rounds = 0; rounds < 8; rounds++) {
			ssize_t n = read(r->sock.fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n <= 0) {
				fail(r, 502, "connection closed before END_REQUEST");
				return;
			}
			r->got_bytes = 1;
			r->replay = 0;
			size_t i = 0;
			while (i < (size_t)n) {
				struct fcgi_event e;
				i += fcgi_decode(&r->dec, buf + i, (size_t)n - i, &e);
				if (e.type == FCGI_EV_STDOUT) {
					if (on_stdout(r, e.data, e.len) < 0)
						return;
				} else if (e.type == FCGI_EV_STDERR) {
					log_lines_feed(&r->errlog, (const char *)e.data, e.len);
				} else if (e.type == FCGI_EV_END) {
					if (i < (size_t)n)
						r->cut = 1; /* more than one answer: not reusable */
					on_end(r, &e);
					return;
				} else if (e.type == FCGI_EV_ERROR) {
					fail(r, 502, "malformed FastCGI record");
					return;
				}
			}
			if (r->paused && !hup)
				break; /* the rest waits in the socket */
		}
	}
	update_events(r);
}

/* A non-blocking connection to ss (named addr in the log): the fd,
 * *connected set if it is already up, or -1 (logged). */
static int connect_to(const struct backend_conf *b, const char *addr, const struct sockaddr_storage *ss, socklen_t sl,
		      int *connected)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_warn("fastcgi %s: socket: %s", b->name, strerror(errno));
		return -1;
	}
	if (ss->ss_family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	*connected = connect(fd, (const struct sockaddr *)ss, sl) == 0;
	if (!*connected && errno != EINPROGRESS) {
		log_warn("fastcgi %s: connect %s: %s", b->name, addr, strerror(errno));
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
		int fd = connect_to(r->b, g->addrs[r->addr], &g->sa[r->addr], g->salen[r->addr], &connected);
		if (fd < 0)
			continue;
		r->connected = connected;
		r->sock = (struct ev){.fd = fd, .handler = on_socket};
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

static const char *req_addr(const struct fcgi_req *r)
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

static void on_socket(struct ev *ev, uint32_t events);

/* A kept connection to r's backend, if there is one. */
static int ext_take(struct fcgi_req *r)
{
	for (struct idle_conn *ic = ext_idle; ic; ic = ic->next) {
		if (ic->b != r->b)
			continue;
		idle_unlink(ic);
		timer_cancel(loop_timers(), &ic->idle);
		loop_move(&ic->sock, &r->sock, EPOLLOUT | EPOLLIN);
		r->sock.handler = on_socket;
		r->addr = ic->addr;
		r->connected = 1;
		take_kept(r, ic->rid);
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

/* Workers other than this one with requests waiting for pool id. */
static int others_waiting(int id)
{
	return phdr(id)->waiting - (PS[id].waiting.head != NULL);
}

/* SIGURG: another worker waits for a pool process; close the idle
 * connections this worker keeps to processes others are waiting for. */
static void fastcgi_release_idle(void)
{
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

static void update_events(struct fcgi_req *r);
static void on_socket(struct ev *ev, uint32_t events);
static void on_timeout(struct timer *t);

/* r has its process: send. */
static void pool_begin(struct fcgi_req *r)
{
	struct pool_slot *s = pslot(r->slot);
	__atomic_store_n(&s->request_start_ms, loop_now_ms(), __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_used_ms, loop_now_ms(), __ATOMIC_RELAXED);
	r->timeout.fire = on_timeout;
	timer_arm(loop_timers(), &r->timeout, loop_now_ms() + r->b->cgi.timeout_ms);
	update_events(r);
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
		loop_move(&ic->sock, &r->sock, EPOLLOUT | EPOLLIN);
		r->sock.handler = on_socket;
		loop_free_later(ic);
		r->slot = ic->slot;
		r->pid = ic->pid;
		r->has_slot = 1;
		take_kept(r, ic->rid);
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
			fd = connect_to(r->b, s->addr, &ss, sl, &connected);
		else
			log_warn("fastcgi %s: pool address %s: %s", r->b->name, s->addr, err);
		if (fd < 0) {
			slot_let_go(k);
			continue;
		}
		ps->rot = (ps->rot + i + 1) % h->nslots;
		r->sock = (struct ev){.fd = fd, .handler = on_socket};
		loop_add(&r->sock, EPOLLOUT);
		r->connected = connected;
		r->slot = k;
		r->pid = pid;
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
	req_free(r);
	exchange_error(x, 503, ra);
}

/* Start r on a process of its pool, or queue it. */
static void pool_dispatch(struct fcgi_req *r)
{
	struct pool_state *ps = &PS[r->pool];
	if (!ps->waiting.head && pool_acquire(r)) {
		pool_begin(r);
		return;
	}
	waitq_add(&ps->waiting, &r->wait, r->b->cgi.queue_timeout_ms, on_wait_expired);
	set_waiting(r, 1);
	if (!ps->retry.idx) {
		ps->retry.fire = on_retry;
		timer_arm(loop_timers(), &ps->retry, loop_now_ms()); /* this turn: others may let go at once */
	}
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
		if (keep) {
			/* a complete request: count it against max_requests */
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
	if (keep && ps->waiting.head && (others <= 0 || !over_share(r->pool))) {
		/* hand the connection, claim and busy as they are, to the next
		 * request of ours */
		struct fcgi_req *n = first_waiting(ps);
		queue_remove(n);
		loop_move(&r->sock, &n->sock, EPOLLOUT | EPOLLIN);
		n->sock.handler = on_socket;
		n->slot = r->slot;
		n->pid = r->pid;
		n->has_slot = 1;
		take_kept(n, r->rid);
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
	}
	if (ps->waiting.head) {
		ps->retry.fire = on_retry;
		timer_arm(loop_timers(), &ps->retry, loop_now_ms()); /* a process may be free now */
	}
}

static int start_connect(struct fcgi_req *r);

/* When a request is sent again. A request goes out a second time, on a
 * new connection, only if all of these hold:
 *   - it went out on a reused (kept) connection: a fresh one that fails
 *     is the application's failure, not a stale connection's;
 *   - the application sent nothing back on it (no byte of any record);
 *   - every byte sent so far is still held (at most REPLAY_MAX);
 *   - and either nothing of it was delivered (the very first write on
 *     the connection failed, EPIPE or ECONNRESET, or the connection was
 *     found closed before that write), or the method is idempotent (RFC
 *     9110 9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE).
 * A few times at most (RETRY_MAX): each retry that lands on another kept
 * connection found dead again qualifies again, and one that lands on a
 * fresh connection cannot. Anything else that the application may have
 * read (a POST
 * whose process died handling it) gets its 502: running it twice is
 * worse. BEGIN_REQUEST, PARAMS and the body up to REPLAY_MAX are sent
 * again; the rest of the body follows as before. Returns 1 if it did. */
static int pool_retry(struct fcgi_req *r)
{
	if (!r->reused || r->retried >= RETRY_MAX || !r->replay || r->got_bytes || r->output.head_done)
		return 0;
	if (r->wrote && !r->idempotent)
		return 0;
	r->retried++;
	r->wrote = 0;
	timer_cancel(loop_timers(), &r->timeout);
	if (r->pool >= 0)
		pool_release(r, 0);
	loop_del(&r->sock);
	r->out_off = 0;
	r->cut = 0;
	r->connected = 0;
	r->reused = 0;
	fcgi_decoder_init(&r->dec, r->rid);
	log_debug("fastcgi %s: a kept connection was closed; sending the request again", r->b->name);
	if (r->pool >= 0) {
		pool_dispatch(r);
		return 1;
	}
	r->tries = 0;
	if (start_connect(r) < 0)
		return 0; /* the caller answers 502 */
	timer_arm(loop_timers(), &r->timeout, loop_now_ms() + r->b->cgi.timeout_ms);
	return 1;
}

static void on_timeout(struct timer *t)
{
	struct fcgi_req *r = (struct fcgi_req *)((char *)t - offsetof(struct fcgi_req, timeout));
	if (r->pool >= 0 && r->has_slot) {
		/* that process is stuck: the master kills it and starts another */
		r->killed = 1;
		__atomic_store_n(&pslot(r->slot)->kill, r->pid, __ATOMIC_RELEASE);
		scoreboard_wake(loop_scoreboard());
	}
	fail(r, 504, "timeout");
}

static void *fastcgi_start(struct exchange *x, const struct exchange_info *info)
{
	const struct backend_conf *b = info->backend;
	const struct cgi_conf *g = &b->cgi;
	struct script s;
	if (g->script) {
		snprintf(s.filename, sizeof(s.filename), "%s", g->script);
		snprintf(s.name, sizeof(s.name), "%s", info->route_prefix);
		s.path_info = info->rest;
	} else {
		struct script_conf sc = {g->root, g->index, g->nindex, 0};
		int st = script_find(&sc, info, &s);
		if (st) {
			exchange_error(x, st, NULL);
			return NULL;
		}
	}
	char *arena;
	char **envp = script_env(info, &s, g->root ? g->root : "", g->env, g->nenv, &arena);
	if (!envp) {
		exchange_log(x, LOG_ERROR, "fastcgi %s: environment too large", b->name);
		exchange_error(x, 500, NULL);
		return NULL;
	}
	struct fcgi_req *r = xcalloc(1, sizeof(*r));
	r->x = x;
	r->b = b;
	r->sock.fd = -1;
	cgi_output_init(&r->output, &output_opts, r);
	snprintf(r->errlog.prefix, sizeof(r->errlog.prefix), "fastcgi %s", b->name);
	r->body_fd = info->body_fd; /* owned by the connection */
	r->has_body = info->has_body && info->content_length != 0;
	r->pool = g->pool ? g->pool->id : -1;
	switch (info->req->method_id) {
	case HTTP_GET:
	case HTTP_HEAD:
	case HTTP_OPTIONS:
	case HTTP_TRACE:
	case HTTP_PUT:
	case HTTP_DELETE: r->idempotent = 1; break;
	default: break;
	}
	r->rid = REQUEST_ID;
	fcgi_decoder_init(&r->dec, r->rid);
	size_t cap = 16 + fcgi_params_size(envp);
	r->out = xmalloc(cap + OUT_MAX);
	r->out_cap = cap + OUT_MAX;
	r->out_len = fcgi_encode_begin(r->out, r->rid, g->pool != NULL || g->keep_conn > 0);
	r->out_len += fcgi_encode_params(r->out + r->out_len, cap - r->out_len, r->rid, envp);
	free(envp);
	free(arena);
	if (g->pool) {
		if (r->pool < 0) {
			exchange_log(x, LOG_ERROR, "fastcgi %s: the pool did not start (see the master's log)",
				     b->name);
			req_free(r);
			exchange_error(x, 503, NULL);
			return NULL;
		}
		if (!me)
			me = getpid();
		r->replay = 1;
		pool_dispatch(r);
		return r;
	}
	r->replay = g->keep_conn > 0;
	if (g->keep_conn > 0 && ext_take(r)) {
		r->timeout.fire = on_timeout;
		timer_arm(loop_timers(), &r->timeout, loop_now_ms() + g->timeout_ms);
		update_events(r);
		return r;
	}
	next_addr++;
	if (start_connect(r) < 0) {
		exchange_log(x, LOG_ERROR, "fastcgi %s: no address accepts connections", b->name);
		req_free(r);
		exchange_error(x, 502, NULL);
		return NULL;
	}
	r->timeout.fire = on_timeout;
	timer_arm(loop_timers(), &r->timeout, loop_now_ms() + g->timeout_ms);
	return r;
}

static void fastcgi_body_ready(void *st)
{
	struct fcgi_req *r = st;
	if (r->connected && !waitq_waiting(&r->wait)) {
		feed_stdin(r);
		update_events(r);
	}
}

static void fastcgi_resume(void *st)
{
	struct fcgi_req *r = st;
	unhold(r);
	if (!waitq_waiting(&r->wait) && r->sock.fd >= 0)
		update_events(r);
}

static void fastcgi_abort(void *st)
{
	struct fcgi_req *r = st;
	if (waitq_waiting(&r->wait)) {
		req_free(r);
		return;
	}
	exchange_log(r->x, LOG_INFO, "fastcgi %s: client gone, aborting the request", r->b->name);
	if (r->connected && r->sock.fd >= 0) {
		/* best effort, the connection is closed right after: a dirty
		 * connection is never reused */
		unsigned char rec[FCGI_HEADER_LEN];
		size_t n = fcgi_encode_abort(rec, r->rid);
		ssize_t w = write(r->sock.fd, rec, n);
		(void)w;
	}
	req_free(r);
}

const struct backend_ops fastcgi_backend_ops = {
    .start = fastcgi_start,
    .body_ready = fastcgi_body_ready,
    .resume = fastcgi_resume,
    .abort = fastcgi_abort,
    .release_idle = fastcgi_release_idle,
};
