/* libFuzzer target: the CGI response header parser. Whatever it accepts
 * must be safe to forward: no CR, LF or NUL in a field, no 1xx status. */
#include <stdlib.h>
#include <string.h>

#include "../../protocol/cgi_response.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct http_header f[16];
	struct cgi_response r;
	size_t scan = 0;
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	int rc = cgi_response_parse(buf, size, 4096, f, 16, &r, &scan);
	if (rc > 0) {
		if (r.status && (r.status < 200 || r.status > 599))
			abort();
		for (unsigned i = 0; i < r.nfields; i++) {
			if (memchr(f[i].value.p, '\r', f[i].value.len) || memchr(f[i].value.p, '\n', f[i].value.len) ||
			    memchr(f[i].value.p, 0, f[i].value.len) || memchr(f[i].name.p, ':', f[i].name.len))
				abort();
		}
	}
	free(buf);
	return 0;
}
