# A real HTTP receiver for the agents' alert notifications (Alertmanager's
# webhook format), started by a test on a free loopback port: HTTP::Daemon
# in a child process that answers each POST and appends it, with its
# headers and the status it answered, to a JSON-lines file the test reads.
# While the file `fail` exists in its directory it answers 503, so that a
# test can make deliveries fail and watch them being retried.
package CrawlerHA::Webhook;

use strict;
use warnings;
use Exporter 'import';
use HTTP::Daemon;
use HTTP::Response;
use JSON::PP;
use POSIX ();
use PostgreSQL::Test::Utils;

our @EXPORT_OK = qw(webhook_start webhook_stop webhook_requests webhook_fail);

# webhook_start(): { pid, url, dir } of a running receiver.
sub webhook_start
{
	my $dir = PostgreSQL::Test::Utils::tempdir();
	# A client that holds a connection idle is dropped after 10 s.
	my $d = HTTP::Daemon->new(LocalAddr => '127.0.0.1', LocalPort => 0, ReuseAddr => 1, Timeout => 10)
	  or die "webhook receiver: $!";
	my $port = $d->sockport;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		while (1)
		{
			my $c = $d->accept or next;
			while (my $r = $c->get_request)
			{
				my $code = -e "$dir/fail" ? 503 : 200;
				open my $f, '>>', "$dir/requests.jsonl" or POSIX::_exit(1);
				print $f JSON::PP->new->canonical->encode(
					{
						method => $r->method,
						path => $r->uri->path,
						authorization => $r->header('Authorization') // '',
						content_type => $r->header('Content-Type') // '',
						body => $r->decoded_content // '',
						answered => $code,
					}),
				  "\n";
				close $f;
				$c->send_response(HTTP::Response->new($code, undef, [ 'Content-Type' => 'application/json' ], '{}'));
			}
			$c->close;
		}
		# Never reached; and the test's END blocks (the clusters' teardown)
		# must never run in this child.
		POSIX::_exit(0);
	}
	$d->close;
	return { pid => $pid, url => "http://127.0.0.1:$port/hook", dir => $dir };
}

# webhook_stop($rx): ends the receiver.
sub webhook_stop
{
	my ($rx) = @_;
	return unless $rx && $rx->{pid};
	kill 'KILL', $rx->{pid};
	waitpid $rx->{pid}, 0;
	$rx->{pid} = 0;
}

# webhook_requests($rx): every request received so far, in order, each
# { method, path, authorization, content_type, body, answered, json } (json:
# the decoded body, undef when it is not JSON).
sub webhook_requests
{
	my ($rx) = @_;
	my $file = "$rx->{dir}/requests.jsonl";
	return () unless -e $file;
	my @out;
	for my $line (split /\n/, PostgreSQL::Test::Utils::slurp_file($file))
	{
		my $r = decode_json($line);
		$r->{json} = eval { decode_json($r->{body}) };
		push @out, $r;
	}
	return @out;
}

# webhook_fail($rx, $on): from now on answer 503 (on) or 200 (off).
sub webhook_fail
{
	my ($rx, $on) = @_;
	if ($on)
	{
		open my $f, '>', "$rx->{dir}/fail" or die $!;
		close $f;
	}
	else
	{
		unlink "$rx->{dir}/fail";
	}
}

1;
