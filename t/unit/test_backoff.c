/* Unit tests for manager/backoff.c: the quick-death backoff of workers and
 * pool processes. */
#include "../../manager/backoff.h"
#include "unit.h"

/* quick failing deaths double the wait from BACKOFF_MIN_MS << 1 up to the
 * cap, and count */
static void test_doubling_and_cap(void)
{
	struct backoff b = {0};
	int64_t want[] = {200, 400, 800, 1600, 3200, 6400, 10000, 10000};
	for (int i = 0; i < 8; i++) {
		CHECK_EQ_INT(backoff_died(&b, 10000, 1000, 1500, BACKOFF_FAILED), want[i]);
		CHECK_EQ_INT(b.failures, i + 1);
	}
	/* many more in a row: still the cap, no overflow */
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(backoff_died(&b, 30000, 0, 999, BACKOFF_FAILED), 30000);
}

/* a death after BACKOFF_QUICK_MS, or an OK one, resets; a quick one the
 * master caused leaves the count as it is; a long one of ours resets */
static void test_reset(void)
{
	struct backoff b = {0};
	backoff_died(&b, 10000, 0, 10, BACKOFF_FAILED);
	backoff_died(&b, 10000, 0, 10, BACKOFF_FAILED);
	CHECK_EQ_INT(b.failures, 2);
	CHECK_EQ_INT(backoff_died(&b, 10000, 0, 10, BACKOFF_OURS), 0);
	CHECK_EQ_INT(b.failures, 2);
	CHECK_EQ_INT(backoff_died(&b, 10000, 0, BACKOFF_QUICK_MS, BACKOFF_OURS), 0);
	CHECK_EQ_INT(b.failures, 0);

	backoff_died(&b, 10000, 0, 10, BACKOFF_FAILED);
	CHECK_EQ_INT(backoff_died(&b, 10000, 0, 10, BACKOFF_OK), 0);
	CHECK_EQ_INT(b.failures, 0);

	backoff_died(&b, 10000, 0, 10, BACKOFF_FAILED);
	CHECK_EQ_INT(backoff_died(&b, 10000, 0, BACKOFF_QUICK_MS, BACKOFF_FAILED), 0);
	CHECK_EQ_INT(b.failures, 0);
	/* one below the limit is still quick */
	CHECK_EQ_INT(backoff_died(&b, 10000, 0, BACKOFF_QUICK_MS - 1, BACKOFF_FAILED), 200);
}

int main(void)
{
	test_doubling_and_cap();
	test_reset();
	return unit_done();
}
