#include "scoreboard.h"

#include <stddef.h>
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
	return sb;
}

void scoreboard_destroy(struct scoreboard *sb)
{
	if (sb)
		munmap(sb, sizeof(struct scoreboard) + sb->nslots * sizeof(struct worker_slot));
}

void scoreboard_count(struct scoreboard *sb, int status)
{
	int k = status >= 100 && status <= 599 ? status / 100 : 0;
	__atomic_fetch_add(&sb->requests, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&sb->by_class[k], 1, __ATOMIC_RELAXED);
}

int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void scoreboard_wake(const struct scoreboard *sb)
{
	char c = 'p';
	ssize_t r = write(sb->wake_fd, &c, 1); /* non-blocking: a full pipe wakes it anyway */
	(void)r;
}
