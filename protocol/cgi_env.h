/* Builds the CGI/1.1 environment (RFC 3875 4.1) for a request. Pure: every
 * input is passed in, the output goes into a caller-provided arena. The
 * cgi and fastcgi backends share it (as envp or as FastCGI params). */
#ifndef CPM_CGI_ENV_H
#define CPM_CGI_ENV_H

#include <stddef.h>

#include "http_parser.h"

struct cgi_env_in {
	const struct http_request *req;
	const char *request_uri;	/* REQUEST_URI when not req->target (internal redirects) */
	const char *script_name;	/* URL path of the script, decoded */
	const char *path_info;		/* decoded; "" when none */
	const char *script_filename;	/* file system path */
	const char *document_root;	/* NULL or "": no PATH_TRANSLATED */
	const char *server_name;	/* used when the request has no Host */
	const char *pinned_server_name; /* NULL, or SERVER_NAME whatever the Host */
	const char *server_port;
	const char *server_software;
	const char *remote_addr;
	const char *remote_port;
	int https;		  /* over TLS: HTTPS=on, REQUEST_SCHEME=https */
	int has_body;		  /* CONTENT_LENGTH and CONTENT_TYPE: only with a body */
	long long content_length; /* the true length (decoded for chunked) */
	const char *remote_user;  /* REMOTE_USER: the user cpm authenticated, or NULL */
	const char *auth_type;	  /* AUTH_TYPE then ("Basic"); NULL: the scheme of an
				   * Authorization header, if any */
	int pass_authorization;	  /* Authorization goes on as HTTP_AUTHORIZATION */
	const char *request_id;	  /* HTTP_X_REQUEST_ID (a client's header of that
				   * name is not passed then); NULL: none */
	const char *const *extra; /* "NAME=value" appended last (env, PATH) */
	size_t nextra;
};

/* Fill envp[0..envcap) with pointers into arena[0..cap); envp is NULL
 * terminated. Returns the number of variables, or -1 if the arena or envp
 * is too small. */
int cgi_env_build(const struct cgi_env_in *in, char *arena, size_t cap, char **envp, size_t envcap);

/* What cgi_env_build needs for in, exactly: *arena_bytes of arena and
 * *nvars variables (envp needs *nvars + 1 entries, for the NULL). */
void cgi_env_size(const struct cgi_env_in *in, size_t *arena_bytes, size_t *nvars);

#endif
