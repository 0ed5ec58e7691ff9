/* A client connection and the requests it carries.
 *
 * A connection reads a request head, routes it, gives its body to a
 * backend (streamed, or read whole first when it is small), writes the
 * backend's response (chunked, length-delimited or close-delimited), then
 * keeps the connection alive or closes it, lingering while the client may
 * still be sending. Requests on one connection are served one at a time,
 * so pipelined requests are answered in order.
 *
 * A request is an object of its own (struct request): created when the
 * first byte of its head arrives, destroyed whole by request_end once its
 * response has been written or the connection is gone; request_end is
 * also where it is logged and counted, exactly once. Nothing about a
 * request lives in struct conn, so nothing can outlive it.
 *
 * The response is read from the backend as fast as it comes: what the
 * client cannot take yet waits in memory, then in an unlinked temporary
 * file, within the backend's limits, so a slow client does not hold a
 * backend process. */

#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../backends/backend.h"
#include "../protocol/cidr.h"
#include "../protocol/forwarded.h"
#include "../protocol/http_auth.h"
#include "../protocol/http_chunked.h"
#include "../protocol/http_response.h"
#include "../protocol/proxy.h"
#include "../protocol/url.h"
#include "auth.h"
#include "log.h"
#include "tls.h"
#include "worker.h"
#include "xalloc.h"

#define IN_INIT		4096
#define IN_BODY_ROOM	16384 /* read buffer room for a streamed body */
#define MAX_REDIRECTS	10
#define LINGER_READ	16384
#define FILE_FLUSH_MAX	(1 << 20) /* file bytes per flush of one connection */
#define REQUEST_ID_MAX	64	  /* a client's X-Request-Id: at most this long */
#define USAGE_LINES_MAX 1024	  /* access-log lines waiting for a CGI child's usage */
#define TLS_FILE_CHUNK	16384	  /* file bytes read for one SSL_write (one TLS record) */

enum cstate {
	CS_HEAD,   /* reading a request head (or idle between requests) */
	CS_BODY,   /* reading a body whole before the backend starts */
	CS_ACTIVE, /* a backend serves the request */
	CS_DONE,   /* the response is complete; flushing it */
	CS_LINGER, /* response sent, write side shut: draining what the client still sends */
};

struct conn;
struct usage_wait;

struct request {
	struct conn *c;
	struct http_request req; /* its slices point into c->in */
	int64_t t0_us;		 /* first byte of the head, CLOCK_MONOTONIC µs */
	int64_t start_ms;

	/* body */
	int64_t body_left; /* Content-Length bytes not yet given to the backend */
	int chunked;	   /* decoding a chunked body into the spool */
	struct http_chunked ch;
	char *spool;
	size_t spool_len, spool_cap, spool_off;
	int spool_fd;
	int64_t body_total;
	int expect_pending;

	/* backend */
	const struct backend_ops *ops;
	void *bst;
	int ended;
	struct exchange_info info;
	char *path;
	char *prefix;
	char *redirect;	   /* target of a local redirect (owns rreq's slices) */
	char *request_uri; /* the client's target, once an internal redirect changed it */
	int redirects;
	struct http_request rreq;

	/* response */
	int head_sent;
	int resp_chunked;
	int64_t resp_left; /* -1 unless the response has a Content-Length */
	int resp_nobody;
	int status;
	uint64_t queued;   /* bytes of this response put in the output queue */
	uint64_t head_end; /* queued when its head was complete */
	uint64_t sent;	   /* bytes written to the client */
	uint64_t payload;  /* body bytes of the response (without chunk framing) */
	size_t mem_max;	   /* output held in memory before the file */
	int64_t file_max;  /* output held in the temporary file, 0: none */
	int backend_paused;

	/* accounting, CLOCK_MONOTONIC microseconds (0: did not happen) */
	int64_t wait_since_us;	/* waiting for a backend resource since */
	int64_t wait_us;	/* time waited for backend resources, in all */
	int64_t upstream_us;	/* the backend started serving it */
	int64_t backend_end_us; /* the backend ended it (response or error) */
	pid_t upstream_pid;	/* the process that served it, 0: none */
	struct usage_wait *uw;	/* its CGI child is not reaped yet */
	enum log_usage usage;	/* the CGI child's resource usage (wait4): */
	int64_t cpu_user_us, cpu_sys_us;
	long maxrss_kb;
	uint64_t body_in;	     /* bytes of a chunked body read, framing included */
	int head_ok;		     /* its head parsed: its headers can be read */
	char id[REQUEST_ID_MAX + 1]; /* "" until request_id() */

	/* authentication */
	struct auth_job *auth_job;	     /* a verification under way, or NULL */
	const struct route_conf *auth_route; /* ... for this route */
	char *remote_user;		     /* claimed, then verified when user_ok */
	int user_ok;

	/* the client as believed: the connection's (after a PROXY header),
	 * or what trusted proxies say (forwarded headers) */
	const char *addr, *port;
	struct cidr_peer peer;
	int https;
	struct fwd_client fwd; /* addr and port point here when it found one */

	struct http_header hdrs[]; /* limits.header_count of them */
};

struct conn {
	struct ev ev;
	struct listener *l;
	char raddr[64], rport[8]; /* the client: the peer, or the PROXY header's source */
	struct cidr_peer peer;	  /* ... for access lists and trusted_proxies */
	char paddr[64], pport[8]; /* the peer itself (the balancer behind a PROXY header) */
	char *px;		  /* a PROXY header being read (PROXY_MAX bytes), or NULL */
	size_t px_len;
	int px_wait; /* a PROXY header must come first (the listener's proxy_protocol) */
	int px_ssl;  /* ... and it said the client spoke TLS to the balancer */
	enum cstate state;
	struct request *rq; /* NULL between requests */

	char *in;
	size_t in_len, in_cap, in_off; /* unconsumed bytes are [in_off, in_len) */
	size_t keep;		       /* [0, keep) holds the current request head: never moved */
	size_t scan;
	int64_t head_start_ms; /* accept, or the first byte of a head; 0 while idle */
	int64_t idle_since_ms;
	int64_t progress_ms;
	int64_t linger_until_ms;
	int64_t linger_bytes;

	/* output: out[out_off, out_len) first, then the file's [spill_r, spill_w) */
	char *out;
	size_t out_len, out_off, out_cap;
	int spill_fd;
	off_t spill_r, spill_w;
	/* ... then a part of a file the response sends (a static file):
	 * [file_off, file_end) of file_fd, with sendfile. It is the last of a
	 * response: nothing is queued after it. */
	int file_fd;
	off_t file_off, file_end;
	int close_after;

	struct tls_conn *tls; /* NULL: plain HTTP */
	int tls_read_ready;   /* decrypted bytes wait in OpenSSL: read them this turn */
	int tls_counted;      /* its handshake is in the scoreboard */
	int tls_dry;	      /* the last TLS read found nothing to return: what
			       * OpenSSL holds is part of a record (read again
			       * only when the socket has more) */
	int tls_peeked;	      /* its first byte was looked at */
	int plain_on_tls;     /* plain HTTP on a TLS listener: answered 400 */

	int pending;
	struct conn *pnext;
	struct timer timer;
	struct conn *next, *prev;
};

static const struct config *cf;
static struct http_limits limits;
static int64_t spilled; /* bytes in this worker's response files (limits.temp_files) */
static struct conn *conns;
static struct conn *pending_head;

static void request_id_init(void);

int conn_init(const struct config *c)
{
	cf = c;
	limits.request_line = c->limit_request_line;
	limits.header_size = c->limit_header_size;
	limits.header_count = c->limit_header_count;
	limits.header_field = c->limit_header_field;
	request_id_init();
	return 0;
}

static void conn_update(struct conn *c);
static void conn_close(struct conn *c);
static void conn_parse(struct conn *c);
static void on_event(struct ev *ev, uint32_t events);
static void conn_read(struct conn *c, uint32_t events);
static void client_gone(struct conn *c);

static void schedule(struct conn *c)
{
	if (c->pending)
		return;
	c->pending = 1;
	c->pnext = pending_head;
	pending_head = c;
}

int conn_pending(void)
{
	return pending_head != NULL;
}

/* ---- logging that names the request ---- */

static const struct http_request *current_req(const struct request *rq)
{
	return rq->redirect ? &rq->rreq : &rq->req;
}

/* ---- request ids ---- */

/* This worker's generator: a random key (getrandom once, in conn_init),
 * its pid and a counter. */
static struct {
	uint64_t k0, k1, n;
	uint64_t pid;
} idgen;

static void request_id_init(void)
{
	uint64_t k[2] = {0, 0};
	if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
		/* no entropy yet (early boot): the clock and the pid still
		 * make the ids of this worker unique */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		k[0] ^= (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
		k[1] ^= (uint64_t)ts.tv_nsec << 20;
	}
	idgen.k0 = k[0];
	idgen.k1 = k[1];
	idgen.pid = (uint64_t)getpid();
	idgen.n = 0;
}

/* splitmix64's finalizer: a bijection, so distinct inputs stay distinct */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A client's X-Request-Id, used as the request's id when it is the only
 * one and well-formed: 1 to REQUEST_ID_MAX of [A-Za-z0-9._-] (nothing
 * that could split a log field or forge a line). Any client may set it:
 * cpm has no trusted-proxy list yet (see cpm.json(5)). */
static int client_request_id(const struct http_request *r, char *out)
{
	struct http_slice v = {NULL, 0};
	for (unsigned i = 0; i < r->nheaders; i++) {
		if (!http_slice_ieq(r->headers[i].name, "x-request-id"))
			continue;
		if (v.p)
			return -1; /* more than one */
		v = r->headers[i].value;
	}
	if (!v.p || v.len == 0 || v.len > REQUEST_ID_MAX)
		return -1;
	for (size_t i = 0; i < v.len; i++) {
		char ch = v.p[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		      ch == '_' || ch == '-'))
			return -1;
	}
	memcpy(out, v.p, v.len);
	out[v.len] = 0;
	return 0;
}

/* The request's id: the client's (client_request_id), else 32 hex digits
 * made here: unique in this worker (mix64 of a counter) and, with a random
 * key per worker, across workers. Fixed at the first call. */
static const char *request_id(struct request *rq)
{
	if (rq->id[0])
		return rq->id;
	if (rq->head_ok && client_request_id(&rq->req, rq->id) == 0)
		return rq->id;
	uint64_t n = ++idgen.n;
	uint64_t a = mix64(idgen.k0 + n * 0x9e3779b97f4a7c15ULL);
	uint64_t b = mix64(idgen.k1 ^ (idgen.pid << 40) ^ n);
	snprintf(rq->id, sizeof(rq->id), "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
	return rq->id;
}

/* "CLIENT:PORT "METHOD TARGET" id=ID: message" (log.c escapes what is not
 * printable, so a request line cannot forge a log line). */
static void request_vlog(const struct conn *c, struct request *rq, int level, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	const struct http_request *r = rq ? current_req(rq) : NULL;
	char target[512 * 3 + 1];
	if (r && r->method.len)
		log_msg(level, "%s:%s \"%.*s %s\" id=%s: %s", rq->addr, rq->port, (int)r->method.len, r->method.p,
			log_field(target, sizeof(target), r->target.p, r->target.len > 512 ? 512 : r->target.len),
			request_id(rq), msg);
	else if (rq)
		log_msg(level, "%s:%s id=%s: %s", rq->addr, rq->port, request_id(rq), msg);
	else
		log_msg(level, "%s:%s: %s", c->raddr, c->rport, msg);
}

static void conn_log(const struct conn *c, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void conn_log(const struct conn *c, int level, const char *fmt, ...)
{
	if (level < log_get_level())
		return;
	va_list ap;
	va_start(ap, fmt);
	request_vlog(c, c->rq, level, fmt, ap);
	va_end(ap);
}

#define RQ(x) ((struct request *)(x))

void exchange_log(struct exchange *x, int level, const char *fmt, ...)
{
	if (level < log_get_level())
		return;
	va_list ap;
	va_start(ap, fmt);
	if (x)
		request_vlog(RQ(x)->c, RQ(x), level, fmt, ap);
	else
		log_vmsg(level, fmt, ap);
	va_end(ap);
}

/* ---- output ---- */

static size_t out_mem_pending(const struct conn *c)
{
	return c->out_len - c->out_off;
}

static uint64_t out_pending(const struct conn *c)
{
	return out_mem_pending(c) + (uint64_t)(c->spill_w - c->spill_r) +
	       (uint64_t)(c->file_fd >= 0 ? c->file_end - c->file_off : 0);
}

static void file_close(struct conn *c)
{
	if (c->file_fd < 0)
		return;
	close(c->file_fd);
	c->file_fd = -1;
	c->file_off = c->file_end = 0;
}

/* What the output holds against the response's limits: memory, and the
 * whole temporary file (it is only appended to, so its size is what it
 * costs until it has drained and goes). */
static uint64_t out_held(const struct conn *c)
{
	return out_mem_pending(c) + (uint64_t)c->spill_w;
}

static void out_reserve(struct conn *c, size_t n)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n <= c->out_cap)
		return;
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
		if (c->out_len + n <= c->out_cap)
			return;
	}
	size_t cap = c->out_cap ? c->out_cap : 4096;
	while (cap < c->out_len + n)
		cap *= 2;
	c->out = xrealloc(c->out, cap);
	c->out_cap = cap;
}

static void out_mem_put(struct conn *c, const void *p, size_t n)
{
	out_reserve(c, n);
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

/* Append to the temporary file. Returns -1 (logged) if it cannot. */
/* An unlinked file for a request body or a response: in TMPDIR, else
 * /tmp. */
static int temp_file(void)
{
	const char *dir = getenv("TMPDIR");
	return open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

static void spill_close(struct conn *c)
{
	if (c->spill_fd < 0)
		return;
	close(c->spill_fd);
	c->spill_fd = -1;
	spilled -= c->spill_w;
	c->spill_r = c->spill_w = 0;
}

static int spill_put(struct conn *c, const void *p, size_t n)
{
	if (c->spill_w == c->spill_r && spilled + (int64_t)n > cf->limit_temp_files) {
		/* the worker's share of the disk is taken: no new file; this
		 * response stays in memory and its backend waits for the
		 * client (one already in a file goes on, and is paused by
		 * exchange_response_body) */
		return -1;
	}
	if (c->spill_fd < 0) {
		c->spill_fd = temp_file();
		if (c->spill_fd < 0) {
			conn_log(c, LOG_ERROR, "cannot create a temporary file for a response: %s", strerror(errno));
			return -1;
		}
		c->spill_r = c->spill_w = 0;
	}
	/* all of p or nothing of it: a part written before the disk filled
	 * would be sent, and then the whole again from memory */
	const char *s = p;
	off_t at = c->spill_w;
	while (n) {
		ssize_t w = pwrite(c->spill_fd, s, n, at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			conn_log(c, LOG_ERROR, "writing a response to a temporary file: %s",
				 w < 0 ? strerror(errno) : "no space");
			if (c->spill_r == c->spill_w)
				spill_close(c);
			return -1;
		}
		s += w;
		n -= (size_t)w;
		at += w;
	}
	spilled += at - c->spill_w;
	c->spill_w = at;
	return 0;
}

/* Queue n bytes for the client: in memory while the response stays within
 * its memory share, else in the temporary file. Order is kept: memory
 * drains first, and once the file holds bytes, new ones follow them there.
 * Returns -1 if the bytes could not be kept (the response is broken). */
static int out_put(struct conn *c, const void *p, size_t n)
{
	struct request *rq = c->rq;
	if (rq)
		rq->queued += n;
	int file_busy = c->spill_w > c->spill_r;
	if (file_busy || (rq && rq->file_max > 0 && out_mem_pending(c) + n > rq->mem_max)) {
		if (spill_put(c, p, n) == 0)
			return 0;
		if (rq)
			rq->file_max = 0; /* no file: the backend waits for the client from now on */
		if (file_busy)
			return -1; /* memory would jump ahead of the file */
	}
	out_mem_put(c, p, n);
	return 0;
}

static void out_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(struct conn *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(buf)) {
		out_put(c, buf, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	out_put(c, big, (size_t)n);
	free(big);
}

static void count_sent(struct conn *c, size_t n)
{
	c->progress_ms = loop_now_ms();
	if (c->rq)
		c->rq->sent += n;
}

/* ---- the client's bytes: over the socket, or through TLS ---- */

static ssize_t conn_recv(struct conn *c, void *buf, size_t len)
{
	return c->tls ? tls_conn_read(c->tls, buf, len) : read(c->ev.fd, buf, len);
}

/* more: a file's bytes follow at once (one packet for a small file) */
static ssize_t conn_send(struct conn *c, const void *buf, size_t len, int more)
{
	if (c->tls)
		return tls_conn_write(c->tls, buf, len);
	return more ? send(c->ev.fd, buf, len, MSG_MORE | MSG_NOSIGNAL) : write(c->ev.fd, buf, len);
}

/* The next part of a file through TLS without kernel TLS: read into the
 * output queue, where the next write encrypts it (sendfile cannot). */
static ssize_t tls_file_chunk(struct conn *c, int fd, off_t *off, off_t end, size_t max)
{
	size_t want = end - *off > (off_t)max ? max : (size_t)(end - *off);
	out_reserve(c, want);
	ssize_t n = pread(fd, c->out + c->out_len, want, *off);
	if (n > 0) {
		c->out_len += (size_t)n;
		*off += n;
	}
	return n;
}

/* The next part of [*off, end) of fd to the client: by sendfile, by
 * kernel TLS, or (TLS without it) read into the output queue for the next
 * write. Returns the bytes taken from the file; *queued: they wait in the
 * output queue, not sent yet. */
static ssize_t file_part(struct conn *c, int fd, off_t *off, off_t end, int *queued)
{
	size_t len = end - *off > FILE_FLUSH_MAX ? FILE_FLUSH_MAX : (size_t)(end - *off);
	*queued = 0;
	if (!c->tls)
		return sendfile(c->ev.fd, fd, off, len);
	if (tls_conn_ktls_send(c->tls)) {
		ssize_t n = tls_conn_sendfile(c->tls, fd, *off, len);
		if (n > 0)
			*off += n;
		return n;
	}
	*queued = 1;
	return tls_file_chunk(c, fd, off, end, TLS_FILE_CHUNK);
}

/* Write what is queued. Returns -1 when the client is gone. */
static int conn_flush(struct conn *c)
{
	size_t file_sent = 0;
	for (;;) {
		ssize_t n;
		int queued;
		if (out_mem_pending(c)) {
			/* a head with a file after it: in one packet with the
			 * file's first bytes (small files: one packet in all);
			 * through TLS, in one record with them */
			if (c->tls && c->file_fd >= 0 && c->spill_w == c->spill_r && c->file_off < c->file_end &&
			    out_mem_pending(c) < TLS_FILE_CHUNK && !tls_conn_ktls_send(c->tls))
				tls_file_chunk(c, c->file_fd, &c->file_off, c->file_end,
					       TLS_FILE_CHUNK - out_mem_pending(c));
			n = conn_send(c, c->out + c->out_off, out_mem_pending(c),
				      c->file_fd >= 0 && c->spill_w == c->spill_r);
			if (n > 0) {
				c->out_off += (size_t)n;
				count_sent(c, (size_t)n);
				continue;
			}
		} else if (c->spill_w > c->spill_r) {
			n = file_part(c, c->spill_fd, &c->spill_r, c->spill_w, &queued);
			if (n > 0) {
				if (!queued)
					count_sent(c, (size_t)n);
				if (c->spill_r == c->spill_w)
					/* drained: the next spill takes a new file. This
					 * one is never written again: the socket may
					 * still hold its pages (sendfile does not copy) */
					spill_close(c);
				continue;
			}
		} else if (c->file_fd >= 0 && c->file_off < c->file_end) {
			if (file_sent >= FILE_FLUSH_MAX)
				break; /* other clients get a turn; EPOLLOUT brings us back */
			n = file_part(c, c->file_fd, &c->file_off, c->file_end, &queued);
			if (n > 0) {
				if (!queued)
					count_sent(c, (size_t)n);
				file_sent += (size_t)n;
				if (c->file_off == c->file_end)
					file_close(c);
				continue;
			}
			/* 0: the file is shorter than when it was opened */
		} else {
			file_close(c);
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		return -1;
	}
	if (!out_mem_pending(c)) {
		c->out_off = c->out_len = 0;
		if (c->out_cap > 64 * 1024) {
			free(c->out);
			c->out = NULL;
			c->out_cap = 0;
		}
	}
	return 0;
}

static void out_release(struct conn *c)
{
	free(c->out);
	c->out = NULL;
	c->out_cap = c->out_len = c->out_off = 0;
	spill_close(c);
	file_close(c);
}

/* ---- the request object ---- */

static void request_new(struct conn *c)
{
	struct request *rq = xcalloc(1, sizeof(*rq) + limits.header_count * sizeof(rq->hdrs[0]));
	rq->c = c;
	rq->spool_fd = -1;
	rq->resp_left = -1;
	rq->info.body_fd = -1;
	rq->start_ms = loop_now_ms();
	rq->t0_us = monotonic_us();
	rq->addr = c->raddr;
	rq->port = c->rport;
	rq->peer = c->peer;
	rq->https = c->tls != NULL || c->px_ssl;
	c->rq = rq;
	c->scan = 0;
	if (!c->head_start_ms)
		c->head_start_ms = loop_now_ms();
}

/* ---- accounting ---- */

void exchange_wait_begin(struct exchange *x)
{
	struct request *rq = RQ(x);
	if (!rq->wait_since_us)
		rq->wait_since_us = monotonic_us();
}

void exchange_upstream(struct exchange *x, pid_t pid)
{
	struct request *rq = RQ(x);
	int64_t now = monotonic_us();
	if (rq->wait_since_us) {
		rq->wait_us += now - rq->wait_since_us;
		rq->wait_since_us = 0;
	}
	if (!rq->upstream_us)
		rq->upstream_us = now;
	rq->upstream_pid = pid;
}

/* The backend is done with the request: its time ends, and a wait that
 * never ended (a 503 from the queue) counts up to now (monotonic µs). */
static void backend_done(struct request *rq, int64_t now)
{
	if (rq->wait_since_us) {
		rq->wait_us += now - rq->wait_since_us;
		rq->wait_since_us = 0;
	}
	if (rq->upstream_us && !rq->backend_end_us)
		rq->backend_end_us = now;
}

/* ---- access log ---- */

static const struct log_format *access_format(void)
{
	static struct log_format *combined;
	if (cf->access_fmt)
		return cf->access_fmt;
	if (!combined) {
		char why[64];
		size_t off;
		combined = log_format_compile("combined", &off, why, sizeof(why));
	}
	return combined;
}

/* A CGI child whose request ended before it was reaped: the request's
 * access-log line waits here, rendered with holes for the child's
 * resource usage, until exchange_child_reaped (the child's timeout bounds
 * the wait; a worker that stops writes what waits without usage). While
 * the request lives, rq points to it and nothing is rendered yet. */
struct usage_wait {
	pid_t pid;
	struct request *rq;
	char *line;
	size_t len;
	struct log_holes holes;
	struct usage_wait *next;
};
static struct usage_wait *usage_waits;
static unsigned usage_lines;

static void usage_wait_free(struct usage_wait *uw)
{
	struct usage_wait **pp = &usage_waits;
	while (*pp && *pp != uw)
		pp = &(*pp)->next;
	if (*pp)
		*pp = uw->next;
	if (uw->line)
		usage_lines--;
	free(uw->line);
	free(uw);
}

void exchange_upstream_child(struct exchange *x)
{
	struct request *rq = RQ(x);
	if (rq->uw)
		usage_wait_free(rq->uw); /* served again by another child: the last counts */
	rq->usage = LOG_USAGE_PENDING;
	rq->uw = xcalloc(1, sizeof(*rq->uw));
	rq->uw->pid = rq->upstream_pid;
	rq->uw->rq = rq;
	rq->uw->next = usage_waits;
	usage_waits = rq->uw;
}

static int64_t tv_us(struct timeval tv)
{
	return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

void exchange_child_reaped(pid_t pid, const struct rusage *ru)
{
	struct usage_wait *uw = usage_waits;
	while (uw && uw->pid != pid)
		uw = uw->next;
	if (!uw)
		return;
	struct log_access_rec u = {.usage = LOG_USAGE_SET,
				   .cpu_user_us = tv_us(ru->ru_utime),
				   .cpu_sys_us = tv_us(ru->ru_stime),
				   .maxrss_kb = ru->ru_maxrss};
	struct request *rq = uw->rq;
	if (rq) {
		rq->usage = LOG_USAGE_SET;
		rq->cpu_user_us = u.cpu_user_us;
		rq->cpu_sys_us = u.cpu_sys_us;
		rq->maxrss_kb = u.maxrss_kb;
		rq->uw = NULL;
	} else {
		char line[LOG_ACCESS_MAX];
		log_access_line(line, (int)log_format_fill(uw->line, uw->len, &uw->holes, &u, line));
	}
	usage_wait_free(uw);
}

/* Write the lines still waiting for usage, without it (the worker stops). */
static void usage_waits_flush(void)
{
	struct log_access_rec none = {.usage = LOG_USAGE_NONE};
	struct usage_wait *uw = usage_waits;
	while (uw) {
		struct usage_wait *next = uw->next;
		if (uw->line) {
			char line[LOG_ACCESS_MAX];
			log_access_line(line, (int)log_format_fill(uw->line, uw->len, &uw->holes, &none, line));
			usage_wait_free(uw);
		}
		uw = next;
	}
}

/* Bytes read from the client for this request: its head and its body
 * (framing included), or what arrived of a head that never parsed. */
static uint64_t request_length(const struct conn *c, struct request *rq)
{
	if (!rq->head_ok)
		return c->in_len;
	uint64_t body = rq->req.chunked ? rq->body_in
					: (uint64_t)(rq->req.content_length > 0 ? rq->req.content_length : 0) -
					      (uint64_t)(rq->body_left > 0 ? rq->body_left : 0);
	return rq->req.head_len + body;
}

/* now: the request's end (monotonic µs; backend_done(rq, now) has run) */
static void access_log(const struct conn *c, struct request *rq, int status, int64_t now)
{
	if (!log_access_enabled()) {
		if (rq->uw)
			usage_wait_free(rq->uw);
		rq->uw = NULL;
		return;
	}
	const struct http_request *r = &rq->req;
	int has = r->method.len > 0;
	struct http_slice ref = has ? http_header_value(r, "referer") : (struct http_slice){NULL, 0};
	struct http_slice ua = has ? http_header_value(r, "user-agent") : (struct http_slice){NULL, 0};
	struct log_access_rec rec = {
	    .time_local = worker_log_date(),
	    .remote_addr = rq->addr,
	    .remote_port = rq->port,
	    .peer_addr = c->paddr,
	    .peer_port = c->pport,
	    .scheme = rq->https ? "https" : "http",
	    .remote_user = rq->remote_user && rq->user_ok ? rq->remote_user : NULL,
	    .method = has ? r->method.p : NULL,
	    .method_len = r->method.len,
	    .target = r->target.p,
	    .target_len = r->target.len,
	    .version_minor = r->version_minor,
	    .status = status,
	    .bytes_sent = rq->sent,
	    /* body bytes sent: all of them, or (cut short) what got out */
	    .body_bytes_sent = rq->sent >= rq->queued	 ? rq->payload
			       : rq->sent > rq->head_end ? rq->sent - rq->head_end
							 : 0,
	    .request_length = request_length(c, rq),
	    .request_time_us = now - rq->t0_us,
	    .queue_time_us = rq->wait_us,
	    .upstream_time_us = rq->upstream_us ? rq->backend_end_us - rq->upstream_us : -1, /* backend_done ran */
	    .upstream_pid = rq->upstream_pid,
	    .backend = rq->info.backend ? rq->info.backend->name : NULL,
	    .request_id = request_id(rq),
	    .referer = ref.len ? ref.p : NULL,
	    .referer_len = ref.len,
	    .user_agent = ua.len ? ua.p : NULL,
	    .user_agent_len = ua.len,
	    .usage = rq->usage,
	    .cpu_user_us = rq->cpu_user_us,
	    .cpu_sys_us = rq->cpu_sys_us,
	    .maxrss_kb = rq->maxrss_kb,
	};
	if (c->tls && tls_conn_ready(c->tls)) {
		rec.ssl_protocol = tls_conn_version(c->tls);
		rec.ssl_cipher = tls_conn_cipher(c->tls);
		rec.ssl_server_name = tls_conn_sni(c->tls);
		rec.ssl_session_reused = tls_conn_resumed(c->tls);
	}
	struct usage_wait *uw = rq->uw;
	rq->uw = NULL;
	if (uw && usage_lines >= USAGE_LINES_MAX)
		rec.usage = LOG_USAGE_NONE; /* too many wait: this one goes now */
	char line[LOG_ACCESS_MAX];
	struct log_holes holes;
	size_t n = log_format_render(access_format(), &rec, line, &holes);
	if (uw && rec.usage == LOG_USAGE_PENDING && holes.n) {
		/* the child is not reaped yet: the line waits for its usage */
		uw->rq = NULL;
		uw->line = xmalloc(n);
		memcpy(uw->line, line, n);
		uw->len = n;
		uw->holes = holes;
		usage_lines++;
		return;
	}
	if (uw)
		usage_wait_free(uw);
	log_access_line(line, (int)n);
}

/* The one end of every request: the backend is told if it still works on
 * it, the request is logged and counted, and it is freed whole. A request
 * whose client left before a response head is logged as 499. */
static void request_end(struct conn *c)
{
	struct request *rq = c->rq;
	if (!rq)
		return;
	if (rq->ops && rq->bst && !rq->ended)
		rq->ops->abort(rq->bst);
	int64_t now = monotonic_us(); /* one reading for the log, the counts and the backend's end */
	backend_done(rq, now);
	if (rq->auth_job)
		auth_cancel(rq->auth_job); /* its result must not reach a freed request */
	rq->auth_job = NULL;
	rq->ended = 1;
	int status = rq->head_sent ? rq->status : 499;
	if (rq->head_sent || rq->req.method.len) {
		/* a client that left in the middle of a head sent no request
		 * to speak of (nginx does not log it either) */
		access_log(c, rq, status, now);
		worker_request_done(status, rq->info.backend, now - rq->t0_us, rq->wait_us);
	}
	if (rq->uw)
		usage_wait_free(rq->uw);
	free(rq->path);
	free(rq->prefix);
	free(rq->redirect);
	free(rq->remote_user);
	free(rq->request_uri);
	free(rq->spool);
	if (rq->spool_fd >= 0)
		close(rq->spool_fd);
	free(rq);
	c->rq = NULL;
}

/* ---- lifecycle ---- */

int conn_open(int fd, struct listener *l, const struct sockaddr_storage *ss, socklen_t sl)
{
	(void)sl;
	struct conn *c = xcalloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->ev = (struct ev){.fd = fd, .handler = on_event};
	c->l = l;
	c->spill_fd = -1;
	c->file_fd = -1;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, c->raddr, sizeof(c->raddr));
		c->peer.family = 4;
		memcpy(c->peer.addr, &s4->sin_addr, 4);
		snprintf(c->rport, sizeof(c->rport), "%u", ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, c->raddr, sizeof(c->raddr));
		c->peer.family = 6;
		memcpy(c->peer.addr, &s6->sin6_addr, 16);
		snprintf(c->rport, sizeof(c->rport), "%u", ntohs(s6->sin6_port));
	} else {
		snprintf(c->raddr, sizeof(c->raddr), "127.0.0.1");
		snprintf(c->rport, sizeof(c->rport), "0");
	}
	memcpy(c->paddr, c->raddr, sizeof(c->paddr));
	memcpy(c->pport, c->rport, sizeof(c->pport));
	c->px_wait = l->conf && l->conf->proxy_protocol;
	if (!l->is_unix) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (l->tls && !(c->tls = tls_conn_new(l->tls, fd))) {
		log_error("%s:%s: cannot start TLS (out of memory?)", c->raddr, c->rport);
		free(c);
		return -1;
	}
	c->state = CS_HEAD;
	c->idle_since_ms = loop_now_ms();
	/* header_timeout runs from accept: a TLS handshake is inside it */
	c->head_start_ms = loop_now_ms();
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	if (loop_add(&c->ev, EPOLLIN | EPOLLRDHUP) < 0) {
		c->ev.fd = -1;
		conn_close(c);
		return 0;
	}
	conn_update(c);
	return 0;
}

static void conn_close(struct conn *c)
{
	request_end(c);
	timer_cancel(loop_timers(), &c->timer);
	if (c->tls)
		tls_conn_shutdown(c->tls); /* close_notify, while the socket is open */
	if (c->ev.fd >= 0)
		loop_del(&c->ev);
	if (c->pending) {
		struct conn **pp = &pending_head;
		while (*pp && *pp != c)
			pp = &(*pp)->pnext;
		if (*pp)
			*pp = c->pnext;
		c->pending = 0;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->in);
	free(c->px);
	out_release(c);
	tls_conn_free(c->tls);
	loop_free_later(c);
	worker_conn_closed();
}

void conn_close_all(void)
{
	while (conns)
		conn_close(conns);
	usage_waits_flush();
}

/* Idle: a keep-alive connection between requests (head_start_ms is 0
 * there). A connection accepted but not yet heard from (its PROXY header,
 * TLS handshake or first request may be in the socket already) is not
 * idle: closing it would drop a request the client had every reason to
 * send; header_timeout bounds it. */
void conn_close_idle(void)
{
	struct conn *c = conns, *n;
	for (; c; c = n) {
		n = c->next;
		if (c->state == CS_HEAD && !c->rq && !c->head_start_ms && !out_pending(c))
			conn_close(c);
	}
}

/* ---- finishing a request ---- */

/* The response is fully produced; flush it, then read the next request or
 * close. Runs from the pending list, never inside a backend callback. */
static void finish(struct conn *c)
{
	struct request *rq = c->rq;
	rq->ended = 1;
	c->state = CS_DONE;
	/* client_timeout for sending the response runs from now, not from
	 * the client's last byte (which may be as old as a timeout) */
	c->progress_ms = loop_now_ms();
	if (rq->body_left > 0 || rq->chunked)
		c->close_after = 1; /* an unread body: framing is lost */
	/* a draining worker still keeps this connection open if its response
	 * promised keep-alive: the next request is answered with
	 * Connection: close (or the keepalive timeout ends it) */
	schedule(c);
}

/* Stop sending, then read and drop what the client still sends for a
 * while, so that closing does not reset a response it has not read yet
 * (nginx's lingering close). */
static void start_linger(struct conn *c)
{
	if (c->tls)
		tls_conn_shutdown(c->tls); /* close_notify before the FIN; then
					    * the client's bytes are only drained */
	if (shutdown(c->ev.fd, SHUT_WR) < 0 || cf->lingering_time_ms == 0) {
		conn_close(c);
		return;
	}
	c->state = CS_LINGER;
	c->linger_until_ms = loop_now_ms() + cf->lingering_time_ms;
	c->linger_bytes = 0;
	c->progress_ms = loop_now_ms();
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = c->in_off = c->keep = 0;
	out_release(c);
	conn_update(c);
}

static void linger_read(struct conn *c)
{
	static char sink[LINGER_READ];
	for (int i = 0; i < 4; i++) {
		ssize_t n = read(c->ev.fd, sink, sizeof(sink));
		if (n > 0) {
			c->linger_bytes += n;
			c->progress_ms = loop_now_ms();
			if (c->linger_bytes > cf->limit_body) {
				conn_close(c);
				return;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		conn_close(c); /* EOF or error: the client has read what it will */
		return;
	}
	conn_update(c);
}

static void next_request(struct conn *c)
{
	if (conn_flush(c) < 0) {
		conn_close(c);
		return;
	}
	if (out_pending(c)) {
		conn_update(c); /* wait for EPOLLOUT */
		return;
	}
	request_end(c);
	if (c->close_after) {
		start_linger(c);
		return;
	}
	c->state = CS_HEAD;
	c->idle_since_ms = loop_now_ms();
	c->head_start_ms = 0;
	c->keep = 0;
	c->scan = 0;
	/* drop the consumed request from the buffer; an idle connection
	 * keeps no buffer at all (10,000 idle clients cost their struct conn,
	 * not 12 KiB each): the next request allocates again */
	if (c->in_off == c->in_len) {
		free(c->in);
		c->in = NULL;
		c->in_cap = c->in_len = c->in_off = 0;
		out_release(c);
		conn_update(c);
		return;
	}
	memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
	c->in_len -= c->in_off;
	c->in_off = 0;
	request_new(c);
	conn_parse(c);
}

void conn_run_pending(void)
{
	while (pending_head) {
		struct conn *c = pending_head;
		pending_head = c->pnext;
		c->pending = 0;
		if (c->state == CS_DONE) {
			next_request(c);
		} else {
			/* what flush_soon left for this moment; then, whether it
			 * all went or not, the interest and the deadline (a
			 * partial write needs EPOLLOUT) */
			if (out_pending(c) && conn_flush(c) < 0) {
				client_gone(c);
				continue;
			}
			if (c->tls_read_ready) {
				c->tls_read_ready = 0;
				conn_read(c, EPOLLIN);
			} else {
				conn_update(c);
			}
		}
	}
}

/* ---- responses made by cpm itself ---- */

static void put_common_headers(struct conn *c)
{
	out_printf(c, "Server: cpm/%s\r\nDate: %s\r\n", CPM_VERSION, worker_http_date());
}

static int must_close(const struct conn *c)
{
	const struct request *rq = c->rq;
	return c->close_after || rq->body_left > 0 || !rq->req.keep_alive || worker_draining() || cf->keepalive_ms == 0;
}

/* The end of a response head: Connection as decided, and the empty line. */
static void end_head(struct conn *c)
{
	struct request *rq = c->rq;
	if (c->close_after)
		out_printf(c, "Connection: close\r\n");
	else if (rq->req.version_minor == 0)
		out_printf(c, "Connection: keep-alive\r\n");
	out_put(c, "\r\n", 2);
	rq->head_end = rq->queued;
}

/* A complete response of cpm's own, before any response head. */
static void respond(struct conn *c, int status, const char *extra, const char *body, int close)
{
	struct request *rq = c->rq;
	const char *reason = http_reason(status);
	size_t blen = strlen(body);
	rq->status = status;
	if (rq->body_left > 0 && !rq->chunked && (int64_t)(c->in_len - c->in_off) >= rq->body_left) {
		/* nobody will read the body, and it is all here: skip it and
		 * the connection can carry the next request */
		c->in_off += (size_t)rq->body_left;
		rq->body_left = 0;
	}
	if (close || must_close(c))
		c->close_after = 1;
	out_printf(c, "HTTP/1.1 %d %s\r\n", status, reason);
	put_common_headers(c);
	if (blen)
		out_printf(c, "Content-Type: text/plain\r\n");
	out_printf(c, "Content-Length: %zu\r\n", blen);
	if (extra)
		out_printf(c, "%s\r\n", extra);
	end_head(c);
	if (rq->req.method_id != HTTP_HEAD) {
		out_put(c, body, blen);
		rq->payload = blen;
	}
	rq->head_sent = 1;
}

static void send_error(struct conn *c, int status, const char *extra, int close)
{
	char body[128];
	snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));
	respond(c, status, extra, body, close);
}

/* A protocol error while reading a request: answer and close. */
static void fail_request(struct conn *c, int status, const char *why)
{
	struct request *rq = c->rq;
	conn_log(c, LOG_INFO, "%d %s", status, why);
	if (rq->ops && rq->bst && !rq->ended)
		rq->ops->abort(rq->bst);
	if (rq->auth_job)
		auth_cancel(rq->auth_job);
	rq->auth_job = NULL;
	rq->ended = 1;
	rq->ops = NULL;
	rq->bst = NULL;
	if (!rq->head_sent) {
		if (rq->req.method.len == 0)
			rq->req.version_minor = 1;
		send_error(c, status, NULL, 1);
	}
	c->close_after = 1;
	finish(c);
}

/* ---- the exchange interface for backends ---- */

size_t exchange_body_peek(struct exchange *x, const char **p, int *eof)
{
	struct request *rq = RQ(x);
	struct conn *c = rq->c;
	*eof = 0;
	if (rq->spool) {
		*p = rq->spool + rq->spool_off;
		*eof = rq->spool_off == rq->spool_len;
		return rq->spool_len - rq->spool_off;
	}
	if (rq->info.body_fd >= 0 || !rq->info.has_body) {
		*eof = 1;
		return 0;
	}
	size_t avail = c->in_len - c->in_off;
	if ((int64_t)avail > rq->body_left)
		avail = (size_t)rq->body_left;
	*p = c->in + c->in_off;
	*eof = rq->body_left == 0;
	if (avail == 0 && rq->expect_pending) {
		out_printf(c, "HTTP/1.1 100 Continue\r\n\r\n");
		rq->expect_pending = 0;
		conn_flush(c);
		conn_update(c);
	}
	return avail;
}

void exchange_body_consume(struct exchange *x, size_t n)
{
	struct request *rq = RQ(x);
	struct conn *c = rq->c;
	if (rq->spool) {
		rq->spool_off += n;
		return;
	}
	c->in_off += n;
	rq->body_left -= (int64_t)n;
	if (c->in_off == c->in_len && rq->body_left > 0)
		c->in_off = c->in_len = c->keep;
	conn_update(c);
}

/* X-Accel-Buffering: no (nginx's name for it): the application streams,
 * so its output is not held in the temporary file. Not passed on. */
static int buffering_off(const struct http_header *h)
{
	return http_slice_ieq(h->name, "x-accel-buffering") && http_slice_ieq(h->value, "no");
}

/* Queue a response head; 1 when queued, 0 when it was answered with 502
 * instead (an invalid status). */
static int response_head(struct request *rq, const struct cgi_response *r)
{
	struct conn *c = rq->c;
	int st = r->status;
	const struct http_request *req = &rq->req;
	if (st < 200 || st > 999) {
		/* an interim or invalid status is no answer: a second response
		 * would follow it on the connection */
		conn_log(c, LOG_ERROR, "the backend answered with status %d", st);
		send_error(c, 502, NULL, 1);
		rq->resp_nobody = 1;
		return 0;
	}
	rq->status = st;
	rq->head_sent = 1;
	const struct cgi_conf *g = rq->info.backend ? &rq->info.backend->cgi : NULL;
	rq->mem_max = g && g->response_buffer ? g->response_buffer : 64 * 1024;
	rq->file_max = g ? g->response_temp_max : 0;
	const char *reason = r->reason.len ? NULL : http_reason(st);
	if (reason)
		out_printf(c, "HTTP/1.1 %d %s\r\n", st, reason);
	else
		out_printf(c, "HTTP/1.1 %d %.*s\r\n", st, (int)r->reason.len, r->reason.p);
	put_common_headers(c);
	for (unsigned i = 0; i < r->nfields; i++) {
		const struct http_header *h = &r->fields[i];
		if (buffering_off(h)) {
			rq->file_max = 0;
			continue;
		}
		out_put(c, h->name.p, h->name.len);
		out_put(c, ": ", 2);
		out_put(c, h->value.p, h->value.len);
		out_put(c, "\r\n", 2);
	}
	int nobody_status = st == 204 || st == 304;
	rq->resp_nobody = nobody_status || req->method_id == HTTP_HEAD;
	if (nobody_status) {
		/* no framing */
	} else if (r->content_length >= 0) {
		out_printf(c, "Content-Length: %lld\r\n", (long long)r->content_length);
		rq->resp_left = req->method_id == HTTP_HEAD ? 0 : r->content_length;
	} else if (req->method_id == HTTP_HEAD) {
		/* the length is unknown; say nothing */
	} else if (req->version_minor >= 1) {
		out_printf(c, "Transfer-Encoding: chunked\r\n");
		rq->resp_chunked = 1;
	} else {
		c->close_after = 1; /* close-delimited */
	}
	if (must_close(c))
		c->close_after = 1;
	end_head(c);
	return 1;
}

/* A response's bytes go out at the end of the turn (the pending list),
 * not one write per call: a backend's answer read in one go (a FastCGI
 * STDOUT and its END_REQUEST, a short CGI output) leaves in one write,
 * head, body and the last chunk together. A queue grown past this is
 * written at once, so a large body streams without waiting for the turn
 * and without spilling to the temporary file what the socket would take. */
#define FLUSH_DEFER_MAX (16 * 1024)

static uint64_t out_limit(const struct request *rq);

/* Write now or at the end of the turn. Returns -1 when the client is gone.
 * Deferred only well under the response's limits, so the backend is never
 * paused on bytes that wait for the end of the turn (nothing would resume
 * it: no EPOLLOUT is asked for them). */
static int flush_soon(struct conn *c)
{
	if (out_mem_pending(c) < FLUSH_DEFER_MAX && c->spill_w == c->spill_r && out_held(c) < out_limit(c->rq) / 2) {
		schedule(c);
		return 0;
	}
	if (conn_flush(c) < 0)
		return -1;
	conn_update(c);
	return 0;
}

int exchange_response_head(struct exchange *x, const struct cgi_response *r)
{
	struct request *rq = RQ(x);
	response_head(rq, r);
	return flush_soon(rq->c);
}

int exchange_response_file(struct exchange *x, const struct cgi_response *r, int fd, off_t off, int64_t len)
{
	struct request *rq = RQ(x);
	struct conn *c = rq->c;
	if (response_head(rq, r) && !rq->resp_nobody && len > 0) {
		/* memory and the temporary file are empty or hold this head
		 * only: the file part is the last of the queue */
		c->file_fd = fd;
		c->file_off = off;
		c->file_end = off + len;
		rq->queued += (uint64_t)len;
		rq->payload += (uint64_t)len;
		if (rq->resp_left >= 0)
			rq->resp_left -= len;
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
	if (conn_flush(c) < 0)
		return -1;
	/* the interest is set when the pending list runs, after the backend
	 * has ended the response (a static file is sent inside start) */
	schedule(c);
	return 0;
}

/* This connection's response is in a file while the worker's files are
 * over limits.temp_files: its backend waits until the file has drained. */
static int over_temp_files(const struct conn *c)
{
	return c->spill_w > c->spill_r && spilled > cf->limit_temp_files;
}

/* Output the backend may still send before it is paused: memory and file
 * shares together. */
static uint64_t out_limit(const struct request *rq)
{
	return rq->mem_max + (uint64_t)(rq->file_max > 0 ? rq->file_max : 0);
}

int exchange_response_body(struct exchange *x, const char *p, size_t n)
{
	struct request *rq = RQ(x);
	struct conn *c = rq->c;
	if (rq->resp_nobody || n == 0)
		return 1;
	if (rq->resp_left >= 0) {
		if ((int64_t)n > rq->resp_left)
			n = (size_t)rq->resp_left; /* more than it announced: dropped */
		rq->resp_left -= (int64_t)n;
		if (n == 0)
			return 1;
	}
	if (rq->resp_chunked)
		out_printf(c, "%zx\r\n", n);
	int broken = out_put(c, p, n) < 0;
	rq->payload += n;
	if (rq->resp_chunked)
		out_put(c, "\r\n", 2);
	if (broken || flush_soon(c) < 0)
		return -1;
	if (out_held(c) >= out_limit(rq) || over_temp_files(c)) {
		rq->backend_paused = 1;
		return 0;
	}
	return 1;
}

int exchange_response_complete(struct exchange *x)
{
	const struct request *rq = RQ(x);
	return rq->head_sent && (rq->resp_left == 0 || rq->resp_nobody);
}

void exchange_response_end(struct exchange *x, int ok)
{
	struct request *rq = RQ(x);
	struct conn *c = rq->c;
	rq->ended = 1;
	backend_done(rq, monotonic_us());
	if (ok && rq->resp_left > 0) {
		conn_log(c, LOG_WARN, "response shorter than its Content-Length (%lld bytes missing)",
			 (long long)rq->resp_left);
		ok = 0;
	}
	if (ok && rq->resp_chunked)
		out_put(c, "0\r\n\r\n", 5);
	if (!ok)
		c->close_after = 1; /* never present a broken body as complete */
	finish(c);
}

void exchange_error(struct exchange *x, int status, const char *extra)
{
	struct request *rq = RQ(x);
	struct conn *c = rq->c;
	rq->ended = 1;
	backend_done(rq, monotonic_us());
	if (rq->head_sent) {
		c->close_after = 1;
		finish(c);
		return;
	}
	send_error(c, status, extra, 0);
	finish(c);
}

void exchange_set_state(struct exchange *x, void *st)
{
	struct request *rq = RQ(x);
	if (!rq->ended)
		rq->bst = st;
}

static void dispatch(struct conn *c);
static void dispatch_start(struct conn *c, const struct route_conf *rt);
static int method_allowed(const struct route_conf *rt, const struct http_slice *m);
static int authenticate(struct conn *c, const struct route_conf *rt);

/* Serve the request again for target (a local path with its query):
 * keep=0 as a GET without a body (a CGI local redirect), keep=1 with its
 * method, body and REQUEST_URI (an internal redirect: index, fallback). */
static void redirect(struct request *rq, const char *path, size_t len, int keep)
{
	struct conn *c = rq->c;
	struct exchange *x = (struct exchange *)rq;
	if (++rq->redirects > MAX_REDIRECTS) {
		conn_log(c, LOG_ERROR, "more than %d local redirects", MAX_REDIRECTS);
		exchange_error(x, 500, NULL);
		return;
	}
	char *target = xmalloc(len + 1);
	memcpy(target, path, len);
	target[len] = 0;
	if (keep && !rq->request_uri) {
		rq->request_uri = xmalloc(rq->req.target.len + 1);
		memcpy(rq->request_uri, rq->req.target.p, rq->req.target.len);
		rq->request_uri[rq->req.target.len] = 0;
	}
	/* the new request: same headers; the method of the request being
	 * served (its slice is in c->in or static), or GET */
	struct http_slice method = current_req(rq)->method;
	int method_id = current_req(rq)->method_id;
	free(rq->redirect);
	rq->redirect = target;
	rq->rreq = rq->req;
	rq->rreq.target = (struct http_slice){target, len};
	const char *q = memchr(target, '?', len);
	rq->rreq.path = (struct http_slice){target, q ? (size_t)(q - target) : len};
	rq->rreq.has_query = q != NULL;
	rq->rreq.query = q ? (struct http_slice){q + 1, len - (size_t)(q - target) - 1} : (struct http_slice){"", 0};
	if (keep) {
		rq->rreq.method = method;
		rq->rreq.method_id = method_id;
	} else {
		rq->rreq.method = (struct http_slice){"GET", 3};
		rq->rreq.method_id = HTTP_GET;
		rq->rreq.content_length = -1;
		rq->rreq.chunked = 0;
		rq->info.has_body = 0;
		rq->info.content_length = -1;
		if (rq->info.body_fd >= 0) {
			close(rq->info.body_fd);
			rq->info.body_fd = -1;
			rq->spool_fd = -1;
		}
	}
	rq->ops = NULL;
	rq->bst = NULL;
	rq->ended = 0;
	dispatch(c);
}

void exchange_redirect(struct exchange *x, const char *path, size_t len)
{
	redirect(RQ(x), path, len, 0);
}

void exchange_internal_redirect(struct exchange *x, const char *target, size_t len)
{
	redirect(RQ(x), target, len, 1);
}

/* ---- routing and dispatch ---- */

/* The first route whose prefix matches and, if it has suffixes, one of
 * them (the path or a leading part of it ending at a '/'). */
static const struct route_conf *route(const char *path, size_t len)
{
	for (size_t i = 0; i < cf->nroutes; i++) {
		const struct route_conf *rt = &cf->routes[i];
		if (!url_prefix_match(path, len, rt->prefix, rt->prefix_len))
			continue;
		if (!rt->nsuffix)
			return rt;
		for (size_t k = 0; k < rt->nsuffix; k++)
			if (url_suffix_match(path, len, rt->suffix[k], strlen(rt->suffix[k]), NULL))
				return rt;
	}
	return NULL;
}

/* No route matches path, but one has path + "/" as its prefix: nginx
 * answers such a request (/app for a location /app/) with a 301 to the
 * directory, rather than 404. */
static int route_wants_slash(const char *path, size_t len)
{
	for (size_t i = 0; i < cf->nroutes; i++) {
		const struct route_conf *rt = &cf->routes[i];
		if (rt->prefix_len == len + 1 && rt->prefix[len] == '/' && memcmp(rt->prefix, path, len) == 0)
			return 1;
	}
	return 0;
}

/* 301 to the decoded path (encoded again: never "//host" nor "/\\host")
 * with a '/' after it, query kept */
void exchange_redirect_slash(struct exchange *x)
{
	struct request *rq = RQ(x);
	const struct http_request *r = current_req(rq);
	size_t plen = strlen(rq->path);
	char *enc = xmalloc(3 * plen + 1);
	size_t el = url_encode_path(rq->path, plen, enc);
	size_t n = el + 1 + (r->has_query ? 1 + r->query.len : 0);
	char *loc = xmalloc(n + sizeof("Location: "));
	int k = snprintf(loc, n + sizeof("Location: "), "Location: %s/", enc);
	if (r->has_query)
		snprintf(loc + k, n + sizeof("Location: ") - (size_t)k, "?%.*s", (int)r->query.len, r->query.p);
	exchange_error(x, 301, loc);
	free(loc);
	free(enc);
}

/* A host a Location may carry: a name of letters, digits, '-' and '.',
 * or a bracketed IPv6 address (what the parser admits is wider: reg-name
 * has sub-delims and %-escapes). */
static int location_host_ok(struct http_slice h)
{
	if (h.len == 0 || h.len > 255)
		return 0;
	if (h.p[0] == '[')
		return h.len > 2 && h.p[h.len - 1] == ']' && strspn(h.p + 1, "0123456789abcdefABCDEF:.") >= h.len - 2;
	for (size_t i = 0; i < h.len; i++)
		if (!((h.p[i] >= 'a' && h.p[i] <= 'z') || (h.p[i] >= 'A' && h.p[i] <= 'Z') ||
		      (h.p[i] >= '0' && h.p[i] <= '9') || h.p[i] == '-' || h.p[i] == '.'))
			return 0;
	return 1;
}

/* redirect_http: every request on this plain listener gets 308 to the
 * same target over https (308, not 301: a POST stays a POST). The host is
 * the request's (an absolute-form target's authority, else Host, as
 * nginx's $host), without its port; else server_name or the listener's
 * address. */
static void redirect_https(struct conn *c, const struct http_request *r)
{
	const struct listen_conf *lc = c->l->conf;
	if (r->path.len == 0 || r->path.p[0] != '/') {
		exchange_error((struct exchange *)c->rq, 400, NULL); /* CONNECT's authority-form */
		return;
	}
	struct http_slice name = {NULL, 0}, port;
	char local[INET6_ADDRSTRLEN];
	if (!r->has_host || http_host_split(r->host, &name, &port) < 0 || !location_host_ok(name)) {
		const char *h = cf->server_name ? cf->server_name : c->l->host;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int wildcard = !*h || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0;
		if (wildcard && getsockname(c->ev.fd, (struct sockaddr *)&ss, &sl) == 0) {
			/* a wildcard listener, no Host: the address the client reached */
			const void *a = ss.ss_family == AF_INET6
					    ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
					    : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
			if (inet_ntop(ss.ss_family, a, local, sizeof(local)))
				h = local;
		}
		name = (struct http_slice){h, strlen(h)};
	}
	int v6 = name.len && name.p[0] != '[' && memchr(name.p, ':', name.len);
	char *loc;
	int n;
	const char *q = r->has_query ? "?" : "";
	if (lc->redirect_to)
		n = asprintf(&loc, "Location: %s%.*s%s%.*s", lc->redirect_to, (int)r->path.len, r->path.p, q,
			     (int)r->query.len, r->query.p);
	else
		n = asprintf(&loc, "Location: https://%s%.*s%s%s%s%.*s%s%.*s", v6 ? "[" : "", (int)name.len, name.p,
			     v6 ? "]" : "", strcmp(cf->https_port, "443") ? ":" : "",
			     strcmp(cf->https_port, "443") ? cf->https_port : "", (int)r->path.len, r->path.p, q,
			     (int)r->query.len, r->query.p);
	if (n < 0)
		abort();
	exchange_error((struct exchange *)c->rq, 308, loc);
	free(loc);
}

/* Route the current request (rq->rreq after a redirect, else rq->req) and
 * start its backend. */
static void dispatch(struct conn *c)
{
	struct request *rq = c->rq;
	struct exchange *x = (struct exchange *)rq;
	const struct http_request *r = current_req(rq);
	c->state = CS_ACTIVE;
	if (r->method_id == HTTP_OPTIONS && r->target.len == 1 && r->target.p[0] == '*') {
		/* the server as a whole (RFC 9110 9.3.7): nothing to route */
		rq->ended = 1;
		respond(c, 200, NULL, "", 0);
		finish(c);
		return;
	}
	/* not when a trusted balancer says the client came by https */
	if (c->l->conf && c->l->conf->redirect_http && !rq->redirects && !rq->https) {
		redirect_https(c, r);
		return;
	}
	free(rq->path);
	rq->path = xmalloc(r->path.len + 1);
	size_t plen;
	int rc = url_decode_path(r->path.p, r->path.len, rq->path, &plen);
	if (rc == URL_OK)
		rc = url_check_segments(rq->path, plen, plen); /* "." and ".." */
	if (rc != URL_OK) {
		exchange_error(x, rc == URL_BAD ? 400 : 404, NULL);
		return;
	}
	const struct route_conf *rt = route(rq->path, plen);
	if (!rt) {
		if (route_wants_slash(rq->path, plen))
			exchange_redirect_slash(x);
		else
			exchange_error(x, 404, NULL);
		return;
	}
	/* dotfiles: refused below the route's prefix (which may name one) */
	if (url_check_segments(rq->path, plen, rt->prefix_len ? rt->prefix_len - 1 : 0) != URL_OK) {
		exchange_error(x, 404, NULL);
		return;
	}
	/* nginx's order: access lists, then the method, then credentials */
	int denied = cidr_match_any(rt->deny, rt->ndeny, &rq->peer);
	if (denied || (rt->allow && !cidr_match_any(rt->allow, rt->nallow, &rq->peer))) {
		conn_log(c, LOG_INFO, "access forbidden by the %s list of route %s", denied ? "deny" : "allow",
			 rt->prefix);
		exchange_error(x, 403, NULL);
		return;
	}
	if (rt->methods && !method_allowed(rt, &r->method)) {
		exchange_error(x, 405, rt->allow_header);
		return;
	}
	free(rq->remote_user);
	rq->remote_user = NULL;
	rq->user_ok = 0;
	if (rt->auth && authenticate(c, rt) < 0)
		return;
	dispatch_start(c, rt);
}

static int method_allowed(const struct route_conf *rt, const struct http_slice *m)
{
	for (size_t i = 0; i < rt->nmethods; i++)
		if (strlen(rt->methods[i]) == m->len && memcmp(rt->methods[i], m->p, m->len) == 0)
			return 1;
	return 0;
}

static void auth_refuse(struct conn *c, const struct route_conf *rt)
{
	exchange_error((struct exchange *)c->rq, 401, rt->auth->challenge);
	conn_update(c);
}

/* A verification finished (from the loop, never inside dispatch). */
static void auth_done(void *owner, int ok, int known)
{
	struct request *rq = owner;
	struct conn *c = rq->c;
	const struct route_conf *rt = rq->auth_route;
	rq->auth_job = NULL;
	if (!ok) {
		char user[256 * 3 + 1];
		conn_log(c, LOG_INFO, "basic auth: %s \"%s\" in realm \"%s\"",
			 known ? "wrong password for user" : "unknown user",
			 log_field(user, sizeof(user), rq->remote_user, strlen(rq->remote_user)), rt->auth->realm);
		free(rq->remote_user);
		rq->remote_user = NULL;
		auth_refuse(c, rt);
		return;
	}
	dispatch_start(c, rt);
}

/* HTTP Basic on route rt: 0 to go on now, -1 when the request was answered
 * or waits for a verification (auth_done goes on then). */
static int authenticate(struct conn *c, const struct route_conf *rt)
{
	struct request *rq = c->rq;
	const struct http_request *r = current_req(rq);
	struct http_slice h = http_header_value(r, "authorization");
	unsigned nauth = 0;
	for (unsigned i = 0; i < r->nheaders; i++)
		nauth += http_slice_ieq(r->headers[i].name, "authorization");
	if (nauth > 1) {
		/* a singleton field: the backend would see them all joined,
		 * not the credentials checked here (the first) */
		conn_log(c, LOG_INFO, "basic auth: more than one Authorization header: 400");
		exchange_error((struct exchange *)rq, 400, NULL);
		conn_update(c);
		return -1;
	}
	char *user, *pass;
	char *buf = h.len ? xmalloc(h.len + 1) : NULL;
	if (!h.len || http_auth_basic_parse(h.p, h.len, buf, &user, &pass) < 0) {
		/* no credentials, another scheme, or malformed ones: like
		 * nginx, a 401 that asks again (not a 400) */
		if (h.len)
			conn_log(c, LOG_INFO, "basic auth: malformed or non-Basic credentials in realm \"%s\"",
				 rt->auth->realm);
		if (buf) {
			explicit_bzero(buf, h.len + 1);
			free(buf);
		}
		auth_refuse(c, rt);
		return -1;
	}
	rq->remote_user = xstrdup(user);
	rq->auth_route = rt;
	struct auth_job *job = NULL;
	enum auth_result res = auth_check(rt->auth->users, user, pass, auth_done, rq, &job);
	explicit_bzero(buf, h.len + 1);
	free(buf);
	if (res == AUTH_OK)
		return 0;
	if (res == AUTH_BUSY || res == AUTH_ERROR) {
		if (res == AUTH_BUSY)
			conn_log(c, LOG_ERROR, "basic auth: %d verifications already waiting in this worker: 503",
				 AUTH_QUEUE_MAX);
		exchange_error((struct exchange *)rq, 503, "Retry-After: 1");
		conn_update(c);
		return -1;
	}
	rq->auth_job = job; /* paused: no backend yet, so nothing reads or writes */
	conn_update(c);
	return -1;
}

/* The route's checks passed: start its backend. */
static void dispatch_start(struct conn *c, const struct route_conf *rt)
{
	struct request *rq = c->rq;
	struct exchange *x = (struct exchange *)rq;
	const struct http_request *r = current_req(rq);
	size_t pl = rt->prefix_len;
	if (pl && rt->prefix[pl - 1] == '/')
		pl--;
	free(rq->prefix);
	rq->prefix = xmalloc(pl + 1);
	memcpy(rq->prefix, rt->prefix, pl);
	rq->prefix[pl] = 0;
	rq->info.req = r;
	rq->info.backend = rt->backend;
	rq->info.route_prefix = rq->prefix;
	rq->info.path = rq->path;
	rq->info.rest = rq->path + pl;
	rq->info.remote_addr = rq->addr;
	rq->info.remote_port = rq->port;
	rq->info.server_name = cf->server_name ? cf->server_name : c->l->host;
	rq->info.pinned_server_name = rt->server_name;
	rq->info.server_port = c->l->port;
	rq->info.https = rq->https;
	rq->info.request_start_ms = loop_now_ms();
	rq->info.remote_user = rq->remote_user;
	rq->user_ok = rq->remote_user != NULL; /* here only once verified */
	rq->info.auth_type = rq->remote_user ? "Basic" : NULL;
	rq->info.request_uri = rq->request_uri;
	rq->info.suffix = rt->suffix;
	rq->info.nsuffix = rt->nsuffix;
	rq->info.request_id = request_id(rq);
	rq->ops = backend_ops_for(rt->backend->type);
	rq->ended = 0;
	int redirects = rq->redirects;
	void *st = rq->ops->start(x, &rq->info);
	/* a start that redirected internally has dispatched again: rq->ops
	 * and rq->bst are the new backend's now */
	if (!rq->ended && rq->redirects == redirects)
		rq->bst = st;
	conn_update(c);
}

/* ---- request bodies ---- */

static int spool_write(struct conn *c, const char *p, size_t n)
{
	struct request *rq = c->rq;
	if (rq->body_total + (int64_t)n > cf->limit_body)
		return 413;
	rq->body_total += (int64_t)n;
	if (rq->spool_fd < 0 && rq->spool_len + n <= cf->body_buffer) {
		if (rq->spool_len + n > rq->spool_cap) {
			size_t cap = rq->spool_cap ? rq->spool_cap : 4096;
			while (cap < rq->spool_len + n)
				cap *= 2;
			rq->spool = xrealloc(rq->spool, cap);
			rq->spool_cap = cap;
		}
		memcpy(rq->spool + rq->spool_len, p, n);
		rq->spool_len += n;
		return 0;
	}
	if (rq->spool_fd < 0) {
		rq->spool_fd = temp_file();
		if (rq->spool_fd < 0) {
			conn_log(c, LOG_ERROR, "cannot create a temporary file for a request body: %s",
				 strerror(errno));
			return 500;
		}
		if (rq->spool_len && write(rq->spool_fd, rq->spool, rq->spool_len) != (ssize_t)rq->spool_len)
			return 500;
		free(rq->spool);
		rq->spool = NULL;
		rq->spool_len = rq->spool_cap = 0;
	}
	while (n) {
		ssize_t w = write(rq->spool_fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			conn_log(c, LOG_ERROR, "writing a request body to a temporary file: %s",
				 w < 0 ? strerror(errno) : "no space");
			return 500;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void send_continue(struct conn *c)
{
	struct request *rq = c->rq;
	if (!rq->expect_pending)
		return;
	rq->expect_pending = 0;
	out_printf(c, "HTTP/1.1 100 Continue\r\n\r\n");
	conn_flush(c);
}

/* Decode what has arrived of a chunked body. */
static void spool_feed(struct conn *c)
{
	struct request *rq = c->rq;
	size_t consumed, produced;
	char *p = c->in + c->in_off;
	int rc = http_chunked_decode(&rq->ch, p, c->in_len - c->in_off, p, &consumed, &produced);
	if (rc == CHUNKED_ERROR) {
		fail_request(c, 400, "malformed chunked body");
		return;
	}
	if (rc == CHUNKED_TOO_LARGE) {
		fail_request(c, 413, "request body over limits.body");
		return;
	}
	int st = produced ? spool_write(c, p, produced) : 0;
	if (st) {
		fail_request(c, st, st == 413 ? "request body over limits.body" : "cannot spool the request body");
		return;
	}
	/* the decoded bytes were copied out; drop the consumed input */
	rq->body_in += consumed;
	c->in_off += consumed;
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = c->keep;
	if (rc != CHUNKED_DONE) {
		send_continue(c);
		return;
	}
	rq->chunked = 0;
	rq->info.has_body = 1;
	rq->info.content_length = rq->body_total;
	if (rq->spool_fd >= 0) {
		lseek(rq->spool_fd, 0, SEEK_SET);
		rq->info.body_fd = rq->spool_fd;
	} else if (!rq->spool) {
		rq->spool = xmalloc(1); /* an empty body */
	}
	dispatch(c);
}

/* A Content-Length body read whole before dispatch: has it all come? */
static void body_check(struct conn *c)
{
	struct request *rq = c->rq;
	if ((int64_t)(c->in_len - c->in_off) >= rq->body_left) {
		dispatch(c);
		return;
	}
	send_continue(c);
}

/* ---- reading ---- */

static const char *parse_error_reason(int st)
{
	switch (st) {
	case 414: return "request line too long";
	case 431: return "request head too large";
	case 501: return "unsupported coding";
	case 505: return "unsupported HTTP version";
	default: return "malformed request";
	}
}

/* Who the client is, once its head is here: from a trusted proxy, the
 * forwarding header the configuration believes (and X-Forwarded-Proto
 * with X-Forwarded-For); from anyone else the headers change nothing and
 * reach the backend as any header does. Per request: a balancer may carry
 * several clients' requests on one connection. */
static void request_client(struct conn *c, struct request *rq)
{
	if (!cf->ntrusted_proxies || !cidr_match_any(cf->trusted_proxies, cf->ntrusted_proxies, &c->peer))
		return;
	const struct http_request *r = &rq->req;
	int xff = cf->forwarded_header == FWD_HEADER_X_FORWARDED_FOR;
	const char *name = xff ? "x-forwarded-for" : "forwarded";
	size_t nv = 0, np = 0;
	struct http_slice *v = NULL, *pv = NULL;
	for (unsigned i = 0; i < r->nheaders; i++) {
		const struct http_slice *h = &r->headers[i].name;
		int is_name = h->len == strlen(name) && strncasecmp(h->p, name, h->len) == 0;
		int is_proto = xff && h->len == 17 && strncasecmp(h->p, "x-forwarded-proto", 17) == 0;
		if (!is_name && !is_proto)
			continue;
		if (!v) {
			v = xmalloc(2 * r->nheaders * sizeof(*v));
			pv = v + r->nheaders;
		}
		if (is_name)
			v[nv++] = r->headers[i].value;
		else
			pv[np++] = r->headers[i].value;
	}
	if (!v)
		return;
	fwd_client(xff ? FWD_X_FORWARDED : FWD_FORWARDED, v, nv, pv, np, cf->trusted_proxies, cf->ntrusted_proxies,
		   &rq->fwd);
	free(v);
	if (rq->fwd.found) {
		rq->addr = rq->fwd.addr;
		rq->port = rq->fwd.port[0] ? rq->fwd.port : "0";
		rq->peer = rq->fwd.peer;
	}
	if (rq->fwd.https >= 0)
		rq->https = rq->fwd.https;
}

static void conn_parse(struct conn *c)
{
	struct request *rq = c->rq;
	struct http_request *r = &rq->req;
	int rc = http_parse_request(c->in, c->in_len, &limits, rq->hdrs, r, &c->scan);
	if (rc == 0) {
		conn_update(c);
		return;
	}
	if (rc < 0) {
		fail_request(c, -rc, parse_error_reason(-rc));
		return;
	}
	c->in_off = c->keep = r->head_len;
	rq->head_ok = 1;
	request_client(c, rq);
	if (c->plain_on_tls) {
		/* answered at its head: no 100 Continue, no body read first */
		c->state = CS_ACTIVE;
		conn_log(c, LOG_INFO, "400 plain HTTP request on the TLS port");
		rq->ended = 1;
		respond(c, 400, NULL, "400 Bad Request: the plain HTTP request was sent to an HTTPS port\n", 1);
		finish(c);
		return;
	}
	rq->info.body_fd = -1;
	rq->info.has_body = 0;
	rq->info.content_length = -1;
	rq->expect_pending = r->expect_continue && r->version_minor >= 1;
	if (r->chunked) {
		http_chunked_init(&rq->ch);
		rq->ch.max_body = (uint64_t)cf->limit_body;
		rq->chunked = 1;
		c->state = CS_BODY;
		spool_feed(c);
		conn_update(c);
		return;
	}
	if (r->content_length > cf->limit_body) {
		fail_request(c, 413, "request body over limits.body");
		return;
	}
	if (r->content_length > 0) {
		rq->body_left = r->content_length;
		rq->info.has_body = 1;
		rq->info.content_length = r->content_length;
		if ((uint64_t)r->content_length <= cf->body_buffer) {
			/* small enough to hold: no backend waits on the client */
			c->state = CS_BODY;
			body_check(c);
			conn_update(c);
			return;
		}
	} else {
		rq->expect_pending = 0;
	}
	dispatch(c);
}

/* The input buffer moved (realloc while a body arrives): the parsed
 * request's slices still point into the old one. */
static void rebase_slice(struct http_slice *sl, uintptr_t old, size_t len, char *now)
{
	uintptr_t p = (uintptr_t)sl->p;
	if (sl->p && p >= old && p < old + len)
		sl->p = now + (p - old);
}

static void rebase_one(struct http_request *r, uintptr_t old, size_t len, char *now)
{
	struct http_slice *sl[] = {&r->method, &r->target, &r->path, &r->query, &r->authority, &r->host};
	for (size_t i = 0; i < sizeof(sl) / sizeof(sl[0]); i++)
		rebase_slice(sl[i], old, len, now);
}

static void rebase_request(struct request *rq, uintptr_t old, size_t len, char *now)
{
	rebase_one(&rq->req, old, len, now);
	rebase_one(&rq->rreq, old, len, now);
	for (unsigned i = 0; i < rq->req.nheaders; i++) {
		rebase_slice(&rq->hdrs[i].name, old, len, now);
		rebase_slice(&rq->hdrs[i].value, old, len, now);
	}
}

static void tls_handshake_failed(struct conn *c)
{
	if (!c->tls_counted) {
		c->tls_counted = 1;
		worker_tls_handshake(TLS_HS_FAILED);
	}
}

/* TLS failures are logged (a failed handshake is the one trace of a
 * client that could not talk to us), at most TLS_LOG_RATE a second per
 * worker (log.c's token bucket, as for programs' stderr): a scanner or a
 * flood of bad handshakes costs a count. */
#define TLS_LOG_RATE 20
static void tls_failed(struct conn *c)
{
	static struct log_rate rate;
	int done = c->tls_counted; /* the handshake had completed */
	if (!done)
		tls_handshake_failed(c);
	unsigned long long dropped;
	if (!log_rate_allowed(&rate, TLS_LOG_RATE, TLS_LOG_RATE, &dropped))
		return;
	if (dropped)
		log_info("%llu more TLS failure(s) not logged", dropped);
	conn_log(c, LOG_INFO, "TLS %s failed: %s", done ? "connection" : "handshake", tls_conn_error(c->tls));
}

/* Before the first TLS byte: a client that speaks plain HTTP to the TLS
 * port (its first byte a letter, not a TLS record's 0x16) is read as
 * plain HTTP and answered 400 in plain text, as nginx does; its request
 * line is in the access log. 1: plain, 0: TLS, -1: nothing to look at
 * yet (EAGAIN), -2: EOF or error. */
static int tls_peek(struct conn *c)
{
	unsigned char b;
	ssize_t n = recv(c->ev.fd, &b, 1, MSG_PEEK);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return -2;
	if (n < 0)
		return -1;
	c->tls_peeked = 1;
	if (b < 'A' || b > 'Z')
		return 0;
	tls_conn_free(c->tls);
	c->tls = NULL;
	c->plain_on_tls = 1;
	return 1;
}

/* A connection that could not give its PROXY header is closed without an
 * answer (the peer is a balancer that speaks it, or someone who should
 * not reach this port), and logged at most PROXY_LOG_RATE times a second
 * per worker. */
#define PROXY_LOG_RATE 20
static void proxy_failed(struct conn *c, const char *why)
{
	static struct log_rate rate;
	unsigned long long dropped;
	if (!log_rate_allowed(&rate, PROXY_LOG_RATE, PROXY_LOG_RATE, &dropped))
		return;
	if (dropped)
		log_info("%llu more PROXY header failure(s) not logged", dropped);
	conn_log(c, LOG_INFO, "PROXY protocol: %s; connection closed", why);
}

/* The PROXY header a proxy_protocol listener's connections start with.
 * What follows it (an HTTP request, or a TLS handshake OpenSSL reads from
 * the socket itself) must stay in the socket, so bytes are looked at with
 * MSG_PEEK and only the header's are taken: all of them while it is
 * incomplete (proxy_parse says they all belong to it), up to its end once
 * it is whole. Returns 0 once it is read (the client is its source, when
 * it names one), -1 to wait for more, -2 to close (after logging why). */
static int proxy_read(struct conn *c)
{
	if (!c->px)
		c->px = xmalloc(PROXY_MAX);
	ssize_t n = recv(c->ev.fd, c->px + c->px_len, PROXY_MAX - c->px_len, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	if (n <= 0) {
		/* a balancer's TCP check connects and closes: not worth a line */
		if (c->px_len || n < 0)
			proxy_failed(c, n < 0 ? strerror(errno) : "the connection ended inside the header");
		return -2;
	}
	struct proxy_info pi;
	const char *why = "malformed header";
	enum proxy_result r = proxy_parse(c->px, c->px_len + (size_t)n, &pi, &why);
	if (r == PROXY_ERROR) {
		proxy_failed(c, why);
		return -2;
	}
	size_t take = r == PROXY_OK ? pi.len - c->px_len : (size_t)n;
	if (take && recv(c->ev.fd, c->px + c->px_len, take, 0) != (ssize_t)take) {
		proxy_failed(c, "cannot read the header");
		return -2;
	}
	c->px_len += take;
	c->progress_ms = loop_now_ms();
	if (r == PROXY_AGAIN)
		return -1;
	free(c->px);
	c->px = NULL;
	c->px_wait = 0;
	c->px_ssl = pi.ssl;
	if (pi.family == 4 || pi.family == 6) {
		inet_ntop(pi.family == 4 ? AF_INET : AF_INET6, pi.src, c->raddr, sizeof(c->raddr));
		snprintf(c->rport, sizeof(c->rport), "%u", pi.src_port);
		c->peer.family = pi.family;
		memcpy(c->peer.addr, pi.src, pi.family == 4 ? 4 : 16);
	}
	return 0;
}

/* Whether files go out by kernel TLS: said once per worker, at its first
 * TLS request (OpenSSL decides at the end of a handshake). */
static void ktls_report(struct conn *c)
{
	static int said;
	if (said)
		return;
	said = 1;
	if (tls_conn_ktls_send(c->tls)) {
		log_info("tls: kernel TLS sends files (sendfile through the kernel's TLS)");
		return;
	}
	log_info("tls: no kernel TLS (%s): files are read and encrypted by OpenSSL",
		 tls_ktls_possible() ? "OpenSSL did not enable it for this connection's cipher"
				     : "the kernel has no \"tls\" module");
}

/* Read from the client into the input buffer. Returns bytes read, 0 on
 * EOF, -1 on EAGAIN with nothing read (or no room), -2 on error. */
static ssize_t conn_fill(struct conn *c)
{
	struct request *rq = c->rq;
	size_t want_cap;
	if (c->state == CS_HEAD) {
		want_cap = c->in_len < IN_INIT ? IN_INIT : c->in_len * 2;
		if (want_cap > limits.header_size + 1)
			want_cap = limits.header_size + 1;
		if (want_cap < c->in_len + 1)
			want_cap = c->in_len + 1;
	} else if (c->state == CS_BODY && !rq->chunked) {
		/* the whole (small) body after the head */
		want_cap = c->keep + (size_t)rq->body_left;
		if (c->in_cap > want_cap)
			want_cap = c->in_cap;
	} else {
		if (c->in_off == c->in_len) {
			c->in_off = c->in_len = c->keep;
		} else if (c->in_off > c->keep + IN_BODY_ROOM / 2) {
			memmove(c->in + c->keep, c->in + c->in_off, c->in_len - c->in_off);
			c->in_len -= c->in_off - c->keep;
			c->in_off = c->keep;
		}
		want_cap = c->in_len + IN_BODY_ROOM;
		if (c->in_cap > want_cap)
			want_cap = c->in_cap;
	}
	if (want_cap > c->in_cap) {
		char *in = xmalloc(want_cap);
		if (c->in_len)
			memcpy(in, c->in, c->in_len);
		if (rq && c->state != CS_HEAD)
			rebase_request(rq, (uintptr_t)c->in, c->in_cap, in);
		free(c->in);
		c->in = in;
		c->in_cap = want_cap;
	}
	if (c->in_len == c->in_cap)
		return -1;
	if (c->px_wait) {
		int p = proxy_read(c);
		if (p < 0)
			return p;
	}
	if (c->tls && !c->tls_peeked) {
		int p = tls_peek(c);
		if (p < 0)
			return p == -1 ? -1 : 0;
	}
	ssize_t n = conn_recv(c, c->in + c->in_len, c->in_cap - c->in_len);
	c->tls_dry = n < 0;
	if (c->tls && !c->tls_counted && tls_conn_ready(c->tls)) {
		c->tls_counted = 1;
		worker_tls_handshake(tls_conn_resumed(c->tls) ? TLS_HS_RESUMED : TLS_HS_FULL);
		ktls_report(c);
	}
	if (n > 0) {
		c->in_len += (size_t)n;
		c->progress_ms = loop_now_ms();
		return n;
	}
	if (n == 0)
		return 0;
	if (errno == EAGAIN || errno == EINTR)
		return -1;
	if (c->tls)
		tls_failed(c);
	return -2;
}

static void client_gone(struct conn *c)
{
	if (c->rq && !c->rq->ended && (c->state == CS_ACTIVE || c->state == CS_BODY))
		conn_log(c, LOG_INFO, "client closed the connection before the response was complete");
	conn_close(c);
}

static void conn_read(struct conn *c, uint32_t events)
{
	struct request *rq = c->rq;
	switch (c->state) {
	case CS_HEAD: {
		ssize_t n = conn_fill(c);
		if (n == 0 || n == -2) {
			conn_close(c); /* EOF between or inside a head: nothing to answer */
			return;
		}
		if (n < 0)
			return;
		if (!c->rq)
			request_new(c);
		conn_parse(c);
		return;
	}
	case CS_BODY: {
		ssize_t n = conn_fill(c);
		if (n == 0 || n == -2) {
			client_gone(c);
			return;
		}
		if (n > 0) {
			if (rq->chunked)
				spool_feed(c);
			else
				body_check(c);
		}
		conn_update(c);
		return;
	}
	case CS_ACTIVE:
		if (rq->body_left > 0 && !rq->ended) {
			ssize_t n = conn_fill(c);
			if (n == 0 || n == -2) {
				client_gone(c);
				return;
			}
			if (n > 0 && rq->ops && rq->bst)
				rq->ops->body_ready(rq->bst);
			conn_update(c);
			return;
		}
		/* EPOLLRDHUP while the backend works: the client left */
		if (events & EPOLLRDHUP)
			client_gone(c);
		else
			conn_update(c);
		return;
	case CS_LINGER: linger_read(c); return;
	case CS_DONE: return;
	}
}

/* ---- events and timers ---- */

/* The client still has request body to send: more than is buffered. A
 * body that has all arrived but waits for its backend (a queue, a slow
 * application) owes nothing, so client_timeout does not run for it. */
static int body_owed(const struct conn *c)
{
	const struct request *rq = c->rq;
	return rq && !rq->ended && rq->body_left > (int64_t)(c->in_len - c->in_off);
}

static void on_timer(struct timer *t)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, timer));
	switch (c->state) {
	case CS_HEAD:
		if (c->rq) {
			fail_request(c, 408, "request head not received within header_timeout");
			conn_update(c);
		} else {
			if (c->px_wait) {
				proxy_failed(c, "no complete header within header_timeout");
			} else if (c->tls && !tls_conn_ready(c->tls)) {
				conn_log(c, LOG_INFO, "TLS handshake not complete within header_timeout");
				tls_handshake_failed(c);
			}
			conn_close(c); /* idle keep-alive connection, or a stalled handshake */
		}
		return;
	case CS_BODY:
	case CS_ACTIVE:
		if (c->state == CS_ACTIVE && out_pending(c) == 0 && !body_owed(c)) {
			conn_update(c);
			return;
		}
		conn_log(c, LOG_INFO, "client stalled for client_timeout");
		if (!c->rq->head_sent && !out_pending(c)) {
			fail_request(c, 408, "request body not received within client_timeout");
			conn_update(c);
			return;
		}
		conn_close(c);
		return;
	case CS_DONE:
	case CS_LINGER: conn_close(c); return;
	}
}

/* Set the epoll interest and the deadline for the current state. */
static void conn_update(struct conn *c)
{
	/* a connection on the pending list is updated when the list runs,
	 * later in this turn: a response made at once (a static file, an
	 * error) then leaves the epoll interest as it was, instead of
	 * switching to EPOLLOUT and back for every request */
	if (c->ev.fd < 0 || c->pending)
		return;
	uint32_t ev = EPOLLRDHUP;
	int reading = 0;
	switch (c->state) {
	case CS_HEAD: reading = c->in_len < limits.header_size + 1; break;
	case CS_BODY: reading = 1; break;
	case CS_ACTIVE: reading = body_owed(c) && (c->in_len - c->in_off) < (size_t)IN_BODY_ROOM; break;
	case CS_DONE:
		ev = 0; /* flushing: a half-closed client still gets its answer */
		break;
	case CS_LINGER: reading = 1; break;
	}
	if (reading)
		ev |= EPOLLIN;
	if (out_pending(c))
		ev |= EPOLLOUT;
	if (c->tls && c->state != CS_LINGER) {
		/* TLS reads may need the socket writable, writes readable
		 * (a handshake, a key update); and what OpenSSL decrypted
		 * already is not announced by epoll: read it this turn. The
		 * lingering close drains raw bytes: nothing of this then */
		if (reading && tls_conn_wants(c->tls, 'r') == TLS_WANT_WRITE)
			ev |= EPOLLOUT;
		if (out_pending(c) && tls_conn_wants(c->tls, 'w') == TLS_WANT_READ)
			ev |= EPOLLIN;
		if (reading && !c->tls_dry && tls_conn_pending(c->tls)) {
			c->tls_read_ready = 1;
			schedule(c);
		}
	}
	loop_mod(&c->ev, ev);

	int64_t deadline = 0;
	int64_t last = c->progress_ms > c->idle_since_ms ? c->progress_ms : c->idle_since_ms;
	if (c->state == CS_LINGER) {
		deadline = last + cf->lingering_timeout_ms;
		if (deadline > c->linger_until_ms)
			deadline = c->linger_until_ms;
	} else if (c->state == CS_HEAD) {
		if (c->rq || c->head_start_ms)
			deadline = (c->head_start_ms ? c->head_start_ms : loop_now_ms()) + cf->header_timeout_ms;
		else
			deadline = c->idle_since_ms + cf->keepalive_ms;
	} else if (out_pending(c) || reading || c->state == CS_BODY) {
		deadline = last + cf->client_timeout_ms;
	}
	if (deadline) {
		c->timer.fire = on_timer;
		if (!c->timer.idx || c->timer.when_ms != deadline)
			timer_arm(loop_timers(), &c->timer, deadline);
	} else {
		timer_cancel(loop_timers(), &c->timer);
	}
}

static void on_event(struct ev *ev, uint32_t events)
{
	struct conn *c = (struct conn *)ev;
	if (events & (EPOLLERR | EPOLLHUP)) {
		client_gone(c);
		return;
	}
	if (c->tls) {
		/* a TLS write waiting to read goes on when bytes come, a TLS
		 * read waiting to write when the socket takes them */
		if ((events & EPOLLIN) && tls_conn_wants(c->tls, 'w') == TLS_WANT_READ)
			events |= EPOLLOUT;
		if ((events & EPOLLOUT) && tls_conn_wants(c->tls, 'r') == TLS_WANT_WRITE)
			events |= EPOLLIN;
	}
	if (events & EPOLLOUT) {
		if (conn_flush(c) < 0) {
			client_gone(c);
			return;
		}
		struct request *rq = c->rq;
		if (c->state == CS_DONE && !out_pending(c)) {
			schedule(c);
		} else if (rq && rq->backend_paused && out_held(c) < out_limit(rq) / 2 && !over_temp_files(c) &&
			   rq->ops && rq->bst && !rq->ended) {
			rq->backend_paused = 0;
			rq->ops->resume(rq->bst);
			if (c->ev.fd < 0)
				return;
		}
	}
	if (events & (EPOLLIN | EPOLLRDHUP)) {
		conn_read(c, events);
		return; /* c may be gone */
	}
	conn_update(c);
}
