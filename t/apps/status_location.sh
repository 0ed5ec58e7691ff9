#!/bin/sh
# A Location with an explicit Status is passed through, not followed.
printf 'Status: 301 Moved Permanently\r\nLocation: /env.sh\r\n\r\n'
