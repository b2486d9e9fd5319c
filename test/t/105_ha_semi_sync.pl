# replication_mode = semi_sync: synchronous while the standby is there; with
# the standby stopped, writes continue after sync_timeout (asynchronously);
# with the standby back and caught up, synchronous again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair);

my ($a, $b) = ha_pair(conf => "crawler_ha.replication_mode = 'semi_sync'\ncrawler_ha.sync_timeout = '2s'\n"
	  . "crawler_ha.replication_lag_threshold = '3s'\n");
$a->poll_query_until('postgres',
	"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'crawler_ha_sub'")
  or die 'not synchronous';
pass('with its standby present, the primary replicates synchronously');
ok($a->poll_query_until('postgres', "SELECT sync_state = 'sync' FROM ha_status() WHERE is_local"), 'ha_status says sync');

$b->stop;
# this write waits for the missing standby until the primary degrades
my ($rc, $out, $err) = $a->psql('postgres', "SELECT crawl_start(ARRAY['http://during.test/'])", timeout => 120);
is($rc, 0, 'a write with the standby stopped completes (after sync_timeout)');
unlike($err // '', qr/WARNING/, 'without a cancelled sync wait');
like($a->safe_psql('postgres', "SELECT string_agg(kind, ',') FROM ha_events"), qr/sync_degraded/,
	'the degradation is recorded');
is($a->safe_psql('postgres', "SELECT current_setting('synchronous_standby_names')"), '', 'the primary writes asynchronously');
is($a->safe_psql('postgres', "SELECT sync_state FROM ha_status() WHERE is_local"), 'degraded', 'ha_status says degraded');
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://during.test/' || i]) FROM generate_series(1, 20) i");
pass('further writes do not wait');

$a->poll_query_until('postgres', "SELECT EXISTS (SELECT 1 FROM ha_events WHERE kind = 'alert' AND reason LIKE 'replication lag%')")
  or die 'no lag alert';
pass('a standby away longer than replication_lag_threshold raises an alert event');
ok($a->safe_psql('postgres', "SELECT lag_bytes > 0 AND lag_seconds > 0 FROM ha_status() WHERE is_local") eq 't',
	'ha_status shows the lag in bytes and seconds');

$b->start;
$a->poll_query_until('postgres', "SELECT EXISTS (SELECT 1 FROM ha_events WHERE kind = 'sync_restored')")
  or die 'never restored';
pass('with the standby back and caught up, the primary is synchronous again');
$a->poll_query_until('postgres',
	"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'crawler_ha_sub'")
  or die 'not synchronous again';
is($b->safe_psql('postgres', 'SELECT count(*) FROM crawl_sessions'), '21', 'the standby has every row');

done_testing();
