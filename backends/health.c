/* The health backend: what a load balancer or an orchestrator asks before
 * it sends work. 200 "ok" while this instance takes work; 503 "draining"
 * from the moment a graceful stop begins (the master sets
 * scoreboard.draining, drain_delay included), so the balancer stops
 * sending new work while in-flight requests still finish. It reads one
 * word of the scoreboard: cheap enough for a check every few hundred ms,
 * and it shows nothing of the instance (the status backend does). */
#include <string.h>

#include "backend.h"

static void *health_start(struct exchange *x, const struct exchange_info *info)
{
	(void)info;
	const struct scoreboard *sb = loop_scoreboard();
	int draining = sb && __atomic_load_n(&sb->draining, __ATOMIC_RELAXED);
	const char *body = draining ? "draining\n" : "ok\n";
	struct http_header fields[2] = {
	    {{"Content-Type", 12}, {"text/plain", 10}},
	    {{"Cache-Control", 13}, {"no-store", 8}},
	};
	struct cgi_response resp = {
	    .status = draining ? 503 : 200, .fields = fields, .nfields = 2, .content_length = (int64_t)strlen(body)};
	if (exchange_response_head(x, &resp) < 0 || exchange_response_body(x, body, strlen(body)) < 0)
		exchange_response_end(x, 0);
	else
		exchange_response_end(x, 1);
	return NULL;
}

static void health_noop(void *st)
{
	(void)st;
}

const struct backend_ops health_backend_ops = {
    .start = health_start,
    .body_ready = health_noop,
    .resume = health_noop,
    .abort = health_noop,
};
