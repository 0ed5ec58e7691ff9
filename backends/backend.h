/* The contract between the worker (manager/) and a backend type.
 *
 * The worker owns the client connection; a backend owns what it needs to
 * serve one request (a CGI process, a FastCGI connection). The worker calls
 * a backend through struct backend_ops; the backend calls back through the
 * exchange_* and loop_* functions declared here, which the worker
 * implements. So backends/ depends on this header and on protocol/ only. */
#ifndef CPM_BACKEND_H
#define CPM_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

/* The worker's services a backend may use (config, loop and timers, log,
 * allocation, the scoreboard): backends/ includes manager/ only through
 * this header. */
#include "../manager/config.h"
#include "../manager/log.h"
#include "../manager/loop.h"
#include "../manager/scoreboard.h"
#include "../manager/xalloc.h"
#include "../protocol/cgi_response.h"
#include "../protocol/http_parser.h"

/* ---- the request being served ---- */

struct exchange;

struct exchange_info {
	const struct http_request *req;
	const struct backend_conf *backend;
	const char *route_prefix; /* decoded, without a trailing '/' */
	const char *path;	  /* decoded request path (after redirects) */
	const char *rest;	  /* path after the route prefix, starts with '/' or is "" */
	const char *remote_addr, *remote_port;
	const char *server_name, *server_port;
	const char *pinned_server_name; /* the route's server_name, or NULL */
	int has_body;
	int64_t content_length; /* true body length; -1 while a chunked body is unknown */
	int body_fd;		/* a spooled body in a file, or -1 */
	size_t body_limit;
	int64_t request_start_ms;
	const char *remote_user; /* NULL unless the route authenticated the client */
	const char *auth_type;	 /* "Basic" then, else NULL */
	const char *request_uri; /* the client's target after an internal redirect, else NULL (req->target) */
	/* The route's file-name suffixes ("suffix"), or none: a script found
	 * along the path must end in one, so that /upload.txt/x.php on a
	 * ".php" route does not run upload.txt. */
	char *const *suffix;
	size_t nsuffix;
	const char *request_id; /* the request's id (HTTP_X_REQUEST_ID, log lines) */
	int https;		/* the client came over TLS */
};

/* Request body: a pointer to the bytes available now and their count. 0
 * with *eof set when the body is complete, 0 without it when more is
 * coming (the worker calls ops->body_ready then). */
size_t exchange_body_peek(struct exchange *x, const char **p, int *eof);
void exchange_body_consume(struct exchange *x, size_t n);

/* Response. head: returns 0, or -1 when the connection is gone. */
int exchange_response_head(struct exchange *x, const struct cgi_response *r);
/* Returns 1 when more output is welcome now, 0 when the client is slow
 * (the worker calls ops->resume later), -1 when the client is gone. */
int exchange_response_body(struct exchange *x, const char *p, size_t n);
/* The response has all its bytes (its Content-Length was reached, or it
 * has no body): the backend may end it now, even if its program runs on. */
int exchange_response_complete(struct exchange *x);
/* The backend is done with x: ok=1 a complete response, ok=0 the response
 * broke after its head (the client connection is closed). */
void exchange_response_end(struct exchange *x, int ok);
/* Answer with an error page (before any head) and end. */
void exchange_error(struct exchange *x, int status, const char *extra_header);
/* Re-dispatch the request as GET to a local path (CGI local redirect). */
void exchange_redirect(struct exchange *x, const char *path, size_t len);
/* Re-dispatch the request, with its method and body, to target (a local
 * path, percent-encoded, with its query) through the routes: nginx's
 * internal redirect (index, try_files). REQUEST_URI stays the client's. */
void exchange_internal_redirect(struct exchange *x, const char *target, size_t len);
/* Answer 301 to the request's decoded path with a '/' added (percent-
 * encoded again, so the client's spelling cannot make "//host/" of it),
 * query kept: a directory asked for without its trailing slash. */
void exchange_redirect_slash(struct exchange *x);
/* A whole response whose body is [off, off + len) of the regular file fd,
 * sent with sendfile(2), never read into memory. fd is the exchange's
 * from the call on (closed once sent, or when the request ends). The
 * response is then complete: call exchange_response_end. Returns 0, or -1
 * when the connection is gone. */
int exchange_response_file(struct exchange *x, const struct cgi_response *r, int fd, off_t off, int64_t len);
/* An error-log line that names the client and the request line; with x
 * NULL (the client side is finished) a plain one. */
void exchange_log(struct exchange *x, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Accounting (the access log's and the metrics' times): x waits from now
 * on for what its backend has run out of (a CGI slot under
 * max_concurrent, a pool process). */
void exchange_wait_begin(struct exchange *x);
/* The backend starts serving x now (a wait, if any, is over): pid is the
 * process that serves it (a CGI program, a pool process), 0 for an
 * external FastCGI server or a backend inside the worker. Called again
 * (the request retried on another process), the last pid counts and the
 * backend time runs from the first call. */
void exchange_upstream(struct exchange *x, pid_t pid);
/* The process just given to exchange_upstream is this worker's child:
 * the access log carries its resource usage, which comes when the worker
 * reaps it (exchange_child_reaped), after x has ended or before. */
void exchange_upstream_child(struct exchange *x);
/* A child of a backend was reaped with usage ru (wait4). */
void exchange_child_reaped(pid_t pid, const struct rusage *ru);
/* Replace the backend state the worker passes to ops (a request that
 * waited in a queue and has now started). */
void exchange_set_state(struct exchange *x, void *st);

/* ---- a backend type ---- */

struct backend_ops {
	/* Begin serving x. Returns a pointer to the backend's request state,
	 * or NULL after calling exchange_error or exchange_response_end. */
	void *(*start)(struct exchange *x, const struct exchange_info *info);
	void (*body_ready)(void *st); /* more request body is available */
	void (*resume)(void *st);     /* the client can take output again */
	void (*abort)(void *st);      /* the client is gone: free st soon */

	/* Duties the worker performs for the backend type as a whole, not
	 * for one request (lighttpd's handle_waitpid, handle_trigger). Any
	 * may be NULL. */
	/* The worker reaped child pid with wait status and resource usage
	 * ru (wait4): returns 1 if it was this backend's (the others are not
	 * asked), else 0. */
	int (*child_exited)(pid_t pid, int status, const struct rusage *ru);
	/* The worker stops: now=1 at once (kill what runs), now=0 gracefully
	 * (let it finish; running() says when it has). */
	void (*stop)(int now);
	/* Another worker waits for something this one holds idle (SIGURG):
	 * let go of it. */
	void (*release_idle)(void);
	/* Child processes of this backend running in this worker (for the
	 * scoreboard; a draining worker exits when there are none). */
	unsigned (*running)(void);
};

/* The scoreboard this worker reports into (the status backend reads it,
 * the fastcgi backend picks pool processes in it) and this worker's slot. */
struct scoreboard *loop_scoreboard(void);
struct worker_slot *loop_worker_slot(void);
/* b's entry in the scoreboard's backend table (and in the worker slot's
 * backend gauges). */
unsigned loop_backend_index(const struct backend_conf *b);

/* ---- the backend types: backends/backend.c ---- */

/* The ops of backend type t, or NULL for a type with none. */
const struct backend_ops *backend_ops_for(enum backend_type t);
/* The type-wide hooks above, called on every type that has them. */
void backends_child_exited(pid_t pid, int status, const struct rusage *ru);
void backends_stop(int now);
void backends_release_idle(void);
unsigned backends_running(void);

#endif
