/* Unit tests for protocol/fcgi.c: the FastCGI record codec. */
#include <stdlib.h>
#include <string.h>

#include "../../protocol/fcgi.h"
#include "unit.h"

/* Reassemble the PARAMS stream and decode its name-value pairs back into
 * "NAME=value" strings; checks record framing on the way. */
static int read_params(const unsigned char *p, size_t len, unsigned id, char out[][256], int max, size_t bigcap,
		       char *big)
{
	unsigned char *stream = malloc(len);
	size_t sl = 0, i = 0;
	int ended = 0;
	while (i + FCGI_HEADER_LEN <= len) {
		CHECK_EQ_INT(p[i], FCGI_VERSION_1);
		CHECK_EQ_INT(p[i + 1], FCGI_PARAMS);
		CHECK_EQ_INT((p[i + 2] << 8) | p[i + 3], id);
		size_t cl = (size_t)p[i + 4] << 8 | p[i + 5], pad = p[i + 6];
		CHECK_EQ_INT((cl + pad) % 8, 0);
		if (cl == 0) {
			ended = 1;
			i += FCGI_HEADER_LEN;
			break;
		}
		memcpy(stream + sl, p + i + FCGI_HEADER_LEN, cl);
		sl += cl;
		i += FCGI_HEADER_LEN + cl + pad;
	}
	CHECK(ended);
	CHECK_EQ_INT(i, len);
	int n = 0;
	size_t k = 0;
	while (k < sl && n < max) {
		size_t lens[2];
		for (int j = 0; j < 2; j++) {
			if (stream[k] & 0x80) {
				lens[j] = ((size_t)(stream[k] & 0x7f) << 24) | (size_t)stream[k + 1] << 16 |
					  (size_t)stream[k + 2] << 8 | stream[k + 3];
				k += 4;
			} else {
				lens[j] = stream[k++];
			}
		}
		if (lens[0] + lens[1] + 2 < 256) {
			memcpy(out[n], stream + k, lens[0]);
			out[n][lens[0]] = '=';
			memcpy(out[n] + lens[0] + 1, stream + k + lens[0], lens[1]);
			out[n][lens[0] + 1 + lens[1]] = 0;
		} else if (big && lens[1] < bigcap) {
			memcpy(big, stream + k + lens[0], lens[1]);
			strcpy(out[n], "BIG");
		}
		k += lens[0] + lens[1];
		n++;
	}
	free(stream);
	return n;
}

static void test_params(void)
{
	char *env[] = {"GATEWAY_INTERFACE=CGI/1.1", "EMPTY=", "QUERY_STRING=a=b", NULL};
	unsigned char buf[4096];
	size_t n = fcgi_encode_params(buf, sizeof(buf), 7, env);
	CHECK(n > 0);
	CHECK(n <= fcgi_params_size(env));
	char out[8][256];
	int k = read_params(buf, n, 7, out, 8, 0, NULL);
	CHECK_EQ_INT(k, 3);
	CHECK_EQ_STR(out[0], "GATEWAY_INTERFACE=CGI/1.1");
	CHECK_EQ_STR(out[1], "EMPTY=");
	CHECK_EQ_STR(out[2], "QUERY_STRING=a=b");
	/* too small a buffer: 0, never a truncated stream */
	CHECK_EQ_INT(fcgi_encode_params(buf, 20, 7, env), 0);
}

static void test_params_large(void)
{
	/* a 200 000-byte value (4-byte length) spans several records */
	size_t vl = 200000;
	char *var = malloc(vl + 8);
	memcpy(var, "HTTP_X=", 7);
	for (size_t i = 0; i < vl; i++)
		var[7 + i] = (char)('a' + i % 26);
	var[7 + vl] = 0;
	char *env[] = {"A=1", var, "Z=2", NULL};
	size_t cap = fcgi_params_size(env);
	unsigned char *buf = malloc(cap);
	size_t n = fcgi_encode_params(buf, cap, 1, env);
	CHECK(n > vl);
	char out[8][256];
	char *big = malloc(vl);
	int k = read_params(buf, n, 1, out, 8, vl + 1, big);
	CHECK_EQ_INT(k, 3);
	CHECK_EQ_STR(out[0], "A=1");
	CHECK_EQ_STR(out[1], "BIG");
	CHECK_MEM(big, vl, var + 7, vl);
	CHECK_EQ_STR(out[2], "Z=2");
	free(big);
	free(buf);
	free(var);
}

static void test_headers(void)
{
	unsigned char h[16];
	size_t pad;
	CHECK_EQ_INT(fcgi_encode_stdin_header(h, 258, 13, &pad), 8);
	CHECK_EQ_INT(pad, 3);
	CHECK_EQ_INT(h[1], FCGI_STDIN);
	CHECK_EQ_INT(h[2], 1);
	CHECK_EQ_INT(h[3], 2);
	CHECK_EQ_INT(h[5], 13);
	CHECK_EQ_INT(h[6], 3);
	fcgi_encode_stdin_header(h, 1, 0, &pad);
	CHECK_EQ_INT(pad, 0);
	CHECK_EQ_INT(fcgi_encode_begin(h, 1, 1), 16);
	CHECK_EQ_INT(h[1], FCGI_BEGIN_REQUEST);
	CHECK_EQ_INT(h[9], FCGI_RESPONDER);
	CHECK_EQ_INT(h[10], FCGI_KEEP_CONN);
	fcgi_encode_begin(h, 1, 0);
	CHECK_EQ_INT(h[10], 0);
	CHECK_EQ_INT(fcgi_encode_abort(h, 5), 8);
	CHECK_EQ_INT(h[1], FCGI_ABORT_REQUEST);
}

/* an application's answer: stdout in two records, stderr, empty stdout,
 * END_REQUEST with padding */
static size_t build_reply(unsigned char *b, unsigned id)
{
	size_t n = 0, pad;
	const char *o1 = "Status: 200\r\n\r\nhel", *o2 = "lo", *e = "warn";
	n += fcgi_encode_header(b + n, FCGI_STDOUT, id, strlen(o1), &pad);
	memcpy(b + n, o1, strlen(o1));
	n += strlen(o1);
	memset(b + n, 0, pad);
	n += pad;
	n += fcgi_encode_header(b + n, FCGI_STDERR, id, strlen(e), &pad);
	memcpy(b + n, e, strlen(e));
	n += strlen(e) + pad;
	n += fcgi_encode_header(b + n, FCGI_STDOUT, id, strlen(o2), &pad);
	memcpy(b + n, o2, strlen(o2));
	n += strlen(o2) + pad;
	n += fcgi_encode_header(b + n, FCGI_STDOUT, id, 0, NULL);
	/* END_REQUEST with 8 bytes of padding, which the spec allows */
	b[n] = 1, b[n + 1] = FCGI_END_REQUEST, b[n + 2] = (unsigned char)(id >> 8), b[n + 3] = (unsigned char)id;
	b[n + 4] = 0, b[n + 5] = 8, b[n + 6] = 8, b[n + 7] = 0;
	n += 8;
	unsigned char body[8] = {0, 0, 1, 2, FCGI_REQUEST_COMPLETE, 0, 0, 0};
	memcpy(b + n, body, 8);
	n += 8;
	memset(b + n, 0, 8);
	return n + 8;
}

static void decode_all(const unsigned char *b, size_t n, size_t step, char *out, char *err, uint32_t *app, int *proto,
		       int *ends, int *errors)
{
	struct fcgi_decoder d;
	fcgi_decoder_init(&d, 3);
	size_t i = 0;
	*ends = *errors = 0;
	out[0] = err[0] = 0;
	while (i < n) {
		size_t avail = n - i < step ? n - i : step;
		struct fcgi_event ev;
		size_t used = fcgi_decode(&d, b + i, avail, &ev);
		i += used;
		if (ev.type == FCGI_EV_STDOUT)
			strncat(out, (const char *)ev.data, ev.len);
		else if (ev.type == FCGI_EV_STDERR)
			strncat(err, (const char *)ev.data, ev.len);
		else if (ev.type == FCGI_EV_END) {
			(*ends)++;
			*app = ev.app_status;
			*proto = ev.protocol_status;
		} else if (ev.type == FCGI_EV_ERROR) {
			(*errors)++;
			return;
		}
		if (used == 0 && ev.type == FCGI_EV_NONE)
			break;
	}
}

static void test_decode_splits(void)
{
	unsigned char b[512];
	size_t n = build_reply(b, 3);
	for (size_t step = 1; step <= n; step++) {
		char out[128], err[128];
		uint32_t app = 0;
		int proto = -1, ends, errors;
		decode_all(b, n, step, out, err, &app, &proto, &ends, &errors);
		CHECK_EQ_STR(out, "Status: 200\r\n\r\nhello");
		CHECK_EQ_STR(err, "warn");
		CHECK_EQ_INT(ends, 1);
		CHECK_EQ_INT(errors, 0);
		CHECK_EQ_INT(app, 258);
		CHECK_EQ_INT(proto, FCGI_REQUEST_COMPLETE);
	}
}

static void test_decode_errors(void)
{
	unsigned char b[512];
	char out[128], err[128];
	uint32_t app;
	int proto, ends, errors;
	size_t n = build_reply(b, 3);
	b[0] = 2; /* bad version */
	decode_all(b, n, n, out, err, &app, &proto, &ends, &errors);
	CHECK_EQ_INT(errors, 1);
	n = build_reply(b, 4); /* another request id */
	decode_all(b, n, n, out, err, &app, &proto, &ends, &errors);
	CHECK_EQ_INT(errors, 1);
	/* END_REQUEST with a wrong length */
	unsigned char e[16] = {1, FCGI_END_REQUEST, 0, 3, 0, 4, 0, 0};
	decode_all(e, 12, 12, out, err, &app, &proto, &ends, &errors);
	CHECK_EQ_INT(errors, 1);
	/* a record type the client never receives */
	unsigned char s[8] = {1, FCGI_STDIN, 0, 3, 0, 0, 0, 0};
	decode_all(s, 8, 8, out, err, &app, &proto, &ends, &errors);
	CHECK_EQ_INT(errors, 1);
	/* a management record is skipped */
	unsigned char m[24] = {1, FCGI_GET_VALUES_RESULT, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	size_t mn = 16 + build_reply(b, 3);
	memcpy(m + 16, b, 8); /* keep m small: decode m then b */
	decode_all(m, 16, 16, out, err, &app, &proto, &ends, &errors);
	CHECK_EQ_INT(errors, 0);
	(void)mn;
	/* overload and unknown role statuses come through */
	n = build_reply(b, 3);
	b[n - 12] = FCGI_OVERLOADED;
	decode_all(b, n, n, out, err, &app, &proto, &ends, &errors);
	CHECK_EQ_INT(proto, FCGI_OVERLOADED);
}

/* An event carries only what this call produced: after a STDOUT event, a
 * call that makes no event (a partial header) leaves no data in ev. */
static void test_decode_event_reset(void)
{
	unsigned char b[512];
	size_t n = build_reply(b, 3);
	struct fcgi_decoder d;
	fcgi_decoder_init(&d, 3);
	struct fcgi_event ev;
	size_t i = 0;
	do
		i += fcgi_decode(&d, b + i, n - i, &ev);
	while (ev.type != FCGI_EV_STDOUT && i < n);
	CHECK_EQ_INT(ev.type, FCGI_EV_STDOUT);
	CHECK(ev.data != NULL && ev.len > 0);
	fcgi_decoder_init(&d, 3);
	CHECK_EQ_INT(fcgi_decode(&d, b, 3, &ev), 3);
	CHECK_EQ_INT(ev.type, FCGI_EV_NONE);
	CHECK(ev.data == NULL);
	CHECK_EQ_INT(ev.len, 0);
	CHECK_EQ_INT(ev.app_status, 0);
	CHECK_EQ_INT(ev.protocol_status, 0);
}

/* A request encoded with id 1 and given another id before it is sent: every
 * record header changes, nothing else; a cut record is refused. */
static void test_set_request_id(void)
{
	unsigned char buf[4096];
	char *envp[] = {"A=1",
			"LONG="
			"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			NULL};
	size_t n = fcgi_encode_begin(buf, 1, 1);
	n += fcgi_encode_params(buf + n, sizeof(buf) - n, 1, envp);
	size_t pad;
	n += fcgi_encode_stdin_header(buf + n, 1, 3, &pad);
	memcpy(buf + n, "abc", 3);
	n += 3;
	memset(buf + n, 0, pad);
	n += pad;
	unsigned char want[4096];
	size_t m = fcgi_encode_begin(want, 0x1234, 1);
	m += fcgi_encode_params(want + m, sizeof(want) - m, 0x1234, envp);
	m += fcgi_encode_stdin_header(want + m, 0x1234, 3, &pad);
	memcpy(want + m, "abc", 3);
	m += 3;
	memset(want + m, 0, pad);
	m += pad;
	CHECK_EQ_INT(n, m);
	CHECK_EQ_INT(fcgi_set_request_id(buf, n, 0x1234), 0);
	CHECK(memcmp(buf, want, n) == 0);
	CHECK_EQ_INT(fcgi_set_request_id(buf, n - 1, 7), -1);
	CHECK_EQ_INT(fcgi_set_request_id(buf, 5, 7), -1);
	CHECK_EQ_INT(fcgi_set_request_id(buf, 0, 7), 0);
}

int main(void)
{
	test_set_request_id();
	test_params();
	test_decode_event_reset();
	test_params_large();
	test_headers();
	test_decode_splits();
	test_decode_errors();
	return unit_done();
}
