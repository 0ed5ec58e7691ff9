#!/bin/sh
# 40 MiB of 's' that asks not to be held (X-Accel-Buffering: no), then
# writes "done" to the file named by QUERY_STRING, if any.
printf 'Content-Type: application/octet-stream\r\nX-Accel-Buffering: no\r\n\r\n'
head -c 41943040 /dev/zero | tr '\0' s
[ -z "$QUERY_STRING" ] || echo done >"$QUERY_STRING"
