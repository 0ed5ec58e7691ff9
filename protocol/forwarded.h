/* The client behind trusted proxies: X-Forwarded-For with
 * X-Forwarded-Proto, or RFC 7239 Forwarded. Pure: no I/O, no
 * allocation, no globals.
 *
 * The header lists hops, the client first and each proxy's peer after
 * it. Walking from the right, every address that is a trusted proxy is
 * skipped; the first that is not is the client (nginx's
 * real_ip_recursive). If all are trusted, the left-most is the client.
 * An element that is not an address (garbage, "unknown", an obfuscated
 * node) ends the walk: the client is then the last address walked past,
 * or nothing changes if there is none. A client can put anything at the
 * left of the list; only what trusted proxies added is believed. */
#ifndef CPM_FORWARDED_H
#define CPM_FORWARDED_H

#include <stddef.h>

#include "cidr.h"
#include "http_parser.h"

enum fwd_kind {
	FWD_X_FORWARDED, /* X-Forwarded-For, X-Forwarded-Proto */
	FWD_FORWARDED,	 /* RFC 7239 Forwarded: for= and proto= */
};

struct fwd_client {
	int found;	       /* 1: addr, port and peer name the client */
	struct cidr_peer peer; /* family 4 or 6 */
	char addr[46];	       /* textual, as inet_ntop writes it (no brackets) */
	char port[6];	       /* "" when the header gives none */
	int https;	       /* -1: not said; 0: http; 1: https */
};

/* vals[0..n): the values of the header's field lines, in order (several
 * lines are one list). pvals[0..np): X-Forwarded-Proto's (FWD_X_FORWARDED
 * only; ignored for FWD_FORWARDED, whose proto= is in the element).
 * trusted[0..ntrusted): the trusted proxies. The caller has checked that
 * the connection's peer is one of them.
 *
 * https: Forwarded: the proto= of the element chosen. X-Forwarded-Proto:
 * when it lists as many values as X-Forwarded-For, the one at the
 * client's position; otherwise its right-most value. Only "http" and
 * "https" (any case) count. When X-Forwarded-For is absent or says
 * nothing usable, X-Forwarded-Proto's right-most value still applies. */
void fwd_client(enum fwd_kind kind, const struct http_slice *vals, size_t n, const struct http_slice *pvals, size_t np,
		const struct cidr *trusted, size_t ntrusted, struct fwd_client *out);

#endif
