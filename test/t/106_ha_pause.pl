# ha_pause(): while paused, a killed primary is detected but not failed
# over; ha_resume() lets the standby promote.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair ha_wait_writable);

my ($a, $b) = ha_pair();
is($b->safe_psql('postgres', 'SELECT ha_pause()'), 'paused', 'ha_pause() on the standby');
is($b->safe_psql('postgres', 'SELECT paused FROM ha_health()'), 't', 'ha_health shows it');

$a->kill9;
$b->poll_query_until('postgres', "SELECT EXISTS (SELECT 1 FROM ha_events WHERE kind = 'detection')")
  or die 'the dead primary was not detected';
pass('the dead primary is detected');
# several more checks (1 s apart) pass while paused
$b->poll_query_until('postgres',
	"SELECT consecutive_failures >= 6 FROM ha_status() WHERE NOT is_local") or die;
is($b->safe_psql('postgres', 'SELECT role, term FROM ha_state'), 'standby|1', 'paused: no failover');
is($b->safe_psql('postgres', "SELECT count(*) FROM ha_events WHERE kind = 'promotion'"), '0', 'no promotion recorded');

is($b->safe_psql('postgres', 'SELECT ha_resume()'), 'resumed', 'ha_resume()');
ok(defined ha_wait_writable($b, 120), 'resumed: the standby promotes');
is($b->safe_psql('postgres', 'SELECT role, term FROM ha_state'), 'primary|2', 'primary of term 2');
like($b->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY id) FROM ha_events"),
	qr/pause.*detection.*resume.*promotion/, 'pause, detection, resume, promotion in order');

done_testing();
