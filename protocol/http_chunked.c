/* Chunked transfer coding decoder (RFC 9112 7.1), resumable byte by byte. */
#include "http_chunked.h"

#include <string.h>

#include "http_parser.h"

enum {
	S_SIZE,	   /* hex digits of chunk-size */
	S_EXT_BWS, /* whitespace after chunk-size: a ';' must follow */
	S_EXT,	   /* chunk-ext up to CRLF */
	S_SIZE_LF, /* after CR of the size line */
	S_DATA,	   /* chunk data */
	S_DATA_CR, /* CRLF after data */
	S_DATA_LF,
	S_TRAILER,	 /* start of a trailer line (or the final empty line) */
	S_TRAILER_NAME,	 /* in a trailer field's name */
	S_TRAILER_VALUE, /* after its ':' */
	S_TRAILER_LF,	 /* after CR of a trailer line */
	S_FINAL_LF,	 /* after CR of the final empty line */
	S_DONE,
};

#define MAX_LINE     4096 /* chunk-size line with extensions */
#define MAX_TRAILERS 8192 /* all trailer fields together */

void http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = S_SIZE;
	c->max_body = UINT64_MAX;
}

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

/* RFC 9110 6.5.1: fields a sender must not put in trailers. Trailers are
 * dropped, never merged into the header, so only those that would change
 * how an intermediary frames or routes the message are refused: the ones
 * request smuggling is made of. (Content-Type and the like are accepted, as
 * the conformance corpus requires.) */
static int forbidden_trailer(const char *name, size_t len)
{
	static const char *const names[] = {
	    "content-length", "transfer-encoding", "host",    "trailer",	  "te",
	    "connection",     "keep-alive",	   "upgrade", "proxy-connection",
	};
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if (strlen(names[k]) == len && memcmp(names[k], name, len) == 0)
			return 1;
	return 0;
}

int http_chunked_decode(struct http_chunked *c, const char *in, size_t inlen, char *out, size_t *consumed,
			size_t *produced)
{
	size_t i = 0, o = 0;
	int rc = CHUNKED_MORE;
	while (i < inlen) {
		unsigned char ch = (unsigned char)in[i];
		switch (c->state) {
		case S_SIZE: {
			int h = hexval(ch);
			if (h >= 0) {
				if (c->digits >= 15)
					goto bad; /* would overflow 2^60: nobody sends that */
				c->remaining = c->remaining * 16 + (uint64_t)h;
				c->digits++;
				/* refused as soon as it is declared, before its bytes */
				if (c->remaining > c->max_body - c->total) {
					rc = CHUNKED_TOO_LARGE;
					goto fail;
				}
				i++;
				break;
			}
			if (c->digits == 0)
				goto bad;
			if (ch == ';' || ch == ' ' || ch == '\t') {
				c->state = ch == ';' ? S_EXT : S_EXT_BWS;
				c->line_len = c->digits;
				break;
			}
			if (ch != '\r')
				goto bad; /* a bare LF too: framing lines end in CRLF */
			c->state = S_SIZE_LF;
			i++;
			break;
		}
		case S_EXT_BWS:
			/* chunk-ext = *( BWS ";" ...): "5 \r\n" has no extension
			 * after its whitespace */
			if (ch == ';') {
				c->state = S_EXT;
				break;
			}
			if (ch != ' ' && ch != '\t')
				goto bad;
			if (++c->line_len > MAX_LINE)
				goto bad;
			i++;
			break;
		case S_EXT:
			/* chunk-ext: BWS ";" ext-name [ "=" ext-value ]; we only
			 * check that it is printable and bounded. */
			if (ch == '\r') {
				c->state = S_SIZE_LF;
				i++;
				break;
			}
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				goto bad; /* LF included */
			if (++c->line_len > MAX_LINE)
				goto bad;
			i++;
			break;
		case S_SIZE_LF:
			if (ch != '\n')
				goto bad;
			i++;
			c->digits = 0;
			c->line_len = 0;
			c->total += c->remaining;
			c->state = c->remaining ? S_DATA : S_TRAILER;
			break;
		case S_DATA: {
			size_t n = inlen - i;
			if (n > c->remaining)
				n = (size_t)c->remaining;
			if (out + o != in + i)
				memmove(out + o, in + i, n);
			o += n;
			i += n;
			c->remaining -= n;
			if (c->remaining == 0)
				c->state = S_DATA_CR;
			break;
		}
		case S_DATA_CR:
			if (ch != '\r')
				goto bad;
			c->state = S_DATA_LF;
			i++;
			break;
		case S_DATA_LF:
			if (ch != '\n')
				goto bad;
			i++;
			c->state = S_SIZE;
			break;
		case S_TRAILER:
			/* a trailer field line or the final empty line */
			if (ch == '\r') {
				c->state = S_FINAL_LF;
				i++;
				break;
			}
			if (!http_is_tchar(ch))
				goto bad; /* an empty name, obs-fold, a bare LF */
			c->state = S_TRAILER_NAME;
			c->tname_len = 0;
			break;
		case S_TRAILER_NAME:
			/* field-name = token, then ':' at once (RFC 9112 5.1) */
			if (ch == ':') {
				if (c->tname_len <= sizeof(c->tname) && forbidden_trailer(c->tname, c->tname_len))
					goto bad;
				c->state = S_TRAILER_VALUE;
			} else if (http_is_tchar(ch)) {
				if (c->tname_len < sizeof(c->tname))
					c->tname[c->tname_len] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
				if (c->tname_len <= sizeof(c->tname))
					c->tname_len++;
			} else {
				goto bad;
			}
			if (++c->trailer_len > MAX_TRAILERS)
				goto bad;
			i++;
			break;
		case S_TRAILER_VALUE:
			if (ch == '\r') {
				c->state = S_TRAILER_LF;
				i++;
				break;
			}
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				goto bad; /* LF and other controls, as in the head */
			if (++c->trailer_len > MAX_TRAILERS)
				goto bad;
			i++;
			break;
		case S_TRAILER_LF:
			if (ch != '\n')
				goto bad;
			i++;
			c->state = S_TRAILER;
			break;
		case S_FINAL_LF:
			if (ch != '\n')
				goto bad;
			i++;
			c->state = S_DONE;
			rc = CHUNKED_DONE;
			goto out;
		case S_DONE: rc = CHUNKED_DONE; goto out;
		default: goto bad;
		}
	}
	if (c->state == S_DONE)
		rc = CHUNKED_DONE;
out:
	*consumed = i;
	*produced = o;
	return rc;
bad:
	rc = CHUNKED_ERROR;
fail:
	*consumed = i;
	*produced = o;
	return rc;
}
