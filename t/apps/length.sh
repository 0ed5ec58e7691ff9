#!/bin/sh
printf 'Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nfixed\n'
