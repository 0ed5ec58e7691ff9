/* libFuzzer target: the chunked decoder, in place and byte by byte; both
 * must agree on the result and on every byte consumed and produced, errors
 * included. The first input byte picks a body limit (0xff: none). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../protocol/http_chunked.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size == 0)
		return 0;
	uint64_t max = data[0] == 0xff ? UINT64_MAX : (uint64_t)data[0] * 8;
	data++;
	size--;
	char *a = malloc(size + 1), *b = malloc(size + 1);
	memcpy(a, data, size);
	struct http_chunked c1, c2;
	http_chunked_init(&c1);
	http_chunked_init(&c2);
	c1.max_body = c2.max_body = max;
	size_t used1, out1;
	int rc1 = http_chunked_decode(&c1, a, size, a, &used1, &out1);
	size_t used2 = 0, out2 = 0;
	int rc2 = CHUNKED_MORE;
	while (used2 < size && rc2 == CHUNKED_MORE) {
		size_t u, o;
		rc2 = http_chunked_decode(&c2, (const char *)data + used2, 1, b + out2, &u, &o);
		used2 += u;
		out2 += o;
		if (u == 0)
			break;
	}
	if (rc1 != rc2)
		abort();
	if (used1 != used2 || out1 != out2 || memcmp(a, b, out1) != 0)
		abort();
	if (out1 > max || used1 > size)
		abort();
	free(a);
	free(b);
	return 0;
}
