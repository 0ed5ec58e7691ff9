#!/bin/sh
# Promises more body than it sends: cpm logs the request's path.
printf 'Content-Type: text/plain\r\nContent-Length: 100\r\n\r\nshort\n'
