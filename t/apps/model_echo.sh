#!/bin/sh
# The CGI side of t/model/run.py: a deterministic answer the model predicts.
# QUERY_STRING: t=TAG&n=SIZE&cl=0|1&st=CODE&hp=SIZE
#   st    Status to send (default none: 200)
#   cl=1  send Content-Length (else cpm frames the body)
#   n     SIZE bytes of filler 'x' after the echo lines
#   hp    an X-Pad header of SIZE bytes (a header block near 32 KiB)
# The body: method, request URI, body length and SHA-256, then the filler.
n=0 cl=0 st= hp=0
for kv in $(echo "$QUERY_STRING" | tr '&' ' '); do
	case $kv in
	n=*) n=${kv#n=} ;;
	cl=*) cl=${kv#cl=} ;;
	st=*) st=${kv#st=} ;;
	hp=*) hp=${kv#hp=} ;;
	esac
done
sum=$(sha256sum | cut -d' ' -f1)
text="method=$REQUEST_METHOD
uri=$REQUEST_URI
len=${CONTENT_LENGTH:-0}
sha=$sum
"
[ -n "$st" ] && printf 'Status: %s Model\r\n' "$st"
printf 'Content-Type: text/plain\r\n'
[ "$hp" -gt 0 ] && printf 'X-Pad: %s\r\n' "$(head -c "$hp" /dev/zero | tr '\0' p)"
if [ "$cl" = 1 ]; then
	if [ "$st" = 204 ] || [ "$st" = 304 ]; then
		printf '\r\n'
		exit 0
	fi
	printf 'Content-Length: %d\r\n' $((${#text} + n))
fi
printf '\r\n%s' "$text"
[ "$n" -gt 0 ] && head -c "$n" /dev/zero | tr '\0' x
exit 0
