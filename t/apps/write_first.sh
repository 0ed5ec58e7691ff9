#!/bin/sh
# Writes 256 KiB before reading its body: a server that writes the whole
# body before reading the output deadlocks here (fcgiwrap does).
printf 'Content-Type: text/plain\r\n\r\n'
head -c 262144 /dev/zero | tr '\0' 'x'
echo
echo "read=$(head -c "$CONTENT_LENGTH" | wc -c)"
