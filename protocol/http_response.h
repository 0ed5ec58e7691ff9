/* Pieces of an HTTP/1.1 response head. Pure. */
#ifndef CPM_HTTP_RESPONSE_H
#define CPM_HTTP_RESPONSE_H

#include <stddef.h>
#include <time.h>

/* Reason phrase for a status code ("Unknown" for unlisted ones). */
const char *http_reason(int status);

/* IMF-fixdate of t ("Sun, 06 Nov 1994 08:49:37 GMT"); out has room for 30
 * bytes. Returns the length (29). */
size_t http_format_date(time_t t, char *out);

#endif
