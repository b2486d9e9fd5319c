# replication_mode = sync: five kill -9 cycles of whichever node is the
# primary, under a steady stream of writes through a multi-host read-write
# conninfo. Every write whose commit returned success is present afterwards
# on both nodes. (A write counts as acknowledged only when psql returned its
# id with no warning: a cancelled sync wait commits locally with a warning.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use CrawlerHA::Test qw(ha_pair ha_multihost ha_writer_start ha_writer_stop ha_acked ha_seeds ha_wait_writable);

my ($a, $b) = ha_pair(conf => "crawler_ha.replication_mode = 'sync'\n");
$a->poll_query_until('postgres', "SELECT current_setting('synchronous_standby_names') = 'crawler_ha_sub'")
  or die 'sync mode not applied';
$a->poll_query_until('postgres', "SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'crawler_ha_sub'")
  or die 'standby is not synchronous';
pass('the subscription is the synchronous standby');

my $w = ha_writer_start(ha_multihost($a, $b), 'sync');
my ($p, $s) = ($a, $b);
for my $cycle (1 .. 5)
{
	my $n = keys %{ ha_acked($w) };
	for (1 .. 1200) { last if keys %{ ha_acked($w) } >= $n + 15; sleep 0.1; }
	ok(keys %{ ha_acked($w) } >= $n + 15, "cycle $cycle: writes flow");
	$p->kill9;
	ok(defined ha_wait_writable($s, 120), "cycle $cycle: " . $s->name . ' promoted');
	$p->start;
	ok($p->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state"),
		"cycle $cycle: " . $p->name . ' rejoined as standby');
	($p, $s) = ($s, $p);
}
my $n = keys %{ ha_acked($w) };
for (1 .. 1200) { last if keys %{ ha_acked($w) } >= $n + 10; sleep 0.1; }
ha_writer_stop($w);

is($p->safe_psql('postgres', 'SELECT term FROM ha_state'), '6', 'five failovers, five new terms');
my $total = $p->safe_psql('postgres', 'SELECT count(*) FROM crawl_sessions');
$s->poll_query_until('postgres', "SELECT count(*) = $total FROM crawl_sessions") or die 'standby behind';
my $acked = ha_acked($w);
my $on_p = ha_seeds($p);
my @lost = grep { !exists $on_p->{$_} } keys %$acked;
is(scalar(@lost), 0, 'every acknowledged write survived five kill -9 failovers (' . scalar(keys %$acked) . ' acknowledged)');
diag('lost: ' . join(' ', sort @lost)) if @lost;
is_deeply(ha_seeds($s), $on_p, 'both nodes hold identical data');
is($p->safe_psql('postgres', 'SELECT count(*) - count(DISTINCT id) FROM crawl_sessions'), '0', 'no id collision');

done_testing();
