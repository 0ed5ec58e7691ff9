/* Basic credentials, htpasswd lines and the challenge (see http_auth.h). */

#include "http_auth.h"

#include <string.h>

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64; padding may be left out, but if present it completes
 * the last group. Any other byte fails. Returns the decoded length or -1. */
static long b64decode(const char *s, size_t n, char *out)
{
	size_t all = n;
	while (n && s[n - 1] == '=')
		n--;
	if (n % 4 == 1 || (all != n && (all - n > 2 || all % 4 != 0)))
		return -1;
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return (long)o;
}

int http_auth_basic_parse(const char *v, size_t len, char *out, char **user, char **pass)
{
	static const char basic[] = "basic";
	size_t i = 0;
	if (len < 6)
		return -1;
	for (; i < 5; i++)
		if ((v[i] | 0x20) != basic[i])
			return -1;
	if (v[i] != ' ')
		return -1;
	while (i < len && v[i] == ' ')
		i++;
	size_t end = len;
	while (end > i && (v[end - 1] == ' ' || v[end - 1] == '\t'))
		end--;
	if (end == i)
		return -1;
	long n = b64decode(v + i, end - i, out);
	if (n < 0 || (size_t)n >= len)
		return -1;
	out[n] = 0;
	char *colon = memchr(out, ':', (size_t)n);
	if (!colon)
		return -1;
	for (long k = 0; k < n; k++)
		if ((unsigned char)out[k] < 0x20 || out[k] == 0x7f)
			return -1;
	*colon = 0;
	*user = out;
	*pass = colon + 1;
	return 0;
}

static int starts(const char *h, size_t n, const char *p)
{
	size_t pl = strlen(p);
	return n >= pl && memcmp(h, p, pl) == 0;
}

int htpasswd_line(const char *line, size_t len, const char **user, size_t *ulen, const char **hash, size_t *hlen,
		  enum htpasswd_scheme *scheme, const char **why)
{
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	size_t lead = 0;
	while (lead < len && (line[lead] == ' ' || line[lead] == '\t'))
		lead++;
	if (lead == len || line[lead] == '#')
		return 0;
	const char *colon = memchr(line, ':', len);
	if (!colon) {
		*why = "expected USER:HASH";
		return -1;
	}
	size_t un = (size_t)(colon - line);
	if (un == 0) {
		*why = "empty user name";
		return -1;
	}
	for (size_t i = 0; i < un; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) {
			*why = "a user name with a control character";
			return -1;
		}
	const char *h = colon + 1;
	size_t hn = len - un - 1;
	if (memchr(h, ':', hn)) {
		/* htdigest files are USER:REALM:HASH */
		*why = "more than one ':' (an htdigest file?): expected USER:HASH";
		return -1;
	}
	if (starts(h, hn, "$2y$") || starts(h, hn, "$2b$") || starts(h, hn, "$2a$"))
		*scheme = HTPASSWD_BCRYPT;
	else if (starts(h, hn, "$5$"))
		*scheme = HTPASSWD_SHA256;
	else if (starts(h, hn, "$6$"))
		*scheme = HTPASSWD_SHA512;
	else if (starts(h, hn, "$y$"))
		*scheme = HTPASSWD_YESCRYPT;
	else {
		if (starts(h, hn, "$apr1$") || starts(h, hn, "$1$"))
			*why = "an MD5 hash ($apr1$ or $1$) is not accepted (too fast to guess against): "
			       "make it with htpasswd -B (bcrypt) or mkpasswd -m yescrypt";
		else if (starts(h, hn, "{SHA}"))
			*why = "a {SHA} hash is not accepted (unsalted SHA-1): make it with htpasswd -B";
		else if (hn == 13 && h[0] != '$')
			*why = "a DES crypt hash (or a 13-character plaintext password) is not accepted: "
			       "make it with htpasswd -B";
		else
			*why = "not a bcrypt ($2y$), SHA-crypt ($5$, $6$) or yescrypt ($y$) hash: plaintext "
			       "passwords are not accepted; make the entry with htpasswd -B";
		return -1;
	}
	/* the shape of what htpasswd, mkpasswd and crypt(3) write: the
	 * checksum after the last '$' is all there, in crypt's alphabet */
	size_t want = *scheme == HTPASSWD_BCRYPT ? 53 : *scheme == HTPASSWD_SHA512 ? 86 : 43;
	size_t last = hn;
	while (last > 0 && h[last - 1] != '$')
		last--;
	if (*scheme == HTPASSWD_BCRYPT)
		last = hn >= 53 ? hn - 53 : 0; /* $2y$NN$ then salt and checksum, 53 characters */
	int shape = hn - last == want && last >= 4 && (*scheme != HTPASSWD_BCRYPT || (hn == 60 && h[6] == '$'));
	for (size_t i = last; i < hn && shape; i++)
		shape = (h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') || (h[i] >= '0' && h[i] <= '9') ||
			h[i] == '.' || h[i] == '/';
	if (!shape) {
		*why = "a malformed hash (cut short, or not what crypt(3) writes)";
		return -1;
	}
	*user = line;
	*ulen = un;
	*hash = h;
	*hlen = hn;
	return 1;
}

size_t http_auth_challenge(const char *realm, char *out, size_t cap)
{
	static const char pre[] = "Basic realm=\"";
	size_t n = sizeof(pre) - 1;
	if (cap < n + 3)
		return 0;
	memcpy(out, pre, n);
	for (const char *p = realm; *p; p++) {
		if (n + 4 > cap)
			return 0;
		if (*p == '"' || *p == '\\')
			out[n++] = '\\';
		out[n++] = *p;
	}
	out[n++] = '"';
	out[n] = 0;
	return n;
}
