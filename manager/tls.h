/* TLS on the listeners (OpenSSL 3).
 *
 * The master loads every certificate and key while it loads the
 * configuration (before dropping privileges: the key may be readable by
 * root only) into a struct tls_ctx, one per TLS listener; the workers
 * inherit it at fork and never open a key file. A reload builds new
 * contexts for the new workers; old workers keep theirs until they exit.
 *
 * In a worker a connection on a TLS listener gets a struct tls_conn; the
 * connection reads and writes through it instead of read/write/sendfile,
 * non-blocking, on the worker's event loop. */
#ifndef CPM_TLS_H
#define CPM_TLS_H

#include <stddef.h>
#include <sys/types.h>

struct tls_conf;
struct tls_ctx;
struct tls_conn;

/* Load t's certificates and keys, check them (each key matches its
 * certificate, the chain in each file builds), make t->ctx. A problem:
 * -1 with "FILE: what" in err, *which the index of the certificate in
 * t->certs and *field "certificate" or "key" (-1 and NULL: not about one
 * file). Warnings (an expired certificate) are logged. */
int tls_conf_load(struct tls_conf *t, int *which, const char **field, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);

/* ---- in a worker ---- */

/* A server-side TLS connection on fd (not yet handshaken), or NULL. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd);
void tls_conn_free(struct tls_conn *t);

/* Like read(2)/write(2) on a non-blocking socket: bytes, 0 on a clean
 * end (close_notify or EOF), -1 with errno EAGAIN when it must wait (then
 * tls_conn_wants says for what), -1 with another errno on an error (a
 * failed handshake: tls_conn_error says why). The handshake runs inside
 * the first reads. */
ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t len);
ssize_t tls_conn_write(struct tls_conn *t, const void *buf, size_t len);

/* Kernel TLS took over sending on this connection (after the handshake):
 * tls_conn_sendfile sends a file's bytes without copying them. */
int tls_conn_ktls_send(const struct tls_conn *t);
ssize_t tls_conn_sendfile(struct tls_conn *t, int fd, off_t off, size_t len);

/* The kernel offers TLS (its "tls" module is loaded or can be): only then
 * do the contexts ask OpenSSL for kernel TLS. */
int tls_ktls_possible(void);

#define TLS_WANT_READ  1
#define TLS_WANT_WRITE 2
/* What the last read (dir 'r') or write ('w') that returned EAGAIN waits
 * for: TLS_WANT_READ or TLS_WANT_WRITE (a read may need the socket
 * writable, during a handshake or a key update). */
int tls_conn_wants(const struct tls_conn *t, int dir);

/* Bytes OpenSSL holds, which epoll will not announce: decrypted ones, or
 * records read ahead (whole, or part of one: a read may then return
 * nothing until more arrives). */
int tls_conn_pending(const struct tls_conn *t);

/* Send close_notify (once, without waiting for the peer's) after a clean
 * end; nothing after a fatal error. */
void tls_conn_shutdown(struct tls_conn *t);

/* The handshake is complete. */
int tls_conn_ready(const struct tls_conn *t);

/* Why the connection failed ("" if it did not): a short text for the
 * error log. */
const char *tls_conn_error(const struct tls_conn *t);

/* For logs and the environment: "TLSv1.3", "TLS_AES_128_GCM_SHA256",
 * the SNI name (NULL: none), whether the session was resumed. */
const char *tls_conn_version(const struct tls_conn *t);
const char *tls_conn_cipher(const struct tls_conn *t);
const char *tls_conn_sni(const struct tls_conn *t);
int tls_conn_resumed(const struct tls_conn *t);

/* ---- shared between workers (tls_shared.c) ---- */

/* Master, before the first worker that has a TLS listener (the first
 * tls_shared_attach does it: a cpm without TLS never starts OpenSSL's
 * random generator, 3.4 MiB of libcrypto in the master's RSS): shared
 * memory for the session ticket keys and the session cache (never written
 * to disk). 0 or -1. */
int tls_shared_init(void);

/* Master: make new ticket keys when due. Returns the ms until the next
 * rotation (for the master's poll timeout). */
int tls_shared_tick(int64_t now_ms);

/* Master, at load: hook a context to the shared keys and cache (made by
 * the first call). tickets: issue session tickets; timeout_ms: how long a
 * session is resumable. 0, or -1 (logged) when the shared memory cannot
 * be had. */
int tls_shared_attach(void *ssl_ctx, int tickets, int64_t timeout_ms);

#endif
