/* Decoder for the chunked transfer coding (RFC 9112 7.1). Pure and
 * resumable byte by byte: feed it any split of the input. */
#ifndef CPM_HTTP_CHUNKED_H
#define CPM_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

struct http_chunked {
	int state;
	uint64_t remaining; /* bytes left in the current chunk */
	size_t line_len;    /* bytes of the current size/trailer line */
	size_t trailer_len; /* bytes of all trailer lines so far */
	unsigned digits;
	char tname[20];	    /* the current trailer field's name, lowercased */
	unsigned tname_len; /* its length so far; > sizeof(tname): too long to matter */
	uint64_t total;	    /* chunk sizes declared so far */
	uint64_t max_body;  /* CHUNKED_TOO_LARGE past this; init: no limit */
};

enum {
	CHUNKED_MORE = 0,	/* consumed all input, need more */
	CHUNKED_DONE = 1,	/* the last chunk and trailers are complete */
	CHUNKED_ERROR = -1,	/* malformed: 400 */
	CHUNKED_TOO_LARGE = -2, /* a chunk size took the body past max_body: 413 */
};

/* A decoder at the start of a body, without a size limit: set max_body
 * after it to have a body larger than that refused as CHUNKED_TOO_LARGE as
 * soon as a chunk size declares it, before its data arrives. */
void http_chunked_init(struct http_chunked *c);

/* Rejected as CHUNKED_ERROR beyond plain syntax errors: a framing line
 * (chunk size, the end of chunk data, a trailer line, the final line) not
 * ended by CRLF (a bare LF too), whitespace after a chunk size not followed
 * by an extension (";"), a trailer field name that is not a token directly
 * followed by ':' (as in the head: no obs-fold, no empty name), a control
 * character in a trailer value, and trailer fields that frame or route a
 * message (Content-Length, Transfer-Encoding, Host, Trailer, TE and the
 * hop-by-hop ones), which RFC 9110 6.5.1 forbids in trailers. */

/* Decode in[0..inlen) into out (may be the same buffer as in: out never runs
 * ahead of in). *consumed and *produced are set. Returns CHUNKED_MORE,
 * CHUNKED_DONE (stops right after the final CRLF; bytes after it are not
 * consumed), CHUNKED_ERROR or CHUNKED_TOO_LARGE; the result and the bytes
 * produced do not depend on how the input is split. */
int http_chunked_decode(struct http_chunked *c, const char *in, size_t inlen, char *out, size_t *consumed,
			size_t *produced);

#endif
