/* HTTP/1.x request head parser. See http_parser.h. */
#include "http_parser.h"

#include <arpa/inet.h>
#include <string.h>

/* RFC 9110 5.6.2 token characters. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,
    ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0'] = 1,  ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1,  ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,  ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1,
    ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,  ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,  ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,
    ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1,  ['z'] = 1,
};

int http_is_tchar(unsigned char c)
{
	return tchar[c];
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int http_slice_ieq(struct http_slice s, const char *name)
{
	size_t n = strlen(name);
	if (s.len != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s.p[i]) != lower((unsigned char)name[i]))
			return 0;
	return 1;
}

struct http_slice http_header_value(const struct http_request *r, const char *name)
{
	for (unsigned i = 0; i < r->nheaders; i++)
		if (http_slice_ieq(r->headers[i].name, name))
			return r->headers[i].value;
	return (struct http_slice){NULL, 0};
}

static int prefix_ieq(const char *p, size_t len, const char *pre)
{
	size_t n = strlen(pre);
	if (len < n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)p[i]) != lower((unsigned char)pre[i]))
			return 0;
	return 1;
}

static const struct {
	const char *name;
	enum http_method id;
} methods[] = {
    {"GET", HTTP_GET},	       {"HEAD", HTTP_HEAD},	{"POST", HTTP_POST},
    {"PUT", HTTP_PUT},	       {"DELETE", HTTP_DELETE}, {"OPTIONS", HTTP_OPTIONS},
    {"CONNECT", HTTP_CONNECT}, {"TRACE", HTTP_TRACE},	{"PATCH", HTTP_PATCH},
};

static enum http_method method_id(struct http_slice m)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (m.len == strlen(methods[i].name) && memcmp(m.p, methods[i].name, m.len) == 0)
			return methods[i].id;
	return HTTP_OTHER;
}

/* Find the end of the head (an empty line) from *scan on. Returns the head
 * length, 0 if it has not come yet, or HEAD_BAD at a CR that is not
 * followed by LF: such a head is refused at once (it may never end in a
 * way this parser would see, as in "\r\r\n"). Leading empty lines before
 * the request line are skipped by the caller, so a line of length zero
 * here always ends the head. */
#define HEAD_BAD ((size_t)-1)

static size_t find_head_end(const char *buf, size_t len, size_t start, size_t *scan)
{
	size_t i = *scan > start ? *scan : start;
	for (; i < len; i++) {
		if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n')
			return HEAD_BAD;
		if (buf[i] != '\n')
			continue;
		/* line ends at i; is the next line empty? */
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
		if (i + 2 >= len) {
			/* the answer depends on bytes not yet here */
			*scan = i;
			return 0;
		}
	}
	/* a CR last is judged with the byte after it */
	*scan = len && buf[len - 1] == '\r' ? len - 1 : len;
	return 0;
}

/* Next line of the head in [*pos, end): sets *line and *llen without the line
 * terminator. A CR anywhere but right before LF is an error. */
static int next_line(const char *buf, size_t end, size_t *pos, const char **line, size_t *llen)
{
	size_t i = *pos;
	const char *nl = memchr(buf + i, '\n', end - i);
	if (!nl)
		return -1;
	size_t e = (size_t)(nl - buf);
	size_t le = e;
	if (le > i && buf[le - 1] == '\r')
		le--;
	if (memchr(buf + i, '\r', le - i))
		return -1;
	*line = buf + i;
	*llen = le - i;
	*pos = e + 1;
	return 0;
}

static int hexdig(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3986 2.3 unreserved and 2.2 sub-delims: what a reg-name holds
 * besides pct-encoded octets. */
static int unreserved_or_sub_delim(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("-._~!$&'()*+,;=", c));
}

/* RFC 3986 3.2.2: IPv6address / IPvFuture, between the brackets. */
static int ip_literal_valid(const char *p, size_t n)
{
	if (n >= 2 && (p[0] == 'v' || p[0] == 'V')) {
		/* IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
		size_t i = 1;
		while (i < n && hexdig((unsigned char)p[i]))
			i++;
		if (i == 1 || i >= n || p[i] != '.' || i + 1 == n)
			return -1;
		for (i++; i < n; i++)
			if (p[i] != ':' && !unreserved_or_sub_delim((unsigned char)p[i]))
				return -1;
		return 0;
	}
	/* IPv6address: h16 groups, one "::" at most, an IPv4 tail */
	char a[INET6_ADDRSTRLEN];
	unsigned char bin[16];
	if (n == 0 || n >= sizeof(a))
		return -1;
	memcpy(a, p, n);
	a[n] = 0;
	return inet_pton(AF_INET6, a, bin) == 1 ? 0 : -1;
}

int http_host_split(struct http_slice v, struct http_slice *name, struct http_slice *port)
{
	*name = (struct http_slice){v.p, 0};
	*port = (struct http_slice){v.p, 0};
	if (v.len == 0)
		return 0; /* an empty Host is valid (RFC 9112 3.2) */
	const unsigned char *p = (const unsigned char *)v.p;
	size_t i = 0;
	if (p[0] == '[') {
		const char *rb = memchr(v.p, ']', v.len);
		if (!rb || ip_literal_valid(v.p + 1, (size_t)(rb - v.p) - 1) < 0)
			return -1;
		i = (size_t)(rb - v.p) + 1;
	} else {
		while (i < v.len && p[i] != ':') {
			if (p[i] == '%') {
				if (i + 2 >= v.len || !hexdig(p[i + 1]) || !hexdig(p[i + 2]))
					return -1;
				i += 3;
				continue;
			}
			if (!unreserved_or_sub_delim(p[i]))
				return -1; /* '@' (userinfo), '/', spaces, ... */
			i++;
		}
		if (i == 0)
			return -1; /* a port without a host */
	}
	*name = (struct http_slice){v.p, i};
	if (i == v.len)
		return 0;
	if (p[i] != ':')
		return -1;
	for (size_t k = i + 1; k < v.len; k++)
		if (p[k] < '0' || p[k] > '9')
			return -1;
	*port = (struct http_slice){v.p + i + 1, v.len - i - 1};
	return 0;
}

static int host_valid(struct http_slice v)
{
	struct http_slice name, port;
	return http_host_split(v, &name, &port);
}

static int parse_version(const char *p, size_t n, int *minor)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
		return -400;
	if (p[5] != '1')
		return -505;
	*minor = p[7] - '0';
	return 0;
}

static int parse_target(struct http_request *r)
{
	const char *p = r->target.p;
	size_t n = r->target.len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= 0x20 || c == 0x7f || c == '#')
			return -400;
	}
	if (r->method_id == HTTP_CONNECT) {
		r->authority = r->target; /* authority-form; routed to nothing */
		if (host_valid(r->authority) < 0)
			return -400;
		r->path = (struct http_slice){"", 0};
		return 0;
	}
	if (n == 1 && p[0] == '*') {
		if (r->method_id != HTTP_OPTIONS)
			return -400;
		r->path = r->target;
		return 0;
	}
	if (p[0] != '/') {
		size_t skip;
		if (prefix_ieq(p, n, "http://"))
			skip = 7;
		else if (prefix_ieq(p, n, "https://"))
			skip = 8;
		else
			return -400;
		const char *a = p + skip;
		size_t al = 0;
		while (skip + al < n && a[al] != '/' && a[al] != '?')
			al++;
		r->authority = (struct http_slice){a, al};
		/* no userinfo, and a host: an "http" URI with an empty host is
		 * invalid (RFC 9110 4.2.1) */
		if (al == 0 || host_valid(r->authority) < 0)
			return -400;
		p = a + al;
		n -= skip + al;
		if (n == 0 || p[0] == '?') {
			/* empty path: "/" (RFC 9112 3.2.2) */
			r->path = (struct http_slice){"/", 1};
			if (n) {
				r->has_query = 1;
				r->query = (struct http_slice){p + 1, n - 1};
			}
			return 0;
		}
	}
	const char *q = memchr(p, '?', n);
	if (q) {
		r->path = (struct http_slice){p, (size_t)(q - p)};
		r->has_query = 1;
		r->query = (struct http_slice){q + 1, n - (size_t)(q - p) - 1};
	} else {
		r->path = (struct http_slice){p, n};
	}
	return 0;
}

static int parse_request_line(const char *line, size_t n, struct http_request *r)
{
	const char *sp1 = memchr(line, ' ', n);
	if (!sp1 || sp1 == line)
		return -400;
	r->method = (struct http_slice){line, (size_t)(sp1 - line)};
	for (size_t i = 0; i < r->method.len; i++)
		if (!tchar[(unsigned char)line[i]])
			return -400;
	const char *t = sp1 + 1;
	size_t rest = n - (size_t)(t - line);
	const char *sp2 = memchr(t, ' ', rest);
	if (!sp2 || sp2 == t)
		return -400;
	r->target = (struct http_slice){t, (size_t)(sp2 - t)};
	const char *v = sp2 + 1;
	size_t vl = n - (size_t)(v - line);
	int rc = parse_version(v, vl, &r->version_minor);
	if (rc)
		return rc;
	r->method_id = method_id(r->method);
	return parse_target(r);
}

/* Content-Length: 1*DIGIT, no list, no sign, bounded. */
static int parse_content_length(struct http_slice v, int64_t *out)
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

/* Iterate comma-separated list elements of a field value. */
static int list_next(struct http_slice v, size_t *pos, struct http_slice *item)
{
	size_t i = *pos;
	while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
		i++;
	if (i >= v.len)
		return 0;
	size_t s = i;
	while (i < v.len && v.p[i] != ',')
		i++;
	size_t e = i;
	while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
		e--;
	*item = (struct http_slice){v.p + s, e - s};
	*pos = i;
	return 1;
}

/* Transfer-Encoding: only "chunked", last. Other codings are 501; a list
 * whose last coding is not chunked is 400 (RFC 9112 6.3). */
static int parse_transfer_encoding(struct http_slice v, int *chunked)
{
	size_t pos = 0;
	struct http_slice item;
	int n = 0, saw_other = 0;
	while (list_next(v, &pos, &item)) {
		if (*chunked)
			return -400; /* something after chunked */
		if (http_slice_ieq(item, "chunked"))
			*chunked = 1;
		else
			saw_other = 1;
		n++;
	}
	if (n == 0)
		return -400;
	if (saw_other)
		return *chunked ? -501 : -400;
	return 0;
}

static int parse_header_line(const char *line, size_t n, struct http_header *h)
{
	if (n == 0 || line[0] == ' ' || line[0] == '\t')
		return -400; /* obs-fold */
	const char *colon = memchr(line, ':', n);
	if (!colon || colon == line)
		return -400;
	size_t nl = (size_t)(colon - line);
	for (size_t i = 0; i < nl; i++)
		if (!tchar[(unsigned char)line[i]])
			return -400; /* includes whitespace before the colon */
	const char *v = colon + 1;
	const char *e = line + n;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	for (const char *c = v; c < e; c++) {
		unsigned char ch = (unsigned char)*c;
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return -400;
	}
	h->name = (struct http_slice){line, nl};
	h->value = (struct http_slice){v, (size_t)(e - v)};
	return 0;
}

/* Fields seen once already (a second one is a 400). */
struct seen {
	int te, cl, ct;
};

static int apply_header(struct http_request *r, const struct http_header *h, struct seen *seen)
{
	if (http_slice_ieq(h->name, "content-length")) {
		int64_t n;
		if (parse_content_length(h->value, &n) < 0)
			return -400;
		if (seen->cl && n != r->content_length)
			return -400;
		seen->cl = 1;
		r->content_length = n;
	} else if (http_slice_ieq(h->name, "transfer-encoding")) {
		if (seen->te)
			return -400; /* one field, please */
		seen->te = 1;
		int rc = parse_transfer_encoding(h->value, &r->chunked);
		if (rc)
			return rc;
	} else if (http_slice_ieq(h->name, "content-type")) {
		/* a singleton field: two of them leave the type ambiguous (and
		 * CONTENT_TYPE can hold one) */
		if (seen->ct)
			return -400;
		seen->ct = 1;
	} else if (http_slice_ieq(h->name, "host")) {
		if (r->has_host || host_valid(h->value) < 0)
			return -400;
		r->has_host = 1;
		r->host = h->value;
	} else if (http_slice_ieq(h->name, "connection")) {
		size_t pos = 0;
		struct http_slice item;
		while (list_next(h->value, &pos, &item)) {
			if (http_slice_ieq(item, "close"))
				r->conn_close = 1; /* wins over keep-alive, wherever it is */
			else if (http_slice_ieq(item, "keep-alive") && r->version_minor == 0)
				r->keep_alive = 1;
		}
	} else if (http_slice_ieq(h->name, "expect")) {
		if (http_slice_ieq(h->value, "100-continue"))
			r->expect_continue = 1;
	}
	return 0;
}

int http_parse_request(const char *buf, size_t len, const struct http_limits *lim, struct http_header *headers,
		       struct http_request *req, size_t *scan)
{
	/* Whatever this returns, req describes this buffer and nothing
	 * older: a caller that logs a refused request must not find the
	 * previous request's slices here. */
	memset(req, 0, sizeof(*req));
	req->headers = headers;
	req->content_length = -1;
	/* RFC 9112 2.2: ignore empty lines before the request line. */
	size_t start = 0;
	while (start < len && (buf[start] == '\n' || buf[start] == '\r')) {
		if (buf[start] == '\r' && (start + 1 >= len || buf[start + 1] != '\n')) {
			if (start + 1 >= len)
				return 0;
			return -400;
		}
		start++;
		if (start > 64)
			return -400;
	}
	size_t end = find_head_end(buf, len, start, scan);
	if (end == HEAD_BAD)
		return -400;
	if (end == 0) {
		const char *nl = memchr(buf + start, '\n', len - start);
		size_t line_len = nl ? (size_t)(nl - (buf + start)) : len - start;
		/* the CR of a CRLF is not part of the line */
		if (line_len && buf[start + line_len - 1] == '\r')
			line_len--;
		if (line_len > lim->request_line)
			return -414;
		if (len > lim->header_size)
			return -431;
		return 0;
	}

	size_t pos = start;
	const char *line;
	size_t llen;
	if (next_line(buf, end, &pos, &line, &llen) < 0)
		return -400;
	if (llen > lim->request_line)
		return -414;
	if (end > lim->header_size)
		return -431;
	int rc = parse_request_line(line, llen, req);
	if (rc)
		return rc;
	req->keep_alive = req->version_minor >= 1;

	struct seen seen = {0, 0, 0};
	for (;;) {
		if (next_line(buf, end, &pos, &line, &llen) < 0)
			return -400;
		if (llen == 0)
			break;
		if (req->nheaders >= lim->header_count)
			return -431;
		if (lim->header_field && llen > lim->header_field)
			return -431;
		struct http_header *h = &headers[req->nheaders];
		rc = parse_header_line(line, llen, h);
		if (rc)
			return rc;
		req->nheaders++;
		rc = apply_header(req, h, &seen);
		if (rc)
			return rc;
	}
	if (req->conn_close)
		req->keep_alive = 0;
	if (seen.te && (seen.cl || req->version_minor == 0))
		return -400;
	if (req->version_minor >= 1 && !req->has_host)
		return -400;
	if (req->authority.len)
		req->host = req->authority;
	req->head_len = end;
	return 1;
}
