/* libFuzzer target: the pure access and auth parsers. The input is split
 * at the first NUL: the text before it is parsed as an access-list entry
 * (and, if it parses, matched against a peer made of the bytes after the
 * NUL), as a Basic Authorization value, as an htpasswd line and as a path
 * for a route suffix. A parsed entry must match itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../protocol/cidr.h"
#include "../../protocol/http_auth.h"
#include "../../protocol/url.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const unsigned char *nul = memchr(data, 0, size);
	size_t tl = nul ? (size_t)(nul - data) : size;
	char *text = malloc(tl + 1);
	memcpy(text, data, tl);
	text[tl] = 0;
	const unsigned char *rest = nul ? nul + 1 : data + size;
	size_t rl = size - (size_t)(rest - data);

	struct cidr e;
	const char *why = NULL;
	if (cidr_parse(text, &e, &why) == 0) {
		if (e.kind == CIDR_PREFIX && e.bits > 128)
			abort();
		struct cidr_peer p = {0};
		p.family = rl ? (rest[0] & 1 ? 6 : 4) : 0;
		if (rl > 1)
			memcpy(p.addr, rest + 1, rl - 1 > 16 ? 16 : rl - 1);
		cidr_match(&e, &p);
		/* the entry's own address matches it */
		struct cidr_peer self = {.family = 6};
		memcpy(self.addr, e.addr, 16);
		if (e.kind == CIDR_PREFIX && !cidr_match(&e, &self))
			abort();
	} else if (!why) {
		abort();
	}

	char *out = malloc(tl + 1);
	char *u, *pw;
	if (http_auth_basic_parse(text, tl, out, &u, &pw) == 0 && (pw <= u || pw > out + tl))
		abort();
	free(out);

	const char *hu, *hh;
	size_t ul, hl;
	enum htpasswd_scheme sc;
	int rc = htpasswd_line(text, tl, &hu, &ul, &hh, &hl, &sc, &why);
	if (rc == 1 && (ul == 0 || hu + ul >= hh || hh + hl > text + tl))
		abort();

	size_t ml;
	if (url_suffix_match(text, tl, (const char *)rest, rl, &ml) && (ml > tl || ml < rl))
		abort();

	char chal[256];
	http_auth_challenge(text, chal, sizeof(chal));
	free(text);
	return 0;
}
