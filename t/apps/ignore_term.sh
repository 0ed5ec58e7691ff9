#!/bin/sh
# Ignores TERM (so does the sleep it starts): only KILL ends it. Records its
# pid in the file named by QUERY_STRING.
trap '' TERM
echo "$$" > "$QUERY_STRING"
sleep 30
