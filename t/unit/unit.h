/* Tiny unit test helpers. Each CHECK counts a pass or a failure; failures
 * are printed to stderr with file:line. At the end, a test program calls
 * unit_done(), which prints exactly one line "N passed, N failed" to stdout
 * and returns the exit status (1 if anything failed). */
#ifndef CPM_UNIT_H
#define CPM_UNIT_H

#include <stdio.h>
#include <string.h>

static inline int *unit_counter(int failed)
{
	static int passed_, failed_;
	return failed ? &failed_ : &passed_;
}

/* Print s[0..n) with C escapes for non-printable bytes. */
static inline void unit_print_escaped(const char *s, size_t n)
{
	fputc('"', stderr);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			fputs("\\n", stderr);
		else if (c == '\r')
			fputs("\\r", stderr);
		else if (c == '\t')
			fputs("\\t", stderr);
		else if (c == '"' || c == '\\')
			fprintf(stderr, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
	fputc('"', stderr);
}

static inline int unit_check(int ok, const char *file, int line, const char *expr)
{
	(*unit_counter(!ok))++;
	if (!ok)
		fprintf(stderr, "%s:%d: FAIL: %s\n", file, line, expr);
	return ok;
}

static inline int unit_check_int(long long got, long long want, const char *file, int line, const char *expr,
				 const char *wexpr)
{
	int ok = got == want;
	(*unit_counter(!ok))++;
	if (!ok)
		fprintf(stderr, "%s:%d: FAIL: %s == %s: got %lld, expected %lld\n", file, line, expr, wexpr, got, want);
	return ok;
}

static inline int unit_check_mem(const char *got, size_t glen, const char *want, size_t wlen, const char *file,
				 int line, const char *expr)
{
	int ok;
	if (!got || !want)
		ok = !got && !want;
	else
		ok = glen == wlen && memcmp(got, want, glen) == 0;
	(*unit_counter(!ok))++;
	if (!ok) {
		fprintf(stderr, "%s:%d: FAIL: %s: got ", file, line, expr);
		if (got)
			unit_print_escaped(got, glen);
		else
			fputs("NULL", stderr);
		fputs(", expected ", stderr);
		if (want)
			unit_print_escaped(want, wlen);
		else
			fputs("NULL", stderr);
		fputc('\n', stderr);
	}
	return ok;
}

static inline int unit_done(void)
{
	int p = *unit_counter(0), f = *unit_counter(1);
	fflush(stderr);
	printf("%d passed, %d failed\n", p, f);
	fflush(stdout);
	return f ? 1 : 0;
}

#define CHECK(cond)		unit_check(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ_INT(got, want) unit_check_int((long long)(got), (long long)(want), __FILE__, __LINE__, #got, #want)
/* Both may be NULL (then both must be). */
#define CHECK_EQ_STR(got, want)                                                                                        \
	do {                                                                                                           \
		const char *g_ = (got), *w_ = (want);                                                                  \
		unit_check_mem(g_, g_ ? strlen(g_) : 0, w_, w_ ? strlen(w_) : 0, __FILE__, __LINE__, #got);            \
	} while (0)
/* A struct with .p and .len (struct http_slice) against a C string. */
#define CHECK_SLICE(slice, want)                                                                                       \
	do {                                                                                                           \
		const char *w_ = (want);                                                                               \
		unit_check_mem((slice).p ? (slice).p : "", (slice).len, w_, strlen(w_), __FILE__, __LINE__, #slice);   \
	} while (0)
/* Bytes got[0..glen) against want[0..wlen). */
#define CHECK_MEM(got, glen, want, wlen) unit_check_mem((got), (glen), (want), (wlen), __FILE__, __LINE__, #got)

#endif
