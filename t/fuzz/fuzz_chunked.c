/* libFuzzer target: the chunked decoder, in place and byte by byte; both
 * must agree. */
#include <stdlib.h>
#include <string.h>

#include "../../protocol/http_chunked.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *a = malloc(size + 1), *b = malloc(size + 1);
	memcpy(a, data, size);
	struct http_chunked c1, c2;
	http_chunked_init(&c1);
	http_chunked_init(&c2);
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
	if (rc1 != CHUNKED_ERROR && (used1 != used2 || out1 != out2 || memcmp(a, b, out1) != 0))
		abort();
	free(a);
	free(b);
	return 0;
}
