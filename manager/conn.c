/* A client connection: read and parse a request head, route it, stream or
 * spool its body to a backend, write the backend's response (chunked,
 * length-delimited or close-delimited), then keep-alive or close. Requests
 * on one connection are served one at a time, so pipelined requests are
 * answered in order. */

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
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../backends/backend.h"
#include "../protocol/http_chunked.h"
#include "../protocol/http_response.h"
#include "../protocol/url.h"
#include "log.h"
#include "worker.h"

#define IN_INIT	      4096
#define IN_BODY_ROOM  16384 /* read buffer room for a streamed body */
#define OUT_HIGH      (256 * 1024)
#define OUT_LOW	      (64 * 1024)
#define MAX_REDIRECTS 10

enum cstate {
	CS_HEAD,   /* reading a request head (or idle between requests) */
	CS_SPOOL,  /* reading a chunked body before the backend starts */
	CS_ACTIVE, /* a backend serves the request */
	CS_DONE,   /* the response is complete; flushing it */
};

struct conn {
	struct ev ev;
	struct listener *l;
	char raddr[64], rport[8];
	enum cstate state;

	char *in;
	size_t in_len, in_cap, in_off; /* unconsumed bytes are [in_off, in_len) */
	size_t keep;		       /* [0, keep) holds the current request head: never moved */
	size_t scan;
	size_t head_max;
	int64_t head_start_ms; /* first byte of the head; 0 while idle */
	int64_t idle_since_ms;
	int64_t progress_ms;

	struct http_request req;
	struct http_header *hdrs;

	int64_t body_left; /* Content-Length bytes not yet given to the backend */
	struct http_chunked ch;
	char *spool;
	size_t spool_len, spool_cap, spool_off;
	int spool_fd;
	int64_t body_total;
	int expect_pending;

	const struct backend_ops *ops;
	void *bst;
	int ended;
	struct exchange_info info;
	char *path;
	char *prefix;
	char *redirect; /* target of a local redirect (owns rreq's slices) */
	int redirects;
	struct http_request rreq;

	char *out;
	size_t out_len, out_off, out_cap;
	int head_sent;
	int resp_chunked;
	int64_t resp_left; /* -1 unless the response has a Content-Length */
	int resp_nobody;
	int close_after;
	int backend_paused;
	int status;
	uint64_t body_bytes;
	struct timespec t0;

	int pending;
	struct conn *pnext;
	struct timer timer;
	struct conn *next, *prev;
};

static const struct config *cf;
static struct http_limits limits;
static struct conn *conns;
static struct conn *pending_head;

int conn_init(const struct config *c)
{
	cf = c;
	limits.request_line = c->limit_request_line;
	limits.header_size = c->limit_header_size;
	limits.header_count = c->limit_header_count;
	return 0;
}

static void conn_update(struct conn *c);
static void conn_close(struct conn *c);
static void conn_parse(struct conn *c);
static void on_event(struct ev *ev, uint32_t events);

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

/* ---- output ---- */

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
	c->out = realloc(c->out, cap);
	if (!c->out)
		abort();
	c->out_cap = cap;
}

static void out_put(struct conn *c, const void *p, size_t n)
{
	out_reserve(c, n);
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

static void out_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	out_reserve(c, 256);
	va_start(ap, fmt);
	int n = vsnprintf(c->out + c->out_len, c->out_cap - c->out_len, fmt, ap);
	va_end(ap);
	if ((size_t)n >= c->out_cap - c->out_len) {
		out_reserve(c, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(c->out + c->out_len, c->out_cap - c->out_len, fmt, ap);
		va_end(ap);
	}
	c->out_len += (size_t)n;
}

static size_t out_pending(const struct conn *c)
{
	return c->out_len - c->out_off;
}

/* Write what is buffered. Returns -1 when the client is gone. */
static int conn_flush(struct conn *c)
{
	while (out_pending(c)) {
		ssize_t n = write(c->ev.fd, c->out + c->out_off, out_pending(c));
		if (n > 0) {
			c->out_off += (size_t)n;
			c->progress_ms = loop_now_ms();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		return -1;
	}
	if (!out_pending(c)) {
		c->out_off = c->out_len = 0;
		if (c->out_cap > 64 * 1024) {
			free(c->out);
			c->out = NULL;
			c->out_cap = 0;
		}
	}
	return 0;
}

/* ---- lifecycle ---- */

static void reset_request(struct conn *c)
{
	free(c->path);
	free(c->prefix);
	free(c->redirect);
	free(c->spool);
	if (c->spool_fd >= 0)
		close(c->spool_fd);
	c->path = c->prefix = c->redirect = c->spool = NULL;
	c->spool_fd = -1;
	c->spool_len = c->spool_cap = c->spool_off = 0;
	c->body_total = 0;
	c->body_left = 0;
	c->expect_pending = 0;
	c->ops = NULL;
	c->bst = NULL;
	c->ended = 0;
	c->redirects = 0;
	c->head_sent = 0;
	c->resp_chunked = 0;
	c->resp_left = -1;
	c->resp_nobody = 0;
	c->backend_paused = 0;
	c->status = 0;
	c->body_bytes = 0;
	c->scan = 0;
	c->head_start_ms = 0;
	c->keep = 0;
}

int conn_open(int fd, struct listener *l, const struct sockaddr_storage *ss, socklen_t sl)
{
	(void)sl;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->ev = (struct ev){.fd = fd, .handler = on_event};
	c->l = l;
	c->spool_fd = -1;
	c->hdrs = NULL;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, c->raddr, sizeof(c->raddr));
		snprintf(c->rport, sizeof(c->rport), "%u", ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, c->raddr, sizeof(c->raddr));
		snprintf(c->rport, sizeof(c->rport), "%u", ntohs(s6->sin6_port));
	} else {
		snprintf(c->raddr, sizeof(c->raddr), "127.0.0.1");
		snprintf(c->rport, sizeof(c->rport), "0");
	}
	if (!l->is_unix) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	reset_request(c);
	c->state = CS_HEAD;
	c->idle_since_ms = loop_now_ms();
	c->head_start_ms = loop_now_ms(); /* header_timeout runs from accept */
	c->timer.fire = NULL;
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
	if (c->ops && c->bst && !c->ended)
		c->ops->abort(c->bst);
	c->ops = NULL;
	c->bst = NULL;
	timer_cancel(loop_timers(), &c->timer);
	if (c->ev.fd >= 0)
		loop_del(&c->ev);
	reset_request(c);
	if (c->pending) {
		/* unlink from the pending list */
		struct conn **pp = &pending_head;
		while (*pp && *pp != c)
			pp = &(*pp)->pnext;
		if (*pp)
			*pp = c->pnext;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->in);
	free(c->out);
	free(c->hdrs);
	loop_free_later(c);
	worker_conn_closed();
}

void conn_close_idle(void)
{
	struct conn *c = conns, *n;
	for (; c; c = n) {
		n = c->next;
		if (c->state == CS_HEAD && c->in_len == c->in_off && !out_pending(c))
			conn_close(c);
	}
}

/* ---- access log ---- */

static void log_quoted(char *dst, size_t cap, size_t *n, const char *s, size_t len)
{
	for (size_t i = 0; i < len && *n + 5 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f)
			*n += (size_t)snprintf(dst + *n, cap - *n, "\\x%02x", ch);
		else
			dst[(*n)++] = (char)ch;
	}
}

static struct http_slice find_header(const struct http_request *r, const char *name)
{
	for (unsigned i = 0; i < r->nheaders; i++)
		if (http_slice_ieq(r->headers[i].name, name))
			return r->headers[i].value;
	return (struct http_slice){NULL, 0};
}

static void access_log(struct conn *c)
{
	if (!log_access_enabled())
		return;
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long long us = (t1.tv_sec - c->t0.tv_sec) * 1000000LL + (t1.tv_nsec - c->t0.tv_nsec) / 1000;
	char line[4096];
	size_t n = (size_t)snprintf(line, sizeof(line), "%s - - [%s] \"", c->raddr, worker_log_date());
	const struct http_request *r = &c->req;
	if (r->method.len) {
		log_quoted(line, sizeof(line) - 256, &n, r->method.p, r->method.len);
		line[n++] = ' ';
		log_quoted(line, sizeof(line) - 256, &n, r->target.p, r->target.len);
		n += (size_t)snprintf(line + n, sizeof(line) - n, " HTTP/1.%d", r->version_minor);
	}
	n +=
	    (size_t)snprintf(line + n, sizeof(line) - n, "\" %d %llu \"", c->status, (unsigned long long)c->body_bytes);
	struct http_slice ref = r->method.len ? find_header(r, "referer") : (struct http_slice){NULL, 0};
	struct http_slice ua = r->method.len ? find_header(r, "user-agent") : (struct http_slice){NULL, 0};
	if (ref.len)
		log_quoted(line, sizeof(line) - 128, &n, ref.p, ref.len);
	else
		line[n++] = '-';
	n += (size_t)snprintf(line + n, sizeof(line) - n, "\" \"");
	if (ua.len)
		log_quoted(line, sizeof(line) - 64, &n, ua.p, ua.len);
	else
		line[n++] = '-';
	n += (size_t)snprintf(line + n, sizeof(line) - n, "\" %lld\n", us);
	log_access_line(line, (int)n);
}

/* ---- finishing a request ---- */

/* The response is fully produced; flush it, then read the next request or
 * close. Runs from the pending list, never inside a backend callback. */
static void finish(struct conn *c)
{
	access_log(c);
	worker_request_done(c->status);
	c->state = CS_DONE;
	c->ops = NULL;
	c->bst = NULL;
	if (c->body_left > 0)
		c->close_after = 1; /* an unread body: framing is lost */
	/* a draining worker still keeps this connection open if its response
	 * promised keep-alive: the next request is answered with
	 * Connection: close (or the keepalive timeout ends it) */
	schedule(c);
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
	if (c->close_after) {
		/* lingering close: stop sending, let the kernel deliver the rest */
		shutdown(c->ev.fd, SHUT_WR);
		conn_close(c);
		return;
	}
	reset_request(c);
	c->state = CS_HEAD;
	c->idle_since_ms = loop_now_ms();
	/* drop the consumed request from the buffer; an idle connection
	 * keeps no buffer at all (10,000 idle clients cost their struct conn,
	 * not 12 KiB each): the next request allocates again */
	if (c->in_off == c->in_len) {
		c->in_off = c->in_len = 0;
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
		free(c->hdrs);
		c->hdrs = NULL;
		if (!out_pending(c)) {
			free(c->out);
			c->out = NULL;
			c->out_cap = c->out_len = c->out_off = 0;
		}
	} else {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
		c->head_start_ms = loop_now_ms();
		conn_parse(c);
		return;
	}
	conn_update(c);
}

void conn_run_pending(void)
{
	while (pending_head) {
		struct conn *c = pending_head;
		pending_head = c->pnext;
		c->pending = 0;
		if (c->state == CS_DONE)
			next_request(c);
		else
			conn_update(c);
	}
}

/* ---- responses made by cpm itself ---- */

static void put_common_headers(struct conn *c)
{
	out_printf(c, "Server: cpm/%s\r\nDate: %s\r\n", CPM_VERSION, worker_http_date());
}

/* An error page before any response head. */
static void send_error(struct conn *c, int status, const char *extra, int close)
{
	const char *reason = http_reason(status);
	char body[128];
	int blen = snprintf(body, sizeof(body), "%d %s\n", status, reason);
	c->status = status;
	if (close || c->body_left > 0 || !c->req.keep_alive || worker_draining() || cf->keepalive_ms == 0)
		c->close_after = 1;
	out_printf(c, "HTTP/1.1 %d %s\r\n", status, reason);
	put_common_headers(c);
	out_printf(c, "Content-Type: text/plain\r\nContent-Length: %d\r\n", blen);
	if (extra)
		out_printf(c, "%s\r\n", extra);
	if (c->close_after)
		out_printf(c, "Connection: close\r\n");
	else if (c->req.version_minor == 0)
		out_printf(c, "Connection: keep-alive\r\n");
	out_put(c, "\r\n", 2);
	if (c->req.method_id != HTTP_HEAD) {
		out_put(c, body, (size_t)blen);
		c->body_bytes = (uint64_t)blen;
	}
	c->head_sent = 1;
}

/* A protocol error while reading a request: answer and close. */
static void fail_request(struct conn *c, int status, const char *why)
{
	log_info("%s:%s: %d %s", c->raddr, c->rport, status, why);
	if (c->ops && c->bst && !c->ended)
		c->ops->abort(c->bst);
	c->ended = 1;
	if (!c->head_sent) {
		if (c->req.method.len == 0)
			c->req.version_minor = 1;
		send_error(c, status, NULL, 1);
	}
	c->close_after = 1;
	finish(c);
}

/* ---- the exchange interface for backends ---- */

#define X(x) ((struct conn *)(x))

size_t exchange_body_peek(struct exchange *x, const char **p, int *eof)
{
	struct conn *c = X(x);
	*eof = 0;
	if (c->spool) {
		*p = c->spool + c->spool_off;
		*eof = c->spool_off == c->spool_len;
		return c->spool_len - c->spool_off;
	}
	if (c->info.body_fd >= 0 || !c->info.has_body) {
		*eof = 1;
		return 0;
	}
	size_t avail = c->in_len - c->in_off;
	if ((int64_t)avail > c->body_left)
		avail = (size_t)c->body_left;
	*p = c->in + c->in_off;
	*eof = c->body_left == 0;
	if (avail == 0 && c->expect_pending) {
		out_printf(c, "HTTP/1.1 100 Continue\r\n\r\n");
		c->expect_pending = 0;
		conn_flush(c);
		conn_update(c);
	}
	return avail;
}

void exchange_body_consume(struct exchange *x, size_t n)
{
	struct conn *c = X(x);
	if (c->spool) {
		c->spool_off += n;
		return;
	}
	c->in_off += n;
	c->body_left -= (int64_t)n;
	if (c->in_off == c->in_len && c->body_left > 0)
		c->in_off = c->in_len = c->keep;
	conn_update(c);
}

int exchange_response_head(struct exchange *x, const struct cgi_response *r)
{
	struct conn *c = X(x);
	int st = r->status;
	c->status = st;
	c->head_sent = 1;
	const char *reason = r->reason.len ? NULL : http_reason(st);
	if (reason)
		out_printf(c, "HTTP/1.1 %d %s\r\n", st, reason);
	else
		out_printf(c, "HTTP/1.1 %d %.*s\r\n", st, (int)r->reason.len, r->reason.p);
	put_common_headers(c);
	for (unsigned i = 0; i < r->nfields; i++) {
		const struct http_header *h = &r->fields[i];
		out_put(c, h->name.p, h->name.len);
		out_put(c, ": ", 2);
		out_put(c, h->value.p, h->value.len);
		out_put(c, "\r\n", 2);
	}
	int nobody_status = (st >= 100 && st < 200) || st == 204 || st == 304;
	c->resp_nobody = nobody_status || c->req.method_id == HTTP_HEAD;
	if (nobody_status) {
		/* no framing */
	} else if (r->content_length >= 0) {
		out_printf(c, "Content-Length: %lld\r\n", (long long)r->content_length);
		c->resp_left = c->req.method_id == HTTP_HEAD ? 0 : r->content_length;
	} else if (c->req.method_id == HTTP_HEAD) {
		/* the length is unknown; say nothing */
	} else if (c->req.version_minor >= 1) {
		out_printf(c, "Transfer-Encoding: chunked\r\n");
		c->resp_chunked = 1;
	} else {
		c->close_after = 1; /* close-delimited */
	}
	if (!c->req.keep_alive || worker_draining() || cf->keepalive_ms == 0)
		c->close_after = 1;
	if (c->close_after)
		out_printf(c, "Connection: close\r\n");
	else if (c->req.version_minor == 0)
		out_printf(c, "Connection: keep-alive\r\n");
	out_put(c, "\r\n", 2);
	if (conn_flush(c) < 0)
		return -1;
	conn_update(c);
	return 0;
}

int exchange_response_body(struct exchange *x, const char *p, size_t n)
{
	struct conn *c = X(x);
	if (c->resp_nobody || n == 0)
		return 1;
	if (c->resp_left >= 0) {
		if ((int64_t)n > c->resp_left)
			n = (size_t)c->resp_left; /* more than it announced: dropped */
		c->resp_left -= (int64_t)n;
		if (n == 0)
			return 1;
	}
	if (c->resp_chunked)
		out_printf(c, "%zx\r\n", n);
	out_put(c, p, n);
	if (c->resp_chunked)
		out_put(c, "\r\n", 2);
	c->body_bytes += n;
	if (conn_flush(c) < 0)
		return -1;
	conn_update(c);
	if (out_pending(c) >= OUT_HIGH) {
		c->backend_paused = 1;
		return 0;
	}
	return 1;
}

void exchange_response_end(struct exchange *x, int ok)
{
	struct conn *c = X(x);
	c->ended = 1;
	if (ok && c->resp_left > 0) {
		log_warn("%s %.*s: response shorter than its Content-Length", c->path ? c->path : "-",
			 (int)c->req.method.len, c->req.method.p);
		ok = 0;
	}
	if (ok && c->resp_chunked)
		out_put(c, "0\r\n\r\n", 5);
	if (!ok)
		c->close_after = 1; /* never present a broken body as complete */
	finish(c);
}

void exchange_error(struct exchange *x, int status, const char *extra)
{
	struct conn *c = X(x);
	c->ended = 1;
	if (c->head_sent) {
		c->close_after = 1;
		finish(c);
		return;
	}
	send_error(c, status, extra, 0);
	finish(c);
}

void exchange_set_state(struct exchange *x, void *st)
{
	struct conn *c = X(x);
	if (!c->ended)
		c->bst = st;
}

static void dispatch(struct conn *c);

void exchange_redirect(struct exchange *x, const char *path, size_t len)
{
	struct conn *c = X(x);
	if (++c->redirects > MAX_REDIRECTS) {
		log_error("%s: more than %d local redirects", c->path, MAX_REDIRECTS);
		exchange_error(x, 500, NULL);
		return;
	}
	char *target = strndup(path, len);
	free(c->redirect);
	c->redirect = target;
	/* the new request: GET target, same headers, no body */
	c->rreq = c->req;
	c->rreq.method = (struct http_slice){"GET", 3};
	c->rreq.method_id = HTTP_GET;
	c->rreq.target = (struct http_slice){target, len};
	const char *q = memchr(target, '?', len);
	c->rreq.path = (struct http_slice){target, q ? (size_t)(q - target) : len};
	c->rreq.has_query = q != NULL;
	c->rreq.query = q ? (struct http_slice){q + 1, len - (size_t)(q - target) - 1} : (struct http_slice){"", 0};
	c->rreq.content_length = -1;
	c->rreq.chunked = 0;
	c->info.has_body = 0;
	c->info.content_length = -1;
	if (c->info.body_fd >= 0) {
		close(c->info.body_fd);
		c->info.body_fd = -1;
		c->spool_fd = -1;
	}
	c->ops = NULL;
	c->bst = NULL;
	c->ended = 0;
	dispatch(c);
}

/* ---- routing and dispatch ---- */

static const struct route_conf *route(const char *path, size_t len)
{
	for (size_t i = 0; i < cf->nroutes; i++)
		if (url_prefix_match(path, len, cf->routes[i].prefix, cf->routes[i].prefix_len))
			return &cf->routes[i];
	return NULL;
}

static const struct backend_ops *ops_for(const struct backend_conf *b)
{
	switch (b->type) {
	case BACKEND_CGI: return &cgi_backend_ops;
	case BACKEND_STATUS: return &status_backend_ops;
	case BACKEND_FASTCGI: return &fastcgi_backend_ops;
	}
	return NULL;
}

/* Route the current request (c->rreq after a redirect, else c->req) and
 * start its backend. */
static void dispatch(struct conn *c)
{
	const struct http_request *r = c->redirect ? &c->rreq : &c->req;
	free(c->path);
	c->path = malloc(r->path.len + 1);
	size_t plen;
	int rc = url_decode_path(r->path.p, r->path.len, c->path, &plen);
	if (rc == URL_OK)
		rc = url_check_segments(c->path, plen);
	if (rc != URL_OK) {
		exchange_error((struct exchange *)c, rc == URL_BAD ? 400 : 404, NULL);
		return;
	}
	const struct route_conf *rt = route(c->path, plen);
	if (!rt) {
		exchange_error((struct exchange *)c, 404, NULL);
		return;
	}
	size_t pl = rt->prefix_len;
	if (pl && rt->prefix[pl - 1] == '/')
		pl--;
	free(c->prefix);
	c->prefix = strndup(rt->prefix, pl);
	c->info.req = r;
	c->info.backend = rt->backend;
	c->info.route_prefix = c->prefix;
	c->info.path = c->path;
	c->info.rest = c->path + pl;
	c->info.remote_addr = c->raddr;
	c->info.remote_port = c->rport;
	c->info.server_name = cf->server_name ? cf->server_name : c->l->host;
	c->info.server_port = c->l->port;
	c->info.request_start_ms = loop_now_ms();
	c->ops = ops_for(rt->backend);
	c->ended = 0;
	c->state = CS_ACTIVE;
	void *st = c->ops->start((struct exchange *)c, &c->info);
	if (!c->ended)
		c->bst = st;
	conn_update(c);
}

/* ---- request bodies ---- */

static int spool_write(struct conn *c, const char *p, size_t n)
{
	if (c->body_total + (int64_t)n > cf->limit_body)
		return 413;
	c->body_total += (int64_t)n;
	if (c->spool_fd < 0 && c->spool_len + n <= cf->body_buffer) {
		if (c->spool_len + n > c->spool_cap) {
			size_t cap = c->spool_cap ? c->spool_cap : 4096;
			while (cap < c->spool_len + n)
				cap *= 2;
			c->spool = realloc(c->spool, cap);
			c->spool_cap = cap;
		}
		memcpy(c->spool + c->spool_len, p, n);
		c->spool_len += n;
		return 0;
	}
	if (c->spool_fd < 0) {
		const char *dir = getenv("TMPDIR");
		c->spool_fd = open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (c->spool_fd < 0) {
			log_error("cannot create a temporary file for a request body: %s", strerror(errno));
			return 500;
		}
		if (c->spool_len && write(c->spool_fd, c->spool, c->spool_len) != (ssize_t)c->spool_len)
			return 500;
		free(c->spool);
		c->spool = NULL;
		c->spool_len = c->spool_cap = 0;
	}
	while (n) {
		ssize_t w = write(c->spool_fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("writing a request body to a temporary file: %s", strerror(errno));
			return 500;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Decode what has arrived of a chunked body. */
static void spool_feed(struct conn *c)
{
	size_t consumed, produced;
	char *p = c->in + c->in_off;
	int rc = http_chunked_decode(&c->ch, p, c->in_len - c->in_off, p, &consumed, &produced);
	if (rc == CHUNKED_ERROR) {
		fail_request(c, 400, "malformed chunked body");
		return;
	}
	int st = produced ? spool_write(c, p, produced) : 0;
	if (st) {
		fail_request(c, st, st == 413 ? "request body over limits.body" : "cannot spool the request body");
		return;
	}
	/* the decoded bytes were copied out; drop the consumed input */
	c->in_off += consumed;
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = c->keep;
	if (rc != CHUNKED_DONE) {
		if (c->expect_pending) {
			out_printf(c, "HTTP/1.1 100 Continue\r\n\r\n");
			c->expect_pending = 0;
			conn_flush(c);
		}
		return;
	}
	c->info.has_body = 1;
	c->info.content_length = c->body_total;
	if (c->spool_fd >= 0) {
		lseek(c->spool_fd, 0, SEEK_SET);
		c->info.body_fd = c->spool_fd;
	} else if (!c->spool) {
		c->spool = malloc(1); /* an empty body */
	}
	dispatch(c);
}

/* ---- reading ---- */

static void conn_parse(struct conn *c)
{
	struct http_request *r = &c->req;
	if (!c->hdrs)
		c->hdrs = malloc(limits.header_count * sizeof(*c->hdrs));
	int rc = http_parse_request(c->in, c->in_len, &limits, c->hdrs, r, &c->scan);
	if (rc == 0) {
		conn_update(c);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	if (rc < 0) {
		if (rc != -400 || r->method.len == 0)
			memset(r, 0, sizeof(*r));
		static const char *const why[] = {[0] = "malformed request",
						  [1] = "request line too long",
						  [2] = "request head too large",
						  [3] = "unsupported coding",
						  [4] = "unsupported HTTP version"};
		int st = -rc;
		const char *w = st == 414   ? why[1]
				: st == 431 ? why[2]
				: st == 501 ? why[3]
				: st == 505 ? why[4]
					    : why[0];
		fail_request(c, st, w);
		return;
	}
	c->in_off = c->keep = r->head_len;
	c->info.body_fd = -1;
	c->info.has_body = 0;
	c->info.content_length = -1;
	c->expect_pending = r->expect_continue && r->version_minor >= 1;
	if (r->chunked) {
		http_chunked_init(&c->ch);
		c->state = CS_SPOOL;
		spool_feed(c);
		conn_update(c);
		return;
	}
	if (r->content_length > cf->limit_body) {
		fail_request(c, 413, "request body over limits.body");
		return;
	}
	if (r->content_length > 0) {
		c->body_left = r->content_length;
		c->info.has_body = 1;
		c->info.content_length = r->content_length;
	} else {
		c->expect_pending = 0;
	}
	dispatch(c);
}

/* The input buffer moved (realloc while a body streams): the parsed
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

static void rebase_request(struct conn *c, uintptr_t old, size_t len, char *now)
{
	rebase_one(&c->req, old, len, now);
	rebase_one(&c->rreq, old, len, now);
	for (unsigned i = 0; i < c->req.nheaders; i++) {
		rebase_slice(&c->hdrs[i].name, old, len, now);
		rebase_slice(&c->hdrs[i].value, old, len, now);
	}
}

/* Read from the client into the input buffer. Returns bytes read, 0 on
 * EOF, -1 on EAGAIN with nothing read, -2 on error. */
static ssize_t conn_fill(struct conn *c)
{
	size_t want_cap;
	if (c->state == CS_HEAD) {
		want_cap = c->in_len < IN_INIT ? IN_INIT : c->in_len * 2;
		if (want_cap > limits.header_size + 1)
			want_cap = limits.header_size + 1;
		if (want_cap < c->in_len + 1)
			want_cap = c->in_len + 1;
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
		char *in = malloc(want_cap);
		if (!in)
			abort();
		if (c->in_len)
			memcpy(in, c->in, c->in_len);
		if (c->state != CS_HEAD)
			rebase_request(c, (uintptr_t)c->in, c->in_cap, in);
		free(c->in);
		c->in = in;
		c->in_cap = want_cap;
	}
	if (c->in_len == c->in_cap)
		return -1;
	ssize_t n = read(c->ev.fd, c->in + c->in_len, c->in_cap - c->in_len);
	if (n > 0) {
		c->in_len += (size_t)n;
		c->progress_ms = loop_now_ms();
		return n;
	}
	if (n == 0)
		return 0;
	if (errno == EAGAIN || errno == EINTR)
		return -1;
	return -2;
}

static void client_gone(struct conn *c)
{
	if (c->state == CS_ACTIVE && !c->ended)
		log_info("%s:%s: client closed the connection during %.*s %s", c->raddr, c->rport,
			 (int)c->req.method.len, c->req.method.p, c->path ? c->path : "");
	conn_close(c);
}

static void conn_read(struct conn *c, uint32_t events)
{
	switch (c->state) {
	case CS_HEAD: {
		ssize_t n = conn_fill(c);
		if (n == 0 || n == -2) {
			conn_close(c); /* EOF between or inside a head: nothing to answer */
			return;
		}
		if (n < 0)
			return;
		if (!c->head_start_ms)
			c->head_start_ms = loop_now_ms();
		conn_parse(c);
		return;
	}
	case CS_SPOOL: {
		ssize_t n = conn_fill(c);
		if (n == 0 || n == -2) {
			client_gone(c);
			return;
		}
		if (n > 0)
			spool_feed(c);
		conn_update(c);
		return;
	}
	case CS_ACTIVE:
		if (c->body_left > 0 && !c->ended) {
			ssize_t n = conn_fill(c);
			if (n == 0 || n == -2) {
				client_gone(c);
				return;
			}
			if (n > 0 && c->ops && c->bst)
				c->ops->body_ready(c->bst);
			conn_update(c);
			return;
		}
		/* EPOLLRDHUP while the backend works: the client left */
		if (events & EPOLLRDHUP)
			client_gone(c);
		else
			conn_update(c);
		return;
	case CS_DONE: return;
	}
}

/* ---- events and timers ---- */

/* The client still has request body to send: more than is buffered. A
 * body that has all arrived but waits for its backend (a queue, a slow
 * application) owes nothing, so client_timeout does not run for it. */
static int body_owed(const struct conn *c)
{
	return !c->ended && c->body_left > (int64_t)(c->in_len - c->in_off);
}

static void on_timer(struct timer *t)
{
	struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, timer));
	switch (c->state) {
	case CS_HEAD:
		if (c->in_len > c->in_off) {
			fail_request(c, 408, "request head not received within header_timeout");
			conn_update(c);
		} else {
			conn_close(c); /* idle keep-alive connection */
		}
		return;
	case CS_SPOOL:
	case CS_ACTIVE:
		if (c->state == CS_ACTIVE && out_pending(c) == 0 && !body_owed(c)) {
			conn_update(c);
			return;
		}
		log_info("%s:%s: client stalled for client_timeout", c->raddr, c->rport);
		if (!c->head_sent && !out_pending(c)) {
			fail_request(c, 408, "request body not received within client_timeout");
			conn_update(c);
			return;
		}
		conn_close(c);
		return;
	case CS_DONE: conn_close(c); return;
	}
}

/* Set the epoll interest and the deadline for the current state. */
static void conn_update(struct conn *c)
{
	if (c->ev.fd < 0)
		return;
	uint32_t ev = EPOLLRDHUP;
	int reading = 0;
	switch (c->state) {
	case CS_HEAD: reading = c->in_len < limits.header_size + 1; break;
	case CS_SPOOL: reading = 1; break;
	case CS_ACTIVE: reading = body_owed(c) && (c->in_len - c->in_off) < (size_t)IN_BODY_ROOM; break;
	case CS_DONE:
		ev = 0; /* flushing: a half-closed client still gets its answer */
		break;
	}
	if (reading)
		ev |= EPOLLIN;
	if (out_pending(c))
		ev |= EPOLLOUT;
	loop_mod(&c->ev, ev);

	int64_t deadline = 0;
	if (c->state == CS_HEAD) {
		if (c->in_len > c->in_off || c->head_start_ms)
			deadline = (c->head_start_ms ? c->head_start_ms : loop_now_ms()) + cf->header_timeout_ms;
		else
			deadline = c->idle_since_ms + cf->keepalive_ms;
	} else if (out_pending(c) || reading || c->state == CS_SPOOL) {
		int64_t last = c->progress_ms > c->idle_since_ms ? c->progress_ms : c->idle_since_ms;
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
	if (events & EPOLLOUT) {
		if (conn_flush(c) < 0) {
			client_gone(c);
			return;
		}
		if (c->state == CS_DONE && !out_pending(c)) {
			schedule(c);
		} else if (c->backend_paused && out_pending(c) < OUT_LOW && c->ops && c->bst && !c->ended) {
			c->backend_paused = 0;
			c->ops->resume(c->bst);
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
