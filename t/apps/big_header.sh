#!/bin/sh
# A header block over 32K
printf 'Content-Type: text/plain\r\n'
printf 'X-Big: %s\r\n' "$(head -c 40000 /dev/zero | tr '\0' a)"
printf '\r\nbody\n'
