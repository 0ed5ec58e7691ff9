/* Listening sockets, bound by the master and shared by every worker. */
#ifndef CPM_LISTENER_H
#define CPM_LISTENER_H

#include <stddef.h>

struct listener {
	int fd;
	char *addr;    /* as configured */
	char host[64]; /* numeric host, for SERVER_NAME */
	char port[8];  /* for SERVER_PORT ("0" for unix sockets) */
	int is_unix;
	int from_systemd; /* socket activation: systemd owns the file */
	/* from the configuration this listener serves (set by the master for
	 * each generation): */
	const struct listen_conf *conf;
	struct tls_ctx *tls; /* NULL: plain HTTP */
};

/* Bind and listen on every address. Returns 0, or -1 after logging and
 * closing what was opened. */
int listeners_open(struct listener **out, size_t *n, char *const *addrs, size_t naddrs, int backlog);
void listeners_close(struct listener *l, size_t n);

/* 1 if addr, a configured listen address, names the socket l is bound to
 * (the same string, or the same address once resolved: "localhost:8000"
 * and "127.0.0.1:8000"). */
int listener_matches(const struct listener *l, const char *addr);

/* Listening sockets inherited from systemd or a previous cpm: listeners_open
 * uses one whose address matches instead of binding. listeners_adopt_done
 * closes those no address claimed. */
void listeners_adopt(const int *fds, size_t n, int from_systemd);
void listeners_adopt_done(void);

#endif
