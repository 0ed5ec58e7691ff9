/* flaky: a FastCGI responder (libfcgi) for t/soak/run.sh and t/pools.bats that dies now and then.
 *
 *   QUERY_STRING "crash"     exits with code 1 before answering: the client gets 502
 *   QUERY_STRING "sleep=MS"  sleeps MS milliseconds, then answers
 *   anything else            answers "ok pid=P n=N len=L sum=S": L bytes of request
 *                            body read, S their sum modulo 2^32
 *
 * With FLAKY_EVERY=N in its environment (a pool's "env"), every Nth request of a
 * process is answered and then the process exits with code 1: the worker's kept
 * connection to it is dead when the next request comes, which cpm must notice and
 * send that request again to a live process (the client never sees it).
 * FLAKY_EXIT_DELAY_MS=D makes it wait D milliseconds between answering and exiting,
 * which widens the window in which a worker sends the next request on that connection.
 *
 *   cc -O2 -o flaky flaky.c -lfcgi */
#include <fcgiapp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	FCGX_Request r;
	unsigned long n = 0, every = 0, delay = 0;
	const char *e = getenv("FLAKY_EVERY");
	if (e)
		every = strtoul(e, NULL, 10);
	e = getenv("FLAKY_EXIT_DELAY_MS");
	if (e)
		delay = strtoul(e, NULL, 10);
	if (FCGX_Init() != 0 || FCGX_InitRequest(&r, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&r) >= 0) {
		const char *q = FCGX_GetParam("QUERY_STRING", r.envp);
		char buf[8192];
		unsigned long len = 0;
		unsigned int sum = 0;
		int got;
		n++;
		if (q && strcmp(q, "crash") == 0)
			_exit(1);
		if (q && strncmp(q, "sleep=", 6) == 0)
			usleep((useconds_t)strtoul(q + 6, NULL, 10) * 1000);
		while ((got = FCGX_GetStr(buf, sizeof(buf), r.in)) > 0) {
			len += (unsigned long)got;
			for (int i = 0; i < got; i++)
				sum += (unsigned char)buf[i];
		}
		FCGX_FPrintF(r.out, "Content-Type: text/plain\r\n\r\nok pid=%ld n=%lu len=%lu sum=%u\n", (long)getpid(),
			     n, len, sum);
		FCGX_Finish_r(&r);
		if (every && n % every == 0) {
			if (delay)
				usleep((useconds_t)(delay * 1000));
			_exit(1);
		}
	}
	return 0;
}
