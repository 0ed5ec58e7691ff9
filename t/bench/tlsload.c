/* tlsload - TLS handshake load and idle TLS connections, for t/bench/tls.sh.
 *
 *   tlsload -p PORT -c CONNS -d SECONDS [-r] [-2] [-T] [-g PATH] [-n SNI]
 *   tlsload -p PORT -i N -g PATH -f READYFILE [-n SNI]
 *
 * Load mode: CONNS connections in parallel (one thread, epoll, non-blocking
 * OpenSSL) to 127.0.0.1:PORT for SECONDS; each one does a TLS handshake,
 * one "GET PATH" (HTTP/1.1, Connection: close) read to its end, then reads
 * until the server has closed (its close_notify or EOF: the server closes
 * first, so TIME_WAIT stays on its side), closes;
 * then its slot starts the next connection. Without -r every handshake is a
 * full one (no session is ever offered); with -r each slot offers the last
 * session it received (a TLS 1.3 ticket, or with -2 -T a TLS 1.2 session
 * ID), so a slot's first handshake is full and the next ones resume if the
 * server accepts the session, whichever server worker issued it. -2: TLS 1.2
 * only (default: 1.2 and 1.3, so 1.3); -T: the client does not ask for
 * tickets (TLS 1.2 resumption must come from the server's session cache).
 * The certificate is not verified (the client's cost is kept low: it shares
 * the CPUs with the server).
 *
 * Prints one line: mode=full conns=16 secs=3.00 handshakes=N per_s=X
 * reused=N full=N errors=N proto=TLSv1.3 cipher=... group=... first_error=...
 * (handshakes counts only connections that completed the request).
 *
 * Idle mode (-i N): opens N connections, at most 256 in progress at a
 * time, one request each, keeps them open and idle, writes
 * "opened=N ok=N errors=N" to READYFILE, then waits until stdin reaches EOF
 * (or SIGTERM) and exits without closing them cleanly.
 *
 * Build: cc -O2 -o tlsload tlsload.c -lssl -lcrypto */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum st { S_FREE, S_CONNECT, S_HANDSHAKE, S_WRITE, S_READ, S_DRAIN, S_IDLE };

struct slot {
	int fd;
	enum st st;
	SSL *ssl;
	SSL_SESSION *sess; /* last session received (-r) */
	char buf[16384];
	size_t len;
	size_t wrote;
	int reused;
};

static int port, conns = 16, secs = 3, resume, tls12, noticket, idle_n;
static const char *path = "/", *sni = "bench.test", *readyfile;
static char req[1024];
static size_t reqlen;
static int ep;
static SSL_CTX *ctx;
static long n_done, n_reused, n_full, n_err, n_ok_idle, n_started;
static char first_err[200], proto[32], cipher[64], group[64];
static int slot_idx;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void note_err(const char *what)
{
	n_err++;
	if (!first_err[0]) {
		unsigned long e = ERR_peek_error();
		snprintf(first_err, sizeof first_err, "%s%s%s", what, e ? ": " : "",
			 e ? ERR_reason_error_string(e) : "");
		for (char *p = first_err; *p; p++)
			if (*p == ' ')
				*p = '_';
	}
	ERR_clear_error();
}

static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct slot *s = SSL_get_ex_data(ssl, slot_idx);
	if (!resume || !s)
		return 0;
	if (s->sess)
		SSL_SESSION_free(s->sess);
	s->sess = sess; /* keep the reference */
	return 1;
}

static void slot_close(struct slot *s)
{
	if (s->ssl) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
		s->fd = -1;
	}
	s->st = S_FREE;
}

static void want(struct slot *s, unsigned ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = s};
	epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
}

static int slot_start(struct slot *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		note_err("socket");
		return -1;
	}
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	s->len = s->wrote = 0;
	s->reused = 0;
	n_started++;
	if (connect(s->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
		note_err("connect");
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	s->st = S_CONNECT;
	struct epoll_event e = {.events = EPOLLOUT, .data.ptr = s};
	epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &e);
	return 0;
}

/* end of a complete response in s->buf? */
static int response_done(struct slot *s)
{
	s->buf[s->len < sizeof s->buf ? s->len : sizeof s->buf - 1] = 0;
	char *h = strstr(s->buf, "\r\n\r\n");
	if (!h)
		return 0;
	size_t body = s->len - (size_t)(h + 4 - s->buf);
	char *cl = strcasestr(s->buf, "\r\ncontent-length:");
	if (cl && cl < h)
		return body >= strtoul(cl + 17, NULL, 10);
	if (s->len >= 5 && memcmp(s->buf + s->len - 5, "0\r\n\r\n", 5) == 0)
		return 1;
	return 0;
}

static int status_ok(struct slot *s)
{
	return strncmp(s->buf, "HTTP/1.1 200", 12) == 0;
}

/* drive s as far as it goes; returns 1 when the connection finished (ok or not) */
static int step(struct slot *s)
{
	int r;
	for (;;) {
		switch (s->st) {
		case S_CONNECT: {
			int err = 0;
			socklen_t l = sizeof err;
			getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err) {
				errno = err;
				note_err("connect");
				return 1;
			}
			s->ssl = SSL_new(ctx);
			SSL_set_fd(s->ssl, s->fd);
			SSL_set_tlsext_host_name(s->ssl, sni);
			SSL_set_ex_data(s->ssl, slot_idx, s);
			if (resume && s->sess)
				SSL_set_session(s->ssl, s->sess);
			s->st = S_HANDSHAKE;
			break;
		}
		case S_HANDSHAKE:
			r = SSL_connect(s->ssl);
			if (r != 1) {
				int e = SSL_get_error(s->ssl, r);
				if (e == SSL_ERROR_WANT_READ)
					return want(s, EPOLLIN), 0;
				if (e == SSL_ERROR_WANT_WRITE)
					return want(s, EPOLLOUT), 0;
				note_err("handshake");
				return 1;
			}
			s->reused = SSL_session_reused(s->ssl);
			if (!proto[0]) {
				snprintf(proto, sizeof proto, "%s", SSL_get_version(s->ssl));
				snprintf(cipher, sizeof cipher, "%s", SSL_get_cipher_name(s->ssl));
				int g = SSL_get_negotiated_group(s->ssl);
				const char *gn = g ? OBJ_nid2sn(g & ~TLSEXT_nid_unknown) : NULL;
				snprintf(group, sizeof group, "%s", gn ? gn : "-");
			}
			s->st = S_WRITE;
			break;
		case S_WRITE:
			r = SSL_write(s->ssl, req + s->wrote, (int)(reqlen - s->wrote));
			if (r <= 0) {
				int e = SSL_get_error(s->ssl, r);
				if (e == SSL_ERROR_WANT_READ)
					return want(s, EPOLLIN), 0;
				if (e == SSL_ERROR_WANT_WRITE)
					return want(s, EPOLLOUT), 0;
				note_err("write");
				return 1;
			}
			s->wrote += (size_t)r;
			if (s->wrote == reqlen)
				s->st = S_READ;
			break;
		case S_READ:
			if (s->len >= sizeof s->buf - 1)
				s->len = 0; /* a big body: keep only the end (for the chunked end) */
			r = SSL_read(s->ssl, s->buf + s->len, (int)(sizeof s->buf - 1 - s->len));
			if (r <= 0) {
				int e = SSL_get_error(s->ssl, r);
				if (e == SSL_ERROR_WANT_READ)
					return want(s, EPOLLIN), 0;
				if (e == SSL_ERROR_WANT_WRITE)
					return want(s, EPOLLOUT), 0;
				note_err(e == SSL_ERROR_ZERO_RETURN ? "closed_before_response" : "read");
				return 1;
			}
			s->len += (size_t)r;
			if (!response_done(s))
				break;
			if (!status_ok(s)) {
				char m[40];
				snprintf(m, sizeof m, "status:%.12s", s->buf);
				note_err(m);
				return 1;
			}
			if (idle_n) {
				n_ok_idle++;
				s->st = S_IDLE;
				want(s, EPOLLIN);
				return 0;
			}
			n_done++;
			if (s->reused)
				n_reused++;
			else
				n_full++;
			s->st = S_DRAIN;
			break;
		case S_DRAIN: {
			/* "Connection: close": the server closes first (close_notify,
			 * FIN), so the TIME_WAIT state stays on its side and the
			 * client's ports do not run out; we close after its end */
			char b[256];
			r = SSL_read(s->ssl, b, sizeof b);
			if (r > 0)
				break;
			if (SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_READ)
				return want(s, EPOLLIN), 0;
			ERR_clear_error();
			/* a clean end: without this SSL_free would mark the
			 * session not resumable */
			SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
			return 1;
		}
		case S_IDLE: {
			char b[256];
			r = SSL_read(s->ssl, b, sizeof b);
			if (r <= 0 && SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_READ)
				return 0;
			note_err("idle_connection_closed_by_server");
			return 1;
		}
		case S_FREE: return 1;
		}
	}
}

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	int o;
	while ((o = getopt(argc, argv, "p:c:d:r2Tg:n:i:f:")) != -1) {
		switch (o) {
		case 'p': port = atoi(optarg); break;
		case 'c': conns = atoi(optarg); break;
		case 'd': secs = atoi(optarg); break;
		case 'r': resume = 1; break;
		case '2': tls12 = 1; break;
		case 'T': noticket = 1; break;
		case 'g': path = optarg; break;
		case 'n': sni = optarg; break;
		case 'i': idle_n = atoi(optarg); break;
		case 'f': readyfile = optarg; break;
		default:
			fprintf(stderr, "usage: tlsload -p PORT [-c CONNS] [-d SECONDS] [-r] [-2] [-T] [-g PATH] "
					"[-n SNI] | -p PORT -i N -g PATH -f READYFILE\n");
			return 2;
		}
	}
	if (port <= 0 || conns <= 0 || (idle_n && !readyfile)) {
		fprintf(stderr, "tlsload: -p PORT required (and -f with -i)\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	reqlen = (size_t)snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, sni,
				  idle_n ? "" : "Connection: close\r\n");
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (tls12)
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	if (noticket)
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	slot_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ep = epoll_create1(EPOLL_CLOEXEC);

	int n = idle_n ? idle_n : conns;
	struct slot *slots = calloc((size_t)n, sizeof *slots);
	if (!slots)
		return 1;
	for (int i = 0; i < n; i++)
		slots[i].fd = -1;
	struct epoll_event evs[256];

	if (idle_n) {
		int next = 0, inprog = 0;
		double deadline = now() + 300;
		while ((next < n || inprog > 0) && now() < deadline) {
			while (next < n && inprog < 256) {
				if (slot_start(&slots[next++]) == 0)
					inprog++;
			}
			int k = epoll_wait(ep, evs, 256, 1000);
			for (int i = 0; i < k; i++) {
				struct slot *s = evs[i].data.ptr;
				enum st before = s->st;
				if (before == S_IDLE) {
					if (step(s)) {
						slot_close(s);
						n_ok_idle--;
					}
					continue;
				}
				int fin = step(s);
				if (fin)
					slot_close(s);
				if (fin || s->st == S_IDLE)
					inprog--;
			}
		}
		FILE *f = fopen(readyfile, "w");
		if (!f)
			return 1;
		fprintf(f, "opened=%d ok=%ld errors=%ld first_error=%s\n", n, n_ok_idle, n_err,
			first_err[0] ? first_err : "-");
		fclose(f);
		signal(SIGTERM, on_term);
		char c;
		while (!stop && read(0, &c, 1) > 0)
			;
		return 0;
	}

	double t0 = now(), end = t0 + secs;
	for (int i = 0; i < n; i++)
		slot_start(&slots[i]);
	while (now() < end) {
		int k = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < k; i++) {
			struct slot *s = evs[i].data.ptr;
			if (step(s)) {
				slot_close(s);
				if (now() < end)
					slot_start(s);
			}
		}
		for (int i = 0; i < n; i++) /* a slot whose socket()/connect() failed */
			if (slots[i].st == S_FREE && now() < end && slot_start(&slots[i]) < 0)
				usleep(1000);
	}
	double el = now() - t0;
	printf("mode=%s conns=%d secs=%.2f handshakes=%ld per_s=%.0f reused=%ld full=%ld errors=%ld "
	       "proto=%s cipher=%s group=%s first_error=%s\n",
	       resume ? "resume" : "full", conns, el, n_done, n_done / el, n_reused, n_full, n_err,
	       proto[0] ? proto : "-", cipher[0] ? cipher : "-", group[0] ? group : "-",
	       first_err[0] ? first_err : "-");
	return 0;
}
