#!/bin/sh
# sleeps QUERY_STRING seconds before its header
sleep "${QUERY_STRING:-30}"
printf 'Content-Type: text/plain\r\n\r\nslept\n'
