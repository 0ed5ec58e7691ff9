#include "cgi_output.h"

#include "backend.h"

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
		return bad(o, o->head_len >= CGI_OUTPUT_HEAD_MAX ? "response header block too large"
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
	return bad(o, o->head_len ? "output ended inside the header block"
				  : "exited or closed its output before sending a header");
}
