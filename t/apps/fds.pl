#!/usr/bin/perl
# Lists this process's open descriptors (the dir handle used to list them
# excluded) and its working directory.
opendir(my $d, "/proc/self/fd") or die;
my $self = fileno($d);
my @fds = sort { $a <=> $b } grep { /^\d+$/ && $_ != $self } readdir($d);
print "Content-Type: text/plain\r\n\r\n";
print "fd $_ ", (readlink("/proc/self/fd/$_") // "?"), "\n" for @fds;
use Cwd;
print "cwd ", getcwd(), "\n";
