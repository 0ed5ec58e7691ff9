/* The fastcgi backend, client side, one request's record stream: the
 * request is BEGIN_REQUEST, the CGI environment as PARAMS, the body as
 * STDIN records with backpressure; STDOUT goes through the CGI output
 * reader and streams to the client, STDERR to the error log, END_REQUEST
 * ends it. Which process or server it talks to, over which connection, is
 * fastcgi_conn.c's. */
#include "fastcgi.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "script.h"

#define OUT_MAX	   (64 * 1024) /* STDIN buffered toward the app */
#define REQUEST_ID 1
#define RETRY_MAX  4		/* kept connections found dead, one after another */
#define REPLAY_MAX (128 * 1024) /* request bytes kept to send again on a new connection */

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
	fastcgi_conn_release(r, keep);
	loop_del(&r->sock);
	free(r->out);
	cgi_output_free(&r->output);
	loop_free_later(r);
}

void fastcgi_req_free(struct fcgi_req *r)
{
	req_free_keep(r, 0);
}

/* The exchange is over (answered or gone): drop everything. */
static void finish(struct fcgi_req *r)
{
	fastcgi_req_free(r);
}

static int resend(struct fcgi_req *r);

static void fail(struct fcgi_req *r, int status, const char *why)
{
	if (status == 502 && resend(r))
		return;
	log_lines_flush(&r->errlog);
	char down[160];
	if (fastcgi_conn_pool_down(r, down, sizeof(down))) /* the process died at start */
		exchange_log(r->x, LOG_ERROR, "fastcgi %s (%s): %s; pool %s: %s", r->b->name, fastcgi_conn_addr(r), why,
			     r->b->name, down);
	else
		exchange_log(r->x, LOG_ERROR, "fastcgi %s (%s): %s", r->b->name, fastcgi_conn_addr(r), why);
	struct exchange *x = r->x;
	int head = r->output.head_done && !r->output.redirect;
	finish(r);
	if (head)
		exchange_response_end(x, 0);
	else
		exchange_error(x, status, NULL);
}

static void on_timeout(struct timer *t);

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
	if (r->held_left > 0)
		fastcgi_conn_slot_started(r, 0);
}

static void unhold(struct fcgi_req *r)
{
	r->paused = 0;
	if (r->held_left <= 0)
		return;
	timer_resume(loop_timers(), &r->timeout, loop_now_ms(), r->held_left);
	fastcgi_conn_slot_started(r, loop_now_ms() + r->held_left - r->b->cgi.timeout_ms);
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
	r->completed = 1;
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

void fastcgi_update_events(struct fcgi_req *r)
{
	uint32_t ev = 0;
	if (!r->connected || r->out_len > r->out_off)
		ev |= EPOLLOUT;
	if (r->connected && !r->paused)
		ev |= EPOLLIN;
	loop_mod(&r->sock, ev);
}

/* The request goes out as soon as it has a connection, without a turn of
 * the loop to hear that the socket is writable (a fresh or kept
 * connection's buffer is empty). Only a request without a body, whose
 * records are all made here (a body comes from the client's connection,
 * fed as the handler runs); and nothing fails here: a write that does not
 * go through leaves the bytes for the handler, which meets the same error
 * (EPIPE, a reset) on EPOLLOUT and does what it does there (send again,
 * or 502) outside the backend's start. */
void fastcgi_send_now(struct fcgi_req *r)
{
	if (!r->connected || r->has_body || r->sock.fd < 0)
		return;
	if (r->reused && !r->wrote && fastcgi_conn_kept_closed(r->sock.fd))
		return;
	feed_stdin(r);
	while (r->out_len > r->out_off) {
		ssize_t n = write(r->sock.fd, r->out + r->out_off, r->out_len - r->out_off);
		if (n <= 0)
			return;
		r->wrote = 1;
		r->out_off += (size_t)n;
	}
}

/* r goes out on a kept connection whose last request had id prev: it takes
 * the next id, so that anything the application still sends for an
 * earlier request (records after END_REQUEST) can never pass for this
 * one's answer; the decoder refuses other ids. r has sent nothing yet. */
void fastcgi_take_kept(struct fcgi_req *r, unsigned prev)
{
	r->reused = 1;
	r->rid = prev % 0xffff + 1;
	fcgi_set_request_id(r->out, r->out_len, r->rid);
	fcgi_decoder_init(&r->dec, r->rid);
}

void fastcgi_on_socket(struct ev *ev, uint32_t events)
{
	struct fcgi_req *r = (struct fcgi_req *)((char *)ev - offsetof(struct fcgi_req, sock));
	if (!r->connected) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(r->sock.fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			exchange_log(r->x, LOG_WARN, "fastcgi %s: connect %s: %s", r->b->name, fastcgi_conn_addr(r),
				     strerror(err));
			if (r->pool >= 0) {
				fail(r, 502, "cannot connect to the pool process");
				return;
			}
			if (fastcgi_conn_next_addr(r) < 0)
				fail(r, 502, "no address accepts connections");
			return;
		}
		r->connected = 1;
	}
	if (r->reused && !r->wrote && fastcgi_conn_kept_closed(r->sock.fd)) {
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
	fastcgi_update_events(r);
}

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
static int resend(struct fcgi_req *r)
{
	if (!r->reused || r->retried >= RETRY_MAX || !r->replay || r->got_bytes || r->output.head_done)
		return 0;
	if (r->wrote && !r->idempotent)
		return 0;
	r->retried++;
	r->wrote = 0;
	timer_cancel(loop_timers(), &r->timeout);
	r->out_off = 0;
	r->cut = 0;
	fcgi_decoder_init(&r->dec, r->rid);
	exchange_log(r->x, LOG_DEBUG, "fastcgi %s: a kept connection was closed; sending the request again",
		     r->b->name);
	return fastcgi_conn_reopen(r) == 0; /* else the caller answers 502 */
}

static void on_timeout(struct timer *t)
{
	struct fcgi_req *r = (struct fcgi_req *)((char *)t - offsetof(struct fcgi_req, timeout));
	fastcgi_conn_timed_out(r);
	fail(r, 504, "timeout");
}

void fastcgi_arm_timeout(struct fcgi_req *r)
{
	r->timeout.fire = on_timeout;
	timer_arm(loop_timers(), &r->timeout, loop_now_ms() + r->b->cgi.timeout_ms);
}

static void *fastcgi_start(struct exchange *x, const struct exchange_info *info)
{
	const struct backend_conf *b = info->backend;
	const struct cgi_conf *g = &b->cgi;
	struct script s;
	struct script_conf sc = {g->root, g->index, g->nindex, 0};
	int st = g->script ? script_fixed(g->script, info, &s) : script_find(&sc, info, &s);
	if (st) {
		exchange_error(x, st, NULL);
		return NULL;
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
	snprintf(r->errlog.prefix, sizeof(r->errlog.prefix), "fastcgi %s id=%s", b->name,
		 info->request_id ? info->request_id : "-");
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
	if (g->pool && r->pool < 0) {
		exchange_log(x, LOG_ERROR, "fastcgi %s: the pool did not start (see the master's log)", b->name);
		fastcgi_req_free(r);
		exchange_error(x, 503, NULL);
		return NULL;
	}
	r->replay = g->pool != NULL || g->keep_conn > 0;
	if (fastcgi_conn_open(r) < 0) {
		if (r->pool < 0) /* a pool that is down: logged with its reason */
			exchange_log(x, LOG_ERROR, "fastcgi %s: no address accepts connections", b->name);
		fastcgi_req_free(r);
		exchange_error(x, 502, NULL);
		return NULL;
	}
	return r;
}

static void fastcgi_body_ready(void *st)
{
	struct fcgi_req *r = st;
	if (r->connected && !waitq_waiting(&r->wait)) {
		feed_stdin(r);
		fastcgi_update_events(r);
	}
}

static void fastcgi_resume(void *st)
{
	struct fcgi_req *r = st;
	unhold(r);
	if (!waitq_waiting(&r->wait) && r->sock.fd >= 0)
		fastcgi_update_events(r);
}

static void fastcgi_abort(void *st)
{
	struct fcgi_req *r = st;
	if (waitq_waiting(&r->wait)) {
		fastcgi_req_free(r);
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
	fastcgi_req_free(r);
}

const struct backend_ops fastcgi_backend_ops = {
    .start = fastcgi_start,
    .body_ready = fastcgi_body_ready,
    .resume = fastcgi_resume,
    .abort = fastcgi_abort,
    .release_idle = fastcgi_conn_release_idle,
};
