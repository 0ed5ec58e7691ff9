/* libFuzzer target: the request head parser, whole and fed in two pieces
 * (the split result must equal the whole one). */
#include <stdlib.h>
#include <string.h>

#include "../../protocol/http_parser.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct http_limits lim = {.request_line = 1024, .header_size = 4096, .header_count = 32};
	struct http_header h1[32], h2[32];
	struct http_request r1, r2;
	size_t scan = 0;
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	int rc1 = http_parse_request(buf, size, &lim, h1, &r1, &scan);
	size_t cut = size ? data[0] % (size + 1) : 0;
	scan = 0;
	int rc2 = http_parse_request(buf, cut, &lim, h2, &r2, &scan);
	if (rc2 == 0)
		rc2 = http_parse_request(buf, size, &lim, h2, &r2, &scan);
	if (rc2 != 0 && rc1 > 0 && rc2 > 0 && r1.head_len != r2.head_len)
		abort();
	if (rc1 > 0) {
		if (r1.head_len > size || r1.nheaders > lim.header_count)
			abort();
		for (unsigned i = 0; i < r1.nheaders; i++)
			if (h1[i].name.p < buf || h1[i].value.p + h1[i].value.len > buf + size)
				abort();
	}
	free(buf);
	return 0;
}
