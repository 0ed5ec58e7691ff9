#!/usr/bin/perl
# version.pl: a FastCGI responder (Perl FCGI, socket on fd 0) for
# t/reload_pools.bats and t/pool_down.bats. It reads its "version" from the
# file VERSION_FILE once, at start, as an application loads its code, and
# answers every request with "version=V pid=P". A file that says "broken"
# makes it exit with code 1 at start, as new code that does not load.
use strict;
use warnings;
use FCGI;

my $file = $ENV{VERSION_FILE} or die "VERSION_FILE is not set\n";
open(my $fh, '<', $file) or die "$file: $!\n";
my $version = <$fh> // '';
close $fh;
chomp $version;
if ($version eq 'broken') {
	print STDERR "version.pl: this version is broken; exiting\n";
	exit 1;
}
my $req = FCGI::Request();
while ($req->Accept() >= 0) {
	print "Content-Type: text/plain\r\n\r\nversion=$version pid=$$\n";
}
