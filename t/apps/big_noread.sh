#!/bin/sh
# 1 MiB of 'b' without reading the request body.
printf 'Content-Type: application/octet-stream\r\n\r\n'
head -c 1048576 /dev/zero | tr '\0' b
