#!/bin/sh
printf 'Content-Type: text/plain\r\nX-Evil: a\rSet-Cookie: x=1\r\n\r\nbody\n'
