/* Shared-memory scoreboard: one slot per worker, created by the master
 * before forking. Workers write their own slot; the master reads all. */
#ifndef CPM_SCOREBOARD_H
#define CPM_SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

enum worker_state { SLOT_FREE, SLOT_BOOTING, SLOT_READY, SLOT_DRAINING };

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
};

/* FastCGI pools: the master owns the processes, workers pick them. */
#define POOLS_MAX      64
#define POOL_SLOTS_MAX 1024

enum pool_slot_state { PSLOT_FREE, PSLOT_READY, PSLOT_DRAINING, PSLOT_DOWN };

struct pool_slot {
	volatile pid_t pid;   /* the process serving this slot's socket, 0 while down */
	volatile int state;   /* enum pool_slot_state */
	volatile pid_t owner; /* the worker holding its connection, 0 if none */
	volatile int busy;    /* 1: a request in flight; -1: the master is stopping it */
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

/* A worker: wake the master (a pool needs attention). */
void scoreboard_wake(const struct scoreboard *sb);

#endif
