# kill -9 of the primary under a steady stream of write-API calls through a
# multi-host read-write conninfo: the standby promotes by itself, the client
# resumes writing on it, the old primary restarted refuses writes (it has
# seen the newer term) and comes back as the standby. In async mode the old
# primary may hold an unreplicated tail: then it merges the tail into the new
# primary before it rejoins (t/102 and t/112 make both cases deterministic); no
# acknowledged write is lost from the union, and ids never collide.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_pair ha_multihost ha_writer_start ha_writer_stop ha_acked ha_seeds ha_wait_writable);

my ($a, $b) = ha_pair();
my $w = ha_writer_start(ha_multihost($a, $b), 'kill9');

# a steady stream first
sleep 0.2 until keys %{ ha_acked($w) } >= 30;
my $before = keys %{ ha_acked($w) };
ok($before >= 30, "writes flow to the primary ($before acknowledged)");

my $t0 = time;
$a->kill9;
my $waited = ha_wait_writable($b, 120);
ok(defined $waited, 'the standby promoted itself after the primary was killed');
note(sprintf('kill -9 to writable standby: %.2f s (interval 1 s x threshold 3)', time - $t0));

is($b->safe_psql('postgres', "SELECT role || ' ' || term FROM ha_state"), 'primary 2',
	'beta is the primary of term 2');
is($b->safe_psql('postgres', "SELECT count(*) FROM pg_subscription"), '0',
	'its old subscription is gone (never re-enabled)');
is($b->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'crawler_ha_node_1'"), '1',
	'the reverse slot for alpha exists');
like($b->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY id) FROM ha_events"),
	qr/detection.*promotion.*failover/, 'detection, promotion and failover are recorded');

# the client resumes on the new primary
my $acked_at_promotion = keys %{ ha_acked($w) };
my $resumed = 0;
for (1 .. 600)
{
	my $now = ha_acked($w);
	$resumed = grep { $_ % 1024 == 2 } values %$now;
	last if $resumed >= 20;
	sleep 0.1;
}
ok($resumed >= 20, "the multi-host client writes on the new primary ($resumed acknowledged there)");
ha_writer_stop($w);

# the old primary comes back: no write accepted in the old term
$a->start;
my ($rc, $out, $err) = $a->psql('postgres', "SELECT crawl_start(ARRAY['http://late.test/'])");
isnt($rc, 0, 'the restarted old primary refuses writes');
# Refused by the fence, or, when the demotion to term 2 comes while the write
# waits for ha_state (the demotion holds it in EXCLUSIVE mode), ended with the
# other client sessions by that demotion: either way nothing was written.
like($err, qr/does not accept writes|terminating connection due to administrator command/,
	'with the fence message, or ended by the demotion');
$a->poll_query_until('postgres', "SELECT role = 'standby' AND term = 2 FROM ha_state")
  or die 'alpha did not step down';
pass('alpha learned term 2 and stepped down');
is($a->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE seeds @> ARRAY['http://late.test/']"), '0',
	'the late write left nothing on alpha');
is($a->safe_psql('postgres', 'SHOW default_transaction_read_only'), 'on', 'alpha is read-only again');

# it rejoins; a tail it holds (writes beta never received) is merged first
$a->poll_query_until('postgres', "SELECT NOT needs_rejoin FROM ha_state")
  or die 'alpha did not rejoin: '
  . $a->safe_psql('postgres', "SELECT string_agg(kind || ': ' || reason, E'\n' ORDER BY id) FROM ha_events");
my $merged = $a->safe_psql('postgres', "SELECT count(*) FROM ha_events WHERE kind = 'merge'");
pass('alpha rejoined as standby of beta' . ($merged ? ' after merging its tail' : ' (nothing unreplicated)'));
$b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://after.test/'])");
$a->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_sessions WHERE seeds[1] = 'http://after.test/'")
  or die 'replication beta -> alpha does not work';
pass('a write on beta reaches alpha');
my $acked = ha_acked($w);
my $on_b = ha_seeds($b);
$a->poll_query_until('postgres', 'SELECT count(*) = ' . scalar(keys %$on_b) . ' FROM crawl_sessions');
my $on_a = ha_seeds($a);
is_deeply($on_a, $on_b, 'both nodes hold identical sessions');
my @lost = grep { !exists $on_b->{$_} || $on_b->{$_} ne $acked->{$_} } keys %$acked;
is(scalar(@lost), 0, 'every acknowledged write is on the new primary, with its id');
is($a->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots"), '0', 'alpha dropped its old slot');

# ids never collide: each node's ids are congruent to its node id
my %seen;
my $collisions = 0;
for my $h ($on_a, $on_b)
{
	for my $u (keys %$h) { $collisions++ if exists $seen{ $h->{$u} } && $seen{ $h->{$u} } ne $u; $seen{ $h->{$u} } = $u; }
}
is($collisions, 0, 'no id is used for two different sessions');
ok((grep { $_ % 1024 == 1 } values %$on_b) && (grep { $_ % 1024 == 2 } values %$on_b),
	'beta holds ids from both nodes: nothing to fix up at promotion');

done_testing();
