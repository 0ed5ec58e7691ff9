/* The status backend: what the scoreboard says, as JSON or as Prometheus
 * text exposition (?format=prometheus). Nothing is invented: every number
 * is read from the shared scoreboard the master and workers write. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
 * escape '"' and '\\'; a newline is \n in both; other control characters
 * become \u00XX (JSON) or are dropped (Prometheus has no escape for
 * them). */
static void put_escaped(struct out *o, const char *s, int json_rules)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			put(o, "\\%c", c);
		else if (c == '\n')
			put(o, "\\n");
		else if (c < 0x20)
			json_rules ? put(o, "\\u%04x", c) : (void)0;
		else
			put(o, "%c", c);
	}
}

/* ---- one reading of the scoreboard, for both formats ---- */

static const char *const classes[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const error_codes[3] = {"502", "503", "504"};

struct hist_view {
	uint64_t cum[HIST_BUCKETS + 1]; /* cumulative; [HIST_BUCKETS] = +Inf = count */
	double sum;			/* seconds */
};

struct backend_view {
	const char *name;
	int cgi; /* a cgi backend: it has running and queued gauges */
	uint64_t by_class[6], total, errors[3];
	struct hist_view duration, wait;
	unsigned long cgi_running, cgi_queued; /* over the live workers */
};

/* A pool process is in exactly one of these. */
enum { PS_IDLE, PS_BUSY, PS_DRAINING, PS_STARTING, PS_DOWN, PS_N };
static const char *const proc_states[PS_N] = {"idle", "busy", "draining", "starting", "down"};

struct pool_view {
	const struct pool_header *h;
	unsigned procs[PS_N];
	unsigned long long restarts;
};

struct view {
	struct backend_view b[BACKEND_STATS_MAX];
	unsigned nb;
	struct pool_view p[POOLS_MAX];
	unsigned np;
	uint64_t by_class[6], total;
	unsigned workers[4]; /* by enum worker_state */
	unsigned long connections;
	int64_t heartbeat_age_max_ms;
	uint64_t tls[3]; /* TLS_HS_* */
};

static int worker_live(const struct worker_slot *s)
{
	return s->state != SLOT_FREE && s->pid > 0;
}

static void hist_read(struct hist_view *v, const struct histogram *h)
{
	uint64_t c = 0;
	for (unsigned k = 0; k <= HIST_BUCKETS; k++) {
		c += __atomic_load_n(&h->bucket[k], __ATOMIC_RELAXED);
		v->cum[k] = c;
	}
	v->sum = (double)__atomic_load_n(&h->sum_us, __ATOMIC_RELAXED) / 1e6;
}

/* Which of enum PS_* the process at s is in, or -1 for a slot with no
 * process that is not expected to have one (never started, scaled
 * down). A process being stopped or killed is draining until reaped. */
static int proc_state(const struct pool_header *h, const struct pool_slot *s)
{
	if (s->pid > 0) {
		if (s->state == PSLOT_READY)
			return s->busy == 1 ? PS_BUSY : PS_IDLE;
		if (s->state == PSLOT_STARTING)
			return PS_STARTING; /* a new process of a rolling restart, or a try of a down pool */
		return PS_DRAINING;
	}
	if (s->state == PSLOT_FREE)
		return -1;
	if (h->down)
		return PS_DOWN;
	return h->next_start_ms ? PS_STARTING : -1;
}

static void view_read(struct view *v, const struct scoreboard *sb, int64_t now)
{
	memset(v, 0, sizeof(*v));
	for (int k = 0; k < 3; k++)
		v->tls[k] = __atomic_load_n(&sb->tls_handshakes[k], __ATOMIC_RELAXED);
	for (unsigned i = 0, n = scoreboard_slots_used(sb); i < n; i++) {
		const struct worker_slot *s = &sb->slots[i];
		if (!worker_live(s))
			continue;
		if (s->state >= 0 && s->state < 4)
			v->workers[s->state]++;
		v->connections += s->connections;
		if (now - s->heartbeat_ms > v->heartbeat_age_max_ms)
			v->heartbeat_age_max_ms = now - s->heartbeat_ms;
	}
	for (unsigned i = 0; i < BACKEND_STATS_MAX; i++) {
		const struct backend_stats *e = &sb->backends[i];
		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) != 2)
			continue;
		struct backend_view *b = &v->b[v->nb];
		b->name = e->name;
		b->cgi = e->type == BACKEND_CGI;
		for (int k = 0; k < 6; k++) {
			b->by_class[k] = __atomic_load_n(&e->by_class[k], __ATOMIC_RELAXED);
			b->total += b->by_class[k];
			v->by_class[k] += b->by_class[k];
		}
		v->total += b->total;
		for (int k = 0; k < 3; k++)
			b->errors[k] = __atomic_load_n(&e->errors[k], __ATOMIC_RELAXED);
		hist_read(&b->duration, &e->duration);
		hist_read(&b->wait, &e->wait);
		for (unsigned w = 0, n = scoreboard_slots_used(sb); w < n; w++)
			if (worker_live(&sb->slots[w])) {
				b->cgi_running += sb->slots[w].backend[i].cgi_running;
				b->cgi_queued += sb->slots[w].backend[i].cgi_queued;
			}
		/* "(other)" is shown once the table has been full */
		if (i != BSTAT_OTHER || b->total || sb->backends_full_logged)
			v->nb++;
	}
	for (unsigned id = 0; id < POOLS_MAX; id++) {
		const struct pool_header *h = &sb->pools[id];
		if (!h->active)
			continue;
		struct pool_view *p = &v->p[v->np++];
		p->h = h;
		for (unsigned k = 0; k < h->nslots; k++) {
			const struct pool_slot *s = &sb->pool_slots[h->base + k];
			int st = proc_state(h, s);
			if (st >= 0)
				p->procs[st]++;
			p->restarts += s->restarts ? s->restarts - 1 : 0;
		}
	}
}

/* ---- JSON ---- */

static void json_hist(struct out *o, const char *key, const struct hist_view *h)
{
	put(o, "\"%s\":{\"count\":%llu,\"sum\":%.6f,\"buckets\":[", key, (unsigned long long)h->cum[HIST_BUCKETS],
	    h->sum);
	for (unsigned k = 0; k < HIST_BUCKETS; k++)
		put(o, "%s[%g,%llu]", k ? "," : "", (double)hist_bounds_us[k] / 1e6, (unsigned long long)h->cum[k]);
	put(o, "]}");
}

static void json_backends(struct out *o, const struct view *v)
{
	put(o, "\"backends\":[");
	for (unsigned i = 0; i < v->nb; i++) {
		const struct backend_view *b = &v->b[i];
		put(o, "%s\n {\"name\":\"", i ? "," : "");
		put_escaped(o, b->name, 1);
		put(o, "\",\"requests\":{\"total\":%llu", (unsigned long long)b->total);
		for (int k = 0; k < 6; k++)
			put(o, ",\"%s\":%llu", classes[k], (unsigned long long)b->by_class[k]);
		put(o, "},\"errors\":{");
		for (int k = 0; k < 3; k++)
			put(o, "%s\"%s\":%llu", k ? "," : "", error_codes[k], (unsigned long long)b->errors[k]);
		put(o, "},");
		json_hist(o, "duration_seconds", &b->duration);
		put(o, ",");
		json_hist(o, "wait_seconds", &b->wait);
		if (b->cgi)
			put(o, ",\"cgi_running\":%lu,\"cgi_queued\":%lu", b->cgi_running, b->cgi_queued);
		put(o, "}");
	}
	put(o, "],\n");
}

static void json_pools(struct out *o, const struct scoreboard *sb, const struct view *v, int64_t now)
{
	put(o, "\"pools\":[");
	for (unsigned id = 0; id < v->np; id++) {
		const struct pool_header *h = v->p[id].h;
		put(o, "%s\n {\"name\":\"", id ? "," : "");
		put_escaped(o, h->name, 1);
		char why[sizeof(h->down_reason) + 32];
		int down = scoreboard_pool_down(h, now, why, sizeof(why));
		put(o, "\",\"state\":\"%s\",\"up\":%s,\"reason\":", down ? "down" : "up", down ? "false" : "true");
		if (down) {
			put(o, "\"");
			put_escaped(o, why, 1);
			put(o, "\"");
		} else {
			put(o, "null");
		}
		put(o,
		    ",\"requests\":%llu,\"workers_waiting\":%d,\"starts\":%llu,\"restarts\":%llu,\"kills\":%llu,"
		    "\"crash_loops\":%llu,\"processes_by_state\":{",
		    (unsigned long long)h->requests, h->waiting, (unsigned long long)h->starts, v->p[id].restarts,
		    (unsigned long long)h->kills, (unsigned long long)h->crash_loops);
		for (int k = 0; k < PS_N; k++)
			put(o, "%s\"%s\":%u", k ? "," : "", proc_states[k], v->p[id].procs[k]);
		put(o, "},\"processes\":[");
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
	}
	put(o, "],\n");
}

static void json(struct out *o, const struct scoreboard *sb, const struct view *v, int64_t now)
{
	put(o, "{\"master\":{\"pid\":%ld,\"uptime_seconds\":%.3f,\"started\":%lld,\"generation\":%u},\n",
	    (long)sb->master_pid, (double)(now - sb->started_ms) / 1000.0, (long long)sb->started_unix, sb->generation);
	put(o, "\"workers\":[");
	int first = 1;
	for (unsigned i = 0, n = scoreboard_slots_used(sb); i < n; i++) {
		const struct worker_slot *s = &sb->slots[i];
		if (!worker_live(s))
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
	json_pools(o, sb, v, now);
	json_backends(o, v);
	put(o, "\"tls\":{\"handshakes\":%llu,\"resumed\":%llu,\"failed\":%llu},\n",
	    (unsigned long long)(v->tls[TLS_HS_FULL] + v->tls[TLS_HS_RESUMED]),
	    (unsigned long long)v->tls[TLS_HS_RESUMED], (unsigned long long)v->tls[TLS_HS_FAILED]);
	put(o, "\"requests\":{\"total\":%llu", (unsigned long long)v->total);
	for (int k = 0; k < 6; k++)
		put(o, ",\"%s\":%llu", classes[k], (unsigned long long)v->by_class[k]);
	put(o, "}}\n");
}

/* ---- Prometheus text exposition ---- */

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{label="value" ...: the opening of a sample, with more labels or
 * the closing '}' for the caller to add. */
static void sample(struct out *o, const char *name, const char *label, const char *value)
{
	put(o, "%s{%s=\"", name, label);
	put_escaped(o, value, 0);
	put(o, "\"");
}

static void prom_hist(struct out *o, const char *name, const char *help, const struct view *v, int wait)
{
	char n[96];
	family(o, name, "histogram", help);
	for (unsigned i = 0; i < v->nb; i++) {
		const struct hist_view *h = wait ? &v->b[i].wait : &v->b[i].duration;
		snprintf(n, sizeof(n), "%s_bucket", name);
		for (unsigned k = 0; k <= HIST_BUCKETS; k++) {
			sample(o, n, "backend", v->b[i].name);
			if (k < HIST_BUCKETS)
				put(o, ",le=\"%g\"} %llu\n", (double)hist_bounds_us[k] / 1e6,
				    (unsigned long long)h->cum[k]);
			else
				put(o, ",le=\"+Inf\"} %llu\n", (unsigned long long)h->cum[k]);
		}
		snprintf(n, sizeof(n), "%s_sum", name);
		sample(o, n, "backend", v->b[i].name);
		put(o, "} %.6f\n", h->sum);
		snprintf(n, sizeof(n), "%s_count", name);
		sample(o, n, "backend", v->b[i].name);
		put(o, "} %llu\n", (unsigned long long)h->cum[HIST_BUCKETS]);
	}
}

static void prom_backends(struct out *o, const struct view *v)
{
	family(o, "cpm_requests_total", "counter",
	       "Requests answered, by backend (\"(none)\": no backend reached) and status class.");
	for (unsigned i = 0; i < v->nb; i++)
		for (int k = 0; k < 6; k++) {
			sample(o, "cpm_requests_total", "backend", v->b[i].name);
			put(o, ",class=\"%s\"} %llu\n", classes[k], (unsigned long long)v->b[i].by_class[k]);
		}
	family(o, "cpm_backend_errors_total", "counter", "Requests answered 502, 503 or 504, by backend and code.");
	for (unsigned i = 0; i < v->nb; i++)
		for (int k = 0; k < 3; k++) {
			sample(o, "cpm_backend_errors_total", "backend", v->b[i].name);
			put(o, ",code=\"%s\"} %llu\n", error_codes[k], (unsigned long long)v->b[i].errors[k]);
		}
	prom_hist(o, "cpm_request_duration_seconds", "Time from a request's first byte to its end, by backend.", v, 0);
	prom_hist(o, "cpm_request_wait_seconds", "Time a request waited for a CGI slot or a pool process, by backend.",
		  v, 1);
	family(o, "cpm_cgi_running", "gauge", "CGI programs running, by backend (all workers).");
	for (unsigned i = 0; i < v->nb; i++)
		if (v->b[i].cgi) {
			sample(o, "cpm_cgi_running", "backend", v->b[i].name);
			put(o, "} %lu\n", v->b[i].cgi_running);
		}
	family(o, "cpm_cgi_queued", "gauge", "Requests waiting for a CGI slot (max_concurrent), by backend.");
	for (unsigned i = 0; i < v->nb; i++)
		if (v->b[i].cgi) {
			sample(o, "cpm_cgi_queued", "backend", v->b[i].name);
			put(o, "} %lu\n", v->b[i].cgi_queued);
		}
}

static void prom_pool_counter(struct out *o, const struct view *v, const char *name, const char *type, const char *help,
			      int which)
{
	family(o, name, type, help);
	for (unsigned id = 0; id < v->np; id++) {
		const struct pool_header *h = v->p[id].h;
		unsigned long long x = which == 0   ? (unsigned long long)!h->down
				       : which == 1 ? (unsigned long long)(h->waiting > 0 ? h->waiting : 0)
				       : which == 2 ? (unsigned long long)h->requests
				       : which == 3 ? (unsigned long long)h->starts
				       : which == 4 ? v->p[id].restarts
				       : which == 5 ? (unsigned long long)h->kills
						    : (unsigned long long)h->crash_loops;
		sample(o, name, "pool", h->name);
		put(o, "} %llu\n", x);
	}
}

static void prom_pools(struct out *o, const struct view *v)
{
	prom_pool_counter(o, v, "cpm_pool_up", "gauge", "1 while a FastCGI pool can run processes, 0 while it is down.",
			  0);
	family(o, "cpm_pool_processes", "gauge",
	       "FastCGI pool processes, by state (each process in exactly one; starting and down: slots waiting "
	       "for a process).");
	for (unsigned id = 0; id < v->np; id++)
		for (int k = 0; k < PS_N; k++) {
			sample(o, "cpm_pool_processes", "pool", v->p[id].h->name);
			put(o, ",state=\"%s\"} %u\n", proc_states[k], v->p[id].procs[k]);
		}
	prom_pool_counter(o, v, "cpm_pool_waiting_workers", "gauge",
			  "Workers with requests waiting for a process of the pool.", 1);
	prom_pool_counter(o, v, "cpm_pool_requests_total", "counter", "Requests a FastCGI pool completed.", 2);
	prom_pool_counter(o, v, "cpm_pool_starts_total", "counter", "Processes a FastCGI pool started.", 3);
	prom_pool_counter(o, v, "cpm_pool_restarts_total", "counter",
			  "Processes started again in a pool slot (starts beyond a slot's first).", 4);
	prom_pool_counter(o, v, "cpm_pool_kills_total", "counter",
			  "Pool processes killed (hung, or still running after TERM).", 5);
	prom_pool_counter(o, v, "cpm_pool_crash_loops_total", "counter", "Times a pool went down (crash loop).", 6);
}

static void prometheus(struct out *o, const struct scoreboard *sb, const struct view *v, int64_t now)
{
	family(o, "cpm_master_uptime_seconds", "gauge", "Time since the master started.");
	put(o, "cpm_master_uptime_seconds %.3f\n", (double)(now - sb->started_ms) / 1000.0);
	family(o, "cpm_config_generation", "gauge", "Configuration reloads since start.");
	put(o, "cpm_config_generation %u\n", sb->generation);
	family(o, "cpm_workers", "gauge", "Worker processes, by state.");
	for (int st = SLOT_BOOTING; st <= SLOT_DRAINING; st++)
		put(o, "cpm_workers{state=\"%s\"} %u\n", state_name(st), v->workers[st]);
	family(o, "cpm_connections", "gauge", "Open client connections (all workers).");
	put(o, "cpm_connections %lu\n", v->connections);
	family(o, "cpm_worker_heartbeat_age_max_seconds", "gauge", "Time since the stalest worker's last heartbeat.");
	put(o, "cpm_worker_heartbeat_age_max_seconds %.3f\n", (double)v->heartbeat_age_max_ms / 1000.0);
	family(o, "cpm_tls_handshakes_total", "counter",
	       "TLS handshakes: full, resumed (a ticket or the session cache), failed (an error or header_timeout).");
	static const char *const hs[] = {"full", "resumed", "failed"};
	for (int k = 0; k < 3; k++)
		put(o, "cpm_tls_handshakes_total{result=\"%s\"} %llu\n", hs[k], (unsigned long long)v->tls[k]);
	prom_backends(o, v);
	prom_pools(o, v);
}

static void *status_start(struct exchange *x, const struct exchange_info *info)
{
	const struct scoreboard *sb = loop_scoreboard();
	const struct http_request *r = info->req;
	int prom = r->query.len >= 17 && memmem(r->query.p, r->query.len, "format=prometheus", 17) != NULL;
	int64_t now = monotonic_ms();
	struct out o = {xmalloc(4096), 0, 4096};
	struct view *v = xmalloc(sizeof(*v));
	view_read(v, sb, now);
	if (prom)
		prometheus(&o, sb, v, now);
	else
		json(&o, sb, v, now);
	free(v);

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
