#!/bin/sh
# Closes its stdin without reading the body, then answers after 3 seconds.
exec 0<&-
sleep 3
printf 'Content-Type: text/plain\r\n\r\nclosed stdin\n'
