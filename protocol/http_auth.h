/* HTTP Basic authentication (RFC 7617) and the htpasswd file format.
 * Pure: no I/O, no crypt(3) (the manager verifies hashes). */
#ifndef CPM_HTTP_AUTH_H
#define CPM_HTTP_AUTH_H

#include <stddef.h>

/* Decode an Authorization header value "Basic BASE64(user:password)" into
 * out (room for len bytes): *user and *pass point into out, NUL
 * terminated. Returns 0, or -1 when it is not Basic, the base64 is
 * malformed, there is no ':' or the decoded text has a control byte. */
int http_auth_basic_parse(const char *v, size_t len, char *out, char **user, char **pass);

enum htpasswd_scheme {
	HTPASSWD_BCRYPT,   /* $2y$ $2b$ $2a$ */
	HTPASSWD_SHA256,   /* $5$ */
	HTPASSWD_SHA512,   /* $6$ */
	HTPASSWD_YESCRYPT, /* $y$ */
};

/* One line of an htpasswd file (without its newline). Returns 1 with
 * user/hash slices set for an entry, 0 for a line to skip (empty, or a
 * comment starting with '#'), -1 with *why set (a static message) for a
 * line refused: no ':', an empty or odd user name, or a hash scheme that
 * is not accepted (plaintext, MD5 "$apr1$" and "$1$", "{SHA}", DES). */
int htpasswd_line(const char *line, size_t len, const char **user, size_t *ulen, const char **hash, size_t *hlen,
		  enum htpasswd_scheme *scheme, const char **why);

/* The WWW-Authenticate value for realm: Basic realm="..." with '"' and
 * '\' escaped (RFC 9110 5.6.4). Returns the length written (NUL
 * terminated), or 0 if cap is too small. */
size_t http_auth_challenge(const char *realm, char *out, size_t cap);

#endif
