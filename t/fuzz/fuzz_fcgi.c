/* libFuzzer target: the FastCGI record decoder, whole and byte by byte;
 * both must produce the same stdout, stderr and end. */
#include <stdlib.h>
#include <string.h>

#include "../../protocol/fcgi.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static size_t run(const unsigned char *data, size_t size, size_t step, unsigned char *out, int *end)
{
	struct fcgi_decoder d;
	fcgi_decoder_init(&d, 1);
	size_t i = 0, o = 0;
	*end = 0;
	while (i < size) {
		struct fcgi_event ev;
		size_t n = size - i < step ? size - i : step;
		size_t used = fcgi_decode(&d, data + i, n, &ev);
		if (used > n)
			abort();
		i += used;
		if (ev.type == FCGI_EV_STDOUT || ev.type == FCGI_EV_STDERR) {
			memcpy(out + o, ev.data, ev.len);
			o += ev.len;
		} else if (ev.type == FCGI_EV_END) {
			*end = 1 + ev.protocol_status;
		} else if (ev.type == FCGI_EV_ERROR) {
			*end = -1;
			return o;
		} else if (used == 0) {
			break;
		}
	}
	return o;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	unsigned char *a = malloc(size + 1), *b = malloc(size + 1);
	int ea, eb;
	size_t na = run(data, size, size ? size : 1, a, &ea);
	size_t nb = run(data, size, 1, b, &eb);
	if (ea != eb || na != nb || memcmp(a, b, na) != 0)
		abort();
	free(a);
	free(b);
	return 0;
}
