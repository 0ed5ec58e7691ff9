/* FastCGI record codec (the FastCGI 1.0 specification), using libfcgi's
 * fastcgi.h for the record layout and constants. Pure: the encoder writes
 * into caller buffers, the decoder is a resumable header/content/padding
 * state machine that never does I/O. */
#ifndef CPM_FCGI_H
#define CPM_FCGI_H

#include <fastcgi.h>
#include <stddef.h>
#include <stdint.h>

/* ---- encoding ---- */

/* A record header for content_len bytes; padding rounds the record to 8
 * bytes. Returns FCGI_HEADER_LEN; *padding is set. */
size_t fcgi_encode_header(unsigned char *out, int type, unsigned id, size_t content_len, size_t *padding);

/* BEGIN_REQUEST for the responder role: 16 bytes. */
size_t fcgi_encode_begin(unsigned char *out, unsigned id, int keep_conn);

/* ABORT_REQUEST: 8 bytes. */
size_t fcgi_encode_abort(unsigned char *out, unsigned id);

/* Bytes one name-value pair takes (1- or 4-byte lengths). */
size_t fcgi_pair_len(size_t nl, size_t vl);

/* The whole PARAMS stream for envp ("NAME=value" strings): records of at
 * most 65535 content bytes, then the empty PARAMS record that ends it.
 * Returns the bytes written, or 0 if cap is too small. A pair larger than
 * one record is split across records, as the specification allows. */
size_t fcgi_encode_params(unsigned char *out, size_t cap, unsigned id, char *const *envp);

/* Bytes fcgi_encode_params will need. */
size_t fcgi_params_size(char *const *envp);

/* One STDIN record header (+ its padding after the data); len 0 ends the
 * stream. The caller sends header, data, then *padding zero bytes. */
size_t fcgi_encode_stdin_header(unsigned char *out, unsigned id, size_t len, size_t *padding);

/* Give every complete record in buf[0..len) the request id id (a request
 * encoded before the connection it goes on was chosen). Returns 0, or -1
 * if buf does not hold whole records. */
int fcgi_set_request_id(unsigned char *buf, size_t len, unsigned id);

/* ---- decoding ---- */

enum fcgi_event_type {
	FCGI_EV_NONE,	/* need more bytes */
	FCGI_EV_STDOUT, /* data, len: a piece of the application's stdout */
	FCGI_EV_STDERR, /* data, len: a piece of its stderr */
	FCGI_EV_END,	/* app_status, protocol_status: the request is over */
	FCGI_EV_ERROR,	/* malformed stream: the connection is unusable */
};

struct fcgi_event {
	enum fcgi_event_type type;
	const unsigned char *data;
	size_t len;
	uint32_t app_status;
	int protocol_status;
};

struct fcgi_decoder {
	int state;
	unsigned char hdr[FCGI_HEADER_LEN];
	size_t hdr_len;
	int type;
	unsigned id;
	size_t content_left, padding_left;
	unsigned char body[8]; /* END_REQUEST body */
	size_t body_len;
	unsigned want_id; /* records for other ids are an error */
};

void fcgi_decoder_init(struct fcgi_decoder *d, unsigned request_id);

/* Consume bytes from in[0..len) up to the next event. Returns the bytes
 * consumed; *ev says what, if anything, they made. Records the client does
 * not need (GET_VALUES_RESULT, UNKNOWN_TYPE) are skipped. */
size_t fcgi_decode(struct fcgi_decoder *d, const unsigned char *in, size_t len, struct fcgi_event *ev);

#endif
