/* Unit tests for the scoreboard's per-backend table (manager/scoreboard.c):
 * names found or claimed once, by concurrent processes too; a full table
 * and names that do not fit go to "(other)"; counts by class, the
 * 502/503/504 counters and the histogram buckets (upper bounds
 * inclusive, as Prometheus's le). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../manager/log.h"
#include "../../manager/scoreboard.h"
#include "unit.h"

static void test_names(void)
{
	struct scoreboard *sb = scoreboard_create(1);
	CHECK_EQ_STR(sb->backends[BSTAT_NONE].name, "(none)");
	CHECK_EQ_STR(sb->backends[BSTAT_OTHER].name, "(other)");
	unsigned php = scoreboard_backend(sb, "php", 2);
	CHECK_EQ_INT(php, 1);
	CHECK_EQ_INT(sb->backends[php].type, 2);
	CHECK_EQ_INT(scoreboard_backend(sb, "apps", 0), 2);
	CHECK_EQ_INT(scoreboard_backend(sb, "php", 0), php); /* a reload: same entry, its new type */
	CHECK_EQ_INT(sb->backends[php].type, 0);
	CHECK_EQ_INT(scoreboard_backend(sb, "(none)", 0), BSTAT_NONE);
	CHECK_EQ_INT(scoreboard_backend(sb, "(other)", 0), BSTAT_OTHER);
	CHECK_EQ_INT(sb->backends[BSTAT_NONE].type, -1);
	char longname[80];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	CHECK_EQ_INT(scoreboard_backend(sb, longname, 0), BSTAT_OTHER);
	longname[63] = 0; /* 63 bytes fit */
	CHECK_EQ_INT(scoreboard_backend(sb, longname, 0), 3);
	CHECK_EQ_INT(sb->backends_full_logged, 0);
	scoreboard_destroy(sb);
}

static void test_full(void)
{
	char path[] = "/tmp/cpm-test-scoreboard-XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	log_set_level(LOG_WARN);
	CHECK_EQ_INT(log_open_error(path), 0);
	struct scoreboard *sb = scoreboard_create(1);
	char name[32];
	unsigned i;
	for (i = 1; i < BSTAT_OTHER; i++) {
		snprintf(name, sizeof(name), "b%u", i);
		if (scoreboard_backend(sb, name, 0) != i)
			break;
	}
	CHECK_EQ_INT(i, BSTAT_OTHER); /* 126 names fit */
	CHECK_EQ_INT(scoreboard_backend(sb, "one too many", 0), BSTAT_OTHER);
	CHECK_EQ_INT(sb->backends_full_logged, 1);
	CHECK_EQ_INT(scoreboard_backend(sb, "b7", 0), 7); /* known names still found */
	CHECK_EQ_INT(scoreboard_backend(sb, "another", 0), BSTAT_OTHER);
	scoreboard_destroy(sb);
	log_open_error(NULL);
	/* said once, naming the first backend that did not fit */
	char buf[4096] = "";
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = 0;
	if (f)
		fclose(f);
	unlink(path);
	const char *hit =
	    strstr(buf, "is full; backend one too many and any other new name are counted as \"(other)\"");
	CHECK(hit != NULL);
	CHECK(hit && !strstr(hit + 1, "is full"));
}

/* Workers boot at once with the same new names, in different orders:
 * each name gets one entry, and all of them count into it. */
static void test_concurrent_claims(void)
{
	struct scoreboard *sb = scoreboard_create(1);
	enum { PROCS = 6, NAMES = 40 };
	pid_t pids[PROCS];
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			char name[32];
			for (int k = 0; k < NAMES; k++) {
				int n = p % 2 ? NAMES - 1 - k : (k * 7 + p) % NAMES;
				snprintf(name, sizeof(name), "name%d", n);
				scoreboard_count(sb, scoreboard_backend(sb, name, 0), 200, 1000, 0);
			}
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int st;
		waitpid(pids[p], &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	int named = 0, right = 0;
	for (unsigned i = 1; i < BSTAT_OTHER; i++) {
		const struct backend_stats *e = &sb->backends[i];
		if (e->state == 0)
			continue;
		named++;
		right += e->state == 2 && strncmp(e->name, "name", 4) == 0 && e->by_class[2] == PROCS &&
			 e->duration.bucket[0] == PROCS;
	}
	CHECK_EQ_INT(named, NAMES);
	CHECK_EQ_INT(right, NAMES);
	CHECK_EQ_INT(sb->backends[BSTAT_OTHER].by_class[2], 0);
	scoreboard_destroy(sb);
}

static void test_count(void)
{
	struct scoreboard *sb = scoreboard_create(1);
	unsigned b = scoreboard_backend(sb, "fcgi", 2);
	scoreboard_count(sb, b, 200, 5000, 0);	      /* le 0.005 */
	scoreboard_count(sb, b, 502, 5001, 4000);     /* le 0.01 */
	scoreboard_count(sb, b, 503, 30000000, 6000); /* le 30 */
	scoreboard_count(sb, b, 504, 30000001, 0);    /* +Inf */
	scoreboard_count(sb, b, 499, 0, 0);
	scoreboard_count(sb, b, 99, -5, -5); /* out of range: class "other", time 0 */
	const struct backend_stats *e = &sb->backends[b];
	CHECK_EQ_INT(e->by_class[0], 1);
	CHECK_EQ_INT(e->by_class[2], 1);
	CHECK_EQ_INT(e->by_class[4], 1);
	CHECK_EQ_INT(e->by_class[5], 3);
	CHECK_EQ_INT(e->errors[0], 1);
	CHECK_EQ_INT(e->errors[1], 1);
	CHECK_EQ_INT(e->errors[2], 1);
	CHECK_EQ_INT(e->duration.bucket[0], 3); /* 5000, 0, -5 */
	CHECK_EQ_INT(e->duration.bucket[1], 1);
	CHECK_EQ_INT(e->duration.bucket[HIST_BUCKETS - 1], 1);
	CHECK_EQ_INT(e->duration.bucket[HIST_BUCKETS], 1);
	CHECK_EQ_INT(e->duration.sum_us, 5000 + 5001 + 30000000 + 30000001);
	CHECK_EQ_INT(e->wait.bucket[0], 5); /* 0, 4000, 0, 0, -5 */
	CHECK_EQ_INT(e->wait.bucket[1], 1);
	CHECK_EQ_INT(e->wait.sum_us, 10000);
	scoreboard_count(sb, BSTAT_NONE, 404, 10, 0);
	CHECK_EQ_INT(sb->backends[BSTAT_NONE].by_class[4], 1);
	scoreboard_count(sb, 1000, 200, 10, 0); /* no such entry: "(other)" */
	CHECK_EQ_INT(sb->backends[BSTAT_OTHER].by_class[2], 1);
	scoreboard_destroy(sb);
}

int main(void)
{
	test_names();
	test_full();
	test_concurrent_claims();
	test_count();
	return unit_done();
}
