#!/usr/bin/perl
# counter.pl: a FastCGI application in Perl (Debian: libfcgi-perl). cpm
# starts it with its listening socket on fd 0, which FCGI::Request() uses
# by default; each process counts the requests it has served.
use strict;
use warnings;
use FCGI;

my $request = FCGI::Request();
my $count = 0;
while ($request->Accept() >= 0) {
	$count++;
	my $uri = $ENV{REQUEST_URI} // '';
	print "Content-Type: text/plain\r\n\r\n";
	print "Perl says hello: count=$count pid=$$ uri=$uri\n";
}
