/* libFuzzer target: the PROXY protocol header parser. Besides memory
 * safety it checks the promises of proxy.h:
 * - the result is one of the three; ERROR has a reason, the others none;
 * - OK: 0 < out.len <= len, the fields are in range, and the header alone
 *   (buf[0..out.len)) parses to the same result;
 * - AGAIN: fewer than PROXY_MAX bytes (fewer than 107 and no LF for v1),
 *   and all of them belong to the header: the struct is left zeroed;
 * - more bytes never change a decision: a prefix that is ERROR or OK
 *   stays so (with the same header) when the input goes on, and every
 *   prefix of an AGAIN input is AGAIN, and once the whole header is
 *   there it is OK. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../protocol/proxy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_one(const unsigned char *data, size_t size, enum proxy_result r, const struct proxy_info *pi,
		      const char *why)
{
	static const struct proxy_info zero;
	if (r == PROXY_ERROR) {
		if (!why || !*why || memcmp(pi, &zero, sizeof(zero)) != 0)
			abort();
		return;
	}
	if (why)
		abort();
	if (r == PROXY_AGAIN) {
		if (size >= PROXY_MAX || memcmp(pi, &zero, sizeof(zero)) != 0)
			abort();
		if (size && data[0] == 'P' && (size >= PROXY_V1_MAX || memchr(data, '\n', size)))
			abort();
		return;
	}
	if (r != PROXY_OK)
		abort();
	if (pi->len == 0 || pi->len > size || pi->len > PROXY_MAX)
		abort();
	if (pi->version != 1 && pi->version != 2)
		abort();
	if (pi->version == 1 && (pi->len > PROXY_V1_MAX || data[pi->len - 1] != '\n' || pi->local || pi->ssl))
		abort();
	if (pi->family != 0 && pi->family != 4 && pi->family != 6)
		abort();
	if (pi->local && pi->family)
		abort();
	if (pi->family == 0 && (pi->src_port || pi->dst_port))
		abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct proxy_info pi, pj;
	const char *why = (const char *)1;
	enum proxy_result r = proxy_parse(data, size, &pi, &why);
	check_one(data, size, r, &pi, why);

	if (r == PROXY_OK) {
		/* the header alone */
		enum proxy_result r2 = proxy_parse(data, pi.len, &pj, &why);
		if (r2 != PROXY_OK || memcmp(&pi, &pj, sizeof(pi)) != 0)
			abort();
	}

	/* prefixes: all of them when short, else a sample */
	size_t step = size <= 512 ? 1 : size / 61 + 1;
	for (size_t k = 0; k < size; k += step) {
		const char *w = (const char *)1;
		enum proxy_result rk = proxy_parse(data, k, &pj, &w);
		check_one(data, k, rk, &pj, w);
		if (rk == PROXY_ERROR && r != PROXY_ERROR)
			abort();
		if (rk == PROXY_OK && (r != PROXY_OK || memcmp(&pi, &pj, sizeof(pi)) != 0))
			abort();
		if (r == PROXY_AGAIN && rk != PROXY_AGAIN)
			abort();
		/* the whole header is there: it is decided */
		if (r == PROXY_OK && k >= pi.len && rk != PROXY_OK)
			abort();
	}
	return 0;
}
