#!/bin/sh
# The smallest CGI program: a header block, an empty line, the body.
printf 'Content-Type: text/plain\r\n\r\n'
echo "Hello, world!"
