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
};

struct scoreboard {
	unsigned nslots;
	volatile pid_t master_pid;
	volatile int64_t started_ms;   /* CLOCK_MONOTONIC */
	volatile int64_t started_unix; /* wall clock, for humans */
	volatile unsigned generation;  /* configuration reloads */
	uint64_t requests;	       /* all workers ever; atomic adds */
	uint64_t by_class[6];	       /* index status / 100; [0] = other */
	struct worker_slot slots[];
};

/* Count a finished request (atomic: every worker writes here). */
void scoreboard_count(struct scoreboard *sb, int status);

struct scoreboard *scoreboard_create(unsigned nslots);
void scoreboard_destroy(struct scoreboard *sb);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t monotonic_ms(void);

#endif
