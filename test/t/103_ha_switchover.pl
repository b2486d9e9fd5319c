# ha_failover() there and back under continuous writes through a multi-host
# read-write conninfo: zero acknowledged writes lost, zero duplicates, the
# replication reversed each time; refused for an unhealthy target unless
# forced; callable on either node.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use CrawlerHA::Test qw(ha_pair ha_multihost ha_writer_start ha_writer_stop ha_acked ha_seeds ha_wait_writable);

my ($a, $b) = ha_pair();
my ($rc, $out, $err);
my $w = ha_writer_start(ha_multihost($a, $b), 'switch');
sleep 0.2 until keys %{ ha_acked($w) } >= 20;

# there: called on the primary
my $res = $a->safe_psql('postgres', 'SELECT ha_failover()');
like($res, qr/beta is the primary of term 2/, 'switchover on the primary: beta is the new primary');
is($a->safe_psql('postgres', "SELECT role || ' ' || term FROM ha_state"), 'standby 2', 'alpha follows in term 2');
is($a->safe_psql('postgres', "SELECT count(*) FROM pg_subscription WHERE subenabled"), '1', 'alpha subscribes to beta');
is($b->safe_psql('postgres', "SELECT count(*) FROM pg_subscription"), '0', 'beta no longer subscribes');

my $n = keys %{ ha_acked($w) };
sleep 0.2 until grep { $_ % 1024 == 2 } values %{ ha_acked($w) };
pass('the client writes on beta');

# and back: called on the standby (alpha), which asks the primary
sleep 0.2 until keys %{ ha_acked($w) } >= $n + 20;
$res = $a->safe_psql('postgres', 'SELECT ha_failover()');
like($res, qr/alpha is the primary of term 3/, 'switchover asked on the standby: alpha is the primary again');
is($b->safe_psql('postgres', "SELECT role || ' ' || term FROM ha_state"), 'standby 3', 'beta follows in term 3');
$n = keys %{ ha_acked($w) };
sleep 0.2 until keys %{ ha_acked($w) } >= $n + 20;
ha_writer_stop($w);

# every acknowledged write is on both nodes, once
my $acked = ha_acked($w);
$b->poll_query_until('postgres', "SELECT count(*) = " . $a->safe_psql('postgres', 'SELECT count(*) FROM crawl_sessions') .
	" FROM crawl_sessions") or die 'beta did not catch up';
my $on_a = ha_seeds($a);
my $on_b = ha_seeds($b);
my @lost = grep { !exists $on_a->{$_} } keys %$acked;
is(scalar(@lost), 0, 'zero acknowledged writes lost (' . scalar(keys %$acked) . ' acknowledged)');
is($a->safe_psql('postgres', 'SELECT count(*) - count(DISTINCT seeds[1]) FROM crawl_sessions'), '0', 'zero duplicates');
is_deeply($on_a, $on_b, 'both nodes identical');
like($a->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY id) FROM ha_events"),
	qr/fence.*switchover.*promotion/, 'alpha recorded fence, switchover, then its promotion');

# The node's identity is its ha_node row: renamed by ha_set_node_id(), the
# standby is known by its new name to itself (ha_status, ha_health, the
# target ha_failover accepts) and to its peer, and a switchover to it works.
my $b_id = $b->safe_psql('postgres', 'SELECT node_id FROM ha_node');
# (a standby is read-only for clients: the operator's session says otherwise)
$b->safe_psql('postgres', "SET default_transaction_read_only = off; SELECT ha_set_node_id($b_id, 'gamma')");
is($b->safe_psql('postgres', "SELECT node_name || ' ' || node_id FROM ha_status() WHERE is_local"), "gamma $b_id",
	'renamed: ha_status() shows the new name and the same number');
is($b->safe_psql('postgres', 'SELECT node_name FROM ha_health()'), 'gamma', 'so does ha_health()');
$a->poll_query_until('postgres', "SELECT count(*) = 1 FROM ha_status() WHERE NOT is_local AND node_name = 'gamma'")
	or die 'alpha never saw the new name';
$res = $b->safe_psql('postgres', "SELECT ha_failover('gamma')");
like($res, qr/gamma is the primary of term 4/, 'a switchover to the renamed node, asked on it by its new name');
$res = $a->safe_psql('postgres', "SELECT ha_failover('alpha')");
like($res, qr/alpha is the primary of term 5/, 'and back, asked on the standby by its own name');
($rc, $out, $err) = $b->psql('postgres', "SELECT ha_failover('beta')");
like($err, qr/node "gamma" can only promote itself/, 'the old name is no longer this node\'s');

# refusals
($rc, $out, $err) = $a->psql('postgres', "SELECT ha_failover('nosuchnode')");
like($err, qr/no standby named/, 'an unknown target is refused');
$b->stop;
$a->poll_query_until('postgres', "SELECT NOT healthy FROM ha_status() WHERE NOT is_local") or die;
($rc, $out, $err) = $a->psql('postgres', 'SELECT ha_failover()');
like($err, qr/is not healthy/, 'an unhealthy target is refused');
like($err, qr/force/, 'the refusal mentions force');
is($a->safe_psql('postgres', "SELECT role FROM ha_state"), 'primary', 'and nothing changed');

done_testing();
