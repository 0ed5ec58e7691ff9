/* The master process: binds, forks and supervises workers, handles
 * signals. Knows no client. */
#ifndef CPM_ARBITER_H
#define CPM_ARBITER_H

#include "config.h"

/* Run until stopped; returns the process exit status. */
int arbiter_run(struct config *cf);

#endif
