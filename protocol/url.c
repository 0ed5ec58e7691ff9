#include "url.h"

#include <string.h>

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int url_decode_path(const char *path, size_t len, char *out, size_t *outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c == '%') {
			if (len - i < 3)
				return URL_BAD;
			int h = hexval((unsigned char)path[i + 1]), l = hexval((unsigned char)path[i + 2]);
			if (h < 0 || l < 0)
				return URL_BAD;
			c = (unsigned char)(h * 16 + l);
			if (c == '/')
				return URL_FORBIDDEN;
			i += 2;
		}
		if (c == 0)
			return URL_BAD;
		if (c == '/' && o && out[o - 1] == '/')
			continue; /* "//" is "/" (an encoded slash was refused) */
		out[o++] = (char)c;
	}
	out[o] = 0;
	*outlen = o;
	return URL_OK;
}

size_t url_encode_path(const char *p, size_t len, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (c && strchr("-._~!$&'()*+,;=:@/", c))) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = 0;
	return o;
}

int url_check_segments(const char *p, size_t len, size_t hidden_from)
{
	if (len == 0 || p[0] != '/')
		return URL_FORBIDDEN;
	size_t i = 0;
	while (i < len) {
		/* p[i] == '/' */
		size_t s = i + 1;
		size_t e = s;
		while (e < len && p[e] != '/')
			e++;
		if (e > s && p[s] == '.' && (e - s <= 2 && p[e - 1] == '.'))
			return URL_FORBIDDEN; /* "." or ".." */
		if (e > s && p[s] == '.' && s >= hidden_from)
			return URL_FORBIDDEN; /* ".hidden" */
		i = e;
	}
	return URL_OK;
}

int url_prefix_match(const char *p, size_t plen, const char *pre, size_t prelen)
{
	if (plen < prelen || memcmp(p, pre, prelen) != 0)
		return 0;
	if (prelen == 0 || pre[prelen - 1] == '/' || plen == prelen || p[prelen] == '/')
		return 1;
	return 0;
}

int url_suffix_match(const char *p, size_t plen, const char *sfx, size_t slen, size_t *len_out)
{
	if (slen == 0)
		return 0;
	for (size_t end = 1; end <= plen; end++) {
		if (end < plen && p[end] != '/')
			continue;
		if (end >= slen && memcmp(p + end - slen, sfx, slen) == 0) {
			if (len_out)
				*len_out = end;
			return 1;
		}
	}
	return 0;
}
