# The sync-mode rejoin deadlock: with several writers of every kind, an old
# primary's rejoin merged its tail with ha_merge_rows() on the new primary,
# which waited for a session row locked by writes that were themselves
# waiting for the synchronous standby -- the rejoining node: writes stopped
# for good.
#
# Two data nodes and a witness, 1 s x 3 checks. Four writers through the
# multi-host read-write conninfo (CrawlerHA::Writers): crawl_start,
# crawl_enqueue, image_record, and crawl_claim + crawl_complete, the last
# three on the same crawl session, whose row crawl_enqueue locks and
# crawl_enqueue, image_record and crawl_complete update, as the crawler's
# workers do. The primary's postmaster is killed (-9) at a random moment, 8
# times in a row, in `sync` and then in `semi_sync` (a cluster each); the old
# primary is started again as soon as the standby has promoted. After every
# cycle, within 60 s: the standby is the primary of the next term, the old
# primary its standby with no rejoin pending, and writes of every kind flow
# again; otherwise the test fails there and prints both nodes' ha_status(),
# ha_events and client backends with their wait events and blockers. At the
# end: no acknowledged write lost, both nodes identical, every id carries its
# node's id, one term per failover granted once by the witness.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_trio ha_multihost);
use CrawlerHA::Writers qw(writers_session writer_start writer_stop writer_count writer_errors writers_lost);

my $cycles = 8;    # about 7 s alone, 9 s in make check: 16 in all
my $bound = 60;    # seconds a cycle may take to write again and rejoin
my $state_sql = "SELECT role || ' ' || term || ' ' || needs_rejoin::int FROM ha_state";
my $seed = time() % 100000;
srand($seed);
note("random seed $seed");

my $t_file = time;
run_mode('sync', [ 'alpha', 'beta', 'witness' ]);
run_mode('semi_sync', [ 'gamma', 'delta', 'witness2' ]);
note(sprintf('whole file: %.0f s', time - $t_file));
done_testing();

sub q1
{
	my ($node, $sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', $sql, timeout => 20);
	return $rc == 0 ? $out : "(query failed: " . ($err // '') . ")";
}

# What a stalled cycle looks like from both nodes.
sub diagnose
{
	my ($nodes, $writers) = @_;
	for my $n (@$nodes)
	{
		diag('--- ' . $n->name . ': ha_status()');
		diag(q1($n, "SELECT node_name, role, term, healthy, sync_state, needs_rejoin, fenced, detail FROM ha_status()"));
		diag('--- ' . $n->name . ': ha_state');
		diag(q1($n, "SELECT role, term, primary_name, fenced, needs_rejoin, split_lsn FROM ha_state"));
		diag('--- ' . $n->name . ': last ha_events');
		diag(q1($n, "SELECT * FROM (SELECT id, to_char(at, 'HH24:MI:SS.MS'), term, kind, left(reason, 300) FROM ha_events "
			  . "ORDER BY id DESC LIMIT 15) e ORDER BY 1"));
		diag('--- ' . $n->name . ': pg_stat_activity (client backends, wait events, blocked by)');
		diag(q1($n, "SELECT pid, usename, application_name, state, wait_event_type, wait_event, "
			  . "pg_blocking_pids(pid), round(extract(epoch FROM now() - xact_start)::numeric, 1) AS xact_s, "
			  . "left(regexp_replace(query, '\\s+', ' ', 'g'), 110) FROM pg_stat_activity "
			  . "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY pid"));
		diag('--- ' . $n->name . ': pg_stat_replication');
		diag(q1($n, "SELECT application_name, state, sync_state, sent_lsn, flush_lsn FROM pg_stat_replication"));
		diag('--- ' . $n->name . ': synchronous_standby_names = '
			  . q1($n, "SELECT current_setting('synchronous_standby_names')"));
	}
	for my $w (@$writers)
	{
		diag("--- writer $w->{kind}: " . writer_count($w) . " acknowledged; last failures:\n"
			  . join("\n", map { substr($_, 0, 400) } split /\n/, writer_errors($w, 3)));
	}
	return;
}

# Wait until every writer has at least $need more acknowledged calls than in
# %$base; returns the writers that did not.
sub wait_flow
{
	my ($writers, $base, $need, $deadline) = @_;
	my @slow;
	while (1)
	{
		@slow = grep { writer_count($_) < $base->{$_} + $need } @$writers;
		return () unless @slow;
		last if time > $deadline;
		sleep 0.1;
	}
	return @slow;
}

sub counts
{
	my ($writers) = @_;
	return { map { ($_ => writer_count($_)) } @$writers };
}

sub alive
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	return $stat =~ /^\d+ \(.*\) [^Z]/ ? 1 : 0;
}

# kill -9 of $node's postmaster; as soon as $standby has promoted, $node is
# started again. (Started at once, before the promotion, it would be back
# within the promotion delay: the witness hears from it again and grants no
# term, and it goes on as the primary of the same term: no failover, no
# rejoin.) The start is retried while the dead postmaster is not reaped yet
# (postgres then finds that its postmaster.pid "already exists") or its
# orphaned backends still hold the old shared memory; a failed
# start(fail_ok) took the stale postmaster.pid's pid for a running server's,
# so it is forgotten before the next try. Returns how long the promotion took.
sub kill9_restart
{
	my ($node, $standby, $deadline) = @_;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	open(my $fh, '<', $pidfile) or die "$pidfile: $!";
	my $old = <$fh>;
	close $fh;
	chomp $old;
	my $t0 = time;
	$node->kill9;
	my $promoted;
	while (time < $deadline)
	{
		$promoted = time - $t0, last if q1($standby, 'SELECT writable FROM ha_health()') eq 't';
		sleep 0.05;
	}
	for (1 .. 50) { last unless kill(0, $old); sleep 0.02; }
	for (1 .. 100)
	{
		return $promoted if $node->start(fail_ok => 1);
		$node->{_pid} = undef if $node->{_pid} && !alive($node->{_pid});
		sleep 0.1;
	}
	die $node->name . ' does not start again';
}

sub table_digests
{
	my ($node) = @_;
	return q1($node, join(' UNION ALL ',
		"SELECT 'sessions', count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM crawl_sessions t",
		"SELECT 'frontier', count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM crawl_frontier t",
		"SELECT 'hosts', count(*), md5(string_agg(t::text, '|' ORDER BY host)) FROM crawl_hosts t",
		"SELECT 'images', count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM images t"));
}

sub run_mode
{
	my ($mode, $names) = @_;
	my $t_mode = time;
	my $tag = $mode =~ s/_//r;
	my $conf = "crawler_ha.health_check_interval = '1s'\n"
	  . "crawler_ha.failure_threshold = 3\n"
	  . "crawler_ha.fence_timeout = '2s'\n"
	  . "crawler_ha.response_timeout = '2s'\n"
	  . "crawler_ha.sync_timeout = '2s'\n"
	  . "crawler_ha.replication_mode = '$mode'\n";
	my ($a, $b, $wit) = ha_trio(names => $names, conf => $conf);
	$a->poll_query_until('postgres',
		"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'crawler_ha_sub'")
	  or die "$mode: the standby is not synchronous";
	$wit->poll_query_until('postgres', 'SELECT count(*) = 2 FROM ha_witness_nodes WHERE reports > 0')
	  or die "$mode: the data nodes do not report to the witness";

	my $session = writers_session($a, $tag);
	my $ci = ha_multihost($a, $b);
	my @w = (
		writer_start($ci, 'start', tag => $tag),
		writer_start($ci, 'enqueue', tag => $tag, session => $session),
		writer_start($ci, 'image', tag => $tag, session => $session),
		writer_start($ci, 'claim', tag => $tag, worker => "claimer-$tag"));
	my @slow = wait_flow(\@w, { map { ($_ => 0) } @w }, 10, time + $bound);
	ok(!@slow, "$mode: writers of every kind write (crawl_start, crawl_enqueue, image_record, crawl_claim + crawl_complete)")
	  or do { diagnose([ $a, $b ], \@w); writer_stop(@w); BAIL_OUT("$mode: no writes at the start"); };

	my ($p, $s) = ($a, $b);
	my $term = 1;
	my $done = 0;
	for my $cycle (1 .. $cycles)
	{
		# The standby must hold every row first: after a rejoin that merged it
		# copies the primary afresh, and a failover during that copy is
		# refused by design (test/decide covers that rule), not a failover to test.
		$s->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate <> 'r'")
		  or diag("$mode cycle $cycle: " . $s->name . "'s initial copy did not finish");
		# a random moment: writes of every kind are in flight
		my $delay = 0.2 + rand(2.0);
		sleep $delay;
		my $base = counts(\@w);
		my $t_kill = time;
		my $promoted = kill9_restart($p, $s, $t_kill + $bound);
		my $t_up = time;

		# within the bound: writes of every kind flow again, the old primary
		# is a standby that needs no rejoin, under the term that followed
		my $deadline = $t_kill + $bound;
		my ($st_p, $st_s) = ('', '');
		while (time < $deadline)
		{
			$st_p = q1($p, $state_sql);
			$st_s = q1($s, $state_sql);
			last if $st_p eq 'standby ' . ($term + 1) . ' 0' && $st_s eq 'primary ' . ($term + 1) . ' 0';
			sleep 0.1;
		}
		my $t_rejoin = time;
		@slow = wait_flow(\@w, $base, 3, $deadline);
		my $t_flow = time;
		my $good = $st_p eq 'standby ' . ($term + 1) . ' 0' && $st_s eq 'primary ' . ($term + 1) . ' 0' && !@slow;
		ok($good,
			sprintf("$mode cycle %d (kill %.1f s after writes flowed): %s is the primary of term %d, %s its standby with no rejoin pending,"
				  . " and writes of every kind flow again", $cycle, $delay, $s->name, $term + 1, $p->name));
		if (!$good)
		{
			diag(sprintf("$mode cycle $cycle: %.0f s after the kill: %s is '%s', %s is '%s' (role term needs_rejoin);"
					  . " writers with no new acknowledged write since the kill: %s",
					time - $t_kill, $p->name, $st_p, $s->name, $st_s,
					join(', ', map { $_->{kind} } @slow) || 'none'));
			diagnose([ $s, $p ], \@w);
			last;
		}
		note(sprintf("$mode cycle $cycle: after the kill: promoted %.1f s, restarted %.1f s, rejoined %.1f s, every kind written %.1f s",
				$promoted // -1, $t_up - $t_kill, $t_rejoin - $t_kill, $t_flow - $t_kill));
		$done++;
		$term++;
		($p, $s) = ($s, $p);
	}
	# a stalled cluster first: its writers' calls end with it
	$_->teardown_node for grep { $done < $cycles } $a, $b, $wit;
	writer_stop(@w);
	is($done, $cycles, "$mode: $cycles kill -9 cycles in a row with no stall");

	if ($done == $cycles)
	{
		# $s is the primary's standby; both must end up identical
		my ($dp, $ds) = ('', '');
		my $deadline = time + $bound;
		while (time < $deadline)
		{
			$dp = table_digests($p);
			$ds = table_digests($s);
			last if $dp eq $ds;
			sleep 0.2;
		}
		is($ds, $dp, "$mode: both nodes hold identical data (four tables, every column)");
		my @lost = writers_lost($p, @w);
		is(scalar(@lost), 0,
			"$mode: no acknowledged write lost ("
			  . join(', ', map { writer_count($_) . " $_->{kind}" } @w) . ' acknowledged)');
		diag("lost: $_") for @lost[ 0 .. ($#lost > 20 ? 20 : $#lost) ];
		is(q1($p, "SELECT count(*) FROM (SELECT id FROM crawl_sessions UNION ALL SELECT id FROM crawl_frontier "
				  . "UNION ALL SELECT id FROM images) i WHERE id % 1024 NOT IN ("
				  . join(',', map { q1($_, 'SELECT node_id FROM ha_node') } $a, $b) . ')'),
			'0', "$mode: every id carries the id of the node that made it (no collision possible)");
		is(q1($p, 'SELECT term FROM ha_state') . ' ' . q1($s, 'SELECT term FROM ha_state') . ' '
			  . q1($wit, 'SELECT term FROM ha_state'),
			join(' ', ($cycles + 1) x 3), "$mode: one new term per failover, on both nodes and the witness");
		is(q1($wit, 'SELECT string_agg(term::text, \',\' ORDER BY term) FROM ha_terms WHERE term > 1'),
			join(',', 2 .. $cycles + 1), "$mode: the witness granted each term once");
	}
	else
	{
		note("$mode: the end-state checks are skipped: the cluster stalled");
	}
	$_->teardown_node for grep { $done == $cycles } $a, $b, $wit;
	note(sprintf("$mode: %.0f s", time - $t_mode));
	return;
}
