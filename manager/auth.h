/* Verifying HTTP Basic credentials in a worker without stalling its event
 * loop.
 *
 * crypt(3) at a sane cost takes tens of milliseconds (bcrypt, yescrypt):
 * it runs in AUTH_THREADS threads of the worker, and the result comes
 * back to the loop through an eventfd; the request waits meanwhile. A
 * success is remembered for AUTH_CACHE_TTL_MS under an HMAC-SHA256 (with
 * a key drawn per process) of user, password and stored hash, so a wrong
 * password never matches an entry, and a changed hash (a new
 * configuration) matches none. An unknown user costs one crypt(3) of an
 * entry picked by its name under the key (the same one each time): with
 * entries of mixed schemes or costs, unknown names fall among them as the
 * users do, so timing does not tell who exists. */
#ifndef CPM_AUTH_H
#define CPM_AUTH_H

#include "htpasswd.h"

#define AUTH_THREADS	  2
#define AUTH_QUEUE_MAX	  64 /* verifications waiting or running, per worker */
#define AUTH_CACHE_SLOTS  1024
#define AUTH_CACHE_TTL_MS (5 * 60 * 1000)

enum auth_result {
	AUTH_OK,      /* a cached success: go on */
	AUTH_PENDING, /* done(owner, ok) is called later from the loop */
	AUTH_BUSY,    /* the queue is full */
	AUTH_ERROR,   /* the threads could not start (logged once) */
};

struct auth_job;

/* Check user:pass against h. With AUTH_PENDING, *job is the handle to
 * cancel (auth_cancel) if the owner goes away first; done is never
 * called for a cancelled job. */
enum auth_result auth_check(const struct htpasswd *h, const char *user, const char *pass,
			    void (*done)(void *owner, int ok, int known_user), void *owner, struct auth_job **job);

/* The owner is gone: the job's result will be dropped. */
void auth_cancel(struct auth_job *job);

#endif
