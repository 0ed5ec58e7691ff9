#!/bin/sh
printf 'Content-Type: text/html; charset=utf-8\r\n\r\n'
cat <<'HTML'
<!doctype html>
<title>cpm examples</title>
<h1>cpm examples</h1>
<ul>
<li><a href="/hello.sh">hello.sh</a> — shell
<li><a href="/hello">hello</a> — C
<li><a href="/env.pl">env.pl</a> — the CGI environment (Perl)
<li><a href="/form.sh">form.sh</a> — a POST form
<li><a href="/stream.sh">stream.sh</a> — a line a second
</ul>
<h2>FastCGI pools</h2>
<ul>
<li><a href="/fcgi/counter">/fcgi/counter</a> — counter.c (libfcgi): each process counts its requests
<li><a href="/fcgi/perl">/fcgi/perl</a> — counter.pl (Perl FCGI)
<li><a href="/status">/status</a> — the scoreboard (<a href="/status?format=prometheus">Prometheus</a>)
</ul>
HTML
