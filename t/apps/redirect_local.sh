#!/bin/sh
printf 'Location: /env.sh?via=redirect\r\n\r\n'
