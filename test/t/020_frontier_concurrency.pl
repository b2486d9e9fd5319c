# The frontier under concurrency, on a real server:
# - 4 parallel claimers over 10,000 URLs: every URL is claimed exactly once;
# - leases that expire come back to the queue;
# - politeness holds: no two claims of one host closer than its delay.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use CrawlerHA::Test qw(new_node);

my $node = new_node('frontier');
$node->safe_psql('postgres', 'CREATE ROLE tap_worker LOGIN IN ROLE crawler_ha_writer');

# Run one claimer per entry of @workers in parallel psql sessions (as the
# writer role); each loops claim -> NOTICE -> complete until the session has
# nothing left. Returns { worker => [ "item host epoch", ... ] }.
sub run_claimers
{
	my ($session, $batch, @workers) = @_;
	my (%out, @h);
	for my $w (@workers)
	{
		my $sql = <<"SQL";
DO \$\$
DECLARE r record; n int; idle int := 0;
BEGIN
  LOOP
    n := 0;
    FOR r IN SELECT c.item_id, f.host, (extract(epoch FROM c.leased_at) * 1000000)::bigint AS at
               FROM crawl_claim('$w', $batch, '5 minutes') c
               JOIN crawl_frontier f ON f.id = c.item_id LOOP
      RAISE NOTICE 'claimed % % %', r.item_id, r.host, r.at;
      PERFORM crawl_complete(r.item_id, '$w');
      n := n + 1;
    END LOOP;
    COMMIT;
    IF n = 0 THEN
      EXIT WHEN NOT EXISTS (SELECT 1 FROM crawl_frontier
                             WHERE session_id = $session AND state IN ('queued', 'leased'));
      idle := idle + 1;
      PERFORM pg_sleep(0.01);
    END IF;
  END LOOP;
END
\$\$;
SQL
		# Output goes to files: a pipe left undrained while another claimer
		# is awaited would block its writer and stall the others on its locks.
		$out{$w} = "$PostgreSQL::Test::Utils::tmp_check/claimer_$w.log";
		push @h,
		  IPC::Run::start(
			[
				'psql', '-X', '-q', '-h', $node->host, '-p', $node->port,
				'-U', 'tap_worker', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', $sql
			],
			'>', '/dev/null', '2>', $out{$w});
	}
	$_->finish for @h;
	my %claims;
	for my $w (@workers)
	{
		my $log = slurp_file($out{$w});
		my @lines = $log =~ /NOTICE:\s+claimed (\d+ \S+ [\d.]+)/g;
		$claims{$w} = \@lines;
		unlike($log, qr/ERROR/, "claimer $w ran without errors");
	}
	return \%claims;
}

# --- 4 claimers, 10,000 URLs over 20 hosts, no delay --------------------
my $s = $node->safe_psql('postgres',
	q{SELECT crawl_start(ARRAY['http://h0.test/seed'], '{"delay_ms": 0, "per_host": 1000, "max_pages": 20000, "allowed_domains": ["test"]}')});
$node->safe_psql('postgres', qq{
	SELECT crawl_enqueue($s, ARRAY(SELECT format('http://h%s.test/p%s', i % 20, i) FROM generate_series(1, 9999) i), 1, 'page')});
is($node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $s"),
	'10000', '10,000 URLs queued');

my $claims = run_claimers($s, 25, qw(c1 c2 c3 c4));
my %seen;
my $total = 0;
for my $w (sort keys %$claims)
{
	my $n = scalar @{ $claims->{$w} };
	$total += $n;
	cmp_ok($n, '>', 0, "claimer $w got work ($n items)");
	$seen{ (split / /)[0] }++ for @{ $claims->{$w} };
}
is($total, 10000, 'claims add up to 10,000');
is(scalar(keys %seen), 10000, 'every URL was claimed');
is(scalar(grep { $_ > 1 } values %seen), 0, 'no URL was claimed twice');
is($node->safe_psql('postgres', "SELECT state || ' ' || count(*) FROM crawl_frontier WHERE session_id = $s GROUP BY state"),
	'done 10000', 'all 10,000 done');
is($node->safe_psql('postgres', "SELECT status FROM crawl_status($s)"), 'finished', 'the session finished');

# --- expired leases come back ---------------------------------------------
my $e = $node->safe_psql('postgres',
	q{SELECT crawl_start(ARRAY['http://lease.test/0'], '{"delay_ms": 0, "per_host": 1000}')});
$node->safe_psql('postgres', qq{
	SELECT crawl_enqueue($e, ARRAY(SELECT 'http://lease.test/' || i FROM generate_series(1, 99) i), 1, 'page')});
my $crashed = $node->safe_psql('postgres',
	"SELECT string_agg(item_id::text, ',' ORDER BY item_id) FROM crawl_claim('crashed', 1000, '1 second')");
is(scalar(split /,/, $crashed), 100, 'a worker leased 100 items and "crashed"');
is($node->safe_psql('postgres', "SELECT count(*) FROM crawl_claim('early', 1000)"), '0',
	'while the leases run, nobody else gets those items');
sleep 2;
my $back = $node->safe_psql('postgres',
	"SELECT string_agg(item_id::text, ',' ORDER BY item_id) FROM crawl_claim('rescuer', 1000, '1 minute')");
is($back, $crashed, 'after expiry the same 100 items are claimed again');
my ($code) = $node->psql('postgres', "SELECT crawl_complete(" . (split /,/, $crashed)[0] . ", 'crashed')");
isnt($code, 0, 'the crashed worker can no longer complete its old lease');

# --- politeness: 3 hosts with a 300 ms delay, 4 claimers -----------------------
my $p = $node->safe_psql('postgres',
	q{SELECT crawl_start(ARRAY['http://a.polite.test/0'], '{"delay_ms": 300, "per_host": 100, "allowed_domains": ["polite.test"]}')});
$node->safe_psql('postgres', qq{
	SELECT crawl_enqueue($p, ARRAY(SELECT format('http://%s.polite.test/%s', h, i)
	                               FROM unnest(ARRAY['a','b','c']) h, generate_series(1, 5) i), 1, 'page')});
$claims = run_claimers($p, 10, qw(p1 p2 p3 p4));
my %by_host;
for my $w (keys %$claims)
{
	for (@{ $claims->{$w} })
	{
		my (undef, $host, $at) = split / /;
		push @{ $by_host{$host} }, $at;
	}
}
is(scalar(keys %by_host), 3, 'all three hosts were crawled');
my $min_gap = 1e9;
my $count = 0;
for my $host (sort keys %by_host)
{
	my @t = sort { $a <=> $b } @{ $by_host{$host} };
	$count += @t;
	for my $i (1 .. $#t)
	{
		my $gap = $t[$i] - $t[ $i - 1 ];
		$min_gap = $gap if $gap < $min_gap;
	}
}
is($count, 16, 'every polite URL was claimed once');
# In whole microseconds: as seconds in a double, two leases exactly 300 ms
# apart differed by 0.29999995.
cmp_ok($min_gap, '>=', 300000, sprintf('no two claims of one host closer than 300 ms (closest: %.3f s)', $min_gap / 1e6));

$node->stop;
done_testing();
