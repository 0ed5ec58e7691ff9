#!/bin/sh
# One forged-looking line, then ${QUERY_STRING:-200000} lines on stderr as
# fast as sh and seq go, then a response.
printf 'evil\033[31m\r2026-01-01T00:00:00.000Z [error] cpm[1]: forged\n' >&2
seq "${QUERY_STRING:-200000}" | sed 's/^/flood line /' >&2
printf 'Content-Type: text/plain\r\n\r\nflooded\n'
