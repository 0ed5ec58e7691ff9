#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "SCRIPT_NAME=$SCRIPT_NAME"
echo "PATH_INFO=$PATH_INFO"
echo "PATH_TRANSLATED=$PATH_TRANSLATED"
echo "QUERY_STRING=$QUERY_STRING"
echo "SCRIPT_FILENAME=$SCRIPT_FILENAME"
echo "PWD=$(pwd)"
