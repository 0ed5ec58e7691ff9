#!/bin/sh
# Answers with a Content-Length response at once, then keeps working: more
# output (to be dropped), then after a second it writes "done" to the file
# named by QUERY_STRING.
printf 'Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nearly\n'
sleep 1
echo "output after the response"
echo done >"$QUERY_STRING"
