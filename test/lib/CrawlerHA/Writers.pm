# Writers of every kind of write-API call, for the HA tests: each one a child
# process that calls its function in a loop through a (multi-host) conninfo,
# as the crawler does, reconnecting after every failure, and records every
# call that was acknowledged: its result came back and no warning was given
# (a commit whose synchronous wait was cancelled commits locally with a
# warning: that write was not acknowledged). writers_lost() then says which
# acknowledged writes a node lacks.
#
# The writers share one crawl session (writers_session): crawl_enqueue locks
# its row, and crawl_enqueue, image_record and crawl_complete update its
# counters, so they contend on that row as the crawler's workers do.
package CrawlerHA::Writers;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run ();
use Digest::SHA ();
use Time::HiRes ();
use POSIX ();
use IO::Handle;
use PostgreSQL::Test::Utils ();
use CrawlerHA::Test ();

our @EXPORT_OK = qw(writers_session writer_start writer_stop writer_count writer_acks writer_errors
  writers_lost);

my %running;    # pid => 1: writers not stopped yet (each leads its process group)

# A test that dies or bails out leaves no writer behind (nor its psql).
END
{
	local $?;
	for my $pid (keys %running)
	{
		kill 'KILL', -$pid;
		waitpid($pid, 0);
	}
}

# writers_session($primary, $tag): a running session on host $tag.w.test and
# its subdomains, with no page budget to run out of, no politeness delay, and
# one queued URL on a host in back-off: no claim ever takes it, so the session
# is never finished by an empty queue while the claimer drains the rest.
# Returns the session id.
sub writers_session
{
	my ($node, $tag) = @_;
	my $opts = qq({"allowed_domains": ["$tag.w.test"], "max_pages": 1000000000, "max_depth": 1000, )
	  . qq("delay_ms": 0, "per_host": 1000, "robots": false});
	my $parked = "parked.$tag.w.test";
	my $id = $node->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://$parked/'], '$opts')");
	$node->safe_psql('postgres', "SELECT crawl_host_set('$parked', backoff_until => now() + interval '6 days')");
	return $id;
}

# The statements of one round of a writer (batch calls, unique keys); each
# returns one line "ack <key> <value>" when it succeeded.
sub _round
{
	my ($w, $i) = @_;
	my ($kind, $tag, $s) = @$w{qw(kind tag session)};
	my @st;
	for my $j (1 .. $w->{batch})
	{
		my $n = $i * $w->{batch} + $j;
		if ($kind eq 'start')
		{
			my $url = "http://seed.$tag.w.test/$n";
			push @st, "SELECT 'ack $url ' || crawl_start(ARRAY['$url'], '{\"allowed_domains\": [\"$tag.w.test\"]}')";
		}
		elsif ($kind eq 'enqueue')
		{
			my $url = 'http://h' . ($n % 4) . ".$tag.w.test/page/$n";
			push @st, "SELECT 'ack $url ' || crawl_enqueue($s, ARRAY['$url'], 1, 'page', 'http://parked.$tag.w.test/')";
		}
		elsif ($kind eq 'image')
		{
			my $url = "http://img.$tag.w.test/i/$n.jpg";
			my $sha = Digest::SHA::sha256_hex($url);
			my $path = substr($sha, 0, 2) . "/" . substr($sha, 2, 2) . "/$sha.jpg";
			push @st, "SELECT 'ack $url ' || image_record($s, '$url', '$sha', '$path', " . (1000 + $n)
			  . ", 64, 48, 'jpeg', 'image/jpeg', 'http://parked.$tag.w.test/')";
		}
		else { die "unknown writer kind $kind"; }
	}
	return @st;
}

# Run these statements, each its own transaction (autocommit), on the
# writer's connection: a psql kept between calls, driven through its stdin,
# each call ended by a marker that psql writes to stdout and stderr alike, so
# that both hold all of the call's output once both markers are back. (A psql
# per call spent a fork, an exec, a connection and an authentication on each
# call of a few statements: the writers spent most of their time and CPU on
# that, not on writes.)
# On any failure (an error, a warning, a lost connection, the timeout) that
# psql is ended and the next call connects afresh through the conninfo, as
# the crawler reconnects. Returns (exit code, stdout, stderr) as a psql of
# its own with ON_ERROR_STOP would have: the statements after an error are
# not run.
sub _psql
{
	my ($w, @sql) = @_;
	my $c = $w->{psql} //= _psql_start($w);
	my $mark = '-- end of call ' . ++$c->{calls};
	@$c{qw(out err)} = ('', '');
	$c->{in} .= join('', map { "$_;\n" } @sql) . "\\echo $mark\n\\warn $mark\n";
	$c->{timer}->start($w->{timeout});
	my $done = eval {
		$c->{h}->pump until $c->{out} =~ /^\Q$mark\E\n/m && $c->{err} =~ /^\Q$mark\E\n/m;
		1;
	};
	my ($out, $err) = @$c{qw(out err)};
	s/^\Q$mark\E\n//m for $out, $err;
	my $rc = 0;
	if (!$done)
	{
		# psql ended (ON_ERROR_STOP, a lost connection) or the timeout fired
		$err .= "($@)" unless $@ =~ /process ended prematurely/;
		_psql_end($w, 0);
		# its exit code, or 128 + the signal that ended it (as a shell says)
		my $st = $c->{h}->full_result(0) // 255;
		$rc = ($st >> 8) || ($st & 127 ? 128 + ($st & 127) : 255);
	}
	_psql_end($w, 1) if $done && $err =~ /WARNING/;
	return ($rc, $out, $err);
}

sub _psql_start
{
	my ($w) = @_;
	my $c = { in => '', out => '', err => '', calls => 0, timer => IPC::Run::timeout($w->{timeout}) };
	$c->{h} = IPC::Run::start([ 'psql', '-XAtq', '-d', $w->{conninfo}, '-v', 'ON_ERROR_STOP=1' ],
		'<', \$c->{in}, '>', \$c->{out}, '2>', \$c->{err}, $c->{timer});
	return $c;
}

# _psql_end($w, $quit): the writer's psql ends: told to quit (\q) when it
# still answers, killed otherwise.
sub _psql_end
{
	my ($w, $quit) = @_;
	my $c = delete $w->{psql} or return;
	$c->{in} .= "\\q\n" if $quit;
	$c->{timer}->start(10);
	eval { $quit ? $c->{h}->finish : $c->{h}->kill_kill(grace => 0); 1 } or eval { $c->{h}->kill_kill(grace => 0) };
	return;
}

# The "ack <key> <value>" lines of a psql's output, none when it warned.
sub _acks
{
	my ($out, $err) = @_;
	return () if $err =~ /WARNING/;
	my @a;
	for my $l (split /\n/, $out)
	{
		push @a, [ $1, $2 ] if $l =~ /^ack (\S+) (\S+)$/;
	}
	return @a;
}

sub _child
{
	my ($w) = @_;
	open(my $fh, '>>', $w->{file}) or die;
	open(my $eh, '>>', $w->{errors}) or die;
	$fh->autoflush(1);
	$eh->autoflush(1);
	my $deadline = time + $w->{max_seconds};
	my $i = 0;
	my $fail = sub {
		my ($what, $rc, $err) = @_;
		$err =~ s/\n/ /g;
		printf $eh "%.3f %s rc=%d %s\n", Time::HiRes::time(), $what, $rc, $err;
		Time::HiRes::sleep(0.05);
	};
	# a write to a psql that has ended must not end the writer
	local $SIG{PIPE} = 'IGNORE';
	while (!-e $w->{stop} && time < $deadline)
	{
		$i++;
		my $t0 = Time::HiRes::time();
		if ($w->{kind} eq 'claim')
		{
			# claim a few, then complete each in its own transaction
			my ($rc, $out, $err) = _psql($w,
				"SELECT 'claimed ' || item_id FROM crawl_claim('$w->{worker}', $w->{batch}, '5 s')");
			my @items = map { /^claimed (\d+)$/ ? $1 : () } split /\n/, $out;
			if ($rc != 0 || $err =~ /WARNING/) { $fail->('claim', $rc, $err); next unless @items; }
			if (!@items) { Time::HiRes::sleep(0.02); next; }
			my $t1 = Time::HiRes::time();
			($rc, $out, $err) = _psql($w,
				map { "SELECT 'ack $_ ' || crawl_complete($_, '$w->{worker}', '{\"http_status\": 200}')" } @items);
			printf $fh "%s %s %.3f %.3f\n", @$_, Time::HiRes::time(), $t1 for _acks($out, $err);
			$fail->('complete', $rc, $err) if $rc != 0 || $err =~ /WARNING/;
			next;
		}
		my ($rc, $out, $err) = _psql($w, _round($w, $i));
		# key, value, when the reply came, when the call began (client clock)
		printf $fh "%s %s %.3f %.3f\n", @$_, Time::HiRes::time(), $t0 for _acks($out, $err);
		$fail->($w->{kind}, $rc, $err) if $rc != 0 || $err =~ /WARNING/;
	}
	_psql_end($w, 1);
	close $fh;
	close $eh;
	return;
}

# writer_start($conninfo, $kind, %opts): a child that writes until stopped.
# $kind: 'start' (crawl_start, a new session per call, seeds unique),
# 'enqueue' (crawl_enqueue of unique page URLs into session => $id),
# 'image' (image_record of unique image URLs into session => $id), or
# 'claim' (crawl_claim of up to batch items, then crawl_complete of each).
# tag => the host name part that keeps URLs apart (the session's domain),
# batch => calls sent together in one round (default 4), max_seconds => the child's own
# deadline (default 900), timeout => seconds a call may take, connecting included (default 60).
sub writer_start
{
	my ($conninfo, $kind, %opts) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $w = {
		kind => $kind,
		conninfo => $conninfo,
		tag => $opts{tag} // 'w',
		session => $opts{session},
		batch => $opts{batch} // 4,
		worker => $opts{worker} // "claimer-$kind",
		max_seconds => $opts{max_seconds} // 900,
		timeout => $opts{timeout} // 60,
		file => "$dir/acked",
		errors => "$dir/errors",
		stop => "$dir/stop",
	};
	die "writer $kind needs a session" if $kind =~ /^(enqueue|image)$/ && !defined $w->{session};
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		POSIX::setpgid(0, 0);
		_child($w);
		# no END blocks here: they belong to the parent (they stop the nodes)
		POSIX::_exit(0);
	}
	$w->{pid} = $pid;
	$running{$pid} = 1;
	return $w;
}

sub writer_stop
{
	my (@ws) = @_;
	for my $w (@ws)
	{
		next unless $w->{pid};
		open(my $fh, '>', $w->{stop}) or die;
		close $fh;
	}
	for my $w (@ws)
	{
		next unless $w->{pid};
		waitpid($w->{pid}, 0);
		delete $running{ $w->{pid} };
		delete $w->{pid};
	}
	return;
}

# writer_acks($w): [ [key, value, time of the reply, time the call began], ... ]
# (the file is written as ha_writer_start's is, and read by ha_acks)
sub writer_acks
{
	my ($w) = @_;
	return [ grep { @$_ == 4 } @{ CrawlerHA::Test::ha_acks($w) } ];
}

# writer_count($w): how many acknowledged calls so far.
sub writer_count
{
	my ($w) = @_;
	open(my $fh, '<', $w->{file}) or return 0;
	my $n = 0;
	# not "while (<$fh>)": that assigns $_, the caller's grep or for alias
	while (defined(my $l = <$fh>)) { $n++ }
	return $n;
}

# writer_errors($w, $n): the last $n failures the writer saw (text).
sub writer_errors
{
	my ($w, $n) = @_;
	open(my $fh, '<', $w->{errors}) or return '';
	my @l = <$fh>;
	@l = @l[ -$n .. -1 ] if @l > $n;
	return join('', @l);
}

# writers_lost($node, @writers): descriptions of the acknowledged writes that
# $node lacks (or holds with another id, or not in the state acknowledged).
sub writers_lost
{
	my ($node, @ws) = @_;
	my %have;
	$have{start}{ $_->[0] } = $_->[1] for _rows($node, "SELECT seeds[1], id FROM crawl_sessions");
	$have{image}{ $_->[0] } = $_->[1] for _rows($node, "SELECT url, id FROM images");
	$have{enqueue}{ $_->[0] } = $_->[1] for _rows($node, "SELECT url, session_id FROM crawl_frontier");
	$have{claim}{ $_->[0] } = $_->[1] for _rows($node, "SELECT id, state FROM crawl_frontier");
	my @lost;
	for my $w (@ws)
	{
		my $h = $have{ $w->{kind} };
		for my $a (@{ writer_acks($w) })
		{
			my ($key, $val) = @$a;
			my $want = $w->{kind} eq 'enqueue' ? $w->{session}    # queued in the writers' session
			  : $w->{kind} eq 'claim' ? 'done'                     # completed stays done
			  : $val;                                              # with the id it returned
			# crawl_enqueue returns how many URLs it queued: 0 was no write
			next if $w->{kind} eq 'enqueue' && $val eq '0';
			push @lost, "$w->{kind} $key (acknowledged $val): " . ($h->{$key} // 'missing')
			  unless defined $h->{$key} && $h->{$key} eq $want;
		}
	}
	return @lost;
}

sub _rows
{
	my ($node, $sql) = @_;
	return map { [ split /\|/, $_, 2 ] } split /\n/, $node->safe_psql('postgres', $sql);
}

1;
