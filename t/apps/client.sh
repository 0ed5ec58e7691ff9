#!/bin/sh
# The client as cpm believes it, and which instance (SERVER_PORT) answered:
# for t/balancer.bats and t/loadgen.py.
printf 'Content-Type: text/plain\r\n\r\n'
echo "REMOTE_ADDR=$REMOTE_ADDR"
echo "REMOTE_PORT=$REMOTE_PORT"
echo "HTTPS=${HTTPS-}"
echo "REQUEST_SCHEME=${REQUEST_SCHEME-}"
echo "HTTP_X_FORWARDED_FOR=${HTTP_X_FORWARDED_FOR-}"
echo "HTTP_X_FORWARDED_PROTO=${HTTP_X_FORWARDED_PROTO-}"
echo "SERVER_PORT=$SERVER_PORT"
