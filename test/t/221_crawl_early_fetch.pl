# Early fetches: a page's links fetched while they are queued, leased to
# the worker right behind their enqueue (crawl_lease_early()). On the
# generated deep site (scripts/gen-sample-site --shape deep, 4 chains of 10
# pages) served with 20 ms per response (scripts/delay-server, which logs
# every request):
# - one worker, no delay: every page and image recorded once, every URL
#   requested once, early fetches used and none dropped, robots.txt obeyed
#   (a disallowed chain is never requested, early or not);
# - a politeness delay: nothing is fetched early;
# - two workers on one session with no delay: nothing lost or recorded
#   twice, and a URL requested twice only as an early fetch one of them
#   dropped;
# - URL patterns: a page or image they reject is never requested, early or
#   not.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node);

# Servers and workers started here are killed at exit, also when a test dies.
my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
my $root = "$FindBin::RealBin/../..";

my $site = tempdir(CLEANUP => 1) . '/deep';
system("$root/scripts/gen-sample-site", '--shape', 'deep', $site) == 0 or die 'gen-sample-site failed';
# chain 3 is disallowed: neither its pages nor their images may be asked for
open my $rt, '>', "$site/robots.txt" or die $!;
print $rt "User-agent: *\nDisallow: /c3/\n";
close $rt;

my $log = "$site.requests";
my ($ds_out, $ds_err) = ('', '');
my $ds = IPC::Run::start([ "$root/scripts/delay-server", '--root', $site, '--delay-ms', '20', '--log', $log ],
	'>', \$ds_out, '2>', \$ds_err, IPC::Run::timeout(600));
push @started, $ds;
$ds->pump until $ds_out =~ /listening on (\S+)/;
my $base = $1;
$base =~ s{/$}{};

my $node = new_node('early');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';

# The requests logged from line $from on: path => count.
sub requests_since
{
	my ($from) = @_;
	open my $fh, '<', $log or return {};
	my @lines = <$fh>;
	close $fh;
	my %n;
	for my $l (@lines[ $from .. $#lines ])
	{
		my (undef, $path) = split ' ', $l, 2;
		chomp $path;
		$n{$path}++;
	}
	return \%n;
}

sub log_lines
{
	open my $fh, '<', $log or return 0;
	my @lines = <$fh>;
	close $fh;
	return scalar @lines;
}

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# ---- One worker, no politeness delay: the links are fetched early ----
{
	my $from = log_lines();
	my $storage = tempdir(CLEANUP => 1);
	my ($out, $err) = ('', '');
	IPC::Run::run([ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', "$base/",
			'--delay-ms', '0', '--per-host', '16', '--concurrency', '16', '--max-depth', '20' ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(120));
	is($? >> 8, 0, 'the crawl of the deep site succeeds') or diag $err;
	my $sid = q1('SELECT max(id) FROM crawl_sessions');
	is(q1("SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND kind = 'page' AND state = 'done'"), '31',
		'every allowed page is done (the index and 3 chains of 10)');
	is(q1("SELECT count(*) FROM images WHERE session_id = $sid"), '90', 'every allowed image has its row (3 x 10 x 3)');
	is(q1("SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND url LIKE '%/c3/%' AND state <> 'failed'"),
		'0', 'the disallowed chain is failed, not fetched');
	is(q1("SELECT max(attempts) FROM crawl_frontier WHERE session_id = $sid"), '1', 'no URL was leased twice');

	my $n = requests_since($from);
	my @twice = grep { $n->{$_} > 1 } sort keys %$n;
	is_deeply(\@twice, [], 'no URL was requested twice');
	is_deeply([ grep { m{^/c3/} } sort keys %$n ], [], 'nothing under the disallowed /c3/ was requested');
	is(scalar(grep { $_ ne '/robots.txt' } keys %$n), 31 + 90, 'every page and image was requested (121)');

	like($err, qr/early fetches: (\d+) started, (\d+) used by leases, 0 dropped/, 'early fetches were made, none dropped')
	  or diag $err;
	my ($started, $used) = $err =~ /early fetches: (\d+) started, (\d+) used by leases/;
	ok(defined $started && $started >= 30 && $used == $started,
		"the links of each level were fetched early and used ($started started, $used used)");
}

# ---- A politeness delay: nothing is fetched before its lease ----
# (A re-crawl of the same site: --image-expiry-s 0 asks for every known image
# again, so that every URL done is a request.)
{
	my $from = log_lines();
	my $storage = tempdir(CLEANUP => 1);
	my ($out, $err) = ('', '');
	IPC::Run::run([ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', "$base/",
			'--delay-ms', '10', '--per-host', '4', '--max-depth', '2', '--image-expiry-s', '0' ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(120));
	is($? >> 8, 0, 'a crawl with a 10 ms delay succeeds') or diag $err;
	unlike($err, qr/early fetches/, 'with a delay nothing is fetched early');
	my $sid = q1('SELECT max(id) FROM crawl_sessions');
	my $n = requests_since($from);
	is(scalar(grep { $_ ne '/robots.txt' } keys %$n),
		q1("SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND state = 'done'"),
		'every URL done was requested, and only those');
	is_deeply([ grep { $n->{$_} > 1 } sort keys %$n ], [], '... once each');
}

# ---- Two workers on one session, no delay ----
{
	my $from = log_lines();
	my $storage = tempdir(CLEANUP => 1);
	my (%h, %out, %err);
	for my $w ('w1', 'w2')
	{
		($out{$w}, $err{$w}) = ('', '');
		$h{$w} = IPC::Run::start([ $worker, 'run', '--db', $db, '--storage', $storage, '--worker-id', $w,
				'--concurrency', '8', '--host-connections', '8' ],
			'>', \$out{$w}, '2>', \$err{$w}, IPC::Run::timeout(120));
		push @started, $h{$w};
	}
	for my $w ('w1', 'w2')
	{
		$h{$w}->pump until $err{$w} =~ /database: connection 2 to/;
	}
	my $sid = q1("SELECT crawl_start(ARRAY['$base/'], '{\"delay_ms\": 0, \"per_host\": 16, \"max_depth\": 20}')");
	ok($node->poll_query_until('postgres', "SELECT status = 'finished' FROM crawl_status($sid)"),
		'two workers finish the session');
	for my $w ('w1', 'w2')
	{
		$h{$w}->signal('TERM');
		$h{$w}->finish;
		is($h{$w}->full_result(0), 0, "$w exits 0 on SIGTERM") or diag $err{$w};
	}
	is(q1("SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND kind = 'page' AND state = 'done'"), '31',
		'every allowed page is done');
	# image rows are keyed by URL: the first session's rows are this one's too
	is(q1("SELECT count(*) FROM crawl_frontier f JOIN images i ON i.url = f.url
	        WHERE f.session_id = $sid AND f.kind = 'image' AND f.state = 'done'"), '90',
		'every allowed image is done and has its row');
	is(q1("SELECT max(attempts) FROM crawl_frontier WHERE session_id = $sid"), '1', 'no URL was leased twice');
	my $dropped = 0;
	for my $w ('w1', 'w2')
	{
		$dropped += $1 if $err{$w} =~ /early fetches: \d+ started, \d+ used by leases, (\d+) dropped/;
	}
	my $n = requests_since($from);
	my $extra = 0;
	$extra += $n->{$_} - 1 for grep { $_ ne '/robots.txt' } keys %$n;
	is($extra, $dropped, "a URL was requested again only for an early fetch that was dropped ($dropped)");
	is_deeply([ grep { m{^/c3/} } sort keys %$n ], [], 'nothing under /c3/ was requested');
}

# ---- URL patterns: what they reject is never requested, early or not ----
# Only the frontier applies them, so links of a kind with patterns wait for
# their leases; those of the other kind are still fetched early. The same
# server under other names (libcurl resolves localhost and *.localhost to
# loopback), so that every URL is new to the images table and no session is
# a re-crawl: images may be fetched early too.
for my $case (
	[ 'localhost', [ '--reject-page', '/c1/' ], 21, 60, qr{^/c1/}, 'pages under /c1/ (and their images)' ],
	[ 'early.localhost', [ '--reject-image', '/c2/d0[1-5]-' ], 31, 75, qr{^/c2/d0[1-5]-},
		"chain 2's images of levels 1 to 5" ])
{
	my ($name, $patterns, $pages, $images, $rejected, $what) = @$case;
	my $from = log_lines();
	my $storage = tempdir(CLEANUP => 1);
	(my $other = $base) =~ s{//127\.0\.0\.1:}{//$name:} or die "unexpected base $base";
	my ($out, $err) = ('', '');
	IPC::Run::run([ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', "$other/",
			'--delay-ms', '0', '--per-host', '16', '--concurrency', '16', '--max-depth', '20', @$patterns ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(120));
	is($? >> 8, 0, "@$patterns: the crawl succeeds") or diag $err;
	my $sid = q1('SELECT max(id) FROM crawl_sessions');
	is(q1("SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND kind = 'page' AND state = 'done'"), $pages,
		"@$patterns: $pages pages done");
	is(q1("SELECT count(*) FROM images WHERE session_id = $sid"), $images, "@$patterns: $images images recorded");
	my $n = requests_since($from);
	is_deeply([ grep { $_ =~ $rejected } sort keys %$n ], [], "@$patterns: nothing rejected was requested ($what)");
	is_deeply([ grep { $n->{$_} > 1 } sort keys %$n ], [], "@$patterns: no URL was requested twice");
	like($err, qr/early fetches: [1-9]\d* started, \d+ used by leases, 0 dropped/,
		"@$patterns: links of the other kind were fetched early, none dropped")
	  or diag $err;
}

$ds->kill_kill;
done_testing();
