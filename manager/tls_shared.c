/* Session resumption shared by every worker: session ticket keys and a
 * session-ID cache in one shared anonymous mapping that the master makes
 * before the first fork (never written to disk: MADV_DONTDUMP, the key
 * page mlocked when the limit allows).
 *
 * Ticket keys: a ring of KEYS keys. The master (tls_shared_tick) makes a
 * new "current" key every R = min(session_timeout, 1 h) (longer when the
 * ring could not otherwise hold every key still valid); a key that stopped
 * encrypting stays valid for decryption for session_timeout more, then is
 * wiped. A ticket made with an older valid key is accepted and renewed.
 *
 * Session cache: SETS sets of WAYS fixed-size entries (session id, expiry,
 * DER of the SSL_SESSION); a session whose DER does not fit is not cached.
 * No locks: each entry and each key has a sequence word, odd while it is
 * written. A writer takes an entry by CAS even -> odd (or skips storing),
 * writes, then publishes even. A reader copies and re-checks the sequence;
 * an odd or changed one is a miss. A worker killed mid-write loses that
 * entry (it stays odd, so it is never read; the set keeps its other ways).
 *
 * Everything here is a harmless no-op or miss when tls_shared_init was
 * not called (cpm -t, unit tests): no ticket is issued, nothing cached. */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "log.h"

#define KEYS	      64
#define WAYS	      4
#define SETS	      4096 /* SETS * WAYS entries of ENTRY_SIZE bytes: 8 MiB */
#define ENTRY_SIZE    512
#define ID_MAX	      32
#define ROTATE_MAX_MS (3600 * 1000LL)
#define SID_CTX	      "cpm"

struct tkey {
	_Atomic uint32_t seq;
	uint32_t valid;
	unsigned char name[16], hmac[32], aes[32];
};

struct entry {
	_Atomic uint32_t seq;
	uint8_t idlen;
	uint8_t pad_;
	uint16_t derlen;
	int64_t expires; /* wall-clock seconds, from the session */
	unsigned char id[ID_MAX];
	unsigned char der[ENTRY_SIZE - 48];
};

struct shared {
	struct tkey keys[KEYS];
	_Atomic uint32_t current; /* index of the encrypting key */
	uint32_t salt;
	struct entry cache[SETS * WAYS];
};

_Static_assert(sizeof(struct entry) == ENTRY_SIZE, "cache entry size");

static struct shared *S; /* NULL until tls_shared_init */
static size_t S_size;

/* master only: the largest session timeout attached, and when each key
 * stops encrypting (0: at the first tick) and decrypting */
static int64_t max_timeout_ms;
static int64_t retire_ms[KEYS], expire_ms[KEYS];

/* ---- sequence words ---- */

/* Copy an object guarded by seq; 0 if it was not being written. */
static int seq_read(_Atomic uint32_t *seq, void *dst, const void *src, size_t n)
{
	uint32_t s1 = atomic_load_explicit(seq, memory_order_acquire);
	if (s1 & 1)
		return -1;
	memcpy(dst, src, n);
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(seq, memory_order_relaxed) == s1 ? 0 : -1;
}

/* Take the object for writing if its sequence is still `seen` (even). */
static int seq_begin(_Atomic uint32_t *seq, uint32_t seen)
{
	if (seen & 1)
		return -1;
	if (!atomic_compare_exchange_strong_explicit(seq, &seen, seen + 1, memory_order_acquire, memory_order_relaxed))
		return -1;
	atomic_thread_fence(memory_order_release);
	return 0;
}

static void seq_end(_Atomic uint32_t *seq)
{
	atomic_fetch_add_explicit(seq, 1, memory_order_release);
}

/* ---- ticket keys ---- */

static int key_make(struct tkey *k)
{
	struct tkey n = {.valid = 1};
	if (RAND_priv_bytes(n.name, sizeof(n.name)) != 1 || RAND_priv_bytes(n.hmac, sizeof(n.hmac)) != 1 ||
	    RAND_priv_bytes(n.aes, sizeof(n.aes)) != 1) {
		OPENSSL_cleanse(&n, sizeof(n));
		return -1;
	}
	uint32_t s = atomic_load_explicit(&k->seq, memory_order_relaxed);
	if (seq_begin(&k->seq, s) < 0)
		return -1;
	memcpy((char *)k + sizeof(k->seq), (char *)&n + sizeof(n.seq), sizeof(n) - sizeof(n.seq));
	seq_end(&k->seq);
	OPENSSL_cleanse(&n, sizeof(n));
	return 0;
}

static void key_wipe(struct tkey *k)
{
	uint32_t s = atomic_load_explicit(&k->seq, memory_order_relaxed);
	if (seq_begin(&k->seq, s) < 0)
		return;
	OPENSSL_cleanse((char *)k + sizeof(k->seq), sizeof(*k) - sizeof(k->seq));
	seq_end(&k->seq);
}

/* How long a key encrypts: min(timeout, 1 h), longer when KEYS - 1 keys
 * would not cover a timeout (the current one plus those still valid). */
static int64_t rotate_period(int64_t timeout)
{
	int64_t r = timeout < ROTATE_MAX_MS ? timeout : ROTATE_MAX_MS;
	int64_t least = (timeout + KEYS - 3) / (KEYS - 2);
	if (r < least)
		r = least;
	return r < 1000 ? 1000 : r;
}

int tls_shared_init(void)
{
	if (S)
		return 0;
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		page = 4096;
	size_t size = (sizeof(struct shared) + (size_t)page - 1) / (size_t)page * (size_t)page;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_error("tls: shared session memory (%zu bytes): %s", size, strerror(errno));
		return -1;
	}
	(void)madvise(p, size, MADV_DONTDUMP);
	/* keep the keys out of swap when RLIMIT_MEMLOCK allows */
	size_t keys_len = offsetof(struct shared, cache);
	(void)mlock(p, keys_len);
	struct shared *sh = p;
	if (RAND_bytes((unsigned char *)&sh->salt, sizeof(sh->salt)) != 1 || key_make(&sh->keys[0]) < 0) {
		log_error("tls: no random bytes for the session ticket keys");
		munmap(p, size);
		return -1;
	}
	atomic_store_explicit(&sh->current, 0, memory_order_release);
	S = sh;
	S_size = size;
	return 0;
}

int tls_shared_tick(int64_t now_ms)
{
	if (!S || max_timeout_ms == 0) /* no TLS listener (yet) */
		return (int)ROTATE_MAX_MS;
	int64_t timeout = max_timeout_ms, period = rotate_period(timeout);
	uint32_t cur = atomic_load_explicit(&S->current, memory_order_relaxed);
	if (retire_ms[cur] == 0) /* the first tick starts the first key's clock */
		retire_ms[cur] = now_ms + period;
	for (uint32_t i = 0; i < KEYS; i++)
		if (i != cur && S->keys[i].valid && expire_ms[i] <= now_ms)
			key_wipe(&S->keys[i]);
	if (now_ms >= retire_ms[cur]) {
		uint32_t i = cur;
		do
			i = (i + 1) % KEYS;
		while (i != cur && S->keys[i].valid);
		if (i != cur && key_make(&S->keys[i]) == 0) {
			retire_ms[i] = now_ms + period;
			/* valid for decryption for timeout after it stops encrypting */
			expire_ms[cur] = now_ms + timeout;
			atomic_store_explicit(&S->current, i, memory_order_release);
			cur = i;
		} else {
			/* no free slot (rotate_period leaves one) or no random
			 * bytes: the current key goes on encrypting */
			log_warn("tls: could not make a new session ticket key; keeping the current one");
			retire_ms[cur] = now_ms + period;
		}
	}
	int64_t next = retire_ms[cur];
	for (uint32_t i = 0; i < KEYS; i++)
		if (i != cur && S->keys[i].valid && expire_ms[i] < next)
			next = expire_ms[i];
	int64_t wait = next - now_ms;
	if (wait < 0)
		wait = 0;
	return wait > INT_MAX ? INT_MAX : (int)wait;
}

/* A copy of key i if it is valid (wiped afterwards by the caller). */
static int key_get(uint32_t i, struct tkey *out)
{
	for (int tries = 0; tries < 4; tries++)
		if (seq_read(&S->keys[i].seq, out, &S->keys[i], sizeof(*out)) == 0)
			return out->valid ? 0 : -1;
	return -1;
}

static int key_init(const struct tkey *k, unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[3];
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	if (enc)
		return EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1 ? 0 : -1;
	return EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1 ? 0 : -1;
}

static int ticket_key_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx,
			 int enc)
{
	if (!S)
		return 0; /* encrypting: no ticket; decrypting: unknown */
	struct tkey k;
	int ret = 0;
	uint32_t cur = atomic_load_explicit(&S->current, memory_order_acquire);
	if (enc) {
		if (key_get(cur, &k) < 0)
			return 0;
		memcpy(name, k.name, sizeof(k.name));
		ret = RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) == 1 &&
			      key_init(&k, iv, cctx, hctx, 1) == 0
			  ? 1
			  : -1;
	} else {
		for (uint32_t n = 0; n < KEYS && ret == 0; n++) {
			uint32_t i = (cur + KEYS - n) % KEYS; /* newest first */
			if (key_get(i, &k) < 0 || memcmp(name, k.name, sizeof(k.name)) != 0)
				continue;
			/* 2: a new ticket for the client. Always under TLS 1.3,
			 * whose clients use a ticket once (RFC 8446 C.4): without
			 * one every other handshake was full (nginx renews there
			 * too); under TLS 1.2 when an older key made this one */
			ret = key_init(&k, iv, cctx, hctx, 0) < 0	       ? -1
			      : i == cur && SSL_version(ssl) != TLS1_3_VERSION ? 1
									       : 2;
		}
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

/* ---- session cache ---- */

static struct entry *cache_set(const unsigned char *id, size_t len)
{
	uint32_t h = 2166136261u ^ S->salt; /* FNV-1a, salted */
	for (size_t i = 0; i < len; i++)
		h = (h ^ id[i]) * 16777619u;
	return &S->cache[(h % SETS) * WAYS];
}

/* Store der under id; -1 if it does not fit or every candidate entry is
 * being written. */
static int cache_put(const unsigned char *id, size_t idlen, const unsigned char *der, size_t derlen, int64_t expires,
		     int64_t now)
{
	if (!S || idlen == 0 || idlen > ID_MAX || derlen > sizeof(S->cache[0].der))
		return -1;
	struct entry *set = cache_set(id, idlen), *victim = NULL;
	uint32_t seen = 0;
	int rank = 4; /* 0 same id, 1 empty, 2 expired, 3 the oldest */
	for (int w = 0; w < WAYS; w++) {
		struct entry *e = &set[w];
		uint32_t s = atomic_load_explicit(&e->seq, memory_order_acquire);
		if (s & 1)
			continue;
		int r = e->idlen == idlen && memcmp(e->id, id, idlen) == 0 ? 0
			: e->idlen == 0					   ? 1
			: e->expires <= now				   ? 2
									   : 3;
		if (r < rank || (r == 3 && rank == 3 && e->expires < victim->expires)) {
			rank = r;
			victim = e;
			seen = s;
		}
	}
	if (!victim || seq_begin(&victim->seq, seen) < 0)
		return -1;
	victim->idlen = (uint8_t)idlen;
	victim->derlen = (uint16_t)derlen;
	victim->expires = expires;
	memcpy(victim->id, id, idlen);
	memcpy(victim->der, der, derlen);
	seq_end(&victim->seq);
	return 0;
}

/* Copy the DER stored under id into der (sizeof entry.der); its length or -1. */
static int cache_get(const unsigned char *id, size_t idlen, unsigned char *der, int64_t now)
{
	if (!S || idlen == 0 || idlen > ID_MAX)
		return -1;
	struct entry *set = cache_set(id, idlen);
	for (int w = 0; w < WAYS; w++) {
		struct entry *e = &set[w];
		uint32_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
		if ((s1 & 1) || e->idlen != idlen || memcmp(e->id, id, idlen) != 0)
			continue;
		size_t len = e->derlen;
		int64_t expires = e->expires;
		if (len > sizeof(e->der))
			continue;
		memcpy(der, e->der, len);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s1 || expires <= now)
			continue;
		return (int)len;
	}
	return -1;
}

static void cache_del(const unsigned char *id, size_t idlen)
{
	if (!S || idlen == 0 || idlen > ID_MAX)
		return;
	struct entry *set = cache_set(id, idlen);
	for (int w = 0; w < WAYS; w++) {
		struct entry *e = &set[w];
		uint32_t s = atomic_load_explicit(&e->seq, memory_order_acquire);
		if ((s & 1) || e->idlen != idlen || memcmp(e->id, id, idlen) != 0 || seq_begin(&e->seq, s) < 0)
			continue;
		e->idlen = 0;
		e->derlen = 0;
		seq_end(&e->seq);
	}
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	/* TLS 1.3 with tickets: the (stateless) ticket is the session */
	if (!S || (SSL_version(ssl) >= TLS1_3_VERSION && !(SSL_get_options(ssl) & SSL_OP_NO_TICKET)))
		return 0;
	unsigned int idlen;
	const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
	unsigned char der[sizeof(S->cache[0].der)], *p = der;
	int len = i2d_SSL_SESSION(sess, NULL);
	if (len <= 0 || (size_t)len > sizeof(der))
		return 0; /* too big to share: not cached */
	if (i2d_SSL_SESSION(sess, &p) != len)
		return 0;
	time_t now = time(NULL);
	(void)cache_put(id, idlen, der, (size_t)len,
			(int64_t)SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess), now);
	OPENSSL_cleanse(der, sizeof(der));
	return 0; /* we keep no reference */
}

static SSL_SESSION *get_session_cb(SSL *ssl, const unsigned char *id, int idlen, int *copy)
{
	(void)ssl;
	*copy = 0;
	if (!S || idlen <= 0)
		return NULL;
	unsigned char der[sizeof(S->cache[0].der)];
	int len = cache_get(id, (size_t)idlen, der, time(NULL));
	if (len < 0)
		return NULL;
	const unsigned char *p = der;
	SSL_SESSION *sess = d2i_SSL_SESSION(NULL, &p, len);
	OPENSSL_cleanse(der, sizeof(der));
	unsigned int got;
	const unsigned char *gid = sess ? SSL_SESSION_get_id(sess, &got) : NULL;
	if (sess && (got != (unsigned int)idlen || memcmp(gid, id, got) != 0)) {
		SSL_SESSION_free(sess);
		return NULL;
	}
	return sess;
}

static void remove_session_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
	(void)ctx;
	unsigned int idlen;
	const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
	cache_del(id, idlen);
}

int tls_shared_attach(void *ssl_ctx, int tickets, int64_t timeout_ms)
{
	SSL_CTX *ctx = ssl_ctx;
	if (tls_shared_init() < 0)
		return -1;
	timeout_ms = timeout_ms < 1000 ? 1000 : (timeout_ms + 999) / 1000 * 1000; /* OpenSSL counts seconds */
	if (timeout_ms > max_timeout_ms)
		max_timeout_ms = timeout_ms;
	SSL_CTX_set_timeout(ctx, (long)(timeout_ms / 1000));
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SID_CTX, sizeof(SID_CTX) - 1);
	if (tickets) {
		SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
	} else {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	SSL_CTX_sess_set_get_cb(ctx, get_session_cb);
	SSL_CTX_sess_set_remove_cb(ctx, remove_session_cb);
	return 0;
}
