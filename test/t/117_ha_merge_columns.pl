# Rejoin with merge when the two nodes' tables differ in their columns
# (docs/ha.md, "Rejoin with merge"): the old primary sends its tail as
# arrays of records, which are read by position, so it builds each record
# by the names and in the order of the new primary's columns. Here the new
# primary's images table has its columns in another order (etag dropped and
# added again: last), a nullable column the old primary lacks, and, at
# first, a NOT NULL one it lacks too; the old primary has a column the new
# one lacks. The NOT NULL column refuses the rejoin with the reason; once it
# allows NULL the rejoin merges by itself, every value in its column.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair ha_wait_writable);

my ($a, $b) = ha_pair(names => [ 'alpha', 'beta' ]);
my $sid = $a->safe_psql('postgres', q{SELECT crawl_start(ARRAY['http://c.test/'], '{"delay_ms": 0, "per_host": 100}')});
$a->safe_psql('postgres',
	"SELECT crawl_enqueue($sid, ARRAY(SELECT 'http://c.test/i' || i || '.png' FROM generate_series(1, 4) i), 1, 'image')");
$b->poll_query_until('postgres', 'SELECT count(*) = 5 FROM crawl_frontier') or die 'no copy';

# --- the tail on alpha, which has a column of its own ----------------------------
$b->stop;
$a->safe_psql('postgres', 'ALTER TABLE images ADD COLUMN only_here text');
$a->safe_psql('postgres', qq{
	SELECT count(image_record($sid, c.url, h.sha, left(h.sha, 2) || '/' || substr(h.sha, 3, 2) || '/' || h.sha || '.png',
	                          100, 10, 20, 'png', 'image/png', 'http://c.test/', 200, NULL, c.item_id, 'wa',
	                          etag => '"e-' || right(c.url, 6) || '"', last_modified => 'Mon, 07 Dec 2026 10:00:00 GMT'))
	  FROM crawl_claim('wa', 10) c, LATERAL (SELECT encode(sha256(convert_to(c.url, 'UTF8')), 'hex') AS sha) h
	 WHERE c.kind = 'image'});
$a->safe_psql('postgres', "UPDATE images SET only_here = 'not sent'");
my $want = $a->safe_psql('postgres',
	'SELECT string_agg(concat_ws(\'|\', id, url, sha256, file_path, width, height, etag, last_modified), E\'\n\' ORDER BY id) FROM images');
is($a->safe_psql('postgres', 'SELECT count(*) FROM images'), '4', 'alpha recorded 4 images its standby never got');
my $order = q{SELECT array_position(ARRAY(SELECT e ->> 'name' FROM jsonb_array_elements(ha_merge_columns() -> 'images') e), 'etag')};
my $etag_at = $a->safe_psql('postgres', $order);
$a->kill9;

# --- beta, promoted, has other columns ----------------------------------------------
$b->start;
ok(defined ha_wait_writable($b, 120), 'beta promoted without alpha');
$b->safe_psql('postgres', q{
	ALTER TABLE images DROP COLUMN etag;
	ALTER TABLE images ADD COLUMN etag text;
	ALTER TABLE images ADD COLUMN note text;
	ALTER TABLE images ADD COLUMN must text NOT NULL DEFAULT 'x'});
isnt($b->safe_psql('postgres', $order), $etag_at, 'etag is not where it is on alpha');
# a blob store on beta, so that its blob trigger queues the files of merged rows
$b->safe_psql('postgres', "SELECT blob_store_attach('beta-store')");

# --- alpha comes back: refused while beta needs a column alpha lacks -----------------
$a->start;
$a->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM ha_events WHERE kind = 'rejoin_refused' AND reason LIKE '%NOT NULL columns%must (text)%'")
  or die 'no refusal naming the column: '
  . $a->safe_psql('postgres', "SELECT string_agg(kind || ': ' || reason, E'\n' ORDER BY id) FROM ha_events");
pass('the rejoin is refused, naming the NOT NULL column alpha lacks');
is($b->safe_psql('postgres', "SELECT count(*) FROM images WHERE url LIKE 'http://c.test/i%'"), '0', 'nothing was merged');
is($a->safe_psql('postgres', 'SELECT count(*) FROM images'), '4', 'alpha keeps its tail');

$b->safe_psql('postgres', 'ALTER TABLE images ALTER COLUMN must DROP NOT NULL');
$a->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state")
  or die 'alpha did not rejoin: '
  . $a->safe_psql('postgres', "SELECT string_agg(kind || ': ' || reason, E'\n' ORDER BY id) FROM ha_events");
pass('once the column allows NULL, alpha merges and rejoins by itself');

is($b->safe_psql('postgres',
		'SELECT string_agg(concat_ws(\'|\', id, url, sha256, file_path, width, height, etag, last_modified), E\'\n\' ORDER BY id) FROM images'),
	$want, 'every image of the tail is on beta, each value in its column');
is($b->safe_psql('postgres', 'SELECT count(*) FILTER (WHERE note IS NULL AND must IS NULL) FROM images'), '4',
	'the columns alpha lacks are NULL, as from JSON');
like($b->safe_psql('postgres', "SELECT string_agg(reason, E'\n') FROM ha_events WHERE kind = 'merge' AND detail ->> 'table' = 'public.images'"),
	qr/4 rows of public\.images from alpha .*: 4 inserted/, 'the merge event counts them');
is($b->safe_psql('postgres',
		"SELECT images_stored || '/' || done FROM crawl_session_totals WHERE session_id = $sid"),
	'4/4', 'the counters follow the merged rows');
is($b->safe_psql('postgres', 'SELECT count(*) FROM ha_blob_wanted'), '4',
	'the blob trigger queued the merged images\' files');

# beta's columns alpha lacks stop the copy afresh; without them alpha follows
$b->safe_psql('postgres', 'ALTER TABLE images DROP COLUMN note; ALTER TABLE images DROP COLUMN must');
$a->poll_query_until('postgres', 'SELECT count(*) = 4 AND count(only_here) = 0 FROM images')
  or die 'alpha does not copy beta';
pass('alpha copies beta afresh: its column of its own is empty');

$a->stop;
$b->stop;
done_testing();
