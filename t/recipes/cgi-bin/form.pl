#!/usr/bin/perl
# A CGI.pm form that posts to itself: GET shows the form, POST greets the
# name given (HTML-escaped). The recipe etc/recipes/perl-cgi.json serves it.
use strict;
use warnings;
use CGI qw(-utf8);

my $q = CGI->new;
print $q->header(-type => 'text/html', -charset => 'utf-8');
print $q->start_html('form.pl');
if ($q->request_method eq 'POST') {
	my $name = $q->param('name') // '';
	print $q->p('Hello, ' . $q->escapeHTML($name) . '!');
	my $fh = $q->upload('file');
	if ($fh) {
		local $/;
		my $data = <$fh>;
		printf "<p>file %s: %d bytes</p>\n", $q->escapeHTML(scalar $q->param('file')), length $data;
	}
} else {
	print $q->start_multipart_form(-action => $q->url(-absolute => 1));
	print $q->textfield('name'), $q->filefield('file'), $q->submit('send');
	print $q->end_form;
}
print "<p>SCRIPT_NAME=", $q->escapeHTML($ENV{SCRIPT_NAME}), " PATH_INFO=", $q->escapeHTML($ENV{PATH_INFO} // ''),
    "</p>\n";
print $q->end_html;
