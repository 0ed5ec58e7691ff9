#!/bin/sh
# records its pid in the file named by QUERY_STRING, then sleeps
echo "$$" > "$QUERY_STRING"
sleep 30
