#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo one
sleep 1
echo two
