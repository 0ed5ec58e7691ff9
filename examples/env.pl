#!/usr/bin/perl
# The CGI environment the script was given, as text.
use strict;
use warnings;
print "Content-Type: text/plain; charset=utf-8\r\n\r\n";
print "$_=$ENV{$_}\n" for sort keys %ENV;
