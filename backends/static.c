/* The static backend: files under a root, sent with sendfile(2).
 *
 * A request is served at once, inside start: the file is opened beneath
 * the root with openat2(RESOLVE_BENEATH) (or plain openat with "symlinks":
 * "follow"), its validators and the request's preconditions decide between
 * 200, 206, 304, 412 and 416, and the open descriptor goes to the
 * connection's output queue (exchange_response_file), which sends and
 * closes it; a file of SMALL_FILE bytes or less is read (pread) and
 * written with its head in one call instead. A directory's index file and
 * the fallback are internal redirects through the routes (nginx's index
 * module and try_files), so an index.php runs where PHP runs and is never
 * sent as a file.
 *
 * Why one openat2 and not script_find's walk: script_find walks segment by
 * segment because it must find where the script ends and PATH_INFO begins;
 * a file has no PATH_INFO, so the kernel resolves the whole path in one
 * call, symlinks included, and refuses (EXDEV) any step out of root: no
 * window between a check and the open.
 *
 * The worker keeps the descriptors of up to FCACHE_SLOTS small regular
 * files (SMALL_FILE bytes or less) between requests, and takes one again
 * only when stat(2) of root/rel, resolved afresh from "/" (a root
 * directory renamed away and replaced is seen at once, as when the root
 * was opened per request), finds the very inode it had opened, unchanged:
 * same device, inode, mode, size, mtime and ctime. Anything done to the
 * file (rewritten, truncated, renamed over, deleted, chmod'ed, linked
 * elsewhere: all change its ctime or its inode) or to a directory on its
 * path that the workers can no longer search makes the stat differ or
 * fail, and the request takes the openat2 path above, which decides again.
 * The body is read with pread at each request, never kept, so a change
 * within one timestamp tick is still served as it is. What a hit cannot
 * see: a path that has come to reach the same unchanged inode by another
 * way (a directory on it swapped for a link): the bytes are then those of
 * the file that was served beneath root a moment before, not anything new.
 * A final component that is a symbolic link never hits (with "beneath" it
 * is stat'ed without following, so its inode is the link's). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../protocol/http_file.h"
#include "../protocol/http_response.h"
#include "backend.h"

#define AUTOINDEX_MAX 10000	  /* directory entries listed at most */
#define SMALL_FILE    (16 * 1024) /* a body this short is read and written with its head */
#define FCACHE_SLOTS  64	  /* small files a worker keeps open */

/* ---- the worker's open small files ---- */

struct fcache_entry {
	char *path; /* root/rel, stat'ed again at each request; NULL: empty */
	int follow; /* the symlink policy it was opened under */
	int fd;
	struct stat st; /* at the open */
	/* ETag and Last-Modified of st, formatted at the first response */
	int validators;
	char etag[80], lm[32];
};

/* Each worker's own (the master never serves a file). */
static struct fcache_entry fcache[FCACHE_SLOTS];

static struct fcache_entry *fcache_slot(const char *path, int follow)
{
	uint32_t h = 2166136261u ^ (uint32_t)follow;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		h = (h ^ *p) * 16777619u;
	return &fcache[h % FCACHE_SLOTS];
}

static void fcache_drop(struct fcache_entry *e)
{
	if (!e->path)
		return;
	close(e->fd);
	free(e->path);
	e->path = NULL;
}

/* Out of descriptors: give back the cached ones. 1 if there were any. */
static int fcache_flush(void)
{
	int any = 0;
	for (size_t i = 0; i < FCACHE_SLOTS; i++) {
		any |= fcache[i].path != NULL;
		fcache_drop(&fcache[i]);
	}
	return any;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_mode == b->st_mode &&
	       a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The entry keeping path's descriptor if stat finds the same file there,
 * unchanged, with its stat in *st; else NULL (and a stale entry goes). */
static struct fcache_entry *fcache_get(const struct static_conf *g, const char *path, struct stat *st)
{
	struct fcache_entry *e = fcache_slot(path, g->follow_symlinks);
	if (!e->path || e->follow != g->follow_symlinks || strcmp(e->path, path) != 0)
		return NULL;
	if (fstatat(AT_FDCWD, path, st, g->follow_symlinks ? 0 : AT_SYMLINK_NOFOLLOW) == 0 && same_file(st, &e->st))
		return e;
	fcache_drop(e);
	return NULL;
}

static struct fcache_entry *fcache_put(const struct static_conf *g, const char *path, int fd, const struct stat *st)
{
	struct fcache_entry *e = fcache_slot(path, g->follow_symlinks);
	fcache_drop(e);
	*e = (struct fcache_entry){.path = xstrdup(path), .follow = g->follow_symlinks, .fd = fd, .st = *st};
	return e;
}

/* rel (no leading '/'; "" is the root itself) under rootfd, for reading.
 * O_NONBLOCK: a FIFO must not block the worker at open. */
static int open_rel(const struct static_conf *g, int rootfd, const char *rel)
{
	const char *p = *rel ? rel : ".";
	int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	if (g->follow_symlinks)
		return openat(rootfd, p, flags);
	struct open_how how = {.flags = (uint64_t)flags, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
	return (int)syscall(SYS_openat2, rootfd, p, &how, sizeof(how));
}

static int status_of_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR: return 404;
	case EXDEV: /* a symlink out of root (RESOLVE_BENEATH) */
	case ELOOP: /* too many links, or a magic link */
	case EACCES: return 403;
	case ENAMETOOLONG: return 414;
	case EMFILE:
	case ENFILE: return 503;
	default: return 404;
	}
}

/* target: the request's path as the client wrote it (still encoded),
 * then add, then its query. NULL if it would not fit. */
static char *target_with(const struct http_request *r, const char *base, size_t blen, const char *add)
{
	size_t al = strlen(add);
	size_t n = blen + al + (r->has_query ? 1 + r->query.len : 0);
	char *t = xmalloc(n + 1);
	memcpy(t, base, blen);
	memcpy(t + blen, add, al);
	if (r->has_query) {
		t[blen + al] = '?';
		memcpy(t + blen + al + 1, r->query.p, r->query.len);
	}
	t[n] = 0;
	return t;
}

/* ---- response heads ---- */

struct head {
	struct http_header f[12];
	unsigned n;
	char buf[1024];
	size_t used;
};

static void add(struct head *h, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add(struct head *h, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(h->buf + h->used, sizeof(h->buf) - h->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(h->buf) - h->used || h->n == sizeof(h->f) / sizeof(h->f[0]))
		return;
	h->f[h->n].name = (struct http_slice){name, strlen(name)};
	h->f[h->n].value = (struct http_slice){h->buf + h->used, (size_t)n};
	h->n++;
	h->used += (size_t)n + 1;
}

/* A value that outlives the response head (the configuration, the MIME
 * table): referred to, not copied, so no length of it can be dropped for
 * want of room in buf (which holds the short formatted values only). */
static void add_ref(struct head *h, const char *name, const char *p, size_t len)
{
	if (h->n == sizeof(h->f) / sizeof(h->f[0]))
		return;
	h->f[h->n].name = (struct http_slice){name, strlen(name)};
	h->f[h->n].value = (struct http_slice){p, len};
	h->n++;
}

/* ---- a directory ---- */

struct name {
	char *s;
	int dir;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct name *)a)->s, ((const struct name *)b)->s);
}

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void put_s(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* s as HTML text (and attribute value) */
static void put_html(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': put_s(b, "&amp;"); break;
		case '<': put_s(b, "&lt;"); break;
		case '>': put_s(b, "&gt;"); break;
		case '"': put_s(b, "&quot;"); break;
		case '\'': put_s(b, "&#39;"); break;
		default: put(b, s, 1);
		}
	}
}

/* s percent-encoded as one path segment */
static void put_segment(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c)) {
			put(b, s, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			put(b, e, 3);
		}
	}
}

/* An HTML listing of the directory fd (taken over): no dotfiles, names
 * escaped, directories with a '/'. */
static void autoindex(struct exchange *x, const struct exchange_info *info, int fd)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		exchange_error(x, 500, NULL);
		return;
	}
	size_t n = 0, cap = 64;
	struct name *names = xmalloc(cap * sizeof(*names));
	struct dirent *de;
	while ((de = readdir(d)) && n < AUTOINDEX_MAX) {
		if (de->d_name[0] == '.')
			continue;
		int dir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
			struct stat st;
			/* beneath: a link's target is not looked at (it may be outside root) */
			dir = fstatat(dirfd(d), de->d_name, &st,
				      info->backend->st.follow_symlinks ? 0 : AT_SYMLINK_NOFOLLOW) == 0 &&
			      S_ISDIR(st.st_mode);
		}
		if (n == cap) {
			cap *= 2;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = (struct name){xstrdup(de->d_name), dir};
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	struct buf b = {0};
	put_s(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
	put_html(&b, info->path);
	put_s(&b, "</title></head>\n<body><h1>Index of ");
	put_html(&b, info->path);
	put_s(&b, "</h1>\n<ul>\n");
	for (size_t i = 0; i < n; i++) {
		struct buf seg = {0};
		put_segment(&seg, names[i].s);
		put(&seg, "", 1);
		put_s(&b, "<li><a href=\"");
		put_html(&b, seg.p);
		put_s(&b, names[i].dir ? "/\">" : "\">");
		put_html(&b, names[i].s);
		put_s(&b, names[i].dir ? "/</a></li>\n" : "</a></li>\n");
		free(seg.p);
		free(names[i].s);
	}
	free(names);
	put_s(&b, "</ul>\n</body></html>\n");
	struct head h = {.n = 0};
	add(&h, "Content-Type", "text/html; charset=utf-8");
	struct cgi_response r = {.status = 200, .content_length = (int64_t)b.len, .fields = h.f, .nfields = h.n};
	int ok = exchange_response_head(x, &r) == 0 && exchange_response_body(x, b.p, b.len) >= 0;
	free(b.p);
	exchange_response_end(x, ok);
}

/* ---- a file ---- */

/* fd: the file's descriptor, closed with done unless kept is set (the
 * worker's cache holds it). */
static void done(int fd, const struct fcache_entry *kept)
{
	if (!kept)
		close(fd);
}

/* Serve the regular file fd (taken over unless kept) with stat st; coding
 * names the precompressed variant it is, or is NULL. */
static void send_file(struct exchange *x, const struct exchange_info *info, const char *name, int fd,
		      struct fcache_entry *kept, const struct stat *st, const char *coding)
{
	const struct static_conf *g = &info->backend->st;
	const struct http_request *req = info->req;
	/* a kept file's validators are formatted once: its stat is the same
	 * at each hit, and so is its coding (one entry per path) */
	char etag_buf[80], lm_buf[32];
	char *etag = kept ? kept->etag : etag_buf, *lm = kept ? kept->lm : lm_buf;
	if (!kept || !kept->validators) {
		http_etag_make(etag, sizeof(etag_buf), (uint64_t)st->st_ino, (int64_t)st->st_size,
			       (int64_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, coding);
		http_format_date(st->st_mtim.tv_sec, lm);
		if (kept)
			kept->validators = 1;
	}
	int get_or_head = req->method_id == HTTP_GET || req->method_id == HTTP_HEAD;
	struct http_cond cond = {
	    .if_match = http_header_value(req, "if-match"),
	    .if_unmodified_since = http_header_value(req, "if-unmodified-since"),
	    .if_none_match = http_header_value(req, "if-none-match"),
	    .if_modified_since = http_header_value(req, "if-modified-since"),
	    .get_or_head = get_or_head,
	    .etag = etag,
	    .mtime = (int64_t)st->st_mtim.tv_sec,
	};
	int cs = http_cond_eval(&cond);
	struct head h = {.n = 0};
	if (cs == HTTP_COND_FAILED) {
		done(fd, kept);
		exchange_error(x, 412, NULL);
		return;
	}
	int64_t size = (int64_t)st->st_size, first = 0, last = size - 1;
	int status = 200;
	if (cs == HTTP_COND_NOT_MODIFIED) {
		status = 304;
	} else {
		struct http_slice range = http_header_value(req, "range");
		struct http_slice if_range = http_header_value(req, "if-range");
		if (range.len && (!if_range.len || http_if_range(if_range, etag, (int64_t)st->st_mtim.tv_sec))) {
			int rr = http_range_parse(range, size, &first, &last);
			if (rr == HTTP_RANGE_UNSATISFIABLE) {
				done(fd, kept);
				char cr[64];
				snprintf(cr, sizeof(cr), "Content-Range: bytes */%lld", (long long)size);
				exchange_error(x, 416, cr);
				return;
			}
			if (rr == HTTP_RANGE_ONE)
				status = 206;
			else
				first = 0, last = size - 1;
		}
	}
	if (status != 304) {
		struct http_slice type = mime_lookup(g->mime, g->nmime, name, strlen(name));
		if (!type.p)
			type = (struct http_slice){"application/octet-stream", strlen("application/octet-stream")};
		add_ref(&h, "Content-Type", type.p, type.len);
	}
	add_ref(&h, "Last-Modified", lm, strlen(lm));
	add_ref(&h, "ETag", etag, strlen(etag));
	if (status != 304)
		add_ref(&h, "Accept-Ranges", "bytes", strlen("bytes"));
	if (status == 206)
		add(&h, "Content-Range", "bytes %lld-%lld/%lld", (long long)first, (long long)last, (long long)size);
	if (coding)
		add_ref(&h, "Content-Encoding", coding, strlen(coding));
	if (g->precompressed)
		add_ref(&h, "Vary", "Accept-Encoding", strlen("Accept-Encoding"));
	if (g->cache_control)
		add_ref(&h, "Cache-Control", g->cache_control, strlen(g->cache_control));
	int64_t len = size ? last - first + 1 : 0;
	struct cgi_response r = {.status = status, .content_length = len, .fields = h.f, .nfields = h.n};
	if (status == 304 || req->method_id == HTTP_HEAD || len == 0) {
		done(fd, kept);
		exchange_response_end(x, exchange_response_head(x, &r) == 0);
		return;
	}
	if (len <= SMALL_FILE) {
		/* read whole: the head and the body in one write (a send of
		 * the head and a sendfile cost more for a few KiB) */
		char body[SMALL_FILE];
		ssize_t n = pread(fd, body, (size_t)len, (off_t)first);
		if (n == len) {
			done(fd, kept);
			/* (the head waits for the end of the turn: one write) */
			exchange_response_end(x, exchange_response_head(x, &r) == 0 &&
						     exchange_response_body(x, body, (size_t)len) >= 0);
			return;
		}
		/* shorter than its stat said: the file path below finds out */
	}
	if (kept && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		exchange_log(x, LOG_ERROR, "%s: %s", name, strerror(errno));
		exchange_error(x, 503, NULL);
		return;
	}
	exchange_response_end(x, exchange_response_file(x, &r, fd, (off_t)first, len) == 0);
}

/* Opening files of one request: the root is opened when a file is not
 * in the cache, once. */
struct lookup {
	const struct static_conf *g;
	int rootfd;	/* -1: not opened yet */
	int root_errno; /* the root could not be opened: this errno */
};

/* rel's file: its descriptor and stat; *kept the worker's cache entry
 * that holds the descriptor (a small regular file: the caller must not
 * close it), or NULL. -1 with errno when it cannot be opened. */
static int file_open(struct lookup *l, const char *rel, struct stat *st, struct fcache_entry **kept)
{
	const struct static_conf *g = l->g;
	char path[4096];
	int cacheable = *rel && (size_t)snprintf(path, sizeof(path), "%s/%s", g->root, rel) < sizeof(path);
	*kept = NULL;
	if (cacheable && (*kept = fcache_get(g, path, st)))
		return (*kept)->fd;
	if (l->rootfd < 0 && !l->root_errno) {
		l->rootfd = open(g->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (l->rootfd < 0 && (errno == EMFILE || errno == ENFILE) && fcache_flush())
			l->rootfd = open(g->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (l->rootfd < 0)
			l->root_errno = errno;
	}
	if (l->rootfd < 0) {
		errno = l->root_errno;
		return -1;
	}
	int fd = open_rel(g, l->rootfd, rel);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && fcache_flush())
		fd = open_rel(g, l->rootfd, rel);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (cacheable && S_ISREG(st->st_mode) && st->st_size <= SMALL_FILE) {
		*kept = fcache_put(g, path, fd, st);
	}
	return fd;
}

static void lookup_end(struct lookup *l)
{
	if (l->rootfd >= 0)
		close(l->rootfd);
	l->rootfd = -1;
}

/* The precompressed variant of rel the client accepts, if there is one:
 * its fd, *kept and stat, and the coding in *coding. -1 if none. */
static int variant(struct lookup *l, const char *rel, unsigned accept, struct stat *st, struct fcache_entry **kept,
		   const char **coding)
{
	static const struct {
		unsigned bit;
		const char *suffix, *coding;
	} v[] = {{HTTP_ACCEPT_BR, ".br", "br"}, {HTTP_ACCEPT_GZIP, ".gz", "gzip"}};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (!(accept & v[i].bit))
			continue;
		char p[4096];
		if ((size_t)snprintf(p, sizeof(p), "%s%s", rel, v[i].suffix) >= sizeof(p))
			continue;
		int fd = file_open(l, p, st, kept);
		if (fd < 0)
			continue;
		if (S_ISREG(st->st_mode)) {
			*coding = v[i].coding;
			return fd;
		}
		done(fd, *kept);
	}
	return -1;
}

/* ---- the request ---- */

static void *static_start(struct exchange *x, const struct exchange_info *info)
{
	const struct static_conf *g = &info->backend->st;
	const struct http_request *req = info->req;
	const char *rel = info->rest;
	while (*rel == '/')
		rel++;
	/* dispatch refused dot segments already; a file cannot name one */
	if (strstr(info->rest, "/.") || rel[0] == '.') {
		exchange_error(x, 404, NULL);
		return NULL;
	}
	struct lookup l = {.g = g, .rootfd = -1};
	struct stat st;
	struct fcache_entry *kept;
	int fd = file_open(&l, rel, &st, &kept);
	int err = errno;
	if (fd < 0 && l.root_errno) {
		exchange_log(x, LOG_ERROR, "%s: cannot open root %s: %s", info->backend->name, g->root,
			     strerror(l.root_errno));
		exchange_error(x, 500, NULL);
		return NULL;
	}
	if (fd < 0) {
		lookup_end(&l);
		int status = status_of_errno(err);
		if (status == 404 && g->fallback && strcmp(info->path, g->fallback) != 0) {
			/* try_files $uri $uri/ FALLBACK?$args */
			char *t = target_with(req, g->fallback, strlen(g->fallback), "");
			exchange_internal_redirect(x, t, strlen(t));
			free(t);
			return NULL;
		}
		if (status >= 500)
			exchange_log(x, LOG_ERROR, "%s: %s", rel, strerror(err));
		exchange_error(x, status, NULL);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		/* never kept (only regular files are): fd is this request's,
		 * and so is the root opened for it */
		size_t plen = strlen(info->path);
		if (plen == 0 || info->path[plen - 1] != '/') {
			close(fd);
			lookup_end(&l);
			exchange_redirect_slash(x);
			return NULL;
		}
		for (size_t i = 0; i < g->nindex; i++) {
			/* the index file by the same rules as any file */
			struct stat ist;
			char p[4096];
			if ((size_t)snprintf(p, sizeof(p), "%s%s%s", rel, *rel ? "/" : "", g->index[i]) >= sizeof(p))
				continue;
			int ifd = open_rel(g, l.rootfd, p);
			if (ifd < 0)
				continue;
			int reg = fstat(ifd, &ist) == 0 && S_ISREG(ist.st_mode);
			close(ifd);
			if (reg) {
				close(fd);
				lookup_end(&l);
				char *t = target_with(req, req->path.p, req->path.len, g->index[i]);
				exchange_internal_redirect(x, t, strlen(t));
				free(t);
				return NULL;
			}
		}
		lookup_end(&l);
		if (req->method_id != HTTP_GET && req->method_id != HTTP_HEAD) {
			close(fd);
			exchange_error(x, 405, "Allow: GET, HEAD");
		} else if (g->autoindex) {
			autoindex(x, info, fd);
		} else {
			close(fd);
			exchange_error(x, 403, NULL);
		}
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		done(fd, kept);
		lookup_end(&l);
		exchange_error(x, 403, NULL);
		return NULL;
	}
	if (req->method_id != HTTP_GET && req->method_id != HTTP_HEAD) {
		done(fd, kept);
		lookup_end(&l);
		exchange_error(x, 405, "Allow: GET, HEAD");
		return NULL;
	}
	const char *coding = NULL;
	if (g->precompressed) {
		unsigned accept = http_accept_encoding(http_header_value(req, "accept-encoding"));
		struct stat vst;
		struct fcache_entry *vkept;
		int vfd = accept ? variant(&l, rel, accept, &vst, &vkept, &coding) : -1;
		if (vfd >= 0) {
			done(fd, kept);
			fd = vfd;
			kept = vkept;
			st = vst;
		}
	}
	lookup_end(&l);
	send_file(x, info, rel, fd, kept, &st, coding);
	return NULL;
}

static void static_noop(void *st)
{
	(void)st;
}

const struct backend_ops static_backend_ops = {
    .start = static_start,
    .body_ready = static_noop,
    .resume = static_noop,
    .abort = static_noop,
};
