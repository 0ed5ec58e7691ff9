#include "cgi_response.h"

#include <string.h>

static int is_dropped(struct http_slice name)
{
	static const char *const dropped[] = {"connection", "keep-alive", "transfer-encoding", "te",
					      "trailer",    "upgrade",	  "proxy-connection",  "date",
					      "server"};
	for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
		if (http_slice_ieq(name, dropped[i]))
			return 1;
	return 0;
}

static int parse_status(struct http_slice v, struct cgi_response *r)
{
	if (v.len < 3)
		return -1;
	int st = 0;
	for (int i = 0; i < 3; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -1;
		st = st * 10 + (v.p[i] - '0');
	}
	/* a final status only: a 1xx sent as the answer would leave the
	 * client taking the next response for this one's (RFC 9110 15.2) */
	if (st < 200 || st > 599)
		return -1;
	if (v.len > 3 && v.p[3] != ' ' && v.p[3] != '\t')
		return -1;
	size_t s = 3;
	while (s < v.len && (v.p[s] == ' ' || v.p[s] == '\t'))
		s++;
	r->status = st;
	r->reason = (struct http_slice){v.p + s, v.len - s};
	return 0;
}

static int parse_length(struct http_slice v, int64_t *out)
{
	if (v.len == 0 || v.len > 18)
		return -1;
	int64_t n = 0;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -1;
		n = n * 10 + (v.p[i] - '0');
	}
	*out = n;
	return 0;
}

/* -1 with r->error set: the line at fault is set by the caller */
static int refuse(struct cgi_response *r, const char *why)
{
	r->error = why;
	return -1;
}

static int parse_line(const char *line, size_t n, struct http_header *h, struct cgi_response *r)
{
	if (n == 0 || line[0] == ' ' || line[0] == '\t')
		return refuse(r, "a continuation line (obsolete line folding)");
	const char *colon = memchr(line, ':', n);
	if (!colon)
		return refuse(r, "no colon: a header line is NAME: VALUE, and the header block ends with an empty "
				 "line before the body");
	if (colon == line)
		return refuse(r, "no name before the colon");
	size_t nl = (size_t)(colon - line);
	for (size_t i = 0; i < nl; i++)
		if (!http_is_tchar((unsigned char)line[i]))
			return refuse(r, "a character not allowed in a field name");
	const char *v = colon + 1, *e = line + n;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	for (const char *c = v; c < e; c++) {
		unsigned char ch = (unsigned char)*c;
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return refuse(r, "a control character in the value");
	}
	h->name = (struct http_slice){line, nl};
	h->value = (struct http_slice){v, (size_t)(e - v)};
	return 0;
}

static const char no_header[] = "an empty line before any header (at least Content-Type, Location or Status comes "
				"first)";

/* The header line buf[pos..le) (its end of line left out) as h, or -1
 * with r->error; r->error_line is the line either way. */
static int header_line(const char *buf, size_t pos, size_t le, struct http_header *h, struct cgi_response *r)
{
	r->error_line = (struct http_slice){buf + pos, le - pos};
	if (memchr(buf + pos, '\r', le - pos) || memchr(buf + pos, '\0', le - pos))
		return refuse(r, "a CR or NUL inside the line");
	return parse_line(buf + pos, le - pos, h, r);
}

int cgi_response_parse(const char *buf, size_t len, size_t max_head, struct http_header *fields, unsigned max_fields,
		       struct cgi_response *r, size_t *scan)
{
	/* r describes this buffer whatever the result (see http_parse_request) */
	memset(r, 0, sizeof(*r));
	r->fields = fields;
	r->content_length = -1;
	/* find the empty line */
	size_t end = 0;
	size_t i = *scan;
	/* an empty line first: no header at all (also when the CR came alone) */
	if ((len > 0 && buf[0] == '\n') || (len > 1 && buf[0] == '\r' && buf[1] == '\n'))
		return refuse(r, no_header);
	for (; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n') {
			end = i + 2;
			break;
		}
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
			end = i + 3;
			break;
		}
		if (i + 2 >= len)
			break;
	}
	if (!end) {
		*scan = i < len ? i : len;
		if (len > max_head)
			return -1;
		return 0;
	}
	if (end > max_head)
		return -1;

	size_t pos = 0;
	int seen_status = 0, seen_location = 0, seen_length = 0;
	for (;;) {
		const char *nlp = memchr(buf + pos, '\n', end - pos);
		size_t e = (size_t)(nlp - buf);
		size_t le = e;
		if (le > pos && buf[le - 1] == '\r')
			le--;
		if (le == pos)
			break;
		struct http_header h;
		if (header_line(buf, pos, le, &h, r) < 0)
			return -1;
		pos = e + 1;
		if (http_slice_ieq(h.name, "status")) {
			if (seen_status++)
				return refuse(r, "a second Status");
			if (parse_status(h.value, r) < 0)
				return refuse(r, "Status is not a code from 200 to 599 and a reason");
			continue;
		}
		if (http_slice_ieq(h.name, "content-length")) {
			int64_t n;
			if (parse_length(h.value, &n) < 0)
				return refuse(r, "Content-Length is not a number");
			if (seen_length++ && n != r->content_length)
				return refuse(r, "a second Content-Length, with another value");
			r->content_length = n;
			continue;
		}
		if (http_slice_ieq(h.name, "location")) {
			if (seen_location++)
				return refuse(r, "a second Location");
			if (h.value.len == 0)
				return refuse(r, "an empty Location");
			r->location = h.value;
		} else if (http_slice_ieq(h.name, "content-type")) {
			r->has_content_type = 1;
		}
		if (is_dropped(h.name))
			continue;
		if (r->nfields >= max_fields)
			return refuse(r, "too many header fields");
		fields[r->nfields++] = h;
	}
	r->error_line = (struct http_slice){NULL, 0};
	r->head_len = end;
	return 1;
}

int cgi_response_check_lines(const char *buf, size_t len, struct cgi_response *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t pos = 0; pos < len;) {
		const char *nlp = memchr(buf + pos, '\n', len - pos);
		size_t e = nlp ? (size_t)(nlp - buf) : len, le = e;
		if (le > pos && buf[le - 1] == '\r')
			le--;
		if (le == pos) {
			r->error_line = (struct http_slice){buf + pos, 0};
			return pos ? 0 : refuse(r, no_header);
		}
		struct http_header h;
		if (header_line(buf, pos, le, &h, r) < 0)
			return -1;
		pos = e + 1;
	}
	r->error_line = (struct http_slice){NULL, 0};
	return 0;
}

int cgi_response_resolve(struct cgi_response *r)
{
	if (r->location.len && r->status == 0) {
		if (cgi_location_is_local(r->location))
			return 1;
		r->status = 302;
	}
	if (r->status == 0)
		r->status = 200;
	return 0;
}

int cgi_location_is_local(struct http_slice loc)
{
	return loc.len >= 1 && loc.p[0] == '/' && (loc.len == 1 || loc.p[1] != '/');
}
