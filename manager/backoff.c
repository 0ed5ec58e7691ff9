#include "backoff.h"

int64_t backoff_died(struct backoff *b, int64_t max_ms, int64_t started_ms, int64_t now, enum backoff_death how)
{
	int quick = now - started_ms < BACKOFF_QUICK_MS;
	if (how == BACKOFF_FAILED && quick) {
		b->failures++;
		int shift = b->failures < 16 ? b->failures : 16;
		int64_t delay = (int64_t)BACKOFF_MIN_MS << shift;
		return delay < max_ms ? delay : max_ms;
	}
	if (how == BACKOFF_OK || !quick)
		b->failures = 0;
	return 0;
}
