/* libFuzzer target: the parsers of protocol/http_file.c on one input, with
 * the invariants they promise: a range lies inside the file, a parsed date
 * formats back to a date that parses to the same time, mime.types entries
 * are within the text and every one of them is found again by lookup. The
 * first input byte picks the file size for the range parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../protocol/http_file.h"
#include "../../protocol/http_response.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size == 0)
		return 0;
	int64_t fsize = (int64_t)data[0] * 37;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	struct http_slice v = {p, n};

	int64_t a = -1, b = -1;
	int rc = http_range_parse(v, fsize, &a, &b);
	if (rc == HTTP_RANGE_ONE || rc == HTTP_RANGE_MANY)
		if (a < 0 || b < a || b >= fsize)
			abort();

	int64_t t;
	if (http_date_parse(v, &t) == 0) {
		char buf[30];
		int64_t t2;
		http_format_date((time_t)t, buf);
		if (t >= 0 && t < (int64_t)253402300800 &&
		    (http_date_parse((struct http_slice){buf, strlen(buf)}, &t2) != 0 || t2 != t))
			abort();
	}

	(void)http_accept_encoding(v);
	(void)http_etag_match(v, "\"1-2-3\"", 1);
	(void)http_if_range(v, "\"1-2-3\"", 5);

	size_t cnt = mime_types_parse(p, n, NULL, 0, NULL);
	struct mime_entry *e = malloc((cnt + 1) * sizeof(*e));
	size_t got = mime_types_parse(p, n, e, cnt, NULL);
	if (got != cnt)
		abort();
	for (size_t i = 0; i < got; i++) {
		if (e[i].ext.p < p || e[i].ext.p + e[i].ext.len > p + n || e[i].type.p < p ||
		    e[i].type.p + e[i].type.len > p + n)
			abort();
		char name[80] = "x.";
		memcpy(name + 2, e[i].ext.p, e[i].ext.len);
		if (mime_lookup(e, got, name, 2 + e[i].ext.len).p == NULL)
			abort();
	}
	free(e);
	return 0;
}
