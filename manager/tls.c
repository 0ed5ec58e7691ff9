/* TLS on the listeners, with OpenSSL 3.
 *
 * One SSL_CTX per certificate of a listener; the first is the default and
 * the one every connection starts with, and the server name a client
 * sends (SNI) switches the connection to the context of the certificate
 * that has that name. Every context gets the same settings (Mozilla's
 * "intermediate" profile unless the configuration says otherwise) and is
 * hooked to the session ticket keys and the session cache the workers
 * share (tls_shared.c).
 *
 * A connection is an SSL object over the socket itself (no BIO pair):
 * SSL_read and SSL_write on a non-blocking fd, the handshake inside the
 * first reads, SSL_ERROR_WANT_READ/WRITE turned into EAGAIN and a
 * direction for the caller's epoll interest. */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "xalloc.h"

/* Mozilla's "intermediate" configuration (version 5.7): TLS 1.2 ciphers
 * with forward secrecy and AEAD only; TLS 1.3 suites are OpenSSL's. */
#define TLS12_CIPHERS                                                                                                  \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                     \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                       \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:prime256v1:secp384r1"

struct tls_cert {
	SSL_CTX *ctx;
	char **names; /* lower case; "*.example.org" matches one label */
	size_t nnames;
};

struct tls_ctx {
	struct tls_cert *certs; /* [0]: the default */
	size_t n;
};

struct tls_conn {
	SSL *ssl;
	int want[2]; /* [0] for reads, [1] for writes: TLS_WANT_* */
	int failed;  /* a fatal error: no close_notify */
	int shut;
	char err[160];
};

/* ---- loading ---- */

static void ssl_error(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	snprintf(buf, len, "%s", r ? r : "unknown OpenSSL error");
	ERR_clear_error();
}

/* A key with a passphrase would make OpenSSL ask on the terminal: a
 * daemon cannot answer. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static void subject(X509 *x, char *buf, size_t len)
{
	X509_NAME_oneline(X509_get_subject_name(x), buf, (int)len);
}

static void asn1_date(const ASN1_TIME *t, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	buf[0] = 0;
	if (b && ASN1_TIME_print(b, t)) {
		int n = BIO_read(b, buf, (int)len - 1);
		buf[n > 0 ? n : 0] = 0;
	}
	BIO_free(b);
}

/* The certificates of a PEM file, leaf first. The file is read once,
 * as a regular file (a FIFO would block the master), at most 16 MiB. */
static STACK_OF(X509) * read_chain(const char *file, char *err, size_t errlen)
{
	size_t len;
	char *text = config_read_file(file, 1, &len, err, errlen);
	if (!text)
		return NULL;
	BIO *b = BIO_new_mem_buf(text, (int)len);
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;
	while (b && (x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL)
		sk_X509_push(sk, x);
	BIO_free(b);
	free(text);
	unsigned long e = ERR_peek_last_error();
	if (ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
		ERR_clear_error(); /* the end of the file */
	if (ERR_peek_error() || sk_X509_num(sk) == 0) {
		char why[120];
		ssl_error(why, sizeof(why));
		snprintf(err, errlen, "%s: %s", file,
			 sk_X509_num(sk)
			     ? why
			     : "no PEM certificate in the file (\"-----BEGIN CERTIFICATE-----\"; a DER file "
			       "converts with openssl x509 -inform der)");
		sk_X509_pop_free(sk, X509_free);
		return NULL;
	}
	return sk;
}

/* The private key of a PEM file (read once, a regular file), or NULL
 * with why in err. */
static EVP_PKEY *read_key(const char *file, char *err, size_t errlen)
{
	size_t len;
	char *text = config_read_file(file, 1, &len, err, errlen);
	if (!text)
		return NULL;
	BIO *b = BIO_new_mem_buf(text, (int)len);
	EVP_PKEY *pk = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
	BIO_free(b);
	OPENSSL_cleanse(text, len);
	free(text);
	if (pk)
		return pk;
	unsigned long e = ERR_peek_last_error();
	char why[120];
	ssl_error(why, sizeof(why));
	if (ERR_GET_REASON(e) == PEM_R_NO_START_LINE || len == 0)
		snprintf(err, errlen, "%s: no PEM private key in the file (\"-----BEGIN PRIVATE KEY-----\")", file);
	else if (ERR_GET_REASON(e) == PEM_R_BAD_PASSWORD_READ || ERR_GET_REASON(e) == PEM_R_PROBLEMS_GETTING_PASSWORD)
		snprintf(err, errlen,
			 "%s: the key is encrypted; cpm reads no passphrase (openssl pkey -in KEY -out KEY removes it)",
			 file);
	else
		snprintf(err, errlen, "%s: not a PEM private key (%s)", file, why);
	return NULL;
}

/* Each certificate of the file must be issued by the next one (nginx's
 * ssl_certificate: the leaf, then the intermediates in order). A chain
 * that ends below a CA this machine does not trust is only a warning: a
 * private CA is a choice. Expiry is a warning too, with the date. */
static int check_chain(const char *file, STACK_OF(X509) * sk, char *err, size_t errlen)
{
	int n = sk_X509_num(sk);
	char a[256], b[256], date[64];
	for (int i = 0; i + 1 < n; i++) {
		X509 *x = sk_X509_value(sk, i), *up = sk_X509_value(sk, i + 1);
		if (X509_check_issued(up, x) != X509_V_OK || X509_verify(x, X509_get0_pubkey(up)) != 1) {
			ERR_clear_error();
			subject(x, a, sizeof(a));
			subject(up, b, sizeof(b));
			snprintf(
			    err, errlen,
			    "%s: certificate %d (%s) is not issued by certificate %d (%s) after it: the chain must be "
			    "the certificate, then each issuer in order",
			    file, i + 1, a, i + 2, b);
			return -1;
		}
	}
	X509 *leaf = sk_X509_value(sk, 0);
	subject(leaf, a, sizeof(a));
	if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
		asn1_date(X509_get0_notAfter(leaf), date, sizeof(date));
		log_warn("%s: the certificate %s expired on %s", file, a, date);
	} else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
		asn1_date(X509_get0_notBefore(leaf), date, sizeof(date));
		log_warn("%s: the certificate %s is not valid before %s", file, a, date);
	}
	X509 *last = sk_X509_value(sk, n - 1);
	if (X509_check_issued(last, last) == X509_V_OK)
		return 0; /* ends with a root */
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *vc = X509_STORE_CTX_new();
	int ok = 1;
	if (store && vc && X509_STORE_set_default_paths(store) && X509_STORE_CTX_init(vc, store, leaf, sk)) {
		X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(vc), X509_V_FLAG_NO_CHECK_TIME);
		if (X509_verify_cert(vc) != 1) {
			int e = X509_STORE_CTX_get_error(vc);
			if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
			    e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
			    e == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE) {
				X509_NAME_oneline(X509_get_issuer_name(last), b, sizeof(b));
				log_warn("%s: the chain ends with an issuer (%s) that is not among this machine's "
					 "trusted CAs: clients that do not have it will not trust the certificate",
					 file, b);
			} else {
				ok = 0;
				snprintf(err, errlen, "%s: the chain does not verify: %s", file,
					 X509_verify_cert_error_string(e));
			}
		}
	}
	X509_STORE_CTX_free(vc);
	X509_STORE_free(store);
	ERR_clear_error();
	return ok ? 0 : -1;
}

static char *lower_dup(const char *s, size_t n)
{
	char *d = xstrndup(s, n);
	for (char *p = d; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

static void add_name(struct tls_cert *tc, const char *s, size_t n)
{
	tc->names = xrealloc(tc->names, (tc->nnames + 1) * sizeof(*tc->names));
	tc->names[tc->nnames++] = lower_dup(s, n);
}

/* The names a certificate is chosen for: its DNS subjectAltNames, or its
 * common name when it has none. */
static void cert_names(struct tls_cert *tc, X509 *x)
{
	GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; san && i < sk_GENERAL_NAME_num(san); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
		if (g->type == GEN_DNS)
			add_name(tc, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
				 (size_t)ASN1_STRING_length(g->d.dNSName));
	}
	GENERAL_NAMES_free(san);
	if (tc->nnames)
		return;
	char cn[256];
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) > 0)
		add_name(tc, cn, strlen(cn));
}

static int name_matches(const char *pattern, const char *name)
{
	if (pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = strchr(name, '.');
		return dot && dot != name && strcasecmp(pattern + 1, dot) == 0;
	}
	return strcasecmp(pattern, name) == 0;
}

static int servername(SSL *ssl, int *alert, void *arg)
{
	(void)alert;
	const struct tls_ctx *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (!name || t->n < 2)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; k < t->certs[i].nnames; k++)
			if (name_matches(t->certs[i].names[k], name)) {
				if (i)
					SSL_set_SSL_CTX(ssl, t->certs[i].ctx);
				return SSL_TLSEXT_ERR_OK;
			}
	return SSL_TLSEXT_ERR_OK; /* the default certificate */
}

/* HTTP/1.1 is all cpm speaks: a client that offers only h2 is refused
 * (RFC 7301 3.2), one that offers no ALPN gets HTTP/1.1 anyway. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	static const unsigned char http11[] = "\x08http/1.1";
	unsigned char *o;
	if (SSL_select_next_proto(&o, outlen, http11, sizeof(http11) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

/* Kernel TLS can work here: the kernel has the "tls" ULP registered, or
 * a module it would load for it. Otherwise OpenSSL's attempt costs every
 * handshake two failing setsockopt calls (and the kernel a module
 * lookup), for nothing. */
static int ktls_possible(void)
{
	static int known = -1;
	if (known >= 0)
		return known;
	char ulp[256] = "";
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re");
	if (f) {
		if (!fgets(ulp, sizeof(ulp), f))
			ulp[0] = 0;
		fclose(f);
	}
	known = strstr(ulp, "tls") != NULL;
	if (!known) {
		struct utsname u;
		char path[512];
		const char *ext[] = {"", ".xz", ".zst", ".gz"};
		for (size_t i = 0; !known && uname(&u) == 0 && i < 4; i++) {
			snprintf(path, sizeof(path), "/lib/modules/%s/kernel/net/tls/tls.ko%s", u.release, ext[i]);
			known = access(path, R_OK) == 0;
		}
	}
	return known;
}

int tls_ktls_possible(void)
{
	return ktls_possible();
}

static SSL_CTX *make_ctx(const struct tls_conf *t, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		ssl_error(err, errlen);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, t->min_version);
	SSL_CTX_set_max_proto_version(ctx, t->max_version);
	/* the server's order of ciphers (testssl rates a client's choice
	 * HIGH), but ChaCha20 first for a client that prefers it (one
	 * without AES instructions) */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF |
				     SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
				     (ktls_possible() ? SSL_OP_ENABLE_KTLS : 0));
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	/* read what the socket has, not a record header and then its body:
	 * half the read calls of a handshake (nginx does the same) */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_dh_auto(ctx, 1);
	const char *what = "ciphers";
	if (!SSL_CTX_set_cipher_list(ctx, t->ciphers ? t->ciphers : TLS12_CIPHERS) ||
	    (what = "ciphersuites", t->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, t->ciphersuites)) ||
	    (what = "groups", !SSL_CTX_set1_groups_list(ctx, TLS_GROUPS))) {
		char why[120];
		ssl_error(why, sizeof(why));
		snprintf(err, errlen, "%s: %s", what, why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* OpenSSL's syntax admits suites that protect nothing: refused */
	STACK_OF(SSL_CIPHER) *cs = SSL_CTX_get_ciphers(ctx);
	for (int i = 0; i < sk_SSL_CIPHER_num(cs); i++) {
		const SSL_CIPHER *ci = sk_SSL_CIPHER_value(cs, i);
		const char *no = SSL_CIPHER_get_cipher_nid(ci) == NID_undef	? "encryption"
				 : SSL_CIPHER_get_auth_nid(ci) == NID_auth_null ? "authentication of the server"
										: NULL;
		if (no) {
			snprintf(err, errlen, "ciphers: %s has no %s", SSL_CIPHER_get_name(ci), no);
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (tls_shared_attach(ctx, t->session_tickets, t->session_timeout_ms) < 0) {
		snprintf(err, errlen, "no shared memory or random bytes for the session keys (see the log)");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int load_cert(const struct tls_conf *t, const struct tls_cert_conf *cc, struct tls_cert *tc, const char **field,
		     char *err, size_t errlen)
{
	*field = "certificate";
	STACK_OF(X509) *sk = read_chain(cc->certificate, err, errlen);
	if (!sk)
		return -1;
	int r = -1;
	char why[160];
	if (check_chain(cc->certificate, sk, err, errlen) < 0)
		goto out;
	tc->ctx = make_ctx(t, why, sizeof(why));
	if (!tc->ctx) {
		/* "KEY: why": the key of the tls object at fault */
		*field = NULL;
		const char *keys[] = {"ciphers", "ciphersuites"};
		for (size_t i = 0; i < 2; i++)
			if (strncmp(why, keys[i], strlen(keys[i])) == 0 && why[strlen(keys[i])] == ':')
				*field = keys[i];
		snprintf(err, errlen, "%s", *field ? why + strlen(*field) + 2 : why);
		goto out;
	}
	/* the certificates read and checked above are the ones served */
	STACK_OF(X509) *chain = sk_X509_dup(sk);
	X509 *leaf = sk_X509_shift(chain);
	if (SSL_CTX_use_certificate(tc->ctx, leaf) != 1 || SSL_CTX_set1_chain(tc->ctx, chain) != 1) {
		sk_X509_free(chain);
		ssl_error(why, sizeof(why));
		snprintf(err, errlen, "%s: %s", cc->certificate, why);
		goto out;
	}
	sk_X509_free(chain);
	*field = "key";
	EVP_PKEY *pk = read_key(cc->key, err, errlen);
	if (!pk)
		goto out;
	int used = SSL_CTX_use_PrivateKey(tc->ctx, pk);
	EVP_PKEY_free(pk);
	if (used != 1 || SSL_CTX_check_private_key(tc->ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: the key does not match the certificate %s", cc->key, cc->certificate);
		goto out;
	}
	if (cc->names)
		for (size_t i = 0; i < cc->nnames; i++)
			add_name(tc, cc->names[i], strlen(cc->names[i]));
	else
		cert_names(tc, sk_X509_value(sk, 0));
	r = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	ERR_clear_error();
	return r;
}

int tls_conf_load(struct tls_conf *t, int *which, const char **field, char *err, size_t errlen)
{
	struct tls_ctx *ctx = xcalloc(1, sizeof(*ctx));
	ctx->certs = xcalloc(t->ncerts, sizeof(*ctx->certs));
	*which = -1;
	*field = NULL;
	for (size_t i = 0; i < t->ncerts; i++) {
		ctx->n = i + 1;
		if (load_cert(t, &t->certs[i], &ctx->certs[i], field, err, errlen) < 0) {
			*which = (int)i;
			tls_ctx_free(ctx);
			return -1;
		}
	}
	if (ctx->n > 1) {
		SSL_CTX_set_tlsext_servername_callback(ctx->certs[0].ctx, servername);
		SSL_CTX_set_tlsext_servername_arg(ctx->certs[0].ctx, ctx);
	}
	tls_ctx_free(t->ctx);
	t->ctx = ctx;
	return 0;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	for (size_t i = 0; i < ctx->n; i++) {
		SSL_CTX_free(ctx->certs[i].ctx);
		for (size_t k = 0; k < ctx->certs[i].nnames; k++)
			free(ctx->certs[i].names[k]);
		free(ctx->certs[i].names);
	}
	free(ctx->certs);
	free(ctx);
}

/* ---- connections ---- */

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd)
{
	SSL *ssl = SSL_new(ctx->certs[0].ctx);
	if (!ssl || !SSL_set_fd(ssl, fd)) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_accept_state(ssl);
	struct tls_conn *t = xcalloc(1, sizeof(*t));
	t->ssl = ssl;
	return t;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	free(t);
}

/* SSL's answer to a read or write that returned r <= 0, as read(2) would
 * have answered. */
static ssize_t outcome(struct tls_conn *t, int dir, int r)
{
	int e = SSL_get_error(t->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		t->want[dir] = TLS_WANT_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		t->want[dir] = TLS_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN: return 0; /* close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF) */
	case SSL_ERROR_SYSCALL:
		t->failed = 1;
		if (errno == 0)
			errno = ECONNRESET;
		snprintf(t->err, sizeof(t->err), "%s", strerror(errno));
		ERR_clear_error();
		return -1;
	default: {
		t->failed = 1;
		ssl_error(t->err, sizeof(t->err));
		errno = EPROTO;
		return -1;
	}
	}
}

ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t len)
{
	size_t n = 0;
	t->want[0] = 0;
	ERR_clear_error();
	int r = SSL_read_ex(t->ssl, buf, len, &n);
	return r == 1 ? (ssize_t)n : outcome(t, 0, r);
}

ssize_t tls_conn_write(struct tls_conn *t, const void *buf, size_t len)
{
	size_t n = 0;
	t->want[1] = 0;
	ERR_clear_error();
	int r = SSL_write_ex(t->ssl, buf, len, &n);
	return r == 1 ? (ssize_t)n : outcome(t, 1, r);
}

int tls_conn_ktls_send(const struct tls_conn *t)
{
	return BIO_get_ktls_send(SSL_get_wbio(t->ssl)) > 0;
}

ssize_t tls_conn_sendfile(struct tls_conn *t, int fd, off_t off, size_t len)
{
	t->want[1] = 0;
	ERR_clear_error();
	ossl_ssize_t r = SSL_sendfile(t->ssl, fd, off, len, 0);
	return r >= 0 ? (ssize_t)r : outcome(t, 1, (int)r);
}

int tls_conn_wants(const struct tls_conn *t, int dir)
{
	return t->want[dir == 'w'];
}

/* With read-ahead, whole records may wait undecrypted in OpenSSL's
 * buffer: SSL_has_pending counts them (SSL_pending does not). It is also
 * true for part of a record, which no read can use before more bytes
 * arrive: the caller reads again only after a read that returned data. */
int tls_conn_pending(const struct tls_conn *t)
{
	return SSL_has_pending(t->ssl);
}

void tls_conn_shutdown(struct tls_conn *t)
{
	if (t->shut || t->failed || !SSL_is_init_finished(t->ssl))
		return;
	t->shut = 1;
	ERR_clear_error();
	SSL_shutdown(t->ssl); /* our close_notify; not waiting for the peer's */
	ERR_clear_error();
}

int tls_conn_ready(const struct tls_conn *t)
{
	return SSL_is_init_finished(t->ssl);
}

const char *tls_conn_error(const struct tls_conn *t)
{
	return t->err;
}

const char *tls_conn_version(const struct tls_conn *t)
{
	return SSL_get_version(t->ssl);
}

const char *tls_conn_cipher(const struct tls_conn *t)
{
	return SSL_get_cipher_name(t->ssl);
}

const char *tls_conn_sni(const struct tls_conn *t)
{
	return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

int tls_conn_resumed(const struct tls_conn *t)
{
	return SSL_session_reused(t->ssl);
}
