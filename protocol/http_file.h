/* The HTTP semantics of serving a file (RFC 9110): dates, entity tags,
 * conditional requests, byte ranges, content codings and media types from
 * a mime.types text. Pure: no I/O, no globals, no allocation. */
#ifndef CPM_HTTP_FILE_H
#define CPM_HTTP_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "http_parser.h"

/* An HTTP-date in any of the three forms a recipient must accept
 * (IMF-fixdate, RFC 850, asctime). Returns 0 with *t, or -1.
 * (http_format_date in http_response.h writes one.) */
int http_date_parse(struct http_slice v, int64_t *t);

/* A strong entity tag, quotes included, from what identifies one version
 * of a file: inode, size and modification time to the nanosecond; coding
 * ("gzip", "br" or NULL) names a precompressed variant. Returns its length
 * (it always fits in 80 bytes). */
size_t http_etag_make(char *buf, size_t cap, uint64_t ino, int64_t size, int64_t mtime_s, long mtime_ns,
		      const char *coding);

/* Whether the list of entity tags in an If-Match / If-None-Match value
 * matches etag (a strong tag, quotes included): "*" matches; weak=1 uses
 * the weak comparison (If-None-Match: W/ prefixes are ignored), weak=0 the
 * strong one (a W/ tag never matches). A malformed list matches nothing. */
int http_etag_match(struct http_slice list, const char *etag, int weak);

/* The preconditions of RFC 9110 13.2.2, in their order. A field absent is
 * a slice of length 0. */
struct http_cond {
	struct http_slice if_match, if_unmodified_since, if_none_match, if_modified_since;
	int get_or_head;
	const char *etag;
	int64_t mtime; /* seconds */
};
enum { HTTP_COND_PASS = 0, HTTP_COND_NOT_MODIFIED = 304, HTTP_COND_FAILED = 412 };
int http_cond_eval(const struct http_cond *c);

/* If-Range (RFC 9110 13.1.5): 1 when the Range applies (the tag matches
 * etag strongly, or the date equals mtime), 0 when the whole
 * representation is to be sent. */
int http_if_range(struct http_slice v, const char *etag, int64_t mtime);

/* A Range value for a representation of size bytes. */
enum {
	HTTP_RANGE_IGNORE = 0,	      /* not a bytes range we understand: send it all */
	HTTP_RANGE_ONE = 1,	      /* [*first, *last] */
	HTTP_RANGE_UNSATISFIABLE = 2, /* 416 */
	HTTP_RANGE_MANY = 3,	      /* several satisfiable ranges: cpm sends it all */
};
#define HTTP_RANGE_MAX_SPECS 64 /* more than that: ignored */
int http_range_parse(struct http_slice v, int64_t size, int64_t *first, int64_t *last);

/* Accept-Encoding: the codings cpm may serve from precompressed files. */
enum { HTTP_ACCEPT_GZIP = 1, HTTP_ACCEPT_BR = 2 };
unsigned http_accept_encoding(struct http_slice v);

/* Media types by file name extension. */
struct mime_entry {
	struct http_slice ext, type;
	size_t order; /* position in the source: the first one wins */
};

/* The entries of a mime.types text ("type ext ext ..." lines, '#'
 * comments). With entries NULL, counts them; else fills up to cap (slices
 * into text) and sorts them for mime_lookup. Returns the count; a line
 * that is not "type/subtype" followed by extensions is skipped and counted
 * in *bad (may be NULL). */
size_t mime_types_parse(const char *text, size_t len, struct mime_entry *entries, size_t cap, size_t *bad);

/* The type for the extension of name (after its last '.', in its last
 * '/'-segment), compared without case; NULL slice (p NULL) when none. */
struct http_slice mime_lookup(const struct mime_entry *entries, size_t n, const char *name, size_t len);

/* A small table of common types for when no mime.types file exists. */
extern const struct mime_entry mime_builtin[];
extern const size_t mime_builtin_count;

#endif
