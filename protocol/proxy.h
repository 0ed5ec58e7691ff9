/* The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy's
 * proxy-protocol.txt defines it: the header a balancer sends first on a
 * connection to say which client it carries. Pure: no I/O, no
 * allocation, no globals. */
#ifndef CPM_PROXY_H
#define CPM_PROXY_H

#include <stddef.h>
#include <stdint.h>

#define PROXY_V1_MAX 107  /* the longest v1 line, CRLF included (the spec's bound) */
#define PROXY_MAX    4096 /* the longest header cpm takes, v2 TLVs included (nginx's bound) */

enum proxy_result {
	PROXY_ERROR = -1, /* not a PROXY header, malformed, or longer than PROXY_MAX */
	PROXY_OK = 0,	  /* complete: out->len bytes are the header */
	PROXY_AGAIN = 1,  /* a proper prefix of a header that may still be valid */
};

struct proxy_info {
	int version; /* 1 or 2 */
	/* the addresses the header carries: family 4 or 6; 0 when it carries
	 * none cpm can use (v2 LOCAL, a health check of the balancer's own;
	 * v1 UNKNOWN; v2 UNSPEC or AF_UNIX): then the connection's own
	 * peer stands */
	int family;
	uint8_t src[16], dst[16]; /* 4 bytes used for family 4 */
	uint16_t src_port, dst_port;
	int local;  /* v2 LOCAL command */
	int ssl;    /* v2 PP2_TYPE_SSL with PP2_CLIENT_SSL: the client spoke TLS to the balancer */
	size_t len; /* bytes of the header (with PROXY_OK) */
};

/* Parse the header at the start of buf[0..len).
 *
 * PROXY_OK: *out is filled; out->len <= len bytes are the header, what
 * follows is the connection's first payload byte.
 * PROXY_AGAIN: more bytes are needed. Every byte of buf[0..len) belongs
 * to the header, so a reader may consume all of them without reading
 * into the payload (the header's end is never past PROXY_MAX).
 * PROXY_ERROR: *why says why (a static string). Decided as early as a
 * byte shows it: "GET / HTTP/1.1" fails at its first byte.
 *
 * v2 TLVs are walked (each must fit the header exactly) and skipped,
 * except PP2_TYPE_SSL's client flag. */
enum proxy_result proxy_parse(const void *buf, size_t len, struct proxy_info *out, const char **why);

#endif
