#include "cgi_env.h"

#include <stdio.h>
#include <string.h>

struct arena {
	char *p;
	size_t len, cap;
	char **envp;
	size_t n, envcap;
	int overflow;
};

static char *put(struct arena *a, const char *s, size_t n)
{
	if (n == 0)
		return a->p + a->len;
	if (a->len + n > a->cap) {
		a->overflow = 1;
		return NULL;
	}
	char *d = a->p + a->len;
	memcpy(d, s, n);
	a->len += n;
	return d;
}

static void var_begin(struct arena *a)
{
	if (a->n + 1 >= a->envcap) {
		a->overflow = 1;
		return;
	}
	a->envp[a->n] = a->p + a->len;
}

static void var_end(struct arena *a)
{
	if (a->overflow || !put(a, "", 1))
		return;
	a->n++;
}

static void setvar(struct arena *a, const char *name, const char *v, size_t vlen)
{
	var_begin(a);
	put(a, name, strlen(name));
	put(a, "=", 1);
	put(a, v, vlen);
	var_end(a);
}

static void setvar_s(struct arena *a, const char *name, const char *v)
{
	setvar(a, name, v ? v : "", v ? strlen(v) : 0);
}

static int header_excluded(struct http_slice name)
{
	static const char *const excluded[] = {
	    "proxy", "authorization", "content-type",	   "content-length", "connection", "keep-alive",
	    "te",    "trailer",	      "transfer-encoding", "upgrade"};
	for (size_t i = 0; i < name.len; i++)
		if (name.p[i] == '_')
			return 1; /* could spoof a '-' name */
	for (size_t i = 0; i < sizeof(excluded) / sizeof(excluded[0]); i++)
		if (http_slice_ieq(name, excluded[i]))
			return 1;
	return 0;
}

static int same_name(struct http_slice a, struct http_slice b)
{
	if (a.len != b.len)
		return 0;
	for (size_t i = 0; i < a.len; i++) {
		char x = a.p[i], y = b.p[i];
		if (x >= 'a' && x <= 'z')
			x -= 32;
		if (y >= 'a' && y <= 'z')
			y -= 32;
		if (x != y)
			return 0;
	}
	return 1;
}

static void http_vars(struct arena *a, const struct http_request *req)
{
	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		if (header_excluded(h->name))
			continue;
		int dup = 0;
		for (unsigned j = 0; j < i && !dup; j++)
			dup = same_name(req->headers[j].name, h->name);
		if (dup)
			continue;
		var_begin(a);
		put(a, "HTTP_", 5);
		for (size_t k = 0; k < h->name.len; k++) {
			char c = h->name.p[k];
			c = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
			put(a, &c, 1);
		}
		put(a, "=", 1);
		put(a, h->value.p, h->value.len);
		const char *sep = http_slice_ieq(h->name, "cookie") ? "; " : ", ";
		for (unsigned j = i + 1; j < req->nheaders; j++) {
			if (!same_name(req->headers[j].name, h->name))
				continue;
			put(a, sep, 2);
			put(a, req->headers[j].value.p, req->headers[j].value.len);
		}
		var_end(a);
	}
}

static const struct http_header *find_header(const struct http_request *req, const char *name)
{
	for (unsigned i = 0; i < req->nheaders; i++)
		if (http_slice_ieq(req->headers[i].name, name))
			return &req->headers[i];
	return NULL;
}

int cgi_env_build(const struct cgi_env_in *in, char *arena, size_t cap, char **envp, size_t envcap)
{
	struct arena a = {.p = arena, .cap = cap, .envp = envp, .envcap = envcap};
	const struct http_request *req = in->req;
	char num[32];

	setvar_s(&a, "GATEWAY_INTERFACE", "CGI/1.1");
	setvar_s(&a, "SERVER_SOFTWARE", in->server_software);
	/* SERVER_NAME: the Host without its port, else the configured name */
	if (req->host.len) {
		size_t n = req->host.len;
		if (req->host.p[0] == '[') {
			const char *rb = memchr(req->host.p, ']', n);
			if (rb)
				n = (size_t)(rb - req->host.p) + 1;
		} else {
			const char *colon = memchr(req->host.p, ':', n);
			if (colon)
				n = (size_t)(colon - req->host.p);
		}
		setvar(&a, "SERVER_NAME", req->host.p, n);
	} else {
		setvar_s(&a, "SERVER_NAME", in->server_name);
	}
	setvar_s(&a, "SERVER_PORT", in->server_port);
	snprintf(num, sizeof(num), "HTTP/1.%d", req->version_minor);
	setvar_s(&a, "SERVER_PROTOCOL", num);
	setvar(&a, "REQUEST_METHOD", req->method.p, req->method.len);
	setvar(&a, "REQUEST_URI", req->target.p, req->target.len);
	setvar_s(&a, "SCRIPT_NAME", in->script_name);
	setvar_s(&a, "PATH_INFO", in->path_info);
	if (in->path_info && *in->path_info) {
		var_begin(&a);
		put(&a, "PATH_TRANSLATED=", 16);
		put(&a, in->document_root, strlen(in->document_root));
		put(&a, in->path_info, strlen(in->path_info));
		var_end(&a);
	}
	setvar(&a, "QUERY_STRING", req->query.p, req->query.len);
	setvar_s(&a, "SCRIPT_FILENAME", in->script_filename);
	setvar_s(&a, "DOCUMENT_ROOT", in->document_root);
	setvar_s(&a, "REMOTE_ADDR", in->remote_addr);
	setvar_s(&a, "REMOTE_PORT", in->remote_port);
	if (in->https)
		setvar_s(&a, "HTTPS", "on");
	if (in->has_body) {
		snprintf(num, sizeof(num), "%lld", in->content_length);
		setvar_s(&a, "CONTENT_LENGTH", num);
	}
	const struct http_header *h = find_header(req, "content-type");
	if (h)
		setvar(&a, "CONTENT_TYPE", h->value.p, h->value.len);
	h = find_header(req, "authorization");
	if (h) {
		size_t n = 0;
		while (n < h->value.len && h->value.p[n] != ' ')
			n++;
		setvar(&a, "AUTH_TYPE", h->value.p, n);
	}
	http_vars(&a, req);
	for (size_t i = 0; i < in->nextra; i++) {
		var_begin(&a);
		put(&a, in->extra[i], strlen(in->extra[i]));
		var_end(&a);
	}
	if (a.overflow)
		return -1;
	envp[a.n] = NULL;
	return (int)a.n;
}
