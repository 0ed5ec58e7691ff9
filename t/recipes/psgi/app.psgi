# A PSGI application for the recipe etc/recipes/psgi.json: GET says which
# process answered, POST reads a form, /stream writes its body in pieces.
use strict;
use warnings;
use Plack::Request;

# FCGI.pm sends a write at once only while $| is set (otherwise it holds
# up to 8 KiB): needed for a streamed response to go out as it is written.
$| = 1;

my $started = time;

sub {
	my $env = shift;
	my $req = Plack::Request->new($env);
	if ($req->path_info eq '/stream') {
		return sub {
			my $w = shift->([200, ['Content-Type' => 'text/plain']]);
			for my $i (1 .. 3) {
				$w->write("part $i\n");
				sleep 1 if $i < 3;
			}
			$w->close;
		};
	}
	if ($req->method eq 'POST') {
		my $name = $req->body_parameters->{name} // '';
		return [200, ['Content-Type' => 'text/plain'],
			["pid $$ got name=$name (" . length($req->content) . " bytes)\n"]];
	}
	return [200, ['Content-Type' => 'text/plain'],
		["hello from PSGI, pid $$ script=" . $req->script_name . " path=" . $req->path_info . "\n"]];
};
