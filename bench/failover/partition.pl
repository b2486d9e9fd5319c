# bench/failover/partition.pl: network partitions with a witness.
# A trio (two data nodes, one witness); one writer per data node calls
# crawl_start() directly on it (not through multi-host), one psql per call,
# recording when each acknowledged call began and ended. Each cycle cuts the
# current primary off from both others (pg_hba.conf reject lines and ended
# sessions: CrawlerHA::Test::ha_partition), measures
#   - cut to self-fence of the old primary (ha_state.fenced),
#   - cut to a single writable node: the new primary's ha_health() writable
#     (the old one is fenced by then),
#   - the gap between the old primary's last acknowledged write (end) and
#     the new primary's first (start): must be positive (never two writers),
# then heals the cut, waits for the old primary to rejoin (or its rejoin to be
# refused) and counts acknowledged writes missing on the new primary (must be
# 0 in sync mode) and rows merged back on rejoin ('merge' events' inserted).
# Run through bench/failover/run with FAILOVER_SCENARIO=partition.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time sleep);
use List::Util qw(sum max min);
use CrawlerHA::Test qw(ha_trio ha_conninfo ha_partition ha_heal ha_writer_start ha_writer_stop ha_acks ha_seeds median);

my $cycles = $ENV{PARTITION_CYCLES} // 5;
my @configs = map { [ split /:/ ] } split /,/, ($ENV{PARTITION_CONFIGS} // 'sync:1:3:2,semi_sync:1:3:2,async:1:3:2');


my @rows;
my $k = 0;
for my $c (@configs)
{
	my ($mode, $interval, $threshold, $fence) = @$c;
	$k++;
	my $conf = "crawler_ha.health_check_interval = '${interval}s'\ncrawler_ha.failure_threshold = $threshold\n"
	  . "crawler_ha.fence_timeout = '${fence}s'\ncrawler_ha.response_timeout = '2s'\n"
	  . "crawler_ha.replication_mode = '$mode'\ncrawler_ha.sync_timeout = '10s'\n";
	my ($a, $b, $w) = ha_trio(names => [ "pt${k}a", "pt${k}b", "pt${k}w" ], conf => $conf);
	$w->poll_query_until('postgres', 'SELECT count(*) = 2 FROM ha_witness_nodes WHERE reports > 0') or die;

	my ($p, $s) = ($a, $b);
	my (@fenced, @writable, @gap, @lost, @merged, @refusals, @rejoin);
	my %acked;
	for my $i (1 .. $cycles)
	{
		my $wp = ha_writer_start(ha_conninfo($p), "pt$k-$i-" . $p->name);
		my $ws = ha_writer_start(ha_conninfo($s), "pt$k-$i-" . $s->name);
		for (1 .. 3000) { last if @{ ha_acks($wp) } >= 20; sleep 0.05; }
		my $ev_s = $s->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM ha_events');
		my $ev_w = $w->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM ha_events');
		my $t0 = time;
		ha_partition([$p], [ $s, $w ]);
		my ($tf, $tw);
		while (time - $t0 < 300)
		{
			$tf //= time - $t0 if $p->safe_psql('postgres', 'SELECT fenced FROM ha_state') eq 't';
			$tw //= time - $t0 if $s->safe_psql('postgres', 'SELECT writable FROM ha_health()') eq 't';
			last if defined $tf && defined $tw;
			sleep 0.02;
		}
		die 'no fence or no promotion' unless defined $tf && defined $tw;
		push @fenced, $tf;
		push @writable, $tw;
		# sync: the new primary's writes wait for a standby, so heal at once
		ha_heal();
		my $tj;
		$p->poll_query_until('postgres',
			"SELECT (role = 'standby' AND NOT needs_rejoin) OR EXISTS (SELECT 1 FROM ha_events WHERE kind = 'rejoin_refused' AND at > now() - interval '60 s') FROM ha_state")
		  or die 'no rejoin';
		$tj = time - $t0;
		my $refused = $p->safe_psql('postgres', 'SELECT needs_rejoin FROM ha_state') eq 't';
		push @rejoin, $tj;
		my $n = @{ ha_acks($ws) };
		for (1 .. 3000) { last if @{ ha_acks($ws) } >= $n + 10; sleep 0.05; }
		ha_writer_stop($wp);
		ha_writer_stop($ws);
		my $last_old = max(map { $_->[2] } @{ ha_acks($wp) });
		my $first_new = min(map { $_->[3] } @{ ha_acks($ws) });
		push @gap, $first_new - $last_old;
		$acked{ $_->[0] } = 1 for (@{ ha_acks($wp) }, @{ ha_acks($ws) });
		my $have = ha_seeds($s);
		my @gone = grep { !exists $have->{$_} } keys %acked;
		push @lost, scalar @gone;
		push @merged, $s->safe_psql('postgres',
			"SELECT coalesce(sum((detail->>'inserted')::int), 0) FROM ha_events WHERE kind = 'merge' AND id > $ev_s AND detail ? 'inserted'");
		push @refusals, $w->safe_psql('postgres', "SELECT count(*) FROM ha_events WHERE kind = 'grant_refused' AND id > $ev_w");
		printf STDERR "%s %ss x %s fence %ss cycle %d: fenced %.2f s, single writable node %.2f s, gap %.3f s, "
		  . "rejoined %.2f s%s, lost %d, merged %d, refusals recorded %d\n",
		  $mode, $interval, $threshold, $fence, $i, $tf, $tw, $gap[-1], $tj, $refused ? ' (refused)' : '',
		  $lost[-1], $merged[-1], $refusals[-1];
		die 'rejoin refused: the bench cannot go on' if $refused;
		($p, $s) = ($s, $p);
	}
	push @rows, sprintf('| %s | %s s x %s, fence %s s | %d | %.2f / %.2f | %.2f / %.2f | %.3f s | %d | %d |',
		$mode, $interval, $threshold, $fence, scalar @writable, median(@fenced), max(@fenced),
		median(@writable), max(@writable), min(@gap), max(@lost), sum(@merged));
	$_->stop('immediate') for ($a, $b, $w);
}

print "| mode | interval x threshold, fence_timeout | partitions | cut to self-fence of the old primary: median / max | cut to a single writable node: median / max | smallest gap between the old primary's last and the new primary's first acknowledged write | acknowledged writes lost | rows merged on rejoin |\n";
print "|---|---|---|---|---|---|---|---|\n";
print "$_\n" for @rows;
