/* Shared-memory scoreboard: one slot per worker, created by the master
 * before forking. Workers write their own slot; the master reads all. */
#ifndef CPM_SCOREBOARD_H
#define CPM_SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

enum worker_state { SLOT_FREE, SLOT_BOOTING, SLOT_READY, SLOT_DRAINING };

#define SLOT_CGI_MAX 128

/* Per-backend statistics: one entry per backend name in a fixed table
 * (struct scoreboard.backends), so that counters outlive the workers that
 * add to them and a name kept across a reload keeps its counters. Entry
 * BSTAT_NONE ("(none)") counts the requests that reached no backend (a
 * 400, a 404 with no route, a refused client), entry BSTAT_OTHER
 * ("(other)") the backends that found the table full. A configured
 * backend that has one of these names shares their entry.
 *
 * Claiming an entry (scoreboard_backend): state 0 -> 1 by CAS, the name
 * written, then state 2 by a release store; entries are claimed in order
 * and never given back, so a lookup stops at the first free one. Counters
 * are relaxed atomic adds by the workers; readers add them up as they
 * find them (a request being counted may show in one number and not yet
 * in the next). */
#define BACKEND_STATS_MAX 128
#define BSTAT_NONE	  0
#define BSTAT_OTHER	  (BACKEND_STATS_MAX - 1)

/* Histogram buckets (upper bounds, microseconds) for request duration and
 * queue wait; bucket[HIST_BUCKETS] counts the observations above the last
 * bound (+Inf). Counts are per bucket, made cumulative when read. */
#define HIST_BUCKETS 12
extern const int64_t hist_bounds_us[HIST_BUCKETS];

struct histogram {
	uint64_t bucket[HIST_BUCKETS + 1];
	uint64_t sum_us;
};

struct backend_stats {
	char name[64];
	volatile int state;   /* 0 free, 1 being claimed, 2 named */
	volatile int type;    /* enum backend_type the last worker to look it up had; -1 for the two above */
	uint64_t by_class[6]; /* index status / 100; [0] = other */
	uint64_t errors[3];   /* 502, 503, 504 */
	struct histogram duration, wait;
};

/* What a worker is doing for one backend right now (its own entries,
 * plain stores; the status page adds up the live workers'). */
struct backend_gauges {
	volatile uint32_t cgi_running; /* CGI programs running */
	volatile uint32_t cgi_queued;  /* requests waiting for a CGI slot */
};

struct worker_slot {
	volatile pid_t pid;
	volatile int state;
	volatile int64_t heartbeat_ms; /* CLOCK_MONOTONIC */
	volatile int64_t started_ms;
	volatile uint64_t requests;
	volatile uint32_t connections;
	volatile uint32_t cgi_running;
	volatile int64_t request_start_ms; /* of the oldest in-flight request, 0 if none */
	volatile uint64_t pools_waiting;   /* bit per pool: requests queued here */
	/* The process groups of this worker's CGI programs, so that the
	 * master can stop them when the worker dies without doing it itself
	 * (killed for a missed heartbeat, crashed): the worker writes an
	 * entry when it starts a program and clears it when the program and
	 * everything holding its pipes are gone; the master reads them only
	 * after reaping the worker, then clears them. cgi_untracked counts
	 * programs started while every entry was taken. */
	volatile pid_t cgi_pgids[SLOT_CGI_MAX];
	volatile uint32_t cgi_untracked;
	/* indexed like scoreboard.backends; zeroed at fork with the slot */
	struct backend_gauges backend[BACKEND_STATS_MAX];
};

/* FastCGI pools: the master owns the processes, workers pick them. */
#define POOLS_MAX      64
#define POOL_SLOTS_MAX 1024

/* STARTING: a process of a rolling restart on probation (it gets requests
 * once it has lived BACKOFF_QUICK_MS); FREE: no process and none wanted. */
enum pool_slot_state { PSLOT_FREE, PSLOT_READY, PSLOT_DRAINING, PSLOT_DOWN, PSLOT_STARTING };

/* One pool process. Who writes what, and how. Every store is an __atomic
 * store or read-modify-write; a decision that two processes could make at
 * once is a CAS. Plain (volatile) reads of these aligned words are left
 * where a stale value only costs a retry or a status line.
 *
 * pid, addr, started_ms, restarts: the master only, while state is not
 *   READY (or before any worker exists); the release store of state =
 *   READY publishes them. pid becomes 0 when the process is reaped.
 * state: the master stores it (release): READY at spawn (STARTING, then
 *   READY, for the new process of a rolling restart), DRAINING when it
 *   drains (rolling restart) or stops the process, DOWN when it kills it
 *   or reaps it (FREE when the position is not to run another). A worker
 *   only CASes READY -> DRAINING (max_requests reached). Workers send
 *   requests to READY processes only; a DRAINING one is stopped once the
 *   master has taken its busy (below), whoever keeps an idle connection
 *   to it (that connection then sees the process exit).
 * owner: the claim on the process's single connection. A worker CASes
 *   0 -> its pid to claim (while state is READY), then CASes busy; it lets
 *   go with CAS its pid -> 0. The master stores 0 when it reaps the
 *   process and the claim is over (it took busy, or it killed the process
 *   because the claimant gave up), and CASes a dead worker's pid -> 0.
 * busy: 1 a request in flight, 0 free (the owner may keep an idle
 *   connection), -1 taken by the master (stopping, or down). The owner
 *   CASes 0 -> 1 and, once it has let go of owner (or to keep the
 *   connection idle, without letting go), stores 0 (release). The master
 *   CASes 0 -> -1 to stop a process or when it reaps one; a request still
 *   in flight then (busy 1) keeps its claim: its connection may sit in the
 *   listening socket's backlog, which the next process inherits, and its
 *   worker lets go as usual. A dead worker's busy 1 is CASed to 0. At
 *   spawn the master CASes -1 -> 0.
 * kill: a worker whose request timed out stores the pid it sent it to
 *   (and leaves busy 1 and its claim for the master to clear); the master
 *   resets it at spawn.
 * request_start_ms, last_used_ms, served: the owner, while it holds busy
 *   (relaxed atomics; served by atomic add); the master resets them at
 *   spawn. */
struct pool_slot {
	volatile pid_t pid;   /* the process serving this slot's socket, 0 while down */
	volatile int state;   /* enum pool_slot_state */
	volatile pid_t owner; /* the worker holding its connection, 0 if none */
	volatile int busy;    /* 1: a request in flight; -1: the master's */
	volatile int kill;    /* a worker gave up on its request: kill it */
	volatile int64_t request_start_ms;
	volatile int64_t started_ms;
	volatile int64_t last_used_ms;
	volatile uint64_t served;   /* requests, this process */
	volatile uint64_t restarts; /* processes this slot has had */
	char addr[120];		    /* "unix:/PATH" or "127.0.0.1:PORT" */
};

struct pool_header {
	char name[64];
	volatile int active;
	unsigned base, nslots; /* its slots in pool_slots[] */
	volatile int waiting;  /* workers with requests queued for a process */
	uint64_t requests;     /* atomic adds */
	/* The master's view of the pool, for workers and the status page.
	 * down: 1 while no process can run (crash loop): workers answer 502
	 * at once instead of queueing (a READY process while down is a new
	 * try, and takes requests). down_reason is written before the
	 * release store of down = 1; while down, the master rewrites it in
	 * place after each failed try, byte by byte with relaxed atomic
	 * stores (readers load it the same way; a line read in that instant
	 * may mix two reasons; its last byte stays 0). */
	volatile int down;
	char down_reason[160];
	volatile int64_t next_start_ms; /* CLOCK_MONOTONIC; 0: none pending */
	/* Counters since the pool was created (the master's; relaxed atomic
	 * adds): processes started, killed (hung or ignoring TERM), times the
	 * pool went down. */
	uint64_t starts, kills, crash_loops;
};

/* TLS handshakes, by outcome (scoreboard.tls_handshakes) */
#define TLS_HS_FULL    0
#define TLS_HS_RESUMED 1
#define TLS_HS_FAILED  2

struct scoreboard {
	unsigned nslots;
	/* 1 + the highest slot a worker holds (set by the master before it
	 * forks one, lowered when it reaps the last): a scan of the workers
	 * stops there, instead of touching all nslots (3.3 MiB of them) */
	volatile unsigned slots_used;
	volatile pid_t master_pid;
	volatile int64_t started_ms;   /* CLOCK_MONOTONIC */
	volatile int64_t started_unix; /* wall clock, for humans */
	volatile unsigned generation;  /* configuration reloads */
	int draining;		       /* a graceful stop has begun (atomic): health 503,
					* responses close their connections */
	int wake_fd;		       /* workers write a byte here to wake the master */
	struct pool_header pools[POOLS_MAX];
	struct pool_slot pool_slots[POOL_SLOTS_MAX];
	struct backend_stats backends[BACKEND_STATS_MAX];
	volatile int backends_full_logged; /* the "table full" line was written */
	uint64_t tls_handshakes[3];	   /* TLS_HS_*: relaxed atomic adds by the workers */
	struct worker_slot slots[];
};

/* The entry of backend name: found, or claimed if the name is new;
 * BSTAT_OTHER when the table is full (said in the log once) or the name
 * does not fit. */
unsigned scoreboard_backend(struct scoreboard *sb, const char *name, int type);

/* Count a finished request in entry idx: its status, how long it took
 * from its first byte to its end and how long it waited for a backend
 * resource (atomic: every worker writes here). */
void scoreboard_count(struct scoreboard *sb, unsigned idx, int status, int64_t duration_us, int64_t wait_us);

struct scoreboard *scoreboard_create(unsigned nslots);
void scoreboard_destroy(struct scoreboard *sb);

/* How many slots from 0 a scan of the workers looks at. */
static inline unsigned scoreboard_slots_used(const struct scoreboard *sb)
{
	return __atomic_load_n(&sb->slots_used, __ATOMIC_ACQUIRE);
}

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t monotonic_ms(void);
int64_t monotonic_us(void);

/* The reason pool h is down, as read now: its down_reason (read byte by
 * byte: the master may be rewriting it) and ", next try in S s)" from
 * next_start_ms, so the time is never stale. Returns 0 (buf empty) when
 * the pool is up. */
int scoreboard_pool_down(const struct pool_header *h, int64_t now_ms, char *buf, size_t len);

/* A worker: wake the master (a pool needs attention). */
void scoreboard_wake(const struct scoreboard *sb);

#endif
