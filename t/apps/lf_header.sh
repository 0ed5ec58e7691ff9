#!/bin/sh
# A header block with bare LF line endings.
printf 'Content-Type: text/plain\nX-Lf: yes\n\nlf body\n'
