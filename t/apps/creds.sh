#!/bin/sh
# prints the credentials and umask the program runs with
printf 'Content-Type: text/plain\r\n\r\n'
echo "uid=$(id -u) gid=$(id -g) umask=$(umask)"
