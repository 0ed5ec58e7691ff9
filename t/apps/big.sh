#!/bin/sh
printf 'Content-Type: application/octet-stream\r\n\r\n'
head -c 10485760 /dev/zero | tr '\0' 'a'
