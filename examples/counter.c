/* counter: a FastCGI application (libfcgi) that keeps state across
 * requests. cpm starts it with its listening socket on fd 0; each process
 * counts the requests it has served and says who it is.
 *
 *   cc -O2 -o counter counter.c -lfcgi */
#include <fcgiapp.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
	FCGX_Request r;
	unsigned long count = 0;
	if (FCGX_Init() != 0 || FCGX_InitRequest(&r, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&r) >= 0) {
		const char *uri = FCGX_GetParam("REQUEST_URI", r.envp);
		count++;
		FCGX_FPrintF(r.out,
			     "Content-Type: text/plain\r\n\r\n"
			     "count=%lu pid=%ld uri=%s\n",
			     count, (long)getpid(), uri ? uri : "");
		FCGX_Finish_r(&r);
	}
	return 0;
}
