#include "jsonpos.h"

#include <string.h>

struct scan {
	const char *s, *p, *end;
};

static void ws(struct scan *sc)
{
	while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
		sc->p++;
}

/* at '"': skip the string; set [*b, *e) to its raw contents */
static int str(struct scan *sc, const char **b, const char **e)
{
	if (sc->p >= sc->end || *sc->p != '"')
		return -1;
	sc->p++;
	*b = sc->p;
	while (sc->p < sc->end && *sc->p != '"') {
		if (*sc->p == '\\')
			sc->p++;
		sc->p++;
	}
	if (sc->p >= sc->end)
		return -1;
	*e = sc->p++;
	return 0;
}

static int skip_value(struct scan *sc)
{
	ws(sc);
	if (sc->p >= sc->end)
		return -1;
	const char *b, *e;
	switch (*sc->p) {
	case '"': return str(sc, &b, &e);
	case '{':
	case '[': {
		int depth = 0;
		while (sc->p < sc->end) {
			char c = *sc->p;
			if (c == '"') {
				if (str(sc, &b, &e) < 0)
					return -1;
				continue;
			}
			if (c == '{' || c == '[')
				depth++;
			else if (c == '}' || c == ']')
				depth--;
			sc->p++;
			if (depth == 0)
				return 0;
		}
		return -1;
	}
	default:
		while (sc->p < sc->end && !strchr(",]} \t\r\n", *sc->p))
			sc->p++;
		return 0;
	}
}

/* Compare a raw JSON string body [b, e) with a decoded name: handles the
 * simple escapes and \\uXXXX for code points below 0x80. */
static int key_equals(const char *b, const char *e, const char *name)
{
	while (b < e) {
		unsigned char c = (unsigned char)*b++;
		if (c == '\\' && b < e) {
			char esc = *b++;
			switch (esc) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u': {
				unsigned v = 0;
				for (int k = 0; k < 4; k++, b++) {
					if (b >= e)
						return 0;
					char h = *b;
					v = v * 16 + (unsigned)(h >= '0' && h <= '9'   ? h - '0'
								: h >= 'a' && h <= 'f' ? h - 'a' + 10
								: h >= 'A' && h <= 'F' ? h - 'A' + 10
										       : 99);
				}
				if (v >= 0x80)
					return 0; /* not needed for config keys */
				c = (unsigned char)v;
				break;
			}
			default: c = (unsigned char)esc; break;
			}
		}
		if (!*name || (unsigned char)*name != c)
			return 0;
		name++;
	}
	return *name == 0;
}

static void position(const char *text, const char *at, int *line, int *col)
{
	int l = 1, c = 1;
	for (const char *q = text; q < at; q++) {
		if (*q == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
}

int jsonpos_locate(const char *text, size_t len, const struct jsonpos_step *path, size_t n, int want_key, int *line,
		   int *col)
{
	struct scan sc = {text, text, text + len};
	const char *best;
	ws(&sc);
	best = sc.p;
	for (size_t d = 0; d < n; d++) {
		ws(&sc);
		const char *found = NULL, *keypos = NULL;
		if (path[d].key) {
			if (sc.p >= sc.end || *sc.p != '{')
				break;
			sc.p++;
			for (;;) {
				ws(&sc);
				const char *b, *e;
				keypos = sc.p;
				if (str(&sc, &b, &e) < 0)
					break;
				ws(&sc);
				if (sc.p >= sc.end || *sc.p != ':')
					break;
				sc.p++;
				ws(&sc);
				if (key_equals(b, e, path[d].key)) {
					found = sc.p;
					break;
				}
				if (skip_value(&sc) < 0)
					break;
				ws(&sc);
				if (sc.p < sc.end && *sc.p == ',')
					sc.p++;
				else
					break;
			}
		} else {
			if (sc.p >= sc.end || *sc.p != '[')
				break;
			sc.p++;
			for (size_t i = 0;; i++) {
				ws(&sc);
				if (i == path[d].index) {
					found = sc.p;
					break;
				}
				if (skip_value(&sc) < 0)
					break;
				ws(&sc);
				if (sc.p < sc.end && *sc.p == ',')
					sc.p++;
				else
					break;
			}
		}
		if (!found)
			break;
		best = (d == n - 1 && want_key && keypos) ? keypos : found;
		if (d == n - 1) {
			position(text, best, line, col);
			return 0;
		}
	}
	position(text, best, line, col);
	return n == 0 ? 0 : -1;
}
