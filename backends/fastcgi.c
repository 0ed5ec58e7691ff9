/* The fastcgi backend, client side: one connection per request to an
 * external FastCGI server (php-fpm, spawn-fcgi, a libfcgi app), tried in
 * turn over the configured addresses. The request is BEGIN_REQUEST, the
 * CGI environment as PARAMS, the body as STDIN records with backpressure;
 * STDOUT goes through the CGI response parser and streams to the client,
 * STDERR to the error log, END_REQUEST ends it. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../manager/log.h"
#include "../manager/xalloc.h"
#include "../protocol/fcgi.h"
#include "backend.h"
#include "script.h"

#define HEAD_MAX    (32 * 1024)
#define HEAD_FIELDS 100
#define OUT_MAX	    (64 * 1024) /* STDIN buffered toward the app */
#define READ_CHUNK  (32 * 1024)
#define REQUEST_ID  1

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
	char *head;
	size_t head_len, head_scan;
	int head_done;
	int discard;
	char *redirect;
	int paused;
	struct timer timeout;
	char errline[1024];
	size_t errlen;
};

static size_t next_addr; /* round-robin start, per worker */

static void out_put(struct fcgi_req *r, const void *p, size_t n)
{
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

static void req_free(struct fcgi_req *r)
{
	timer_cancel(loop_timers(), &r->timeout);
	loop_del(&r->sock);
	free(r->out);
	free(r->head);
	free(r->redirect);
	loop_free_later(r);
}

/* The exchange is over (answered or gone): drop everything. */
static void finish(struct fcgi_req *r)
{
	req_free(r);
}

static void flush_errline(struct fcgi_req *r);

static void fail(struct fcgi_req *r, int status, const char *why)
{
	flush_errline(r);
	log_error("fastcgi %s (%s): %s", r->b->name, r->b->cgi.addrs[r->addr], why);
	struct exchange *x = r->x;
	int head = r->head_done && !r->discard;
	finish(r);
	if (head)
		exchange_response_end(x, 0);
	else
		exchange_error(x, status, NULL);
}

static void flush_errline(struct fcgi_req *r)
{
	if (!r->errlen)
		return;
	log_warn("fastcgi %s: %.*s", r->b->name, (int)r->errlen, r->errline);
	r->errlen = 0;
}

static void on_stderr(struct fcgi_req *r, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = (char)p[i];
		if (c == '\n') {
			flush_errline(r);
			continue;
		}
		if (r->errlen == sizeof(r->errline))
			flush_errline(r);
		r->errline[r->errlen++] = ((unsigned char)c < 0x20 && c != '\t') ? '?' : c;
	}
}

/* STDOUT bytes: the CGI header block first, then the body. Returns -1 when
 * r is gone. */
static int on_stdout(struct fcgi_req *r, const unsigned char *p, size_t n)
{
	if (r->head_done) {
		if (r->discard)
			return 0;
		int more = exchange_response_body(r->x, (const char *)p, n);
		if (more < 0) {
			struct exchange *x = r->x;
			finish(r);
			exchange_response_end(x, 0);
			return -1;
		}
		if (more == 0)
			r->paused = 1;
		return 0;
	}
	if (r->head_len + n > HEAD_MAX + 1)
		n = HEAD_MAX + 1 - r->head_len;
	if (!r->head)
		r->head = malloc(HEAD_MAX + 1);
	memcpy(r->head + r->head_len, p, n);
	r->head_len += n;
	struct http_header fields[HEAD_FIELDS];
	struct cgi_response resp;
	int rc = cgi_response_parse(r->head, r->head_len, HEAD_MAX, fields, HEAD_FIELDS, &resp, &r->head_scan);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		fail(r, 502, "malformed response header");
		return -1;
	}
	r->head_done = 1;
	if (cgi_response_resolve(&resp)) {
		r->discard = 1;
		r->redirect = strndup(resp.location.p, resp.location.len);
		return 0;
	}
	if (exchange_response_head(r->x, &resp) < 0) {
		struct exchange *x = r->x;
		finish(r);
		exchange_response_end(x, 0);
		return -1;
	}
	size_t rest = r->head_len - resp.head_len;
	char *body = r->head;
	r->head = NULL;
	int ret = rest ? on_stdout(r, (const unsigned char *)body + resp.head_len, rest) : 0;
	free(body);
	return ret;
}

static void on_end(struct fcgi_req *r, const struct fcgi_event *ev)
{
	flush_errline(r);
	if (ev->protocol_status == FCGI_CANT_MPX_CONN || ev->protocol_status == FCGI_OVERLOADED) {
		fail(r, 503, "the application is overloaded (END_REQUEST protocolStatus)");
		return;
	}
	if (ev->protocol_status != FCGI_REQUEST_COMPLETE) {
		fail(r, 502, "the application refused the request (END_REQUEST protocolStatus)");
		return;
	}
	if (!r->head_done) {
		fail(r, 502, r->head_len ? "output ended inside the header block" : "ended without a response");
		return;
	}
	struct exchange *x = r->x;
	char *redirect = r->redirect;
	r->redirect = NULL;
	finish(r);
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
				log_error("fastcgi %s: reading the spooled body: %s", r->b->name, strerror(errno));
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
			size_t hl = fcgi_encode_stdin_header(h, REQUEST_ID, 0, &pad);
			out_put(r, h, hl);
			r->stdin_done = 1;
			return;
		}
		if (n > FCGI_MAX_LENGTH)
			n = FCGI_MAX_LENGTH;
		unsigned char h[FCGI_HEADER_LEN];
		static const unsigned char zeros[8];
		size_t pad;
		size_t hl = fcgi_encode_stdin_header(h, REQUEST_ID, n, &pad);
		out_put(r, h, hl);
		out_put(r, p, n);
		out_put(r, zeros, pad);
		if (r->body_fd < 0)
			exchange_body_consume(r->x, n);
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

static void on_socket(struct ev *ev, uint32_t events)
{
	struct fcgi_req *r = (struct fcgi_req *)((char *)ev - offsetof(struct fcgi_req, sock));
	if (!r->connected) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(r->sock.fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			log_warn("fastcgi %s: connect %s: %s", r->b->name, r->b->cgi.addrs[r->addr], strerror(err));
			loop_del(&r->sock);
			if (start_connect(r) < 0)
				fail(r, 502, "no address accepts connections");
			return;
		}
		r->connected = 1;
	}
	if (events & EPOLLOUT || r->out_len > r->out_off) {
		feed_stdin(r);
		while (r->out_len > r->out_off) {
			ssize_t n = write(r->sock.fd, r->out + r->out_off, r->out_len - r->out_off);
			if (n > 0) {
				r->out_off += (size_t)n;
				feed_stdin(r);
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (r->head_done) {
				/* the app answered without reading all of its body */
				r->out_off = r->out_len;
				r->stdin_done = 1;
				break;
			}
			fail(r, 502, "connection lost while sending the request");
			return;
		}
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !r->paused) {
		unsigned char buf[READ_CHUNK];
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
			size_t i = 0;
			while (i < (size_t)n) {
				struct fcgi_event e;
				i += fcgi_decode(&r->dec, buf + i, (size_t)n - i, &e);
				if (e.type == FCGI_EV_STDOUT) {
					if (on_stdout(r, e.data, e.len) < 0)
						return;
				} else if (e.type == FCGI_EV_STDERR) {
					on_stderr(r, e.data, e.len);
				} else if (e.type == FCGI_EV_END) {
					on_end(r, &e);
					return;
				} else if (e.type == FCGI_EV_ERROR) {
					fail(r, 502, "malformed FastCGI record");
					return;
				}
			}
			if (r->paused)
				break; /* the rest waits in the socket */
		}
	}
	update_events(r);
}

static int sockaddr_for(const char *a, struct sockaddr_storage *ss, socklen_t *sl)
{
	memset(ss, 0, sizeof(*ss));
	if (strncmp(a, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		sun->sun_family = AF_UNIX;
		snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", a + 5);
		*sl = sizeof(*sun);
		return 0;
	}
	char host[256];
	const char *colon = strrchr(a, ':');
	size_t hl = (size_t)(colon - a);
	if (a[0] == '[') {
		a++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, a, hl);
	host[hl] = 0;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
	if (getaddrinfo(hl ? host : "127.0.0.1", colon + 1, &hints, &res))
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Connect to the next address not tried yet. Returns 0 (connecting or
 * connected) or -1 when every address failed. */
static int start_connect(struct fcgi_req *r)
{
	const struct cgi_conf *g = &r->b->cgi;
	while (r->tries < g->naddrs) {
		r->addr = (next_addr + r->tries) % g->naddrs;
		r->tries++;
		struct sockaddr_storage ss;
		socklen_t sl;
		if (sockaddr_for(g->addrs[r->addr], &ss, &sl) < 0) {
			log_warn("fastcgi %s: cannot resolve %s", r->b->name, g->addrs[r->addr]);
			continue;
		}
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		if (ss.ss_family != AF_UNIX) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		r->connected = 0;
		r->sock = (struct ev){.fd = fd, .handler = on_socket};
		if (connect(fd, (struct sockaddr *)&ss, sl) == 0) {
			r->connected = 1;
		} else if (errno != EINPROGRESS) {
			log_warn("fastcgi %s: connect %s: %s", r->b->name, g->addrs[r->addr], strerror(errno));
			close(fd);
			r->sock.fd = -1;
			continue;
		}
		loop_add(&r->sock, EPOLLOUT);
		return 0;
	}
	return -1;
}

static void on_timeout(struct timer *t)
{
	struct fcgi_req *r = (struct fcgi_req *)((char *)t - offsetof(struct fcgi_req, timeout));
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
		log_error("fastcgi %s: environment too large", b->name);
		exchange_error(x, 500, NULL);
		return NULL;
	}
	struct fcgi_req *r = calloc(1, sizeof(*r));
	r->x = x;
	r->b = b;
	r->sock.fd = -1;
	r->body_fd = info->body_fd; /* owned by the connection */
	fcgi_decoder_init(&r->dec, REQUEST_ID);
	size_t cap = 16 + fcgi_params_size(envp);
	r->out = malloc(cap + OUT_MAX);
	r->out_cap = cap + OUT_MAX;
	r->out_len = fcgi_encode_begin(r->out, REQUEST_ID, 0);
	r->out_len += fcgi_encode_params(r->out + r->out_len, cap - r->out_len, REQUEST_ID, envp);
	free(envp);
	free(arena);
	next_addr++;
	if (start_connect(r) < 0) {
		log_error("fastcgi %s: no address accepts connections", b->name);
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
	if (r->connected) {
		feed_stdin(r);
		update_events(r);
	}
}

static void fastcgi_resume(void *st)
{
	struct fcgi_req *r = st;
	r->paused = 0;
	update_events(r);
}

static void fastcgi_abort(void *st)
{
	struct fcgi_req *r = st;
	log_info("fastcgi %s: client gone, closing the application connection", r->b->name);
	/* no connection is reused, so closing it is the abort the
	 * application sees */
	req_free(r);
}

const struct backend_ops fastcgi_backend_ops = {
    .start = fastcgi_start,
    .body_ready = fastcgi_body_ready,
    .resume = fastcgi_resume,
    .abort = fastcgi_abort,
};
