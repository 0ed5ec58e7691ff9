/* The fastcgi backend's two halves and what they share: fastcgi.c speaks
 * the FastCGI record stream of one request (BEGIN_REQUEST, PARAMS and
 * STDIN out; STDOUT, STDERR and END_REQUEST in) and is the backend's ops;
 * fastcgi_conn.c finds it a connection (pool processes picked in the
 * scoreboard, external servers' addresses in turn, kept connections,
 * waiting for a free process). Nothing outside backends/fastcgi*.c
 * includes this. */
#ifndef CPM_FASTCGI_H
#define CPM_FASTCGI_H

#include "../protocol/fcgi.h"
#include "backend.h"
#include "cgi_output.h"
#include "waitq.h"

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
	int64_t claimed_ms; /* since when this worker holds the process without a break */
	int reused;	    /* on a kept connection */
	unsigned rid;	    /* its FastCGI request id: another one on each request of a connection */
	int has_body;	    /* a request body of at least one byte */
	int wrote;	    /* a byte of it went out on this connection */
	int idempotent;	    /* RFC 9110 9.2.2: may be sent again */
	int retried;
	int got_bytes;	    /* the application said something */
	int killed;	    /* timed out: the master kills the process */
	int completed;	    /* END_REQUEST came: the process served it (kept connection or not) */
	int replay;	    /* out still holds every byte sent, from 0: it can be sent again */
	struct waiter wait; /* waiting for a pool process */
};

/* ---- fastcgi.c, for fastcgi_conn.c ---- */

/* The socket's handler and interest (connecting, writing, reading). */
void fastcgi_on_socket(struct ev *ev, uint32_t events);
void fastcgi_update_events(struct fcgi_req *r);
/* Write the request (one without a body) at once, before asking epoll;
 * failures are left to the socket's handler. */
void fastcgi_send_now(struct fcgi_req *r);
/* Arm r's request timeout (timeout_ms from now). */
void fastcgi_arm_timeout(struct fcgi_req *r);
/* r goes out on a kept connection whose last request had id prev. */
void fastcgi_take_kept(struct fcgi_req *r, unsigned prev);
/* r is finished: free it (its connection is not kept). */
void fastcgi_req_free(struct fcgi_req *r);

/* ---- fastcgi_conn.c, for fastcgi.c ---- */

/* Get r a connection and start it: a pool process (or a place in the
 * queue for one), a kept connection to its external server, or a new one
 * to the next address. Returns 0, or -1 when no address accepts one or
 * the pool is down (logged with its reason): the caller answers 502. */
int fastcgi_conn_open(struct fcgi_req *r);
/* r's connection failed before it was up (external servers): the next
 * address. Returns 0 or -1 when every address failed. */
int fastcgi_conn_next_addr(struct fcgi_req *r);
/* The kept connection r was given turned out closed: send r again on
 * another one. Returns 0, or -1 when none can be had. */
int fastcgi_conn_reopen(struct fcgi_req *r);
/* r is done with its connection. keep: it is clean (END_REQUEST after the
 * whole request was sent) and may carry another request. */
void fastcgi_conn_release(struct fcgi_req *r, int keep);
/* A kept connection the peer closed or sent something on unasked. */
int fastcgi_conn_kept_closed(int fd);
/* The address r talks to, for log lines. */
const char *fastcgi_conn_addr(const struct fcgi_req *r);
/* The request start the pool slot shows (0: waiting for cpm, not the
 * application). No-op for external servers. */
void fastcgi_conn_slot_started(struct fcgi_req *r, int64_t start_ms);
/* r timed out: its pool process is stuck and the master kills it. */
void fastcgi_conn_timed_out(struct fcgi_req *r);
/* 1 if r's pool is down (a crash loop), with the reason in why; else 0. */
int fastcgi_conn_pool_down(const struct fcgi_req *r, char *why, size_t len);
/* SIGURG: let go of idle connections others wait for. */
void fastcgi_conn_release_idle(void);

#endif
