# bench/failover/failover.pl: kill -9 failovers of a crawler_ha pair under a
# steady stream of write-API calls through a multi-host read-write conninfo.
# For each configuration: time from the kill to the standby's promotion
# (ha_health() writable) and to the first write acknowledged by the new
# primary, and the acknowledged writes the new primary does not have.
# Run through bench/failover/run, not by prove: it asserts nothing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time sleep);
use List::Util qw(sum max min);
use CrawlerHA::Test qw(new_node ha_set_peer ha_multihost ha_writer_start ha_writer_stop ha_acks ha_seeds median);

my $cycles = $ENV{FAILOVER_CYCLES} // 10;
my @configs = map { [ split /:/ ] } split /,/, ($ENV{FAILOVER_CONFIGS} // 'async:1:3,semi_sync:1:3,sync:1:3,async:5:3');


my @rows;
my $k = 0;
for my $c (@configs)
{
	my ($mode, $interval, $threshold) = @$c;
	$k++;
	my $conf = "crawler_ha.health_check_interval = '${interval}s'\ncrawler_ha.failure_threshold = $threshold\n"
	  . "crawler_ha.replication_mode = '$mode'\ncrawler_ha.sync_timeout = '2s'\n";
	my $a = new_node("fo${k}a", extra_conf => $conf, node_id => 2 * $k - 1);
	my $b = new_node("fo${k}b", extra_conf => $conf, node_id => 2 * $k);
	ha_set_peer($a, $b);
	ha_set_peer($b, $a);
	$a->safe_psql('postgres', "SELECT ha_setup('primary')");
	$b->safe_psql('postgres', "SELECT ha_setup('standby')");
	$b->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate <> 'r'") or die;
	$b->poll_query_until('postgres', "SELECT current_setting('default_transaction_read_only') = 'on'") or die;

	my @done_acks;    # acknowledgements of writers already stopped
	my %lost_seen;
	my $w = ha_writer_start(ha_multihost($a, $b), "fo$k");
	my @nodes = ($a, $b);
	my ($p, $s) = ($a, $b);
	my (@promote, @first, @lost, @refused);
	my $gen = 0;
	for my $i (1 .. $cycles)
	{
		my $n = @{ ha_acks($w) };
		for (1 .. 3000) { last if @{ ha_acks($w) } >= $n + 20; sleep 0.05; }
		my $sid = $s->safe_psql('postgres', 'SELECT node_id FROM ha_node');
		my $t0 = time;
		$p->kill9;
		my $tp;
		while (time - $t0 < 300)
		{
			if ($s->safe_psql('postgres', 'SELECT writable FROM ha_health()') eq 't') { $tp = time - $t0; last; }
			sleep 0.02;
		}
		die "no promotion" unless defined $tp;
		push @promote, $tp;
		# strict sync: the new primary's first write waits for a standby, so the
		# old primary is restarted at once (a crash-restart)
		my $restarted = 0;
		if ($mode eq 'sync') { $p->start; $restarted = 1; }
		my $tf;
		while (time - $t0 < 300)
		{
			my @new = grep { $_->[2] > $t0 && $_->[1] % 1024 == $sid } @{ ha_acks($w) };
			if (@new) { $tf = $new[0][2] - $t0; last; }
			sleep 0.02;
		}
		die "no write on the new primary" unless defined $tf;
		push @first, $tf;
		# acknowledged before the new primary took over (a write can be
		# acknowledged by the dying primary a moment after the kill signal),
		# missing on the new primary, and not already counted
		my $have = ha_seeds($s);
		my @gone = grep { $_->[2] < $t0 + $tp && !exists $have->{ $_->[0] } && !$lost_seen{ $_->[0] }++ }
		  (@done_acks, @{ ha_acks($w) });
		printf STDERR "  lost: %s\n", join(' ', map { sprintf("%s (id %s, acknowledged %+.3f s from the kill)", $_->[0], $_->[1], $_->[2] - $t0) } @gone)
		  if @gone;
		push @lost, scalar @gone;
		$p->start unless $restarted;
		$p->poll_query_until('postgres',
			"SELECT (role = 'standby' AND NOT needs_rejoin) OR EXISTS (SELECT 1 FROM ha_events WHERE kind = 'rejoin_refused') FROM ha_state");
		my $ref = $p->safe_psql('postgres', 'SELECT needs_rejoin FROM ha_state') eq 't';
		push @refused, $ref ? 1 : 0;
		printf STDERR "%s %ss x %s cycle %d: writable %.2f s, first write %.2f s, lost %d%s\n",
		  $mode, $interval, $threshold, $i, $tp, $tf, $lost[-1], $ref ? ', rejoin refused' : '';
		if ($ref)
		{
			# part 2 merges such a tail; here the refused node is replaced by a
			# new empty one with the same node id, so the cycles can go on
			$p->stop('immediate');
			$gen++;
			my $np = new_node($p->name . "r$gen", extra_conf => $conf,
				node_id => ($sid % 2 == 1 ? $sid + 1 : $sid - 1));
			ha_set_peer($s, $np);
			ha_set_peer($np, $s);
			$np->safe_psql('postgres', "SELECT ha_setup('standby')");
			$np->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate <> 'r'") or die;
			$np->poll_query_until('postgres', "SELECT current_setting('default_transaction_read_only') = 'on'") or die;
			ha_writer_stop($w);
			push @done_acks, @{ ha_acks($w) };
			$w = ha_writer_start(ha_multihost($s, $np), "fo$k-$gen");
			push @nodes, $np;
			$p = $np;
		}
		($p, $s) = ($s, $p);
	}
	ha_writer_stop($w);
	push @rows, sprintf('| %s | %s s x %s | %d | %.2f / %.2f | %.2f / %.2f | %d | %d |',
		$mode, $interval, $threshold, scalar @promote, median(@promote), max(@promote),
		median(@first), max(@first), sum(@lost), sum(@refused));
	$_->stop('immediate') for @nodes;
}

print "| mode | interval x threshold | failovers | kill -9 to writable standby: median / max | kill -9 to first acknowledged write on the new primary: median / max | acknowledged writes lost | rejoins refused |\n";
print "|---|---|---|---|---|---|---|\n";
print "$_\n" for @rows;
