#include "fcgi.h"

#include <string.h>

size_t fcgi_encode_header(unsigned char *out, int type, unsigned id, size_t content_len, size_t *padding)
{
	size_t pad = (8 - (content_len & 7)) & 7;
	out[0] = FCGI_VERSION_1;
	out[1] = (unsigned char)type;
	out[2] = (unsigned char)(id >> 8);
	out[3] = (unsigned char)id;
	out[4] = (unsigned char)(content_len >> 8);
	out[5] = (unsigned char)content_len;
	out[6] = (unsigned char)pad;
	out[7] = 0;
	if (padding)
		*padding = pad;
	return FCGI_HEADER_LEN;
}

size_t fcgi_encode_begin(unsigned char *out, unsigned id, int keep_conn)
{
	fcgi_encode_header(out, FCGI_BEGIN_REQUEST, id, 8, NULL);
	memset(out + 8, 0, 8);
	out[9] = FCGI_RESPONDER;
	out[10] = keep_conn ? FCGI_KEEP_CONN : 0;
	return 16;
}

size_t fcgi_encode_abort(unsigned char *out, unsigned id)
{
	return fcgi_encode_header(out, FCGI_ABORT_REQUEST, id, 0, NULL);
}

static size_t len_size(size_t n)
{
	return n < 128 ? 1 : 4;
}

size_t fcgi_pair_len(size_t nl, size_t vl)
{
	return len_size(nl) + len_size(vl) + nl + vl;
}

static unsigned char *put_len(unsigned char *p, size_t n)
{
	if (n < 128) {
		*p++ = (unsigned char)n;
		return p;
	}
	*p++ = (unsigned char)(0x80 | (n >> 24));
	*p++ = (unsigned char)(n >> 16);
	*p++ = (unsigned char)(n >> 8);
	*p++ = (unsigned char)n;
	return p;
}

size_t fcgi_params_size(char *const *envp)
{
	size_t content = 0;
	for (size_t i = 0; envp[i]; i++) {
		const char *eq = strchr(envp[i], '=');
		size_t nl = eq ? (size_t)(eq - envp[i]) : strlen(envp[i]);
		size_t vl = eq ? strlen(eq + 1) : 0;
		content += fcgi_pair_len(nl, vl);
	}
	size_t records = content / FCGI_MAX_LENGTH + 1;
	return content + records * (FCGI_HEADER_LEN + 7) + FCGI_HEADER_LEN;
}

/* Stream bytes into PARAMS records: a record is closed when full. */
struct pstream {
	unsigned char *out, *rec;
	size_t cap, len, rec_len;
	unsigned id;
	int overflow;
};

static void ps_close(struct pstream *s)
{
	if (!s->rec || s->rec_len == 0)
		return;
	size_t pad;
	fcgi_encode_header(s->rec, FCGI_PARAMS, s->id, s->rec_len, &pad);
	if (s->len + pad > s->cap) {
		s->overflow = 1;
		return;
	}
	memset(s->out + s->len, 0, pad);
	s->len += pad;
	s->rec = NULL;
	s->rec_len = 0;
}

static void ps_put(struct pstream *s, const unsigned char *p, size_t n)
{
	while (n && !s->overflow) {
		if (!s->rec) {
			if (s->len + FCGI_HEADER_LEN > s->cap) {
				s->overflow = 1;
				return;
			}
			s->rec = s->out + s->len;
			s->len += FCGI_HEADER_LEN;
		}
		size_t room = FCGI_MAX_LENGTH - s->rec_len;
		size_t k = n < room ? n : room;
		if (s->len + k > s->cap) {
			s->overflow = 1;
			return;
		}
		memcpy(s->out + s->len, p, k);
		s->len += k;
		s->rec_len += k;
		p += k;
		n -= k;
		if (s->rec_len == FCGI_MAX_LENGTH)
			ps_close(s);
	}
}

size_t fcgi_encode_params(unsigned char *out, size_t cap, unsigned id, char *const *envp)
{
	struct pstream s = {.out = out, .cap = cap, .id = id};
	for (size_t i = 0; envp[i]; i++) {
		const char *eq = strchr(envp[i], '=');
		size_t nl = eq ? (size_t)(eq - envp[i]) : strlen(envp[i]);
		const char *v = eq ? eq + 1 : "";
		size_t vl = strlen(v);
		unsigned char lens[8], *e = put_len(put_len(lens, nl), vl);
		ps_put(&s, lens, (size_t)(e - lens));
		ps_put(&s, (const unsigned char *)envp[i], nl);
		ps_put(&s, (const unsigned char *)v, vl);
	}
	ps_close(&s);
	if (s.overflow || s.len + FCGI_HEADER_LEN > cap)
		return 0;
	s.len += fcgi_encode_header(out + s.len, FCGI_PARAMS, id, 0, NULL);
	return s.len;
}

size_t fcgi_encode_stdin_header(unsigned char *out, unsigned id, size_t len, size_t *padding)
{
	return fcgi_encode_header(out, FCGI_STDIN, id, len, padding);
}

int fcgi_set_request_id(unsigned char *buf, size_t len, unsigned id)
{
	size_t i = 0;
	while (i < len) {
		if (len - i < FCGI_HEADER_LEN || buf[i] != FCGI_VERSION_1)
			return -1;
		size_t rec = FCGI_HEADER_LEN + ((size_t)buf[i + 4] << 8 | buf[i + 5]) + buf[i + 6];
		if (rec > len - i)
			return -1;
		buf[i + 2] = (unsigned char)(id >> 8);
		buf[i + 3] = (unsigned char)id;
		i += rec;
	}
	return 0;
}

enum { D_HEADER, D_CONTENT, D_PADDING };

void fcgi_decoder_init(struct fcgi_decoder *d, unsigned request_id)
{
	memset(d, 0, sizeof(*d));
	d->state = D_HEADER;
	d->want_id = request_id;
}

size_t fcgi_decode(struct fcgi_decoder *d, const unsigned char *in, size_t len, struct fcgi_event *ev)
{
	size_t i = 0;
	*ev = (struct fcgi_event){.type = FCGI_EV_NONE}; /* no data of an earlier event */
	while (i < len) {
		switch (d->state) {
		case D_HEADER: {
			size_t k = FCGI_HEADER_LEN - d->hdr_len;
			if (k > len - i)
				k = len - i;
			memcpy(d->hdr + d->hdr_len, in + i, k);
			d->hdr_len += k;
			i += k;
			if (d->hdr_len < FCGI_HEADER_LEN)
				return i;
			d->hdr_len = 0;
			if (d->hdr[0] != FCGI_VERSION_1) {
				ev->type = FCGI_EV_ERROR;
				return i;
			}
			d->type = d->hdr[1];
			d->id = (unsigned)d->hdr[2] << 8 | d->hdr[3];
			d->content_left = (size_t)d->hdr[4] << 8 | d->hdr[5];
			d->padding_left = d->hdr[6];
			d->body_len = 0;
			int management = d->id == FCGI_NULL_REQUEST_ID &&
					 (d->type == FCGI_GET_VALUES_RESULT || d->type == FCGI_UNKNOWN_TYPE);
			int known = d->type == FCGI_STDOUT || d->type == FCGI_STDERR || d->type == FCGI_END_REQUEST;
			if (!management && (!known || d->id != d->want_id)) {
				ev->type = FCGI_EV_ERROR;
				return i;
			}
			if (d->type == FCGI_END_REQUEST && d->content_left != 8) {
				ev->type = FCGI_EV_ERROR;
				return i;
			}
			d->state = D_CONTENT;
			if (d->content_left == 0) {
				/* an empty STDOUT/STDERR record ends that stream:
				 * nothing to report */
				d->state = d->padding_left ? D_PADDING : D_HEADER;
			}
			break;
		}
		case D_CONTENT: {
			size_t k = d->content_left < len - i ? d->content_left : len - i;
			if (d->type == FCGI_STDOUT || d->type == FCGI_STDERR) {
				d->content_left -= k;
				if (d->content_left == 0)
					d->state = d->padding_left ? D_PADDING : D_HEADER;
				ev->type = d->type == FCGI_STDOUT ? FCGI_EV_STDOUT : FCGI_EV_STDERR;
				ev->data = in + i;
				ev->len = k;
				return i + k;
			}
			if (d->type == FCGI_END_REQUEST) {
				memcpy(d->body + d->body_len, in + i, k);
				d->body_len += k;
			}
			d->content_left -= k;
			i += k;
			if (d->content_left)
				return i;
			d->state = d->padding_left ? D_PADDING : D_HEADER;
			if (d->type == FCGI_END_REQUEST) {
				ev->type = FCGI_EV_END;
				ev->app_status = (uint32_t)d->body[0] << 24 | (uint32_t)d->body[1] << 16 |
						 (uint32_t)d->body[2] << 8 | d->body[3];
				ev->protocol_status = d->body[4];
				if (d->state == D_PADDING) {
					/* swallow the padding now if it is here */
					size_t p = d->padding_left < len - i ? d->padding_left : len - i;
					d->padding_left -= p;
					i += p;
					if (!d->padding_left)
						d->state = D_HEADER;
				}
				return i;
			}
			break;
		}
		case D_PADDING: {
			size_t k = d->padding_left < len - i ? d->padding_left : len - i;
			d->padding_left -= k;
			i += k;
			if (!d->padding_left)
				d->state = D_HEADER;
			break;
		}
		}
	}
	return i;
}
