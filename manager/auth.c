/* Basic-auth verification off the event loop (see auth.h). */

#include "auth.h"

#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "xalloc.h"

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct auth_job {
	struct auth_job *next;
	enum job_state state; /* under A.mu */
	int cancelled;	      /* the loop's */
	int known;	      /* the user exists (else: a dummy verification) */
	int ok;
	char *pass;
	char *hash; /* the stored hash: crypt's setting and the expected result */
	uint8_t mac[32];
	void (*done)(void *owner, int ok, int known_user);
	void *owner;
};

struct cache_slot {
	uint8_t mac[32];
	int64_t expires_ms; /* 0: empty */
};

static struct {
	int started, failed;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct auth_job *queue, **queue_tail; /* JOB_QUEUED, in order */
	struct auth_job *done;		      /* JOB_DONE, not yet seen by the loop */
	int jobs;			      /* queued + running + done-unseen (the loop's count) */
	struct ev ev;			      /* the eventfd */
	uint8_t key[32];
	struct cache_slot cache[AUTH_CACHE_SLOTS];
} A = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void job_free(struct auth_job *j)
{
	explicit_bzero(j->pass, strlen(j->pass));
	free(j->pass);
	free(j->hash);
	free(j);
}

static void *worker_thread(void *arg)
{
	(void)arg;
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	for (;;) {
		pthread_mutex_lock(&A.mu);
		while (!A.queue)
			pthread_cond_wait(&A.cv, &A.mu);
		struct auth_job *j = A.queue;
		A.queue = j->next;
		if (!A.queue)
			A.queue_tail = &A.queue;
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&A.mu);

		const char *r = crypt_rn(j->pass, j->hash, cd, (int)sizeof(*cd));
		size_t hl = strlen(j->hash);
		int ok = r && strlen(r) == hl && CRYPTO_memcmp(r, j->hash, hl) == 0;
		explicit_bzero(cd, sizeof(*cd));

		pthread_mutex_lock(&A.mu);
		j->ok = ok && j->known;
		j->state = JOB_DONE;
		j->next = A.done;
		A.done = j;
		pthread_mutex_unlock(&A.mu);
		uint64_t one = 1;
		while (write(A.ev.fd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

static struct cache_slot *cache_slot(const uint8_t *mac)
{
	return &A.cache[(mac[0] | (unsigned)mac[1] << 8) % AUTH_CACHE_SLOTS];
}

/* Results back on the loop. */
static void on_done(struct ev *ev, uint32_t events)
{
	(void)events;
	uint64_t n;
	while (read(ev->fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&A.mu);
	struct auth_job *list = A.done;
	A.done = NULL;
	pthread_mutex_unlock(&A.mu);
	/* oldest first */
	struct auth_job *rev = NULL;
	while (list) {
		struct auth_job *j = list;
		list = j->next;
		j->next = rev;
		rev = j;
	}
	while (rev) {
		struct auth_job *j = rev;
		rev = j->next;
		A.jobs--;
		if (j->ok) {
			struct cache_slot *s = cache_slot(j->mac);
			memcpy(s->mac, j->mac, sizeof(s->mac));
			s->expires_ms = loop_now_ms() + AUTH_CACHE_TTL_MS;
		}
		if (!j->cancelled)
			j->done(j->owner, j->ok, j->known);
		job_free(j);
	}
}

static int start(void)
{
	if (A.started)
		return A.failed ? -1 : 0;
	A.started = 1;
	A.failed = 1;
	A.queue_tail = &A.queue;
	if (RAND_bytes(A.key, sizeof(A.key)) != 1) {
		log_error("auth: no random key for the verification cache");
		return -1;
	}
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0) {
		log_error("auth: eventfd: %s", strerror(errno));
		return -1;
	}
	A.ev = (struct ev){.fd = fd, .handler = on_done};
	if (loop_add(&A.ev, EPOLLIN) < 0) {
		close(fd);
		return -1;
	}
	/* the threads take no signal: the worker's signalfd gets them all */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int started = 0;
	for (int i = 0; i < AUTH_THREADS; i++) {
		pthread_t t;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		int rc = pthread_create(&t, &at, worker_thread, NULL);
		pthread_attr_destroy(&at);
		if (rc == 0)
			started++;
		else
			log_error("auth: starting a verification thread: %s", strerror(rc));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!started)
		return -1;
	A.failed = 0;
	return 0;
}

static void mac_of(const char *user, const char *pass, const char *hash, uint8_t *out)
{
	size_t ul = strlen(user), pl = strlen(pass), hl = strlen(hash);
	size_t n = ul + pl + hl + 2;
	uint8_t *buf = xmalloc(n);
	memcpy(buf, user, ul + 1);
	memcpy(buf + ul + 1, pass, pl + 1);
	memcpy(buf + ul + pl + 2, hash, hl);
	unsigned outlen = 32;
	HMAC(EVP_sha256(), A.key, sizeof(A.key), buf, n, out, &outlen);
	explicit_bzero(buf, n);
	free(buf);
}

/* the entry an unknown user is verified against: fixed for a name,
 * unpredictable without the key */
static size_t stand_in(const char *user, size_t n)
{
	uint8_t out[32];
	unsigned outlen = sizeof(out);
	HMAC(EVP_sha256(), A.key, sizeof(A.key), (const uint8_t *)user, strlen(user), out, &outlen);
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | out[i];
	return (size_t)(v % n);
}

enum auth_result auth_check(const struct htpasswd *h, const char *user, const char *pass,
			    void (*done)(void *owner, int ok, int known_user), void *owner, struct auth_job **job)
{
	if (start() < 0)
		return AUTH_ERROR;
	const struct htpasswd_user *u = htpasswd_find(h, user);
	/* an unknown user is verified against a real entry's hash and fails
	 * whatever the result. Which entry depends on the name, under the
	 * secret key: always the first would make every entry of another
	 * scheme or cost answer in another time, telling who exists */
	const char *hash = u ? u->hash : h->users[stand_in(user, h->n)].hash;
	uint8_t mac[32];
	mac_of(user, pass, hash, mac);
	if (u) {
		const struct cache_slot *s = cache_slot(mac);
		if (s->expires_ms > loop_now_ms() && CRYPTO_memcmp(s->mac, mac, sizeof(mac)) == 0)
			return AUTH_OK;
	}
	if (A.jobs >= AUTH_QUEUE_MAX)
		return AUTH_BUSY;
	struct auth_job *j = xcalloc(1, sizeof(*j));
	j->known = u != NULL;
	j->pass = xstrdup(pass);
	j->hash = xstrdup(hash);
	memcpy(j->mac, mac, sizeof(mac));
	j->done = done;
	j->owner = owner;
	j->state = JOB_QUEUED;
	A.jobs++;
	pthread_mutex_lock(&A.mu);
	*A.queue_tail = j;
	A.queue_tail = &j->next;
	pthread_cond_signal(&A.cv);
	pthread_mutex_unlock(&A.mu);
	*job = j;
	return AUTH_PENDING;
}

void auth_cancel(struct auth_job *j)
{
	pthread_mutex_lock(&A.mu);
	j->cancelled = 1;
	if (j->state == JOB_QUEUED) {
		struct auth_job **pp = &A.queue;
		while (*pp != j)
			pp = &(*pp)->next;
		*pp = j->next;
		if (A.queue_tail == &j->next)
			A.queue_tail = pp;
		pthread_mutex_unlock(&A.mu);
		A.jobs--;
		job_free(j);
		return;
	}
	pthread_mutex_unlock(&A.mu);
}
