#!/bin/sh
# Reports the signal mask and ignored signals the script (this sh, $$) was
# started with, and whether it leads its own process group. Builtins only:
# dash blocks every signal while it waits for a child, so the state must be
# read before anything is forked.
printf 'Content-Type: text/plain\r\n\r\n'
while IFS=': 	' read -r name value; do
	case $name in
	SigBlk | SigIgn) echo "$name=$value" ;;
	esac
done <"/proc/$$/status"
read -r stat <"/proc/$$/stat"
# shellcheck disable=SC2086 # split on purpose: the fields after "(comm) "
set -- ${stat##*) }
[ "$3" = "$$" ] && echo pgrp_is_pid=yes || echo pgrp_is_pid=no
