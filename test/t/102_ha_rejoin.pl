# Rejoin of an old primary, both ways, made deterministic:
#  - caught up: everything the old primary wrote had reached the standby
#    before the kill; it rejoins by itself and the nodes end identical;
#  - unreplicated tail: the standby was down while the primary wrote; after
#    the failover the old primary merges those rows into the new primary,
#    then follows it (t/112 covers the merge rules and conflicts);
#  - a node that replaces the old one under the same node id continues its
#    ids past every id of that node the primary holds (merged ones included).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use CrawlerHA::Test qw(new_node ha_pair ha_set_peer ha_seeds ha_wait_writable);

sub write_sessions
{
	my ($node, $tag, $n) = @_;
	$node->safe_psql('postgres',
		"SELECT crawl_start(ARRAY['http://$tag.test/' || i]) FROM generate_series(1, $n) i");
}

# --- caught up ---------------------------------------------------------------
{
	my ($a, $b) = ha_pair(names => [ 'alpha', 'beta' ]);
	write_sessions($a, 'before', 20);
	$b->poll_query_until('postgres', 'SELECT count(*) = 20 FROM crawl_sessions') or die;
	$a->kill9;
	ok(defined ha_wait_writable($b, 120), 'caught up: the standby promoted');
	write_sessions($b, 'after', 5);
	$a->start;
	$a->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state")
	  or die 'alpha did not rejoin';
	pass('caught up: the old primary rejoined by itself');
	like($a->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY id) FROM ha_events"),
		qr/demotion.*rejoin/, 'its demotion and rejoin are recorded');
	is($a->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots"), '0',
		'its old slot, with nothing left to reconcile, is dropped');
	write_sessions($b, 'later', 5);
	$a->poll_query_until('postgres', 'SELECT count(*) = 30 FROM crawl_sessions')
	  or die 'writes on the new primary do not reach alpha';
	is_deeply(ha_seeds($a), ha_seeds($b), 'caught up: both nodes hold identical data');
	$a->stop;
	$b->stop;
}

# --- unreplicated tail -------------------------------------------------------
{
	my ($a, $b) = ha_pair(names => [ 'gamma', 'delta' ]);
	write_sessions($a, 'shared', 10);
	$b->poll_query_until('postgres', 'SELECT count(*) = 10 FROM crawl_sessions') or die;

	# the standby goes away; the primary keeps writing (a dead standby must
	# not stop the crawl), then dies itself
	$b->stop;
	write_sessions($a, 'tail', 7);
	$a->kill9;
	$b->start;
	ok(defined ha_wait_writable($b, 120), 'tail: the standby promoted without the primary');
	is($b->safe_psql('postgres', 'SELECT count(*) FROM crawl_sessions'), '10', 'it never got the tail');
	write_sessions($b, 'new', 3);

	# alpha, written to while delta was down, comes back: a restarted old
	# primary accepts no write until it knows the newest term
	$a->start;
	my ($rc, $out, $err) = $a->psql('postgres', "BEGIN READ WRITE; SELECT crawl_start(ARRAY['http://x.test/'])");
	# Refused by the fence, or cut off by the demotion that is under way
	# (it terminates the sessions): either way nothing committed, which the
	# row count after the rejoin shows.
	like($err, qr/does not accept writes|terminating connection due to administrator command/,
		'the old primary accepts no write when it comes back');
	isnt($rc, 0, '... the call failed');
	$a->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state")
	  or die 'no rejoin: ' . $a->safe_psql('postgres', "SELECT string_agg(kind || ': ' || reason, E'\n' ORDER BY id) FROM ha_events");
	pass('tail: the old primary rejoined by itself');
	like($a->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'merge' ORDER BY id DESC LIMIT 1"),
		qr/merged what it wrote after split point/, 'after merging its tail, recorded as an event');
	is($b->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE seeds[1] LIKE 'http://tail.test/%'"), '7',
		'the new primary now holds the tail');
	is($b->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions"), '20', 'and everything else: the union');
	$a->poll_query_until('postgres', 'SELECT count(*) = 20 FROM crawl_sessions') or die 'no copy';
	is_deeply(ha_seeds($a), ha_seeds($b), 'tail: both nodes hold identical data');
	is($a->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots"), '0',
		'the slot that recorded the tail is dropped after the merge');

	# the old node is replaced by a new empty one with the same node id:
	# its ids continue past the ones of that id the primary already holds.
	# Its checks are 30 s apart and its set-up commits 2 s after ha_setup()
	# woke its worker: the worker reads the fresh node's default role
	# (primary, term 0) first and must read the standby role again at the
	# commit, not at its next round; ha_failover() must not act on the
	# stale one either.
	$a->stop('immediate');
	my $c = new_node('gamma2', node_id => 3, extra_conf => "crawler_ha.health_check_interval = '30s'\n");
	ha_set_peer($b, $c);
	ha_set_peer($c, $b);
	like($c->safe_psql('postgres', "BEGIN; SELECT ha_setup('standby'); SELECT pg_sleep(2); COMMIT;"),
		qr/^standby\b/, 'a replacement node with the same id joins');
	# well before the next check, 30 s after the one the wake made
	my $role = '';
	for (1 .. 100)
	{
		$role = $c->safe_psql('postgres', 'SELECT role FROM ha_status() WHERE is_local');
		last if $role eq 'standby';
		usleep(100_000);
	}
	is($role, 'standby', 'its worker shows the committed role at once, not after its next check');
	$c->poll_query_until('postgres', 'SELECT count(*) = 20 FROM crawl_sessions') or die 'no initial copy';
	$c->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate <> 'r'")
	  or die 'initial copy unfinished';
	$c->poll_query_until('postgres', "SELECT healthy FROM ha_status() WHERE NOT is_local") or die;
	like($c->safe_psql('postgres', 'SELECT ha_failover()'), qr/gamma2 is the primary/, 'and takes over by switchover');
	my $max_old = $c->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions WHERE id % 1024 = 3');
	my $id = $c->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://reuse.test/'])");
	ok($id % 1024 == 3 && $id > $max_old, "its first id $id is past the copied ids of node 3 (max $max_old)");
}

done_testing();
