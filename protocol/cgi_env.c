#include "cgi_env.h"

#include <stdio.h>
#include <string.h>

/* Where variables go. With p NULL nothing is written: len and n count
 * what a build needs (cgi_env_size), through the same code as the build. */
struct arena {
	char *p;
	size_t len, cap;
	char **envp;
	size_t n, envcap;
	int overflow;
};

static void put(struct arena *a, const char *s, size_t n)
{
	if (a->overflow || n == 0)
		return;
	if (a->p) {
		if (a->len + n > a->cap) {
			a->overflow = 1;
			return;
		}
		memcpy(a->p + a->len, s, n);
	}
	a->len += n;
}

static void var_begin(struct arena *a)
{
	if (!a->p || a->overflow)
		return;
	if (a->n + 1 >= a->envcap) {
		a->overflow = 1;
		return;
	}
	a->envp[a->n] = a->p + a->len;
}

static void var_end(struct arena *a)
{
	put(a, "", 1);
	if (!a->overflow)
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

static int header_excluded(struct http_slice name, int pass_authorization, int own_request_id)
{
	if (own_request_id && http_slice_ieq(name, "x-request-id"))
		return 1; /* the request's id replaces it: the program sees one */
	if (pass_authorization && http_slice_ieq(name, "authorization"))
		return 0;
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

static void http_vars(struct arena *a, const struct http_request *req, int pass_authorization, int own_request_id)
{
	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		if (header_excluded(h->name, pass_authorization, own_request_id))
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

/* SERVER_NAME: a pinned name, else the Host without its port (an IPv6
 * literal keeps its brackets), else the configured name. */
static void server_name(struct arena *a, const struct cgi_env_in *in)
{
	struct http_slice name = {"", 0}, port;
	if (in->pinned_server_name) {
		setvar_s(a, "SERVER_NAME", in->pinned_server_name);
		return;
	}
	if (http_host_split(in->req->host, &name, &port) == 0 && name.len)
		setvar(a, "SERVER_NAME", name.p, name.len);
	else
		setvar_s(a, "SERVER_NAME", in->server_name);
}

static void build(struct arena *a, const struct cgi_env_in *in)
{
	const struct http_request *req = in->req;
	char num[32];

	setvar_s(a, "GATEWAY_INTERFACE", "CGI/1.1");
	setvar_s(a, "SERVER_SOFTWARE", in->server_software);
	server_name(a, in);
	setvar_s(a, "SERVER_PORT", in->server_port);
	snprintf(num, sizeof(num), "HTTP/1.%d", req->version_minor);
	setvar_s(a, "SERVER_PROTOCOL", num);
	setvar(a, "REQUEST_METHOD", req->method.p, req->method.len);
	if (in->request_uri)
		setvar_s(a, "REQUEST_URI", in->request_uri);
	else
		setvar(a, "REQUEST_URI", req->target.p, req->target.len);
	setvar_s(a, "SCRIPT_NAME", in->script_name);
	setvar_s(a, "PATH_INFO", in->path_info);
	/* RFC 3875 4.1.6: PATH_INFO mapped into the document tree; without
	 * a document root there is nothing to map it to */
	if (in->path_info && *in->path_info && in->document_root && *in->document_root) {
		var_begin(a);
		put(a, "PATH_TRANSLATED=", 16);
		put(a, in->document_root, strlen(in->document_root));
		put(a, in->path_info, strlen(in->path_info));
		var_end(a);
	}
	setvar(a, "QUERY_STRING", req->query.p, req->query.len);
	setvar_s(a, "SCRIPT_FILENAME", in->script_filename);
	setvar_s(a, "DOCUMENT_ROOT", in->document_root);
	setvar_s(a, "REMOTE_ADDR", in->remote_addr);
	setvar_s(a, "REMOTE_PORT", in->remote_port);
	/* REQUEST_SCHEME as nginx's fastcgi_params and Apache set it; HTTPS
	 * only over TLS (PHP, Perl's CGI.pm and Python's wsgiref read it) */
	setvar_s(a, "REQUEST_SCHEME", in->https ? "https" : "http");
	if (in->https)
		setvar_s(a, "HTTPS", "on");
	if (in->has_body) {
		/* RFC 3875 4.1.2, 4.1.3: both describe a message body */
		snprintf(num, sizeof(num), "%lld", in->content_length);
		setvar_s(a, "CONTENT_LENGTH", num);
		struct http_slice ct = http_header_value(req, "content-type");
		if (ct.p)
			setvar(a, "CONTENT_TYPE", ct.p, ct.len);
	}
	struct http_slice auth = http_header_value(req, "authorization");
	if (in->auth_type) {
		setvar_s(a, "AUTH_TYPE", in->auth_type);
		setvar_s(a, "REMOTE_USER", in->remote_user);
	} else if (auth.p) {
		size_t n = 0;
		while (n < auth.len && auth.p[n] != ' ')
			n++;
		setvar(a, "AUTH_TYPE", auth.p, n);
	}
	http_vars(a, req, in->pass_authorization, in->request_id != NULL);
	if (in->request_id)
		setvar_s(a, "HTTP_X_REQUEST_ID", in->request_id);
	for (size_t i = 0; i < in->nextra; i++) {
		var_begin(a);
		put(a, in->extra[i], strlen(in->extra[i]));
		var_end(a);
	}
}

void cgi_env_size(const struct cgi_env_in *in, size_t *arena_bytes, size_t *nvars)
{
	struct arena a = {.p = NULL};
	build(&a, in);
	*arena_bytes = a.len;
	*nvars = a.n;
}

int cgi_env_build(const struct cgi_env_in *in, char *arena, size_t cap, char **envp, size_t envcap)
{
	struct arena a = {.p = arena, .cap = cap, .envp = envp, .envcap = envcap};
	if (!arena || envcap == 0)
		return -1;
	build(&a, in);
	if (a.overflow)
		return -1;
	envp[a.n] = NULL;
	return (int)a.n;
}
