# Rejoin with merge (docs/ha.md), asynchronous loss window made
# deterministic: the standby is down while the primary works on a crawl, the
# primary dies with that tail, the standby promotes and works on the same
# crawl. When the old primary comes back, every row of its tail is merged
# into the new primary by the documented rules (missing rows inserted, the
# URL's further progress wins, an image with other content is a recorded
# conflict where the newer term's row stays, a row it deleted is kept here and
# named in the merge event), counters follow the rows, the
# old slot is dropped only after the merge, and the old primary follows the
# new one with identical data.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair ha_wait_writable);

my ($a, $b) = ha_pair(names => [ 'alpha', 'beta' ]);
my $opts = q('{"delay_ms": 0, "per_host": 100}');
my $sid = $a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://m.test/'], $opts)");
$a->safe_psql('postgres',
	"SELECT crawl_enqueue($sid, ARRAY(SELECT 'http://m.test/i' || i || '.png' FROM generate_series(1, 6) i), 1, 'image', 'http://m.test/')");
$b->poll_query_until('postgres', "SELECT count(*) = 7 FROM crawl_frontier") or die 'no copy';

sub claim_all
{
	my ($node, $worker) = @_;
	$node->safe_psql('postgres', "SELECT count(*) FROM crawl_claim('$worker', 50)");
}

sub item
{
	my ($node, $url) = @_;
	return $node->safe_psql('postgres', "SELECT id FROM crawl_frontier WHERE url = 'http://m.test/$url'");
}

sub record
{
	my ($node, $url, $sha, $worker) = @_;
	my $item = item($node, $url);
	$node->safe_psql('postgres',
		"SELECT image_record($sid, 'http://m.test/$url', repeat('$sha', 64), '$sha$sha/$sha$sha/' || repeat('$sha', 64) || '.png', 100, 10, 10, 'png', 'image/png', "
		  . "'http://m.test/', 200, NULL, $item, '$worker')");
}

# an image both nodes have, which alpha's tail will delete
my $gone_id = $a->safe_psql('postgres',
	"SELECT image_record($sid, 'http://m.test/gone.png', repeat('c', 64), 'cc/cc/' || repeat('c', 64) || '.png', 100, 10, 10, 'png', 'image/png')");
$b->poll_query_until('postgres', "SELECT count(*) = 1 FROM images WHERE id = $gone_id") or die 'no copy of gone.png';

# --- the tail: written on alpha while beta is down ----------------------------
$b->stop;
$a->safe_psql('postgres', "SELECT image_delete($gone_id)");
claim_all($a, 'wa');
record($a, 'i1.png', 'a', 'wa');     # only alpha ever fetches i1
record($a, 'i2.png', 'a', 'wa');     # beta will fail it for good: done wins
record($a, 'i3.png', '1', 'wa');     # beta records other bytes: a conflict
$a->safe_psql('postgres', "SELECT crawl_fail(" . item($a, 'i4.png') . ", 'wa', 'HTTP 404')");    # beta will fetch it
$a->safe_psql('postgres', "SELECT crawl_complete(" . item($a, '') . ", 'wa', '{}')");    # the seed page
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://tail.test/' || i]) FROM generate_series(1, 3) i");
my $tail_image_id = $a->safe_psql('postgres', "SELECT id FROM images WHERE url = 'http://m.test/i1.png'");
$a->kill9;

# --- the new term on beta ------------------------------------------------------
$b->start;
ok(defined ha_wait_writable($b, 120), 'beta promoted without alpha');
is($b->safe_psql('postgres', "SELECT count(*) FROM images WHERE id <> $gone_id"), '0', 'beta never got the tail');
claim_all($b, 'wb');
$b->safe_psql('postgres', "SELECT crawl_fail(" . item($b, 'i2.png') . ", 'wb', 'HTTP 500')");
record($b, 'i3.png', 'b', 'wb');
record($b, 'i4.png', 'b', 'wb');
$b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://new.test/' || i]) FROM generate_series(1, 2) i");
my $term_b = $b->safe_psql('postgres', 'SELECT term FROM ha_state');

# --- alpha comes back: demotes, merges, follows --------------------------------
$a->start;
$a->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state")
  or die 'alpha did not rejoin: '
  . $a->safe_psql('postgres', "SELECT string_agg(kind || ': ' || reason, E'\n' ORDER BY id) FROM ha_events");
pass('alpha rejoined by itself');
like($a->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY id) FROM ha_events WHERE kind IN ('demotion', 'merge', 'rejoin')"),
	qr/demotion,merge,rejoin/, 'alpha recorded its demotion, the merge, then the rejoin');
my $summary = $a->safe_psql('postgres', "SELECT detail FROM ha_events WHERE kind = 'merge' ORDER BY id DESC LIMIT 1");
like($summary, qr/"method": "slot"/, 'the tail was read from the old slot');
is($a->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots"), '0',
	'the old slot is dropped once the merge is confirmed');

# the union is on beta
is($b->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE seeds[1] LIKE 'http://tail.test/%'"), '3',
	'sessions started only on alpha are merged');
is($b->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE seeds[1] LIKE 'http://new.test/%'"), '2',
	'sessions of the new term are kept');
is($b->safe_psql('postgres', "SELECT id FROM images WHERE url = 'http://m.test/i1.png'"), $tail_image_id,
	'an image only alpha recorded is merged with its id');
is($b->safe_psql('postgres', "SELECT state FROM crawl_frontier WHERE url = 'http://m.test/i1.png'"), 'done',
	'and its frontier item is done');
is($b->safe_psql('postgres', "SELECT state FROM crawl_frontier WHERE url = 'http://m.test/i2.png'"), 'done',
	'done on alpha, failed on beta: done wins');
is($b->safe_psql('postgres', "SELECT sha256 = repeat('b', 64) FROM images WHERE url = 'http://m.test/i3.png'"), 't',
	'an image with other bytes on each side: the newer term\'s row stays');
is($b->safe_psql('postgres', "SELECT state FROM crawl_frontier WHERE url = 'http://m.test/i4.png'"), 'done',
	'failed on alpha, done on beta: done stays');
is($b->safe_psql('postgres', "SELECT count(*) FROM images WHERE id = $gone_id"), '1',
	'an image the old primary deleted in its tail is kept');
is($b->safe_psql('postgres',
	"SELECT detail -> 'deleted_there' FROM ha_events WHERE kind = 'merge' AND (detail ->> 'table')::regclass = 'images'::regclass"),
	"[\"$gone_id\"]", 'and the merge event names it')
  or diag $b->safe_psql('postgres', "SELECT string_agg(detail::text, E'\\n') FROM ha_events WHERE kind = 'merge'");
is($b->safe_psql('postgres', "SELECT images_stored FROM crawl_session_totals WHERE session_id = $sid"),
	$b->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid"),
	'the session\'s counters follow the merged rows');

# every conflict is an event with both rows; every merge call is an event
my $conflicts = $b->safe_psql('postgres',
	"SELECT string_agg(detail ->> 'table' || ' ' || (detail ->> 'key'), ',' ORDER BY id) FROM ha_events WHERE kind = 'conflict'");
like($conflicts, qr{images http://m\.test/i3\.png}, 'the image conflict is recorded');
like($conflicts, qr{crawl_frontier \d+}, 'the done/failed conflict is recorded');
is($b->safe_psql('postgres',
	"SELECT detail -> 'other' ->> 'sha256' = repeat('1', 64) FROM ha_events WHERE kind = 'conflict' AND detail ->> 'table' = 'images'"),
	't', 'with the losing row in full: nothing is silently dropped');
like($b->safe_psql('postgres', "SELECT string_agg(reason, E'\n' ORDER BY id) FROM ha_events WHERE kind = 'merge'"),
	qr/from alpha/, 'the new primary records each merge');
is($b->safe_psql('postgres',
	"SELECT bool_and(detail -> 'inserted_keys' IS NOT NULL) FROM ha_events WHERE kind = 'merge'"), 't',
	'each merge event lists the keys it inserted');

# identical data afterwards, and replication onward
sub fingerprint
{
	my ($node) = @_;
	return $node->safe_psql('postgres', q{
		SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
		  SELECT 's' || to_jsonb(t)::text FROM crawl_sessions t UNION ALL
		  SELECT 'f' || to_jsonb(t)::text FROM crawl_frontier t UNION ALL
		  SELECT 'h' || to_jsonb(t)::text FROM crawl_hosts t UNION ALL
		  SELECT 'i' || to_jsonb(t)::text FROM images t) v(x)});
}
my $same = 0;
for (1 .. 600)
{
	$same = 1, last if fingerprint($a) eq fingerprint($b);
	select undef, undef, undef, 0.1;
}
ok($same, 'alpha holds exactly what beta holds');
$b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://later.test/'])");
$a->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_sessions WHERE seeds[1] = 'http://later.test/'")
  or die 'alpha does not follow beta';
pass('writes on beta reach alpha');

# merging the same rows again changes nothing
my $again = $b->safe_psql('postgres', q{
	SELECT ha_merge_rows('images', (SELECT jsonb_agg(to_jsonb(i)) FROM images i), '[]', 'test', 0)});
like($again, qr/"inserted": 0.*"replaced": 0/s, 'ha_merge_rows is idempotent');
is($b->safe_psql('postgres', 'SELECT count(*) FROM images WHERE id % 1024 NOT IN (1, 2)'), '0',
	'ids keep their node residues');

$a->stop;
$b->stop;

# --- without the old slot: the tail is found by key comparison -----------------
{
	my ($c, $d) = ha_pair(names => [ 'gamma', 'delta' ]);
	$c->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://before.test/' || i]) FROM generate_series(1, 4) i");
	$d->poll_query_until('postgres', 'SELECT count(*) = 4 FROM crawl_sessions') or die;
	$d->stop;
	$c->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://noslot.test/' || i]) FROM generate_series(1, 3) i");
	$c->kill9;
	$d->start;
	ok(defined ha_wait_writable($d, 120), 'no slot: delta promoted');
	# chunks of 2 rows: each table's tail goes in several calls, each chunk
	# sent while the previous one is answered
	$c->append_conf('postgresql.conf', "crawler_ha.auto_failover = off\ncrawler_ha.merge_chunk_rows = 2\n");
	$c->start;
	$c->poll_query_until('postgres', "SELECT role = 'standby' AND needs_rejoin FROM ha_state") or die 'gamma did not step down';
	# the slot that recorded the tail is gone (an operator dropped it)
	$c->safe_psql('postgres', "SELECT pg_drop_replication_slot('crawler_ha_node_4')");
	like($c->safe_psql('postgres', 'SELECT ha_rejoin()'), qr/rejoined as standby of delta/, 'ha_rejoin() merges and rejoins');
	like($c->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'merge' ORDER BY id DESC LIMIT 1"),
		qr/found by key comparison: no slot/, 'the tail was found by key comparison');
	is($d->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE seeds[1] LIKE 'http://noslot.test/%'"), '3',
		'the new primary holds the tail');
	is($d->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE url LIKE 'http://noslot.test/%'"), '3',
		'and its frontier rows, merged after their sessions');
	is($d->safe_psql('postgres',
			"SELECT string_agg(n::text, ',' ORDER BY t) FROM (SELECT (detail ->> 'table')::regclass::text AS t, count(*) AS n "
			  . "FROM ha_events WHERE kind = 'merge' AND (detail ->> 'table')::regclass IN ('crawl_sessions'::regclass, "
			  . "'crawl_frontier'::regclass) GROUP BY 1) x"),
		'2,2', 'merge_chunk_rows = 2: three rows of a table went in two calls');
	is($c->safe_psql('postgres',
			"SELECT string_agg(t.value ->> 'inserted', '/' ORDER BY t.key::regclass::text DESC) FROM ha_events e, "
			  . "jsonb_each(e.detail -> 'tables') t WHERE e.id = (SELECT max(id) FROM ha_events WHERE kind = 'merge') "
			  . "AND t.key::regclass IN ('crawl_sessions'::regclass, 'crawl_frontier'::regclass)"),
		'3/3', 'the merge event here sums the calls of each table');
	$c->poll_query_until('postgres', 'SELECT count(*) = 7 FROM crawl_sessions') or die 'gamma did not copy';
	pass('gamma follows delta with the union');
	$c->stop;
	$d->stop;
}
done_testing();
