#!/usr/bin/perl
# The directory's index (the recipe's "index": ["index.pl"]).
use strict;
use warnings;
use CGI;

my $q = CGI->new;
print $q->header(-type => 'text/plain', -charset => 'utf-8');
print "index.pl: try form.pl\n";
