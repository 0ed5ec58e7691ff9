/* The reader that turns a CGI program's output (a cgi pipe, FastCGI STDOUT
 * records) into a response, for every backend that speaks CGI/1.1: the
 * header block accumulated up to CGI_OUTPUT_HEAD_MAX and parsed, a local
 * redirect noted (its body dropped), then the body streamed. What it does
 * with the response goes through the callbacks of struct cgi_output_opts
 * (lighttpd's http_response_opts), so it is tested without sockets. */
#ifndef CPM_CGI_OUTPUT_H
#define CPM_CGI_OUTPUT_H

#include <stddef.h>

#include "../protocol/cgi_response.h"

#define CGI_OUTPUT_HEAD_MAX    (32 * 1024) /* the header block, with its end */
#define CGI_OUTPUT_HEAD_FIELDS 100
#define CGI_OUTPUT_READ_CHUNK  (32 * 1024) /* what a backend reads at a time */

struct cgi_output_opts {
	/* The response head: 0, or -1 when the client is gone. */
	int (*head)(void *pdata, const struct cgi_response *r);
	/* Body bytes: 1 more is welcome, 0 the client is slow, -1 it is gone
	 * (exchange_response_body). */
	int (*body)(void *pdata, const char *p, size_t n);
	/* NULL, or 1 when the response has all its bytes: the rest of the
	 * output is not the client's (exchange_response_complete). */
	int (*complete)(void *pdata);
};

enum cgi_output_rc {
	CGI_OUTPUT_BAD = -2,	 /* not a valid CGI response (502): o->why */
	CGI_OUTPUT_GONE = -1,	 /* a callback said the client is gone */
	CGI_OUTPUT_HOLD = 0,	 /* the client is slow: read no more for now */
	CGI_OUTPUT_MORE = 1,	 /* read on */
	CGI_OUTPUT_COMPLETE = 2, /* complete() said so: what followed was not delivered */
};

struct cgi_output {
	const struct cgi_output_opts *opts;
	void *pdata;
	char *head; /* the header block so far, until it is complete */
	size_t head_len, head_scan;
	int head_done;	/* the header block was complete (and valid) */
	char *redirect; /* a local redirect's target: the rest is dropped */
	const char *why;
	char why_buf[384]; /* why, when it quotes the line at fault */
};

void cgi_output_init(struct cgi_output *o, const struct cgi_output_opts *opts, void *pdata);
/* Output bytes, whatever reads or records brought them: every byte goes
 * to exactly one of the header block and the body, in order. */
enum cgi_output_rc cgi_output_feed(struct cgi_output *o, const char *p, size_t n);
/* The output ended: CGI_OUTPUT_BAD (o->why) before a complete header
 * block, else CGI_OUTPUT_MORE (the response is over, or o->redirect is
 * where it goes). */
enum cgi_output_rc cgi_output_eof(struct cgi_output *o);
void cgi_output_free(struct cgi_output *o);

#endif
