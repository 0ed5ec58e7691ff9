/* libFuzzer target: the request head parser, whole and fed in two pieces
 * (the split result must equal the whole one). Whatever the result, the
 * request holds nothing of an earlier parse: every slice is empty or lies
 * in the input. A parsed Host passes http_host_split. */
#include <stdlib.h>
#include <string.h>

#include "../../protocol/http_parser.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int in_buf(struct http_slice s, const char *buf, size_t size)
{
	return s.len == 0 || (s.p >= buf && s.p + s.len <= buf + size);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct http_limits lim = {.request_line = 1024, .header_size = 4096, .header_count = 32, .header_field = 512};
	struct http_header h1[32], h2[32];
	struct http_request r1, r2;
	size_t scan = 0;
	/* an earlier request in another buffer */
	static const char prev[] = "POST http://p.example/x?y HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\n\r\n";
	if (http_parse_request(prev, sizeof(prev) - 1, &lim, h1, &r1, &scan) != 1)
		abort();
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	scan = 0;
	int rc1 = http_parse_request(buf, size, &lim, h1, &r1, &scan);
	if (!in_buf(r1.method, buf, size) || !in_buf(r1.target, buf, size) || !in_buf(r1.query, buf, size) ||
	    !in_buf(r1.authority, buf, size) || !in_buf(r1.host, buf, size) ||
	    !(in_buf(r1.path, buf, size) || (r1.path.len == 1 && r1.path.p[0] == '/')) ||
	    r1.nheaders > lim.header_count || r1.headers != h1)
		abort();
	for (unsigned i = 0; i < r1.nheaders; i++)
		if (!in_buf(h1[i].name, buf, size) || !in_buf(h1[i].value, buf, size))
			abort();
	if (rc1 <= 0 && r1.head_len != 0)
		abort();
	size_t cut = size ? data[0] % (size + 1) : 0;
	scan = 0;
	int rc2 = http_parse_request(buf, cut, &lim, h2, &r2, &scan);
	if (rc2 == 0)
		rc2 = http_parse_request(buf, size, &lim, h2, &r2, &scan);
	if (rc2 != 0 && rc1 > 0 && rc2 > 0 && r1.head_len != r2.head_len)
		abort();
	if (rc1 > 0) {
		struct http_slice name, port;
		if (r1.head_len > size || http_host_split(r1.host, &name, &port) < 0)
			abort();
	}
	free(buf);
	return 0;
}
