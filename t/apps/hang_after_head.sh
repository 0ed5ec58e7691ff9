#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\nstarted\n'
echo "$$" > "${PIDFILE:-/dev/null}"
sleep 30
