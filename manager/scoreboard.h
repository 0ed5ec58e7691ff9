/* Shared-memory scoreboard: one slot per worker, created by the master
 * before forking. Workers write their own slot; the master reads all. */
#ifndef CPM_SCOREBOARD_H
#define CPM_SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

enum worker_state { SLOT_FREE, SLOT_BOOTING, SLOT_READY, SLOT_DRAINING };

#define SLOT_CGI_MAX 128

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
};

/* FastCGI pools: the master owns the processes, workers pick them. */
#define POOLS_MAX      64
#define POOL_SLOTS_MAX 1024

enum pool_slot_state { PSLOT_FREE, PSLOT_READY, PSLOT_DRAINING, PSLOT_DOWN };

/* One pool process. Who writes what, and how. Every store is an __atomic
 * store or read-modify-write; a decision that two processes could make at
 * once is a CAS. Plain (volatile) reads of these aligned words are left
 * where a stale value only costs a retry or a status line.
 *
 * pid, addr, started_ms, restarts: the master only, while state is not
 *   READY (or before any worker exists); the release store of state =
 *   READY publishes them. pid becomes 0 when the process is reaped.
 * state: the master stores it (release): READY at spawn, DRAINING when it
 *   stops the process, DOWN when it kills it or reaps it. A worker only
 *   CASes READY -> DRAINING (max_requests reached).
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
	 * at once instead of queueing. down_reason is written before the
	 * release store of down = 1 and not changed while down is 1. */
	volatile int down;
	char down_reason[160];
	volatile int64_t next_start_ms; /* CLOCK_MONOTONIC; 0: none pending */
	/* Counters since the pool was created (the master's; relaxed atomic
	 * adds): processes started, killed (hung or ignoring TERM), times the
	 * pool went down. */
	uint64_t starts, kills, crash_loops;
};

struct scoreboard {
	unsigned nslots;
	volatile pid_t master_pid;
	volatile int64_t started_ms;   /* CLOCK_MONOTONIC */
	volatile int64_t started_unix; /* wall clock, for humans */
	volatile unsigned generation;  /* configuration reloads */
	uint64_t requests;	       /* all workers ever; atomic adds */
	uint64_t by_class[6];	       /* index status / 100; [0] = other */
	int wake_fd;		       /* workers write a byte here to wake the master */
	struct pool_header pools[POOLS_MAX];
	struct pool_slot pool_slots[POOL_SLOTS_MAX];
	struct worker_slot slots[];
};

/* Count a finished request (atomic: every worker writes here). */
void scoreboard_count(struct scoreboard *sb, int status);

struct scoreboard *scoreboard_create(unsigned nslots);
void scoreboard_destroy(struct scoreboard *sb);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t monotonic_ms(void);
int64_t monotonic_us(void);

/* A worker: wake the master (a pool needs attention). */
void scoreboard_wake(const struct scoreboard *sb);

#endif
