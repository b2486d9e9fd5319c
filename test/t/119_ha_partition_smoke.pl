# The partition helpers of CrawlerHA::Test (used by the partition tests
# 110, 111, 113): ha_partition() makes the nodes refuse each other's roles
# and ends the sessions those roles held; ha_heal() lets them in again. Here
# without automatic failover, so only the cut and the heal are seen.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair ha_partition ha_heal ha_conninfo);

my ($a, $b) = ha_pair(conf => "crawler_ha.auto_failover = off\n");
like($a->safe_psql('postgres', 'SHOW crawler_ha.peer_conninfo'), qr/user=ha_alpha/,
	'each node connects to the other with its own role');

ha_partition([$a], [$b]);
my ($rc, $out, $err) = $b->psql('postgres', 'SELECT 1', extra_params => [ '-U', 'ha_alpha' ]);
like($err, qr/pg_hba\.conf rejects/, "beta refuses alpha's role");
($rc, $out, $err) = $a->psql('postgres', 'SELECT 1', extra_params => [ '-U', 'ha_beta' ]);
like($err, qr/pg_hba\.conf rejects/, "alpha refuses beta's role");
is($a->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE usename = 'ha_beta'"), '0',
	"beta's sessions on alpha (health check, walsender) are ended");
is($b->safe_psql('postgres', 'SELECT 1'), '1', 'the test itself still reaches both');

$b->poll_query_until('postgres', "SELECT EXISTS (SELECT 1 FROM ha_events WHERE kind = 'detection')")
  or die 'beta did not notice the cut';
pass('beta sees alpha fail');
$a->poll_query_until('postgres', 'SELECT consecutive_failures >= 1 FROM ha_status() WHERE NOT is_local')
  or die 'alpha did not notice the cut';
pass('alpha sees beta fail');
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://cut.test/'])");
is($b->safe_psql('postgres', 'SELECT role FROM ha_state'), 'standby', 'no promotion (auto_failover off)');

ha_heal();
($rc, $out, $err) = $b->psql('postgres', 'SELECT 1', extra_params => [ '-U', 'ha_alpha' ]);
is($rc, 0, "healed: beta lets alpha's role in");
$b->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_sessions WHERE seeds[1] = 'http://cut.test/'")
  or die 'replication did not resume';
pass('the write made during the cut reaches beta after the heal');

done_testing();
