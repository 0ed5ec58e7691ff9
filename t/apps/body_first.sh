#!/bin/sh
# Reads the whole request body first, then answers with its digest: a
# client that leaves mid-body leaves before any response head.
sum=$(cat | sha256sum | cut -d' ' -f1)
printf 'Content-Type: text/plain\r\n\r\n'
echo "sha=$sum"
