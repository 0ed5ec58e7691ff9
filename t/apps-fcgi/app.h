/* Shared by the test FastCGI apps: the accept loop on the listening socket
 * spawn-fcgi leaves on fd 0. */
#ifndef APP_H
#define APP_H

#include <fcgiapp.h>
#include <stdlib.h>
#include <string.h>

/* Each app defines handle(); main() accepts requests one at a time. */
static void handle(FCGX_Request *r);

int main(void)
{
	FCGX_Request r;
	if (FCGX_Init() != 0 || FCGX_InitRequest(&r, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&r) >= 0) {
		handle(&r);
		FCGX_Finish_r(&r);
	}
	return 0;
}

__attribute__((unused)) static const char *param(FCGX_Request *r, const char *name)
{
	const char *v = FCGX_GetParam(name, r->envp);
	return v ? v : "";
}

#endif
