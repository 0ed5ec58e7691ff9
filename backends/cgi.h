/* The cgi backend: one program run per request (RFC 3875). */
#ifndef CPM_CGI_H
#define CPM_CGI_H

#include "backend.h"

/* Running CGI processes in this worker (for the scoreboard). */
unsigned cgi_running(void);
/* Kill every running script's process group (worker fast exit). */
void cgi_kill_all(void);

#endif
