/* The status backend: what the scoreboard says, as JSON or as Prometheus
 * text exposition (?format=prometheus). Nothing is invented: every number
 * is read from the shared scoreboard the master and workers write. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		o->cap = o->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
		o->p = xrealloc(o->p, o->cap);
		if (!o->p)
			abort();
	}
}

static const char *state_name(int st)
{
	switch (st) {
	case SLOT_BOOTING: return "booting";
	case SLOT_READY: return "ready";
	case SLOT_DRAINING: return "draining";
	default: return "free";
	}
}

static const char *pool_state_name(int st)
{
	switch (st) {
	case PSLOT_READY: return "ready";
	case PSLOT_DRAINING: return "draining";
	case PSLOT_DOWN: return "down";
	case PSLOT_STARTING: return "starting";
	default: return "free";
	}
}

/* s as the inside of a JSON string or a Prometheus label value: both
 * escape '"' and '\\'; control characters become \u00XX (JSON) or are
 * dropped (Prometheus has only \n). */
static void put_escaped(struct out *o, const char *s, int json_rules)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			put(o, "\\%c", c);
		else if (c < 0x20)
			json_rules ? put(o, "\\u%04x", c) : (void)0;
		else
			put(o, "%c", c);
	}
}

static void json_pools(struct out *o, const struct scoreboard *sb, int64_t now)
{
	put(o, "\"pools\":[");
	int first = 1;
	for (unsigned id = 0; id < POOLS_MAX; id++) {
		const struct pool_header *h = &sb->pools[id];
		if (!h->active)
			continue;
		put(o, "%s\n {\"name\":\"", first ? "" : ",");
		put_escaped(o, h->name, 1);
		put(o, "\",\"state\":\"%s\",\"reason\":", h->down ? "down" : "up");
		if (h->down) {
			char why[sizeof(h->down_reason)];
			for (size_t i = 0; i < sizeof(why); i++)
				why[i] = __atomic_load_n(&h->down_reason[i], __ATOMIC_RELAXED);
			why[sizeof(why) - 1] = 0;
			put(o, "\"");
			put_escaped(o, why, 1);
			put(o, "\"");
		} else {
			put(o, "null");
		}
		put(o, ",\"requests\":%llu,\"workers_waiting\":%d,\"processes\":[", (unsigned long long)h->requests,
		    h->waiting);
		int row = 0;
		for (unsigned k = 0; k < h->nslots; k++) {
			const struct pool_slot *s = &sb->pool_slots[h->base + k];
			int64_t started = s->request_start_ms;
			if (s->pid <= 0 && s->state == PSLOT_FREE)
				continue; /* a position that runs nothing and wants nothing */
			put(o,
			    "%s\n  {\"slot\":%u,\"pid\":%ld,\"state\":\"%s\",\"busy\":%s,\"requests\":%llu,"
			    "\"restarts\":%llu,\"request_age_ms\":%lld,\"uptime_seconds\":%.3f}",
			    row++ ? "," : "", k, (long)s->pid, pool_state_name(s->state),
			    s->busy == 1 ? "true" : "false", (unsigned long long)s->served,
			    (unsigned long long)(s->restarts ? s->restarts - 1 : 0),
			    (long long)(s->busy == 1 && started ? now - started : 0),
			    s->pid > 0 ? (double)(now - s->started_ms) / 1000.0 : 0.0);
		}
		put(o, "]}");
		first = 0;
	}
	put(o, "],\n");
}

static void prometheus_pools(struct out *o, const struct scoreboard *sb)
{
	put(o, "# HELP cpm_pool_requests_total Requests a FastCGI pool completed.\n"
	       "# TYPE cpm_pool_requests_total counter\n");
	for (unsigned id = 0; id < POOLS_MAX; id++)
		if (sb->pools[id].active) {
			put(o, "cpm_pool_requests_total{pool=\"");
			put_escaped(o, sb->pools[id].name, 0);
			put(o, "\"} %llu\n", (unsigned long long)sb->pools[id].requests);
		}
	put(o, "# HELP cpm_pool_processes FastCGI pool processes, by state.\n"
	       "# TYPE cpm_pool_processes gauge\n");
	for (unsigned id = 0; id < POOLS_MAX; id++) {
		const struct pool_header *h = &sb->pools[id];
		if (!h->active)
			continue;
		unsigned n[4] = {0}, busy = 0;
		for (unsigned k = 0; k < h->nslots; k++) {
			const struct pool_slot *s = &sb->pool_slots[h->base + k];
			if (s->pid > 0 && s->state >= 0 && s->state < 4)
				n[s->state]++;
			busy += s->pid > 0 && s->busy == 1;
		}
		static const char *const st[] = {"ready", "draining", "busy"};
		unsigned v[] = {n[PSLOT_READY], n[PSLOT_DRAINING], busy};
		for (int i = 0; i < 3; i++) {
			put(o, "cpm_pool_processes{pool=\"");
			put_escaped(o, h->name, 0);
			put(o, "\",state=\"%s\"} %u\n", st[i], v[i]);
		}
	}
	put(o, "# HELP cpm_pool_restarts_total Processes started again in a pool slot.\n"
	       "# TYPE cpm_pool_restarts_total counter\n");
	for (unsigned id = 0; id < POOLS_MAX; id++) {
		const struct pool_header *h = &sb->pools[id];
		if (!h->active)
			continue;
		unsigned long long r = 0;
		for (unsigned k = 0; k < h->nslots; k++) {
			uint64_t x = sb->pool_slots[h->base + k].restarts;
			r += x ? x - 1 : 0;
		}
		put(o, "cpm_pool_restarts_total{pool=\"");
		put_escaped(o, h->name, 0);
		put(o, "\"} %llu\n", r);
	}
}

static const char *const classes[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

static void json(struct out *o, const struct scoreboard *sb, int64_t now)
{
	put(o, "{\"master\":{\"pid\":%ld,\"uptime_seconds\":%.3f,\"started\":%lld,\"generation\":%u},\n",
	    (long)sb->master_pid, (double)(now - sb->started_ms) / 1000.0, (long long)sb->started_unix, sb->generation);
	put(o, "\"workers\":[");
	int first = 1;
	for (unsigned i = 0; i < sb->nslots; i++) {
		const struct worker_slot *s = &sb->slots[i];
		if (s->state == SLOT_FREE || s->pid <= 0)
			continue;
		put(o,
		    "%s\n {\"slot\":%u,\"pid\":%ld,\"state\":\"%s\",\"requests\":%llu,\"connections\":%u,"
		    "\"cgi_running\":%u,\"heartbeat_age_ms\":%lld,\"uptime_seconds\":%.3f}",
		    first ? "" : ",", i, (long)s->pid, state_name(s->state), (unsigned long long)s->requests,
		    s->connections, s->cgi_running, (long long)(now - s->heartbeat_ms),
		    (double)(now - s->started_ms) / 1000.0);
		first = 0;
	}
	put(o, "],\n");
	json_pools(o, sb, now);
	put(o, "\"requests\":{\"total\":%llu", (unsigned long long)sb->requests);
	for (int k = 0; k < 6; k++)
		put(o, ",\"%s\":%llu", classes[k], (unsigned long long)sb->by_class[k]);
	put(o, "}}\n");
}

static void prometheus(struct out *o, const struct scoreboard *sb, int64_t now)
{
	put(o,
	    "# HELP cpm_master_uptime_seconds Time since the master started.\n"
	    "# TYPE cpm_master_uptime_seconds gauge\n"
	    "cpm_master_uptime_seconds %.3f\n",
	    (double)(now - sb->started_ms) / 1000.0);
	put(o,
	    "# HELP cpm_config_generation Configuration reloads since start.\n"
	    "# TYPE cpm_config_generation gauge\n"
	    "cpm_config_generation %u\n",
	    sb->generation);
	put(o, "# HELP cpm_requests_total Requests answered, by status class.\n"
	       "# TYPE cpm_requests_total counter\n");
	for (int k = 0; k < 6; k++)
		put(o, "cpm_requests_total{class=\"%s\"} %llu\n", classes[k], (unsigned long long)sb->by_class[k]);
	static const char *const metrics[][3] = {
	    {"cpm_worker_requests_total", "counter", "Requests served by a worker."},
	    {"cpm_worker_connections", "gauge", "Open client connections of a worker."},
	    {"cpm_worker_cgi_running", "gauge", "CGI programs a worker is running."},
	    {"cpm_worker_heartbeat_age_seconds", "gauge", "Time since a worker's last heartbeat."},
	};
	for (size_t m = 0; m < 4; m++) {
		put(o, "# HELP %s %s\n# TYPE %s %s\n", metrics[m][0], metrics[m][2], metrics[m][0], metrics[m][1]);
		for (unsigned i = 0; i < sb->nslots; i++) {
			const struct worker_slot *s = &sb->slots[i];
			if (s->state == SLOT_FREE || s->pid <= 0)
				continue;
			put(o, "%s{slot=\"%u\",pid=\"%ld\",state=\"%s\"} ", metrics[m][0], i, (long)s->pid,
			    state_name(s->state));
			if (m == 0)
				put(o, "%llu\n", (unsigned long long)s->requests);
			else if (m == 1)
				put(o, "%u\n", s->connections);
			else if (m == 2)
				put(o, "%u\n", s->cgi_running);
			else
				put(o, "%.3f\n", (double)(now - s->heartbeat_ms) / 1000.0);
		}
	}
	prometheus_pools(o, sb);
}

static void *status_start(struct exchange *x, const struct exchange_info *info)
{
	const struct scoreboard *sb = loop_scoreboard();
	const struct http_request *r = info->req;
	int prom = r->query.len >= 17 && memmem(r->query.p, r->query.len, "format=prometheus", 17) != NULL;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	struct out o = {xmalloc(4096), 0, 4096};
	if (prom)
		prometheus(&o, sb, now);
	else
		json(&o, sb, now);

	const char *ctype = prom ? "text/plain; version=0.0.4" : "application/json";
	struct http_header fields[2] = {
	    {{"Content-Type", 12}, {ctype, strlen(ctype)}},
	    {{"Cache-Control", 13}, {"no-store", 8}},
	};
	struct cgi_response resp = {.status = 200, .fields = fields, .nfields = 2, .content_length = (int64_t)o.len};
	if (exchange_response_head(x, &resp) < 0 || exchange_response_body(x, o.p, o.len) < 0)
		exchange_response_end(x, 0);
	else
		exchange_response_end(x, 1);
	free(o.p);
	return NULL;
}

static void status_noop(void *st)
{
	(void)st;
}

const struct backend_ops status_backend_ops = {
    .start = status_start,
    .body_ready = status_noop,
    .resume = status_noop,
    .abort = status_noop,
};
