#!/bin/sh
# Reports the resource limits and no_new_privs the script started with;
# with QUERY_STRING "spin", burns CPU until something stops it.
printf 'Content-Type: text/plain\r\n\r\n'
echo "nofile=$(ulimit -n) as=$(ulimit -v) cpu=$(ulimit -t) nproc=$(ulimit -p)"
while IFS=': 	' read -r name value; do
	[ "$name" = NoNewPrivs ] && echo "no_new_privs=$value"
done </proc/self/status
if [ "$QUERY_STRING" = spin ]; then
	while :; do :; done
fi
