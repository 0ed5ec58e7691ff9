#!/bin/sh
printf 'Content-Type: text/plain\r\nX(bad): v\r\n\r\nbody\n'
