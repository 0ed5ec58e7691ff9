/* The configuration: loaded from JSON (jansson), validated strictly; every
 * error names FILE:LINE:COL and the key path. */
#ifndef CPM_CONFIG_H
#define CPM_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "../protocol/cidr.h"

enum backend_type { BACKEND_CGI, BACKEND_STATUS, BACKEND_FASTCGI, BACKEND_STATIC, BACKEND_HEALTH };

/* Resource limits applied to backend processes; -1 = leave as is. */
struct rlimits_conf {
	int64_t cpu; /* seconds */
	int64_t as;  /* bytes */
	int64_t nofile;
	int64_t nproc;
};

/* A fastcgi backend whose processes cpm runs ("command"). */
struct pool_conf {
	char **argv; /* argv[0] is an absolute path; NULL terminated */
	size_t argc;
	int min, max; /* processes: min == max unless scaling */
	int64_t idle_timeout_ms;
	long max_requests; /* per process, 0 = no limit */
	char *cwd;
	char *user; /* when started as root: the processes run as this user */
	uid_t uid;
	gid_t gid;
	int tcp;	 /* 127.0.0.1 with a port per process instead of a unix socket */
	int reload_keep; /* "reload": "keep": HUP leaves its processes running */
	int id;		 /* run time: the pool's index in the scoreboard (the master sets it) */
};

struct cgi_conf {
	char *root; /* canonical absolute path */
	int64_t timeout_ms;
	int max_concurrent; /* 0 = unlimited */
	int queue;
	int64_t queue_timeout_ms;
	char **env; /* "NAME=value", including PATH; NULL terminated */
	size_t nenv;
	char **index; /* file names tried for a directory */
	size_t nindex;
	/* fastcgi (an external server) */
	char **addrs;		     /* tried in turn, round-robin; as written */
	struct sockaddr_storage *sa; /* addrs[i] resolved when the configuration is
				      * loaded: a name with several addresses is
				      * several entries */
	socklen_t *salen;
	size_t naddrs;
	char *script;		/* a fixed SCRIPT_FILENAME, or NULL: split under root */
	int keep_conn;		/* external fastcgi: idle connections kept per worker */
	struct pool_conf *pool; /* fastcgi run by cpm, or NULL (external) */
	/* responses: held in memory, then in a temporary file, when the
	 * client is slower than the backend */
	size_t response_buffer;
	int64_t response_temp_max; /* 0: never a file */
	int ignore_client_abort;   /* a client gone mid-response does not stop the program */
	/* processes started for this backend */
	struct rlimits_conf rl;
	int no_new_privs;
	int pass_authorization; /* Authorization goes on as HTTP_AUTHORIZATION */
};

/* A static backend: files under root. */
struct mime_entry;
struct log_format;
struct static_conf {
	char *root; /* canonical absolute path */
	char **index;
	size_t nindex;
	int autoindex;
	int follow_symlinks;	       /* "symlinks": "follow" (else "beneath") */
	int precompressed;	       /* FILE.br / FILE.gz for clients that accept them */
	char *cache_control;	       /* NULL: none */
	char *fallback;		       /* a local path, or NULL */
	char *mime_text;	       /* the mime.types text the entries point into */
	const struct mime_entry *mime; /* mime_alloc, or the built-in table */
	struct mime_entry *mime_alloc;
	size_t nmime;
};

struct backend_conf {
	char *name;
	enum backend_type type;
	struct cgi_conf cgi;
	struct static_conf st;
};

/* "auth": {"basic": {"realm": ..., "user_file": ...}} */
struct auth_basic_conf {
	char *realm;
	char *user_file;
	char *challenge; /* "WWW-Authenticate: Basic realm=\"...\"" */
	struct htpasswd *users;
};

struct route_conf {
	char *prefix;
	size_t prefix_len;
	struct backend_conf *backend;
	char *server_name; /* SERVER_NAME whatever the Host, or NULL */
	char **suffix;	   /* the route applies only to these file-name suffixes */
	size_t nsuffix;
	struct cidr *deny, *allow; /* access lists; allow NULL: no allow list */
	size_t ndeny, nallow;
	char **methods; /* NULL: any method */
	size_t nmethods;
	char *allow_header; /* "Allow: ..." for a 405 */
	struct auth_basic_conf *auth;
};

#define CPM_TLS12 0x0303 /* OpenSSL's TLS1_2_VERSION */
#define CPM_TLS13 0x0304

/* One certificate and its key, and the server names it is chosen for
 * (SNI). names NULL: the DNS names of the certificate itself. */
struct tls_cert_conf {
	char *certificate; /* PEM: the certificate, then its chain */
	char *key;	   /* PEM private key */
	char **names;
	size_t nnames;
};

/* A listener's "tls" object. certs[0] is the default (the one a client
 * gets without SNI or with a name no certificate has). */
struct tls_conf {
	struct tls_cert_conf *certs;
	size_t ncerts;
	int min_version, max_version; /* CPM_TLS12 ... CPM_TLS13 */
	char *ciphers;		      /* TLS 1.2 cipher list (OpenSSL syntax) */
	char *ciphersuites;	      /* TLS 1.3 suites */
	int session_tickets;
	int64_t session_timeout_ms;
	struct tls_ctx *ctx; /* loaded by config_load (tls.c), in the master */
};

/* What a "listen" entry says besides its address (a string entry: all
 * zero). */
struct listen_conf {
	struct tls_conf *tls; /* NULL: plain HTTP */
	int redirect_http;    /* answer every request 308 to https */
	char *redirect_to;    /* ... at this origin ("https://host:port"), or
			       * NULL: the request's host and the first TLS
			       * listener's port */
	int proxy_protocol;   /* every connection starts with a PROXY header */
};

/* Which forwarding header trusted proxies are believed in. */
enum forwarded_header { FWD_HEADER_X_FORWARDED_FOR, FWD_HEADER_FORWARDED };

struct config {
	char *file; /* NULL in --cgi mode */
	char **listen;
	struct listen_conf *lconf; /* [nlisten], like listen */
	char https_port[8];	   /* of the first TLS listener on a port, "" if
				    * none: where redirect_http: true points */
	size_t nlisten;
	int backlog;
	int workers;
	int64_t timeout_ms;
	int64_t graceful_timeout_ms;
	int64_t drain_delay_ms; /* a graceful stop keeps taking work this long, health 503 */
	int sigterm_graceful;	/* "sigterm": "graceful": TERM is QUIT */
	int64_t keepalive_ms;
	int64_t header_timeout_ms;
	int64_t client_timeout_ms;
	int64_t lingering_time_ms;    /* at most this long reading after a response, before closing */
	int64_t lingering_timeout_ms; /* ... and at most this long between two reads */
	int max_connections;
	long max_requests;
	long max_requests_jitter;
	size_t limit_request_line;
	size_t limit_header_size;
	unsigned limit_header_count;
	size_t limit_header_field; /* one field line */
	int64_t limit_body;
	size_t body_buffer;
	int64_t limit_temp_files;      /* response temporary files of one worker, all together */
	char *access_log;	       /* NULL = off */
	char *access_log_format;       /* "combined", "json" or a template */
	struct log_format *access_fmt; /* ... compiled; NULL: combined */
	char *error_log;	       /* NULL = stderr */
	int log_level;
	char *pidfile;
	char *control; /* the control socket (cpm -s), or NULL */
	char *server_name;
	char *user; /* workers run as this user (when started as root) */
	uid_t uid;
	gid_t gid; /* the user's group, or "group" */
	int group_set;
	int user_default; /* started as root without "user": "nobody" */
	int umask;	  /* -1: leave it */
	char *chdir;
	struct cidr *trusted_proxies; /* believed in forwarding headers */
	size_t ntrusted_proxies;
	enum forwarded_header forwarded_header;
	struct route_conf *routes;
	size_t nroutes;
	struct backend_conf *backends;
	size_t nbackends;
};

/* Load and validate FILE. On error returns NULL and writes one line
 * ("FILE:LINE:COL: PATH: MESSAGE") into err. */
struct config *config_load(const char *file, char *err, size_t errlen);

/* The --cgi DIR configuration: defaults, one cgi backend at "/". */
struct config *config_quick_cgi(const char *dir, char *err, size_t errlen);

/* 0 if s is HOST:PORT, [V6]:PORT, :PORT or unix:/PATH, else -1. */
int config_listen_valid(const char *s);

/* A whole file of at most CONFIG_FILE_MAX bytes, NUL terminated (free it),
 * its length in *len; regular_only: refuse what is not a regular file (a
 * FIFO would block the master). NULL with "FILE: why" in err. */
#define CONFIG_FILE_MAX (16u << 20)
char *config_read_file(const char *file, int regular_only, size_t *len, char *err, size_t errlen);

/* The host of a valid HOST:PORT, [V6]:PORT or :PORT (without brackets; ""
 * for :PORT) into host[0..cap); returns the port, or NULL if the host does
 * not fit. */
const char *config_host_port(const char *addr, char *host, size_t cap);

/* dir is the directory cpm started in: a relative configuration file
 * name and the --cgi directory are taken from it, not from the current
 * directory of the moment. Relative paths inside a configuration file are
 * taken from that file's directory. */
void config_set_base_dir(const char *dir);

/* A FastCGI address ("unix:/PATH", "HOST:PORT", "[V6]:PORT"; an empty HOST
 * is 127.0.0.1) as socket addresses: up to max of them into ss[] and
 * len[], their count returned, or -1 with *err set. numeric: no name
 * lookup (then it never blocks). */
int config_sockaddrs(const char *addr, int numeric, struct sockaddr_storage *ss, socklen_t *len, size_t max,
		     const char **err);

/* cpm runs as root (main says so): a configuration without "user" runs
 * its workers, CGI programs and pools as "nobody", and every root, pool
 * command and directory they need is checked as the user that needs it. */
void config_set_privileged(int yes);

/* Replace listen with the given addresses (from -b). */
int config_set_listen(struct config *c, char *const *addrs, size_t n);

/* The control socket of the configuration in file as the master resolves
 * it ("control", else next to "pidfile"), read without validating the rest
 * (cpm -s must reach the master to hear what is wrong with the file): a new
 * string, or NULL with why in err. */
#define CONTROL_PATH_MAX 90 /* a unix socket's path, with room for a temp suffix */
char *config_control_path(const char *file, char *err, size_t errlen);

void config_free(struct config *c);

#endif
