# bench/merge/merge.pl: an asynchronous pair; the standby is down while the
# primary records N images of a crawl (N image rows, N frontier rows done,
# the session's counters); the primary is killed, the standby promotes, and
# the old primary is started again: it merges its tail into the new primary
# and follows it. Measured: the merge (reading the tail from the old slot,
# shipping the rows, ha_merge_rows' rules on the new primary) and the whole
# rejoin, against the peer: the same rows inserted with plain INSERT ...
# SELECT FROM jsonb_populate_recordset on the same server (the cost of
# moving the rows without any rule). Run through bench/merge/run.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_pair ha_wait_writable);

my @sizes = split ' ', ($ENV{MERGE_ROWS} // '10000 50000');
my @rows;
my $k = 0;
for my $n (@sizes)
{
	$k++;
	my ($a, $b) = ha_pair(names => [ "m${k}a", "m${k}b" ]);
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
	my $t0 = time;
	$a->start;
	$a->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state", 't') or die 'no rejoin';
	my $rejoin_s = time - $t0;
	my ($merge_ms, $merged) = split /\|/, $a->safe_psql('postgres',
		"SELECT duration_ms, detail ->> 'merged' FROM ha_events WHERE kind = 'merge' ORDER BY id DESC LIMIT 1");
	my $on_b = $b->safe_psql('postgres', 'SELECT count(*) FROM images');

	# the peer: the same rows, plain INSERT from JSON, on the same server
	$b->safe_psql('postgres', q{
		CREATE TABLE plain_images (LIKE images); CREATE TABLE plain_frontier (LIKE crawl_frontier);
		CREATE TABLE j AS SELECT (SELECT jsonb_agg(to_jsonb(i)) FROM images i) AS im,
		                         (SELECT jsonb_agg(to_jsonb(f)) FROM crawl_frontier f) AS fr;});
	my $p0 = time;
	$b->safe_psql('postgres', q{
		INSERT INTO plain_images SELECT * FROM jsonb_populate_recordset(NULL::images, (SELECT im FROM j));
		INSERT INTO plain_frontier SELECT * FROM jsonb_populate_recordset(NULL::crawl_frontier, (SELECT fr FROM j));});
	my $plain_ms = (time - $p0) * 1000;
	push @rows, sprintf('| %d | %d | %d | %.0f ms | %.0f rows/s | %.1f s | %.0f ms | %.1fx |',
		$tail, $merged, $on_b, $merge_ms, $merged / ($merge_ms / 1000), $rejoin_s, $plain_ms, $merge_ms / $plain_ms);
	$a->stop;
	$b->stop;
}
open(my $out, '>', "$ENV{TESTDATADIR}/merge-results.md") or die $!;
print $out "| images in the tail | rows merged (all tables) | images on the new primary after | merge | merge rate | restart to rejoined (copy included) | plain INSERT of the same rows | merge / plain |\n";
print $out "|---|---|---|---|---|---|---|---|\n";
print $out "$_\n" for @rows;
close $out;
