/* Parser for the header block a CGI program (or FastCGI app) writes before
 * its body (RFC 3875 6). Pure, resumable across reads. */
#ifndef CPM_CGI_RESPONSE_H
#define CPM_CGI_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "http_parser.h"

struct cgi_response {
	int status;		    /* from Status:, 0 when absent */
	struct http_slice reason;   /* from Status:, may be empty */
	struct http_slice location; /* len 0 when absent */
	int has_content_type;
	int64_t content_length;	    /* -1 when absent */
	struct http_header *fields; /* every field to pass on, in order */
	unsigned nfields;
	size_t head_len; /* bytes of the header block with its end */
	/* after -1: what is wrong (static text, NULL when only the size is
	 * at fault) and the line that has it (len 0: none), pointing into
	 * buf */
	const char *error;
	struct http_slice error_line;
};

/* Parse buf[0..len). Returns 1 when the block is complete, 0 when more is
 * needed, -1 when the output is not a valid CGI response (502): a malformed
 * line, an invalid name, CR/NUL/control characters in a value, a Status
 * that is not 3 digits from 200 to 599 (a 1xx is refused), a bad
 * Content-Length, more than max_fields fields or more than max_head bytes.
 * Fields not passed to the client (Status, hop-by-hop fields, Date, Server,
 * Content-Length) are left out of fields[]. After -1, r->error and
 * r->error_line say what and where. *scan must be 0 on the first
 * call. r is reset on entry, whatever the result: after 0 or -1 it holds
 * no field of an earlier call. */
int cgi_response_parse(const char *buf, size_t len, size_t max_head, struct http_header *fields, unsigned max_fields,
		       struct cgi_response *r, size_t *scan);

/* The lines of buf[0..len) (a header block that never ended, or did not
 * fit; the last line may be cut), up to an empty line, checked one by one
 * as cgi_response_parse does: -1 with r->error and r->error_line at the
 * first that is refused, else 0. r is reset on entry. */
int cgi_response_check_lines(const char *buf, size_t len, struct cgi_response *r);

/* RFC 3875 6.2: a Location without Status is a local redirect (returns 1:
 * the caller re-dispatches to r->location) or, for an absolute URL, a 302;
 * no Status at all is 200. Returns 0 with r->status set otherwise. */
int cgi_response_resolve(struct cgi_response *r);

/* Whether a Location value is a local path ("/x", not "//host"). */
int cgi_location_is_local(struct http_slice loc);

#endif
