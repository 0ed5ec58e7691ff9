#!/bin/sh
# A line a second: cpm forwards each one as it is written.
printf 'Content-Type: text/plain\r\n\r\n'
i=1
while [ "$i" -le 5 ]; do
	echo "line $i"
	i=$((i + 1))
	[ "$i" -le 5 ] && sleep 1
done
