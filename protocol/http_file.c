#include "http_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- dates ---- */

/* parsing only: protocol/http_response.c formats (http_format_date) */
static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

struct scan {
	const char *p, *end;
};

static int scan_lit(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* exactly ndigits digits (ndigits 0: 1 or 2, leading space allowed for asctime's day) */
static int scan_num(struct scan *s, int ndigits, int *out)
{
	int v = 0, k = 0;
	if (ndigits == 0 && s->p < s->end && *s->p == ' ')
		s->p++;
	int max = ndigits ? ndigits : 2;
	while (k < max && s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		v = v * 10 + (*s->p - '0');
		s->p++;
		k++;
	}
	if (k == 0 || (ndigits && k != ndigits))
		return -1;
	*out = v;
	return 0;
}

static int scan_month(struct scan *s, int *m)
{
	if (s->end - s->p < 3)
		return -1;
	for (int i = 0; i < 12; i++)
		if (memcmp(s->p, months[i], 3) == 0) {
			*m = i + 1;
			s->p += 3;
			return 0;
		}
	return -1;
}

static int scan_time(struct scan *s, int *h, int *mi, int *se)
{
	if (scan_num(s, 2, h) < 0 || scan_lit(s, ":") < 0 || scan_num(s, 2, mi) < 0 || scan_lit(s, ":") < 0 ||
	    scan_num(s, 2, se) < 0)
		return -1;
	return *h > 23 || *mi > 59 || *se > 60 ? -1 : 0;
}

static const char *const long_days[7] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

int http_date_parse(struct http_slice v, int64_t *t)
{
	struct scan s = {v.p, v.p + v.len};
	int y, m, d, h, mi, se;
	if (v.len < 24 || !v.p)
		return -1;
	int wd = -1;
	for (int i = 0; i < 7; i++)
		if (memcmp(v.p, wdays[i], 3) == 0)
			wd = i;
	if (wd < 0)
		return -1;
	if (v.p[3] == ',') {
		/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
		s.p += 4;
		if (scan_lit(&s, " ") < 0 || scan_num(&s, 2, &d) < 0 || scan_lit(&s, " ") < 0 ||
		    scan_month(&s, &m) < 0 || scan_lit(&s, " ") < 0 || scan_num(&s, 4, &y) < 0 ||
		    scan_lit(&s, " ") < 0 || scan_time(&s, &h, &mi, &se) < 0 || scan_lit(&s, " GMT") < 0)
			return -1;
	} else if (v.p[3] == ' ') {
		/* asctime: Sun Nov  6 08:49:37 1994 */
		s.p += 4;
		if (scan_month(&s, &m) < 0 || scan_lit(&s, " ") < 0 || scan_num(&s, 0, &d) < 0 ||
		    scan_lit(&s, " ") < 0 || scan_time(&s, &h, &mi, &se) < 0 || scan_lit(&s, " ") < 0 ||
		    scan_num(&s, 4, &y) < 0)
			return -1;
	} else {
		/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
		if (scan_lit(&s, long_days[wd]) < 0 || scan_lit(&s, ", ") < 0 || scan_num(&s, 2, &d) < 0 ||
		    scan_lit(&s, "-") < 0 || scan_month(&s, &m) < 0 || scan_lit(&s, "-") < 0 ||
		    scan_num(&s, 2, &y) < 0 || scan_lit(&s, " ") < 0 || scan_time(&s, &h, &mi, &se) < 0 ||
		    scan_lit(&s, " GMT") < 0)
			return -1;
		/* RFC 9110 5.6.7: a two-digit year more than 50 years in the
		 * future is in the past century; without a clock here, 70-99
		 * are 19xx and 00-69 20xx */
		y += y >= 70 ? 1900 : 2000;
	}
	if (s.p != s.end || d < 1 || d > 31)
		return -1;
	if (se == 60)
		se = 59;
	*t = days_from_civil(y, (unsigned)m, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}

/* ---- entity tags ---- */

size_t http_etag_make(char *buf, size_t cap, uint64_t ino, int64_t size, int64_t mtime_s, long mtime_ns,
		      const char *coding)
{
	int n = snprintf(buf, cap, "\"%llx-%llx-%llx%s%s\"", (unsigned long long)ino, (unsigned long long)size,
			 (unsigned long long)mtime_s * 1000000000ULL + (unsigned long long)mtime_ns, coding ? "-" : "",
			 coding ? coding : "");
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static int ows(char c)
{
	return c == ' ' || c == '\t';
}

int http_etag_match(struct http_slice list, const char *etag, int weak)
{
	if (!list.p)
		return 0;
	const char *p = list.p, *end = list.p + list.len;
	size_t elen = strlen(etag);
	while (p < end && ows(*p))
		p++;
	if (p < end && *p == '*') {
		const char *q = p + 1;
		while (q < end && ows(*q))
			q++;
		return q == end;
	}
	for (;;) {
		while (p < end && (ows(*p) || *p == ','))
			p++;
		if (p == end)
			return 0;
		int is_weak = 0;
		if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
			is_weak = 1;
			p += 2;
		}
		if (p == end || *p != '"')
			return 0;
		const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
		if (!q)
			return 0;
		size_t tl = (size_t)(q - p + 1);
		if ((weak || !is_weak) && tl == elen && memcmp(p, etag, elen) == 0)
			return 1;
		p = q + 1;
		while (p < end && ows(*p))
			p++;
		if (p < end && *p != ',')
			return 0;
	}
}

int http_cond_eval(const struct http_cond *c)
{
	int64_t t;
	/* 1. If-Match, else 2. If-Unmodified-Since */
	if (c->if_match.len) {
		if (!http_etag_match(c->if_match, c->etag, 0))
			return HTTP_COND_FAILED;
	} else if (c->if_unmodified_since.len && http_date_parse(c->if_unmodified_since, &t) == 0) {
		if (c->mtime > t)
			return HTTP_COND_FAILED;
	}
	/* 3. If-None-Match, else 4. If-Modified-Since (GET and HEAD only) */
	if (c->if_none_match.len) {
		if (http_etag_match(c->if_none_match, c->etag, 1))
			return c->get_or_head ? HTTP_COND_NOT_MODIFIED : HTTP_COND_FAILED;
	} else if (c->get_or_head && c->if_modified_since.len && http_date_parse(c->if_modified_since, &t) == 0) {
		if (c->mtime <= t)
			return HTTP_COND_NOT_MODIFIED;
	}
	return HTTP_COND_PASS;
}

int http_if_range(struct http_slice v, const char *etag, int64_t mtime)
{
	while (v.len && ows(v.p[v.len - 1]))
		v.len--;
	while (v.len && ows(*v.p)) {
		v.p++;
		v.len--;
	}
	if (v.len == 0)
		return 1;
	if (v.p[0] == '"' || (v.len > 1 && v.p[0] == 'W' && v.p[1] == '/')) {
		/* a strong comparison: a weak tag never matches */
		return v.p[0] == '"' && v.len == strlen(etag) && memcmp(v.p, etag, v.len) == 0;
	}
	int64_t t;
	return http_date_parse(v, &t) == 0 && t == mtime;
}

/* ---- ranges ---- */

/* A decimal number without sign; -1 if none or too large. */
static int64_t scan_u63(const char **pp, const char *end)
{
	const char *p = *pp;
	int64_t v = 0;
	if (p == end || *p < '0' || *p > '9')
		return -1;
	while (p < end && *p >= '0' && *p <= '9') {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p++ - '0');
	}
	*pp = p;
	return v;
}

int http_range_parse(struct http_slice v, int64_t size, int64_t *first, int64_t *last)
{
	if (!v.p || v.len < 6 || strncasecmp(v.p, "bytes=", 6) != 0)
		return HTTP_RANGE_IGNORE;
	const char *p = v.p, *end = v.p + v.len;
	p += 6;
	int specs = 0, ok = 0;
	for (;;) {
		while (p < end && (ows(*p) || *p == ','))
			p++;
		if (p == end)
			break;
		if (++specs > HTTP_RANGE_MAX_SPECS)
			return HTTP_RANGE_IGNORE;
		int64_t a, b;
		if (*p == '-') {
			/* suffix: the last b bytes */
			p++;
			b = scan_u63(&p, end);
			if (b < 0)
				return HTTP_RANGE_IGNORE;
			if (b > 0 && size > 0) {
				if (!ok) {
					*first = b >= size ? 0 : size - b;
					*last = size - 1;
				}
				ok++;
			}
		} else {
			a = scan_u63(&p, end);
			if (a < 0 || p == end || *p != '-')
				return HTTP_RANGE_IGNORE;
			p++;
			b = INT64_MAX;
			if (p < end && *p >= '0' && *p <= '9') {
				b = scan_u63(&p, end);
				if (b < 0 || b < a)
					return HTTP_RANGE_IGNORE; /* invalid: the field is ignored */
			}
			if (a < size) {
				if (!ok) {
					*first = a;
					*last = b >= size ? size - 1 : b;
				}
				ok++;
			}
		}
		while (p < end && ows(*p))
			p++;
		if (p < end && *p != ',')
			return HTTP_RANGE_IGNORE;
	}
	if (specs == 0)
		return HTTP_RANGE_IGNORE;
	if (ok == 0)
		return HTTP_RANGE_UNSATISFIABLE;
	return ok == 1 ? HTTP_RANGE_ONE : HTTP_RANGE_MANY;
}

/* ---- content codings ---- */

unsigned http_accept_encoding(struct http_slice v)
{
	if (!v.p)
		return 0;
	const char *p = v.p, *end = v.p + v.len;
	unsigned yes = 0, no = 0, star = 0, star_set = 0;
	while (p < end) {
		while (p < end && (ows(*p) || *p == ','))
			p++;
		const char *tok = p;
		while (p < end && !ows(*p) && *p != ',' && *p != ';')
			p++;
		size_t tl = (size_t)(p - tok);
		/* q=0 (with any zeros after the point) refuses the coding */
		int refused = 0;
		while (p < end && *p != ',') {
			while (p < end && ows(*p))
				p++;
			if (p < end && *p == ';') {
				p++;
				while (p < end && ows(*p))
					p++;
				if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
					p += 2;
					const char *q = p;
					while (p < end && !ows(*p) && *p != ',' && *p != ';')
						p++;
					refused = q < p && *q == '0';
					for (const char *r = q + 1; refused && r < p; r++)
						if (*r != '.' && *r != '0')
							refused = 0;
					continue;
				}
			}
			if (p < end && *p != ',')
				p++;
		}
		unsigned bit = 0;
		if (tl == 4 && strncasecmp(tok, "gzip", 4) == 0)
			bit = HTTP_ACCEPT_GZIP;
		else if (tl == 6 && strncasecmp(tok, "x-gzip", 6) == 0)
			bit = HTTP_ACCEPT_GZIP;
		else if (tl == 2 && strncasecmp(tok, "br", 2) == 0)
			bit = HTTP_ACCEPT_BR;
		else if (tl == 1 && *tok == '*') {
			star_set = 1;
			star = !refused;
		}
		if (bit) {
			if (refused)
				no |= bit;
			else
				yes |= bit;
		}
	}
	if (star_set && star)
		yes |= (HTTP_ACCEPT_GZIP | HTTP_ACCEPT_BR) & ~no;
	return yes & ~no;
}

/* ---- media types ---- */

static int ext_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	for (size_t i = 0; i < n; i++) {
		int ca = (unsigned char)a[i], cb = (unsigned char)b[i];
		if (ca >= 'A' && ca <= 'Z')
			ca += 32;
		if (cb >= 'A' && cb <= 'Z')
			cb += 32;
		if (ca != cb)
			return ca - cb;
	}
	return al < bl ? -1 : al > bl ? 1 : 0;
}

static int entry_cmp(const void *x, const void *y)
{
	const struct mime_entry *a = x, *b = y;
	int c = ext_cmp(a->ext.p, a->ext.len, b->ext.p, b->ext.len);
	if (c)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

static int token_char(char c)
{
	return c > ' ' && c < 0x7f && c != '"' && c != '\\' && c != ';' && c != ',';
}

/* type/subtype with token characters */
static int type_valid(const char *p, size_t n)
{
	const char *slash = memchr(p, '/', n);
	if (!slash || slash == p || slash == p + n - 1 || memchr(slash + 1, '/', (size_t)(p + n - slash - 1)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!token_char(p[i]))
			return 0;
	return 1;
}

static int ext_valid(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!token_char(p[i]) || p[i] == '/' || p[i] == '.')
			return 0;
	return n > 0 && n < 64;
}

size_t mime_types_parse(const char *text, size_t len, struct mime_entry *entries, size_t cap, size_t *bad)
{
	size_t n = 0, order = 0;
	const char *p = text, *end = text + len;
	if (bad)
		*bad = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *hash = memchr(p, '#', (size_t)(eol - p));
		const char *le = hash ? hash : eol;
		const char *q = p;
		while (q < le && (ows(*q) || *q == '\r'))
			q++;
		if (q < le) {
			const char *t = q;
			while (q < le && !ows(*q) && *q != '\r')
				q++;
			size_t tl = (size_t)(q - t);
			if (!type_valid(t, tl)) {
				if (bad)
					(*bad)++;
			} else {
				for (;;) {
					while (q < le && (ows(*q) || *q == '\r'))
						q++;
					if (q == le)
						break;
					const char *e = q;
					while (q < le && !ows(*q) && *q != '\r')
						q++;
					if (!ext_valid(e, (size_t)(q - e))) {
						if (bad)
							(*bad)++;
						continue;
					}
					if (entries && n < cap)
						entries[n] = (struct mime_entry){{e, (size_t)(q - e)}, {t, tl}, order};
					order++;
					if (!entries || n < cap)
						n++;
				}
			}
		}
		p = eol < end ? eol + 1 : end;
	}
	if (entries)
		qsort(entries, n, sizeof(*entries), entry_cmp);
	return n;
}

struct http_slice mime_lookup(const struct mime_entry *entries, size_t n, const char *name, size_t len)
{
	const char *dot = NULL;
	for (size_t i = len; i > 0; i--) {
		if (name[i - 1] == '/')
			break;
		if (name[i - 1] == '.') {
			dot = name + i - 1;
			break;
		}
	}
	if (!dot || dot + 1 == name + len)
		return (struct http_slice){NULL, 0};
	const char *e = dot + 1;
	size_t el = (size_t)(name + len - e);
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ext_cmp(entries[mid].ext.p, entries[mid].ext.len, e, el) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* lo is the first entry not below e: the one listed first */
	if (lo < n && ext_cmp(entries[lo].ext.p, entries[lo].ext.len, e, el) == 0)
		return entries[lo].type;
	return (struct http_slice){NULL, 0};
}

#define S(s)                                                                                                           \
	{                                                                                                              \
		s, sizeof(s) - 1                                                                                       \
	}
#define M(e, t)                                                                                                        \
	{                                                                                                              \
		S(e), S(t), 0                                                                                          \
	}
/* sorted by extension (t/unit/test_http_file checks it) */
const struct mime_entry mime_builtin[] = {
    M("avif", "image/avif"),	   M("bmp", "image/bmp"),	 M("css", "text/css"),
    M("csv", "text/csv"),	   M("gif", "image/gif"),	 M("gz", "application/gzip"),
    M("htm", "text/html"),	   M("html", "text/html"),	 M("ico", "image/vnd.microsoft.icon"),
    M("jpeg", "image/jpeg"),	   M("jpg", "image/jpeg"),	 M("js", "text/javascript"),
    M("json", "application/json"), M("map", "application/json"), M("mjs", "text/javascript"),
    M("mp3", "audio/mpeg"),	   M("mp4", "video/mp4"),	 M("otf", "font/otf"),
    M("pdf", "application/pdf"),   M("png", "image/png"),	 M("svg", "image/svg+xml"),
    M("tar", "application/x-tar"), M("ttf", "font/ttf"),	 M("txt", "text/plain"),
    M("wasm", "application/wasm"), M("webm", "video/webm"),	 M("webp", "image/webp"),
    M("woff", "font/woff"),	   M("woff2", "font/woff2"),	 M("xml", "application/xml"),
    M("zip", "application/zip"),
};
const size_t mime_builtin_count = sizeof(mime_builtin) / sizeof(mime_builtin[0]);
