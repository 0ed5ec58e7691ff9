#include "cgi_output.h"

#include "backend.h"

#include <stdio.h>
#include <string.h>

void cgi_output_init(struct cgi_output *o, const struct cgi_output_opts *opts, void *pdata)
{
	*o = (struct cgi_output){.opts = opts, .pdata = pdata};
}

void cgi_output_free(struct cgi_output *o)
{
	free(o->head);
	free(o->redirect);
	o->head = o->redirect = NULL;
}

static enum cgi_output_rc body(struct cgi_output *o, const char *p, size_t n)
{
	if (n == 0)
		return CGI_OUTPUT_MORE;
	int more = o->opts->body(o->pdata, p, n);
	if (more < 0)
		return CGI_OUTPUT_GONE;
	if (o->opts->complete && o->opts->complete(o->pdata))
		return CGI_OUTPUT_COMPLETE;
	return more ? CGI_OUTPUT_MORE : CGI_OUTPUT_HOLD;
}

static enum cgi_output_rc bad(struct cgi_output *o, const char *why)
{
	o->why = why;
	return CGI_OUTPUT_BAD;
}

#define QUOTE_MAX 64 /* bytes of the line at fault shown (the log escapes them) */

/* The line r says is at fault, quoted (as nginx's "upstream sent invalid
 * header"), or, when r names none, the head's first line that is refused
 * on its own; dflt when there is none either. */
static enum cgi_output_rc bad_line(struct cgi_output *o, struct cgi_response *r, const char *dflt)
{
	if (!r->error && cgi_response_check_lines(o->head, o->head_len, r) == 0)
		return bad(o, dflt);
	size_t n = r->error_line.len;
	const char *nul = n ? memchr(r->error_line.p, 0, n) : NULL;
	int cut = n > QUOTE_MAX || nul;
	if (nul)
		n = (size_t)(nul - r->error_line.p);
	if (n > QUOTE_MAX)
		n = QUOTE_MAX;
	char quoted[QUOTE_MAX * 3 + 1];
	if (r->error_line.len)
		snprintf(o->why_buf, sizeof(o->why_buf), "sent an invalid header: \"%s%s\" (%s)",
			 log_field(quoted, sizeof(quoted), r->error_line.p, n), cut ? "..." : "", r->error);
	else
		snprintf(o->why_buf, sizeof(o->why_buf), "sent an invalid header block (%s)", r->error);
	return bad(o, o->why_buf);
}

enum cgi_output_rc cgi_output_feed(struct cgi_output *o, const char *p, size_t n)
{
	if (o->redirect)
		return CGI_OUTPUT_MORE; /* a local redirect's body: nobody's */
	if (o->head_done)
		return body(o, p, n);
	/* the head buffer takes at most what is left of HEAD_MAX + 1: one
	 * byte more than a valid block may have tells "too large" */
	size_t k = CGI_OUTPUT_HEAD_MAX + 1 - o->head_len;
	if (k > n)
		k = n;
	if (!o->head)
		o->head = xmalloc(CGI_OUTPUT_HEAD_MAX + 1);
	memcpy(o->head + o->head_len, p, k);
	o->head_len += k;
	p += k;
	n -= k;
	struct http_header fields[CGI_OUTPUT_HEAD_FIELDS];
	struct cgi_response resp;
	int rc = cgi_response_parse(o->head, o->head_len, CGI_OUTPUT_HEAD_MAX, fields, CGI_OUTPUT_HEAD_FIELDS, &resp,
				    &o->head_scan);
	if (rc == 0 && o->head_len <= CGI_OUTPUT_HEAD_MAX)
		return CGI_OUTPUT_MORE;
	if (rc <= 0)
		return bad_line(o, &resp,
				o->head_len >= CGI_OUTPUT_HEAD_MAX ? "response header block too large"
								   : "malformed response header");
	o->head_done = 1;
	if (cgi_response_resolve(&resp)) {
		o->redirect = xstrndup(resp.location.p, resp.location.len);
		return CGI_OUTPUT_MORE;
	}
	if (o->opts->head(o->pdata, &resp) < 0)
		return CGI_OUTPUT_GONE;
	if (o->opts->complete && o->opts->complete(o->pdata))
		return CGI_OUTPUT_COMPLETE;
	/* what followed the block in the buffer, then the rest of p */
	char *head = o->head;
	o->head = NULL;
	enum cgi_output_rc r1 = body(o, head + resp.head_len, o->head_len - resp.head_len);
	free(head);
	if (r1 != CGI_OUTPUT_MORE && r1 != CGI_OUTPUT_HOLD)
		return r1;
	enum cgi_output_rc r2 = body(o, p, n);
	if (r2 != CGI_OUTPUT_MORE)
		return r2;
	return r1;
}

enum cgi_output_rc cgi_output_eof(struct cgi_output *o)
{
	if (o->head_done)
		return CGI_OUTPUT_MORE;
	if (!o->head_len)
		return bad(o, "exited or closed its output before sending a header");
	struct cgi_response resp = {0};
	return bad_line(o, &resp, "output ended inside the header block");
}
