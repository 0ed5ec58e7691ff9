#!/bin/sh
# GET: a form. POST: echo what was posted (the body arrives on stdin).
if [ "$REQUEST_METHOD" = POST ]; then
	printf 'Content-Type: text/plain\r\n\r\n'
	echo "REQUEST_METHOD=$REQUEST_METHOD"
	echo "CONTENT_TYPE=$CONTENT_TYPE"
	echo "CONTENT_LENGTH=$CONTENT_LENGTH"
	echo
	head -c "${CONTENT_LENGTH:-0}"
	echo
	exit 0
fi
printf 'Content-Type: text/html; charset=utf-8\r\n\r\n'
cat <<HTML
<!doctype html>
<title>form</title>
<form method="post" action="$SCRIPT_NAME">
<input name="name" value="world"> <button>Send</button>
</form>
HTML
