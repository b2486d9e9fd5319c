# bench/merge/merge.pl: an asynchronous pair; the standby is down while the
# primary records N images of a crawl (N image rows, N frontier rows done,
# the session's counters); the primary is killed, the standby promotes, and
# the old primary is started again: it merges its tail into the new primary
# and follows it. Measured: the merge (reading the tail from the old slot,
# shipping the rows, the merge rules on the new primary) and the whole
# rejoin, against two peers on the same server: the same rows inserted with
# plain INSERT ... SELECT FROM jsonb_populate_recordset into copies of the
# tables without indexes (LIKE: the cost of moving the rows), and into
# copies with the tables' indexes and checks (LIKE ... INCLUDING ALL: what
# any insert of these rows into these tables pays, without any rule). The
# nodes run with production settings (bench_conf: fsync on, no statement
# logging), not the test framework's, which log every statement: a merge's
# chunk is one statement of megabytes. Run through bench/merge/run.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_pair ha_wait_writable bench_conf median);

my @sizes = split ' ', ($ENV{MERGE_ROWS} // '10000 50000');
# MERGE_STATEMENTS=1: pg_stat_statements (nested statements too) on both
# nodes; the costliest statements of each merge are printed after it
my $statements = $ENV{MERGE_STATEMENTS} // '';
my $conf = bench_conf("max_wal_size = '1GB'");
$conf .= "shared_preload_libraries = 'crawler_ha,pg_cron,pg_stat_statements'\npg_stat_statements.track = all\n"
  if $statements;
my @rows;
my @notes;  # printed after the table
my $k = 0;
for my $n (@sizes)
{
	$k++;
	my ($a, $b) = ha_pair(names => [ "m${k}a", "m${k}b" ], conf => $conf);
	$_->safe_psql('postgres', 'BEGIN READ WRITE; CREATE EXTENSION pg_stat_statements; COMMIT') for ($statements ? ($a, $b) : ());
	my $sid = $a->safe_psql('postgres', q{SELECT crawl_start(ARRAY['http://m.test/'], '{"delay_ms": 0, "per_host": 1000}')});
	$b->poll_query_until('postgres', 'SELECT count(*) = 1 FROM crawl_frontier') or die;
	$b->stop;
	# the tail: N images found and recorded while the standby is away
	$a->safe_psql('postgres',
		"SELECT crawl_enqueue($sid, ARRAY(SELECT 'http://m.test/i' || i || '.png' FROM generate_series(1, $n) i), 1, 'image')");
	# one transaction per 1,000 images, as a crawler would commit them
	while ($a->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE state = 'queued' AND kind = 'image'") > 0)
	{
		$a->safe_psql('postgres', qq{
			SELECT count(image_record($sid, c.url, h.sha, left(h.sha, 2) || '/' || substr(h.sha, 3, 2) || '/' || h.sha || '.png',
			                          1000, 10, 10, 'png', 'image/png', 'http://m.test/', 200, NULL, c.item_id, 'w'))
			  FROM crawl_claim('w', 1000) c,
			       LATERAL (SELECT encode(sha256(convert_to(c.url, 'UTF8')), 'hex') AS sha) h
			 WHERE c.kind = 'image'});
	}
	my $tail = $a->safe_psql('postgres', 'SELECT count(*) FROM images');
	$a->kill9;
	$b->start;
	ha_wait_writable($b, 120) or die 'no promotion';
	$b->safe_psql('postgres', 'SELECT pg_stat_statements_reset()') if $statements;
	my $t0 = time;
	$a->start;
	$a->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state", 't') or die 'no rejoin';
	my $rejoin_s = time - $t0;
	my ($merge_ms, $merged) = split /\|/, $a->safe_psql('postgres',
		"SELECT duration_ms, detail ->> 'merged' FROM ha_events WHERE kind = 'merge' ORDER BY id DESC LIMIT 1");
	my $on_b = $b->safe_psql('postgres', 'SELECT count(*) FROM images');
	if ($statements)
	{
		for my $n ($a, $b)
		{
			push @notes, "statements on " . $n->name . " after merging $tail images (calls, total ms, query):";
			push @notes, "    $_" for split /\n/, $n->safe_psql('postgres',
				"SELECT calls || ' ' || round(total_exec_time) || ' ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 150) "
				  . "FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT 15");
		}
	}

	# the peers: the same rows, plain INSERT from JSON, on the same server,
	# into bare copies of the tables and into copies with their indexes
	$b->safe_psql('postgres', q{
		CREATE TABLE plain_images (LIKE images); CREATE TABLE plain_frontier (LIKE crawl_frontier);
		CREATE TABLE indexed_images (LIKE images INCLUDING ALL);
		CREATE TABLE indexed_frontier (LIKE crawl_frontier INCLUDING ALL);
		CREATE TABLE j AS SELECT (SELECT jsonb_agg(to_jsonb(i)) FROM images i) AS im,
		                         (SELECT jsonb_agg(to_jsonb(f)) FROM crawl_frontier f) AS fr;
		CHECKPOINT;});
	my %peer_ms;
	# three rounds of each, interleaved, into emptied tables: the median
	my %times;
	for my $round (1 .. 3)
	{
		for my $peer ('plain', 'indexed')
		{
			$b->safe_psql('postgres', "TRUNCATE ${peer}_images, ${peer}_frontier; CHECKPOINT");
			my $p0 = time;
			$b->safe_psql('postgres', qq{
				INSERT INTO ${peer}_images SELECT * FROM jsonb_populate_recordset(NULL::images, (SELECT im FROM j));
				INSERT INTO ${peer}_frontier SELECT * FROM jsonb_populate_recordset(NULL::crawl_frontier, (SELECT fr FROM j));});
			push @{ $times{$peer} }, (time - $p0) * 1000;
		}
	}
	$peer_ms{$_} = median(@{ $times{$_} }) for keys %times;
	push @rows, sprintf('| %d | %d | %d | %.0f ms | %.0f rows/s | %.1f s | %.0f ms | %.1fx | %.0f ms | %.1fx |',
		$tail, $merged, $on_b, $merge_ms, $merged / ($merge_ms / 1000), $rejoin_s, $peer_ms{plain},
		$merge_ms / $peer_ms{plain}, $peer_ms{indexed}, $merge_ms / $peer_ms{indexed});
	$a->stop;
	$b->stop;
}
open(my $out, '>', "$ENV{TESTDATADIR}/merge-results.md") or die $!;
print $out "| images in the tail | rows merged (all tables) | images on the new primary after | merge | merge rate | restart to rejoined (copy included) | plain INSERT, no indexes | merge / plain | plain INSERT, tables' indexes | merge / indexed |\n";
print $out "|---|---|---|---|---|---|---|---|---|---|\n";
print $out "$_\n" for @rows;
print $out "\n", map { "$_\n" } @notes if @notes;
close $out;
