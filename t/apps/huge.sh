#!/bin/sh
# 40 MiB of 'h': more than the kernel's socket buffers hold.
printf 'Content-Type: application/octet-stream\r\n\r\n'
head -c 41943040 /dev/zero | tr '\0' h
