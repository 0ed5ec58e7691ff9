/* Unit tests for manager/tls_shared.c: session resumption shared by the
 * workers. Real OpenSSL, in memory (BIO pairs) and across fork()ed
 * "worker" processes that accept on their own loopback listener, with a
 * throwaway certificate made here. The .c is included: the tests look at
 * the shared region (keys, cache entries, sequence words) directly. */
#include "../../manager/tls_shared.c"
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <openssl/err.h>
#include <openssl/x509.h>

static EVP_PKEY *pkey;
static X509 *cert;

static void make_cert(void)
{
	pkey = EVP_EC_gen("P-256");
	cert = X509_new();
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), -60);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, pkey);
	X509_NAME *n = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(cert, n);
	X509_sign(cert, pkey, EVP_sha256());
}

static SSL_CTX *server_ctx(int tickets, int64_t timeout_ms)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate(c, cert) != 1 || SSL_CTX_use_PrivateKey(c, pkey) != 1)
		CHECK(!"certificate");
	CHECK_EQ_INT(tls_shared_attach(c, tickets, timeout_ms), 0);
	return c;
}

static SSL_CTX *client_ctx(int version)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(c, version);
	SSL_CTX_set_max_proto_version(c, version);
	return c;
}

/* One connection in memory: full handshake, or a resumption of sess. The
 * server sends "ping" (a TLS 1.3 client gets its tickets before it), both
 * close cleanly. Returns the client's session (the last ticket) and sets
 * *reused as the server saw it (-1: the handshake failed). */
static SSL_SESSION *connect_mem(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *sess, int *reused)
{
	SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
	BIO *cb, *sb;
	BIO_new_bio_pair(&cb, 0, &sb, 0);
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	if (sess)
		SSL_set_session(c, sess);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	int cdone = 0, sdone = 0;
	for (int i = 0; i < 50 && !(cdone && sdone); i++) {
		int r;
		if (!cdone && (r = SSL_do_handshake(c)) == 1)
			cdone = 1;
		else if (!cdone && SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
			break;
		if (!sdone && (r = SSL_do_handshake(s)) == 1)
			sdone = 1;
		else if (!sdone && SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
			break;
	}
	SSL_SESSION *out = NULL;
	*reused = -1;
	char buf[8];
	if (cdone && sdone && SSL_write(s, "ping", 4) == 4 && SSL_read(c, buf, sizeof(buf)) == 4) {
		*reused = SSL_session_reused(s);
		CHECK_EQ_INT(SSL_session_reused(c), *reused);
		out = SSL_get1_session(c);
		SSL_shutdown(c);
		SSL_shutdown(s);
	}
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
	return out;
}

/* ---- "workers": forked processes that accept on their own listener ---- */

struct worker {
	pid_t pid;
	int port;
};

static void worker_serve(int lfd, SSL_CTX *ctx)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		SSL *s = SSL_new(ctx);
		SSL_set_fd(s, fd);
		if (SSL_accept(s) == 1) {
			char flag = SSL_session_reused(s) ? 'R' : 'F', buf[8];
			SSL_write(s, &flag, 1);
			while (SSL_read(s, buf, sizeof(buf)) > 0)
				;
			SSL_shutdown(s);
		}
		ERR_clear_error();
		SSL_free(s);
		close(fd);
	}
}

static struct worker worker_start(SSL_CTX *ctx)
{
	struct worker w = {-1, 0};
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 8) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
		CHECK(!"listener");
		return w;
	}
	w.port = ntohs(a.sin_port);
	w.pid = fork();
	if (w.pid == 0) {
		worker_serve(lfd, ctx);
		_exit(0);
	}
	close(lfd);
	return w;
}

static void worker_stop(struct worker w)
{
	if (w.pid > 0) {
		kill(w.pid, SIGKILL);
		waitpid(w.pid, NULL, 0);
	}
}

/* Like connect_mem, against a worker process; *reused from the flag byte
 * the worker sends. */
static SSL_SESSION *connect_worker(SSL_CTX *cctx, struct worker w, SSL_SESSION *sess, int *reused)
{
	*reused = -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons((uint16_t)w.port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		CHECK(!"connect");
		return NULL;
	}
	SSL *c = SSL_new(cctx);
	SSL_set_fd(c, fd);
	if (sess)
		SSL_set_session(c, sess);
	SSL_SESSION *out = NULL;
	char flag;
	if (SSL_connect(c) == 1 && SSL_read(c, &flag, 1) == 1) {
		*reused = flag == 'R';
		CHECK_EQ_INT(SSL_session_reused(c), *reused);
		out = SSL_get1_session(c);
		SSL_shutdown(c);
	}
	ERR_clear_error();
	SSL_free(c);
	close(fd);
	return out;
}

/* ---- looking at the shared region ---- */

static int cache_count(void)
{
	int n = 0;
	for (size_t i = 0; i < SETS * WAYS; i++)
		n += !(atomic_load(&S->cache[i].seq) & 1) && S->cache[i].idlen > 0;
	return n;
}

static void cache_clear(void)
{
	for (size_t i = 0; i < SETS * WAYS; i++)
		if (S->cache[i].idlen) {
			atomic_fetch_add(&S->cache[i].seq, 1);
			S->cache[i].idlen = 0;
			atomic_fetch_add(&S->cache[i].seq, 1);
		}
}

static struct entry *cache_find(SSL_SESSION *sess)
{
	unsigned int len;
	const unsigned char *id = SSL_SESSION_get_id(sess, &len);
	for (size_t i = 0; i < SETS * WAYS; i++)
		if (S->cache[i].idlen == len && memcmp(S->cache[i].id, id, len) == 0)
			return &S->cache[i];
	return NULL;
}

/* The key name a ticket was made with (its first 16 bytes), or "". */
static const unsigned char *ticket_name(SSL_SESSION *sess)
{
	const unsigned char *t;
	size_t len;
	SSL_SESSION_get0_ticket(sess, &t, &len);
	return len >= 16 ? t : (const unsigned char *)"";
}

static int is_current_key(const unsigned char *name)
{
	return memcmp(name, S->keys[atomic_load(&S->current)].name, 16) == 0;
}

/* The master's clock as the tests tell tick: only forward, far past any
 * key an earlier test made when a test asks for a fresh start. */
static int64_t clock_ms = 1000 * 1000 * 1000;

static int64_t clock_jump(void)
{
	return clock_ms += 1000 * ROTATE_MAX_MS;
}

/* ---- tests ---- */

/* A session made on one SSL_CTX resumes on another (another SNI context)
 * and in another process; what carried it is checked: TLS 1.2 and 1.3
 * tickets resume with the cache emptied, sessions without tickets come
 * from the shared cache (TLS 1.3 stateful tickets included). */
static void test_resume(int version, int tickets)
{
	fprintf(stderr, "resume: %s, tickets %s\n", version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2",
		tickets ? "on" : "off");
	SSL_CTX *a = server_ctx(tickets, 60000), *b = server_ctx(tickets, 60000), *cl = client_ctx(version);
	int reused;
	cache_clear();
	tls_shared_tick(clock_jump()); /* a fresh key, rotated only below */
	SSL_SESSION *sess = connect_mem(cl, a, NULL, &reused);
	CHECK_EQ_INT(reused, 0);
	if (!CHECK(sess))
		return;
	CHECK_EQ_INT(SSL_SESSION_has_ticket(sess), version == TLS1_3_VERSION || tickets);
	if (tickets) {
		CHECK(is_current_key(ticket_name(sess)));
		/* nothing in the cache: the ticket carries the session */
		CHECK_EQ_INT(cache_count(), 0);
	} else {
		/* TLS 1.3 sends two stateful tickets, each a cached session */
		CHECK_EQ_INT(cache_count(), version == TLS1_3_VERSION ? 2 : 1);
	}
	SSL_SESSION *next = connect_mem(cl, b, sess, &reused);
	CHECK_EQ_INT(reused, 1);
	/* and again (OpenSSL 3.0 keeps TLS 1.3 stateful tickets reusable
	 * without early data), now one more cached: the new ticket */
	CHECK_EQ_INT(cache_count(), tickets ? 0 : version == TLS1_3_VERSION ? 3 : 1);
	SSL_SESSION *third = connect_mem(cl, a, sess, &reused);
	CHECK_EQ_INT(reused, 1);
	SSL_SESSION_free(third);
	SSL_SESSION_free(next);
	SSL_SESSION_free(sess);

	/* two worker processes forked after the region was made: a session
	 * from worker A resumes on worker B and back */
	cache_clear();
	struct worker wa = worker_start(a), wb = worker_start(b);
	sess = connect_worker(cl, wa, NULL, &reused);
	CHECK_EQ_INT(reused, 0);
	CHECK_EQ_INT(cache_count() > 0, !tickets);
	next = connect_worker(cl, wb, sess, &reused);
	CHECK_EQ_INT(reused, 1);
	SSL_SESSION *back = connect_worker(cl, wa, next, &reused);
	CHECK_EQ_INT(reused, 1);
	SSL_SESSION_free(back);
	SSL_SESSION_free(next);
	if (tickets) {
		/* the master rotates after the fork: the workers encrypt with
		 * the new key, and the old ticket still resumes (renewed) */
		unsigned char old[16];
		memcpy(old, S->keys[atomic_load(&S->current)].name, 16);
		CHECK(memcmp(ticket_name(sess), old, 16) == 0);
		tls_shared_tick(clock_ms += rotate_period(max_timeout_ms));
		CHECK(!is_current_key(old));
		next = connect_worker(cl, wb, sess, &reused);
		CHECK_EQ_INT(reused, 1);
		CHECK(next && is_current_key(ticket_name(next)));
		SSL_SESSION_free(next);
		next = connect_worker(cl, wa, NULL, &reused);
		CHECK_EQ_INT(reused, 0);
		CHECK(next && is_current_key(ticket_name(next)));
		SSL_SESSION_free(next);
	}
	SSL_SESSION_free(sess);
	worker_stop(wa);
	worker_stop(wb);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	SSL_CTX_free(cl);
}

/* A ticket resumes (and is renewed with the new key) after one rotation;
 * once its key has been out of use for session_timeout it is a full
 * handshake. Times are the master's (tick's now), far past any earlier. */
static void test_rotation(int version)
{
	max_timeout_ms = 0;
	SSL_CTX *sctx = server_ctx(1, 10000), *cl = client_ctx(version);
	int64_t base = clock_jump();
	CHECK_EQ_INT(tls_shared_tick(base), 10000);
	int reused;
	SSL_SESSION *sess = connect_mem(cl, sctx, NULL, &reused);
	CHECK_EQ_INT(reused, 0);
	if (!CHECK(sess))
		return;
	unsigned char k1[16];
	memcpy(k1, ticket_name(sess), 16);
	CHECK(is_current_key(k1));
	CHECK_EQ_INT(tls_shared_tick(base + 5000), 5000);
	CHECK_EQ_INT(tls_shared_tick(base + 10000), 10000); /* rotates: k1 valid until base + 20000 */
	CHECK(!is_current_key(k1));
	SSL_SESSION *renewed = connect_mem(cl, sctx, sess, &reused);
	CHECK_EQ_INT(reused, 1);
	CHECK(renewed && is_current_key(ticket_name(renewed)));
	CHECK_EQ_INT(tls_shared_tick(base + 19999), 1);
	SSL_SESSION *s2 = connect_mem(cl, sctx, sess, &reused);
	CHECK_EQ_INT(reused, 1);
	SSL_SESSION_free(s2);
	tls_shared_tick(clock_ms = base + 20000); /* k1 is wiped */
	s2 = connect_mem(cl, sctx, sess, &reused);
	CHECK_EQ_INT(reused, 0);
	SSL_SESSION_free(s2);
	s2 = connect_mem(cl, sctx, renewed, &reused); /* its key is still valid */
	CHECK_EQ_INT(reused, 1);
	SSL_SESSION_free(s2);
	SSL_SESSION_free(renewed);
	SSL_SESSION_free(sess);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cl);
}

static int key_present(const unsigned char *name)
{
	for (int i = 0; i < KEYS; i++)
		if (S->keys[i].valid && memcmp(S->keys[i].name, name, 16) == 0)
			return 1;
	return 0;
}

/* Over many rotations (late ticks included) the ring never drops a key
 * that stopped encrypting less than session_timeout ago, for a short and
 * a long timeout (R stretched so KEYS still suffice). */
static void test_ring(int64_t timeout)
{
	max_timeout_ms = timeout;
	int64_t period = rotate_period(timeout);
	CHECK(period <= ROTATE_MAX_MS || period * (KEYS - 2) >= timeout);
	struct {
		unsigned char name[16];
		int64_t retired;
	} seen[300];
	int n = 0, bad = 0;
	int64_t now = clock_jump() + timeout;
	tls_shared_tick(now);
	memcpy(seen[n].name, S->keys[atomic_load(&S->current)].name, 16);
	seen[n++].retired = 0;
	while (n < 300) {
		now += period + (n % 3 == 0 ? period / 3 : 0); /* some ticks late */
		int wait = tls_shared_tick(now);
		bad += wait <= 0 || wait > period;
		seen[n - 1].retired = now;
		bad += !is_current_key(seen[n - 1].name) ? 0 : 1;
		memcpy(seen[n].name, S->keys[atomic_load(&S->current)].name, 16);
		seen[n++].retired = 0;
		for (int i = 0; i < n - 1; i++)
			if (now - seen[i].retired < timeout && !key_present(seen[i].name))
				bad++;
		int valid = 0;
		for (int i = 0; i < KEYS; i++)
			valid += S->keys[i].valid;
		bad += valid > KEYS - 1;
	}
	clock_ms = now;
	CHECK_EQ_INT(bad, 0);
	/* and one that expired is gone */
	CHECK(!key_present(seen[0].name));
}

/* Entries: an odd sequence word (a write in progress, or a writer killed
 * mid-write) is a miss; a session too big is not cached; a set whose ways
 * are all being written skips the store. */
static void test_cache_entries(void)
{
	SSL_CTX *sctx = server_ctx(0, 60000), *cl = client_ctx(TLS1_2_VERSION);
	int reused;
	cache_clear();
	SSL_SESSION *sess = connect_mem(cl, sctx, NULL, &reused);
	struct entry *e = sess ? cache_find(sess) : NULL;
	if (!CHECK(e))
		return;
	atomic_fetch_add(&e->seq, 1); /* torn */
	SSL_SESSION *s2 = connect_mem(cl, sctx, sess, &reused);
	CHECK_EQ_INT(reused, 0);
	SSL_SESSION_free(s2);
	atomic_fetch_add(&e->seq, 1);
	s2 = connect_mem(cl, sctx, sess, &reused);
	CHECK_EQ_INT(reused, 1);
	SSL_SESSION_free(s2);
	SSL_SESSION_free(sess);

	unsigned char id[32], der[sizeof(e->der) + 1], out[sizeof(e->der)];
	memset(id, 7, sizeof(id));
	memset(der, 'd', sizeof(der));
	int64_t now = time(NULL);
	CHECK_EQ_INT(cache_put(id, sizeof(id), der, sizeof(der), now + 60, now), -1);
	CHECK_EQ_INT(cache_get(id, sizeof(id), out, now), -1);
	CHECK_EQ_INT(cache_put(id, sizeof(id), der, sizeof(e->der), now + 60, now), 0);
	CHECK_EQ_INT(cache_get(id, sizeof(id), out, now), (int)sizeof(e->der));
	CHECK_EQ_INT(cache_get(id, sizeof(id), out, now + 60), -1); /* expired */

	/* a writer SIGKILLed mid-write: its entry is lost, nothing else */
	struct entry *set = cache_set(id, sizeof(id));
	int way = -1;
	for (int w = 0; w < WAYS; w++)
		if (set[w].idlen)
			way = w;
	pid_t pid = fork();
	if (pid == 0) {
		struct entry *x = &set[way];
		seq_begin(&x->seq, atomic_load(&x->seq));
		memset(x->der, 'X', 100);
		raise(SIGKILL);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK(atomic_load(&set[way].seq) & 1);
	CHECK_EQ_INT(cache_get(id, sizeof(id), out, now), -1);
	CHECK_EQ_INT(cache_put(id, sizeof(id), der, 100, now + 60, now), 0); /* another way */
	CHECK_EQ_INT(cache_get(id, sizeof(id), out, now), 100);
	CHECK(memcmp(out, der, 100) == 0);
	cache_del(id, sizeof(id));
	CHECK_EQ_INT(cache_get(id, sizeof(id), out, now), -1);
	/* every way being written: the store is skipped, the reader misses */
	for (int w = 0; w < WAYS; w++)
		if (!(atomic_load(&set[w].seq) & 1))
			atomic_fetch_add(&set[w].seq, 1);
	CHECK_EQ_INT(cache_put(id, sizeof(id), der, 100, now + 60, now), -1);
	CHECK_EQ_INT(cache_get(id, sizeof(id), out, now), -1);
	for (int w = 0; w < WAYS; w++)
		atomic_fetch_add(&set[w].seq, 1);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cl);
}

/* A writer process rewrites one entry as fast as it can, alternating two
 * contents, while this process reads it: every hit is one content whole
 * (a copy that overlapped a write is a miss, never a mix). */
static void test_concurrent_readers(void)
{
	unsigned char id[32], a[sizeof(S->cache[0].der)], b[sizeof(a)], out[sizeof(a)];
	memset(id, 9, sizeof(id));
	memset(a, 'A', sizeof(a));
	memset(b, 'B', sizeof(b));
	int64_t now = time(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		for (unsigned long i = 0;; i++)
			cache_put(id, sizeof(id), i & 1 ? b : a, sizeof(a), now + 60, now);
	}
	long hits = 0, misses = 0, torn = 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 1000; i++) {
			int n = cache_get(id, sizeof(id), out, now);
			if (n < 0) {
				misses++;
				continue;
			}
			hits++;
			torn +=
			    n != (int)sizeof(a) || (memcmp(out, a, sizeof(a)) != 0 && memcmp(out, b, sizeof(b)) != 0);
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 300);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fprintf(stderr, "concurrent: %ld hits, %ld misses, %ld torn\n", hits, misses, torn);
	CHECK(hits > 0);
	CHECK_EQ_INT(torn, 0);
	cache_del(id, sizeof(id));
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	make_cert();
	/* no TLS context yet: no shared memory, nothing to rotate (a cpm
	 * without TLS never starts OpenSSL's random generator) */
	CHECK_EQ_INT(tls_shared_tick(12345), 3600 * 1000);
	/* the first context makes it; the tests below resume at once */
	test_resume(TLS1_2_VERSION, 1);
	test_resume(TLS1_2_VERSION, 0);
	test_resume(TLS1_3_VERSION, 1);
	test_resume(TLS1_3_VERSION, 0);
	test_rotation(TLS1_2_VERSION);
	test_rotation(TLS1_3_VERSION);
	test_ring(10 * 1000);
	test_ring(5 * ROTATE_MAX_MS);
	test_ring(30 * 24 * ROTATE_MAX_MS);
	test_cache_entries();
	test_concurrent_readers();
	X509_free(cert);
	EVP_PKEY_free(pkey);
	return unit_done();
}
