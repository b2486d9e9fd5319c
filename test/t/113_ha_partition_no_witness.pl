# Without a witness, a network partition between the two data nodes leaves
# two writers for a while (the documented trade-off: a primary that loses its
# standby keeps writing, and the standby promotes). When the partition heals
# the higher term wins: the old primary steps down, merges what it wrote
# during the partition into the new primary, and follows it. The result is one
# primary holding the union of both sides' rows, a conflicting image recorded,
# and both nodes identical.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair ha_partition ha_heal ha_wait_writable);

my ($a, $b) = ha_pair(names => [ 'alpha', 'beta' ]);
my $sid = $a->safe_psql('postgres', q{SELECT crawl_start(ARRAY['http://p.test/'], '{"delay_ms": 0, "per_host": 100}')});
$a->safe_psql('postgres', "SELECT crawl_enqueue($sid, ARRAY['http://p.test/both.png', 'http://p.test/a.png', 'http://p.test/b.png'], 1, 'image')");
$b->poll_query_until('postgres', 'SELECT count(*) = 4 FROM crawl_frontier') or die 'no copy';

sub record_image
{
	my ($node, $name, $sha, $worker) = @_;
	$node->safe_psql('postgres', qq{
		SELECT image_record($sid, 'http://p.test/$name', repeat('$sha', 64), '$sha$sha/$sha$sha/' || repeat('$sha', 64) || '.png', 10, 1, 1, 'png', 'image/png',
		                    NULL, 200, NULL, f.id, '$worker')
		  FROM crawl_frontier f WHERE f.url = 'http://p.test/$name'});
}

ha_partition([$a], [$b]);
ok(defined ha_wait_writable($b, 120), 'cut off from its primary, beta promotes (no witness to ask)');
is($a->safe_psql('postgres', 'SELECT writable FROM ha_health()'), 't',
	'alpha, which only lost its standby, keeps accepting writes: two writers');

# both sides write: new sessions each, and the same image URL with other bytes
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://a-side.test/' || i]) FROM generate_series(1, 5) i");
$b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://b-side.test/' || i]) FROM generate_series(1, 4) i");
$a->safe_psql('postgres', "SELECT count(*) FROM crawl_claim('wa', 50)");
$b->safe_psql('postgres', "SELECT count(*) FROM crawl_claim('wb', 50)");
record_image($a, 'both.png', 'a', 'wa');
record_image($a, 'a.png', 'a', 'wa');
record_image($b, 'both.png', 'b', 'wb');
record_image($b, 'b.png', 'b', 'wb');
my $term_b = $b->safe_psql('postgres', 'SELECT term FROM ha_state');
is($a->safe_psql('postgres', 'SELECT term < ' . $term_b . ' FROM ha_state'), 't', 'beta writes in a newer term');

ha_heal();
$a->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state")
  or die 'alpha did not rejoin: '
  . $a->safe_psql('postgres', "SELECT string_agg(kind || ': ' || reason, E'\\n' ORDER BY id) FROM ha_events");
pass('healed: the older term steps down and rejoins');
is($b->safe_psql('postgres', 'SELECT role FROM ha_state'), 'primary', 'the newer term stays primary: one writer');
like($a->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY id) FROM ha_events WHERE kind IN ('demotion', 'merge', 'rejoin')"),
	qr/demotion,merge,rejoin$/, 'alpha merged what it wrote during the partition before it followed beta');

is($b->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE seeds[1] LIKE 'http://a-side.test/%'"), '5',
	"alpha's sessions are on the primary");
is($b->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE seeds[1] LIKE 'http://b-side.test/%'"), '4',
	"beta's sessions too: the union");
is($b->safe_psql('postgres', "SELECT string_agg(url, ',' ORDER BY url) FROM images"),
	'http://p.test/a.png,http://p.test/b.png,http://p.test/both.png', 'every image URL of both sides');
is($b->safe_psql('postgres', "SELECT sha256 = repeat('b', 64) FROM images WHERE url = 'http://p.test/both.png'"), 't',
	'the URL both recorded keeps the newer term\'s bytes');
is($b->safe_psql('postgres',
	"SELECT count(*) FROM ha_events WHERE kind = 'conflict' AND detail ->> 'key' = 'http://p.test/both.png' "
	  . "AND detail -> 'other' ->> 'sha256' = repeat('a', 64)"), '1', 'and the other side\'s row is recorded as a conflict');
is($b->safe_psql('postgres', "SELECT images_stored FROM crawl_session_totals WHERE session_id = $sid"), '3',
	'the session counts the union of its images');

my $want = $b->safe_psql('postgres', 'SELECT count(*) FROM crawl_sessions');
$a->poll_query_until('postgres', "SELECT count(*) = $want FROM crawl_sessions") or die 'alpha did not copy';
for my $t (qw(crawl_sessions crawl_frontier crawl_hosts images))
{
	my $q = "SELECT md5(string_agg(to_jsonb(t)::text, '|' ORDER BY to_jsonb(t)::text)) FROM $t t";
	$a->poll_query_until('postgres', "SELECT ($q) = '" . $b->safe_psql('postgres', $q) . "'")
	  or die "$t differs";
	pass("$t is identical on both nodes");
}
$b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://after.test/'])");
$a->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_sessions WHERE seeds[1] = 'http://after.test/'")
  or die 'no replication after the heal';
pass('replication flows from the one primary');

$a->stop;
$b->stop;
done_testing();
