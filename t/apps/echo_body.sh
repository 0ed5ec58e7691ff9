#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "CONTENT_LENGTH=$CONTENT_LENGTH"
echo "sha=$(cat | sha256sum | cut -d' ' -f1)"
