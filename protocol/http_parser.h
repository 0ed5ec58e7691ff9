/* Incremental, zero-copy HTTP/1.x request head parser (RFC 9112).
 * Pure: no I/O, no allocation, no globals. Slices point into the caller's
 * buffer, which must stay unchanged while the request is used. */
#ifndef CPM_HTTP_PARSER_H
#define CPM_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

struct http_slice {
	const char *p;
	size_t len;
};

struct http_header {
	struct http_slice name;
	struct http_slice value; /* OWS trimmed on both sides */
};

struct http_limits {
	size_t request_line;   /* 414 past this */
	size_t header_size;    /* 431 past this: the whole head */
	unsigned header_count; /* 431 past this */
	size_t header_field;   /* 431 past this: one field line (name, value and
				* what is between, without the line end); 0: none */
};

enum http_method {
	HTTP_OTHER = 0,
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_OPTIONS,
	HTTP_CONNECT,
	HTTP_TRACE,
	HTTP_PATCH,
};

struct http_request {
	struct http_slice method;
	enum http_method method_id;
	struct http_slice target;    /* as sent */
	struct http_slice path;	     /* raw (not decoded) path of the target */
	struct http_slice query;     /* after '?', without it; len 0 if none */
	struct http_slice authority; /* host[:port] of an absolute-form target */
	int has_query;
	int version_minor;	     /* HTTP/1.x */
	struct http_header *headers; /* caller's array, header_count entries */
	unsigned nheaders;
	struct http_slice host; /* Host field value (or authority), valid: see http_host_split */
	int64_t content_length; /* -1 when absent */
	int chunked;
	int keep_alive;
	int conn_close; /* "Connection: close" was seen */
	int expect_continue;
	int has_host;
	size_t head_len; /* bytes of the head, including the empty line */
};

/* Parse a request head from buf[0..len).
 * Returns  > 0: the head is complete; req is filled, head_len bytes used.
 *            0: need more bytes (limits not yet exceeded).
 *          < 0: a negative HTTP status: -400, -414, -431, -501, -505.
 * req is reset on entry, whatever the result: after 0 or a refusal it holds
 * no slice of an earlier call (method.len == 0, nheaders == 0, ...) unless
 * this call parsed that part of buf before refusing (then the slices point
 * into buf, e.g. the method of a request with a malformed field).
 * *scan carries the resume offset of the end-of-head search between calls;
 * set it to 0 for a new request. headers must have limits->header_count
 * entries. */
int http_parse_request(const char *buf, size_t len, const struct http_limits *lim, struct http_header *headers,
		       struct http_request *req, size_t *scan);

/* Split a Host value or an authority (RFC 9112 3.2, RFC 3986 3.2.2):
 * uri-host [":" port], uri-host an IP-literal ("[" IPv6 / IPvFuture "]",
 * brackets kept in *name), or a reg-name (IPv4 included): unreserved,
 * pct-encoded and sub-delims only, so no userinfo ("@"), no path. port is
 * *DIGIT. An empty value is valid (*name empty); a port without a host is
 * not. Returns 0, or -1 when v is not such a value. The parser refuses a
 * request whose Host or absolute-form authority fails this (400). */
int http_host_split(struct http_slice v, struct http_slice *name, struct http_slice *port);

/* Case-insensitive ASCII comparison of a slice with a NUL-terminated name. */
int http_slice_ieq(struct http_slice s, const char *name);

/* The value of r's first header field called name (case-insensitive), or
 * {NULL, 0} when there is none (a present, empty value has p != NULL). */
struct http_slice http_header_value(const struct http_request *r, const char *name);

/* Whether c may appear in a token (RFC 9110 5.6.2). */
int http_is_tchar(unsigned char c);

#endif
