/* URL path handling for routing and script lookup. Pure. */
#ifndef CPM_URL_H
#define CPM_URL_H

#include <stddef.h>

enum {
	URL_OK = 0,
	URL_BAD = -1,	   /* malformed escape or NUL: 400 */
	URL_FORBIDDEN = -2 /* dot segment, encoded slash, NUL, dotfile: 404 */
};

/* Percent-decode path[0..len) into out (room for len + 1 bytes), NUL
 * terminated; *outlen is set. A run of '/' becomes one (nginx's
 * merge_slashes: routes, access lists and backends see one spelling of a
 * path). Rejects a malformed escape, %00 and NUL (URL_BAD), and an encoded
 * '/' (URL_FORBIDDEN). */
int url_decode_path(const char *path, size_t len, char *out, size_t *outlen);

/* A decoded path percent-encoded into out (room for 3 * len + 1 bytes),
 * NUL terminated, for a Location: only unreserved characters, sub-delims,
 * ':', '@' and '/' stay as they are (no '%', '?', '#', '\', space or
 * control character). Returns the length. */
size_t url_encode_path(const char *p, size_t len, char *out);

/* Check a decoded path: must start with '/'; no "." or ".." segment, and
 * no segment starting with '.' that begins at or after offset hidden_from
 * (URL_FORBIDDEN). The caller passes the end of the route's prefix: a
 * route whose prefix names a dot directory ("/.well-known/") opens that
 * directory, never the dotfiles below it. */
int url_check_segments(const char *path, size_t len, size_t hidden_from);

/* Whether decoded path p starts with route prefix pre at a segment
 * boundary. */
int url_prefix_match(const char *p, size_t plen, const char *pre, size_t prelen);

/* Whether decoded path p, or a leading part of it that ends just before a
 * '/', ends with suffix sfx (case-sensitive): "/w/doku.php" and
 * "/w/doku.php/x" both match ".php". If so and len_out is not NULL,
 * *len_out is the length of the shortest such part. */
int url_suffix_match(const char *p, size_t plen, const char *sfx, size_t slen, size_t *len_out);

#endif
