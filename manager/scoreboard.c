#include "scoreboard.h"

#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct scoreboard *scoreboard_create(unsigned nslots)
{
	size_t size = sizeof(struct scoreboard) + nslots * sizeof(struct worker_slot);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_error("scoreboard: mmap %zu bytes failed", size);
		return NULL;
	}
	struct scoreboard *sb = p; /* mmap memory is zeroed */
	sb->nslots = nslots;
	strcpy(sb->backends[BSTAT_NONE].name, "(none)");
	sb->backends[BSTAT_NONE].state = 2;
	sb->backends[BSTAT_NONE].type = -1;
	strcpy(sb->backends[BSTAT_OTHER].name, "(other)");
	sb->backends[BSTAT_OTHER].state = 2;
	sb->backends[BSTAT_OTHER].type = -1;
	return sb;
}

void scoreboard_destroy(struct scoreboard *sb)
{
	if (sb)
		munmap(sb, sizeof(struct scoreboard) + sb->nslots * sizeof(struct worker_slot));
}

const int64_t hist_bounds_us[HIST_BUCKETS] = {5000,   10000,   25000,	50000,	 100000,   250000,
					      500000, 1000000, 2500000, 5000000, 10000000, 30000000};

/* The entry's state once it is not being claimed (1 lasts a strcpy; a
 * claimer that died in between leaves it at 1: given up after a while). */
static int entry_state(const struct backend_stats *e)
{
	for (int spins = 0; spins < 10000; spins++) {
		int st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
		if (st != 1)
			return st;
		sched_yield();
	}
	return 1;
}

static unsigned find_or_claim(struct scoreboard *sb, const char *name)
{
	size_t len = strlen(name);
	if (len >= sizeof(sb->backends[0].name))
		return BSTAT_OTHER;
	if (strcmp(name, sb->backends[BSTAT_OTHER].name) == 0)
		return BSTAT_OTHER;
	for (unsigned i = 0; i < BSTAT_OTHER; i++) {
		struct backend_stats *e = &sb->backends[i];
		int st = entry_state(e);
		if (st == 0) {
			int zero = 0;
			if (__atomic_compare_exchange_n(&e->state, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
				memcpy(e->name, name, len + 1);
				__atomic_store_n(&e->state, 2, __ATOMIC_RELEASE);
				return i;
			}
			st = entry_state(e); /* another worker claimed it first: for this name? */
		}
		if (st == 2 && strcmp(e->name, name) == 0)
			return i;
	}
	int zero = 0;
	if (__atomic_compare_exchange_n(&sb->backends_full_logged, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		log_warn("status: the table of %d backends is full; backend %s and any other new name are counted "
			 "as \"(other)\"",
			 BACKEND_STATS_MAX - 2, name);
	return BSTAT_OTHER;
}

unsigned scoreboard_backend(struct scoreboard *sb, const char *name, int type)
{
	unsigned i = find_or_claim(sb, name);
	if (i != BSTAT_NONE && i != BSTAT_OTHER)
		__atomic_store_n(&sb->backends[i].type, type, __ATOMIC_RELAXED);
	return i;
}

static void observe(struct histogram *h, int64_t us)
{
	if (us < 0)
		us = 0;
	unsigned k = 0;
	while (k < HIST_BUCKETS && us > hist_bounds_us[k])
		k++;
	__atomic_fetch_add(&h->bucket[k], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum_us, (uint64_t)us, __ATOMIC_RELAXED);
}

void scoreboard_count(struct scoreboard *sb, unsigned idx, int status, int64_t duration_us, int64_t wait_us)
{
	struct backend_stats *e = &sb->backends[idx < BACKEND_STATS_MAX ? idx : BSTAT_OTHER];
	int k = status >= 100 && status <= 599 ? status / 100 : 0;
	__atomic_fetch_add(&e->by_class[k], 1, __ATOMIC_RELAXED);
	if (status >= 502 && status <= 504)
		__atomic_fetch_add(&e->errors[status - 502], 1, __ATOMIC_RELAXED);
	observe(&e->duration, duration_us);
	observe(&e->wait, wait_us);
}

int64_t monotonic_ms(void)
{
	return monotonic_us() / 1000;
}

int64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int scoreboard_pool_down(const struct pool_header *h, int64_t now_ms, char *buf, size_t len)
{
	if (len)
		buf[0] = 0;
	if (!__atomic_load_n(&h->down, __ATOMIC_ACQUIRE) || len == 0)
		return 0;
	size_t i;
	for (i = 0; i + 1 < len && i < sizeof(h->down_reason); i++) {
		char c = __atomic_load_n(&h->down_reason[i], __ATOMIC_RELAXED);
		if (!c)
			break;
		buf[i] = c;
	}
	buf[i] = 0;
	int64_t next = __atomic_load_n(&h->next_start_ms, __ATOMIC_RELAXED);
	snprintf(buf + i, len - i, ", next try in %.1f s)", next > now_ms ? (double)(next - now_ms) / 1000.0 : 0.0);
	return 1;
}

void scoreboard_wake(const struct scoreboard *sb)
{
	char c = 'p';
	ssize_t r = write(sb->wake_fd, &c, 1); /* non-blocking: a full pipe wakes it anyway */
	(void)r;
}
