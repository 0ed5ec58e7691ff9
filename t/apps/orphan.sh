#!/bin/sh
# leaves a process behind in a session of its own (out of its process
# group, so nothing of cpm's kills it): when it exits, it is an orphan
# whoever the init of this PID namespace is must reap
setsid sh -c 'sleep "${QUERY_STRING:-0.3}"' </dev/null >/dev/null 2>&1 &
printf 'Content-Type: text/plain\r\n\r\nleft %s\n' "$!"
