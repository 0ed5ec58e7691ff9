#!/bin/sh
printf 'Location: /redirect_loop.sh\r\n\r\n'
