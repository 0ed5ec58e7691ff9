#!/bin/sh
# Works a second before answering, then writes "done" to the file named by
# QUERY_STRING: it gets there only if it was not stopped.
sleep 1
printf 'Content-Type: text/plain\r\n\r\nworked\n'
echo done >"$QUERY_STRING"
