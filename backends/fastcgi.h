/* The fastcgi backend's hooks for the worker loop. */
#ifndef CPM_FASTCGI_H
#define CPM_FASTCGI_H

/* SIGURG: another worker waits for a pool process; close the idle
 * connections this worker keeps to processes others are waiting for. */
void fastcgi_release_idle(void);

#endif
