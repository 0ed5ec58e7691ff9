#!/bin/sh
printf 'Status: %s\r\nContent-Type: text/plain\r\n\r\nstatus body\n' "$(echo "$QUERY_STRING" | sed 's/%20/ /g')"
