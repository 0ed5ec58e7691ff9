/* The backend types: which ops serve a backend_conf's type, and the
 * type-wide duties the worker performs for all of them. A new type is its
 * file and one entry here. */
#include "backend.h"

extern const struct backend_ops cgi_backend_ops;
extern const struct backend_ops status_backend_ops;
extern const struct backend_ops fastcgi_backend_ops;
extern const struct backend_ops static_backend_ops;
extern const struct backend_ops health_backend_ops;

static const struct backend_ops *const types[] = {
    [BACKEND_CGI] = &cgi_backend_ops,	      [BACKEND_STATUS] = &status_backend_ops,
    [BACKEND_FASTCGI] = &fastcgi_backend_ops, [BACKEND_STATIC] = &static_backend_ops,
    [BACKEND_HEALTH] = &health_backend_ops,
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

const struct backend_ops *backend_ops_for(enum backend_type t)
{
	return (size_t)t < NTYPES ? types[t] : NULL;
}

void backends_child_exited(pid_t pid, int status, const struct rusage *ru)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (types[i] && types[i]->child_exited && types[i]->child_exited(pid, status, ru))
			return;
}

void backends_stop(int now)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (types[i] && types[i]->stop)
			types[i]->stop(now);
}

void backends_release_idle(void)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (types[i] && types[i]->release_idle)
			types[i]->release_idle();
}

unsigned backends_running(void)
{
	unsigned n = 0;
	for (size_t i = 0; i < NTYPES; i++)
		if (types[i] && types[i]->running)
			n += types[i]->running();
	return n;
}
