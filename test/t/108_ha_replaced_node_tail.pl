# A node that replaced a refused old primary (same node id, empty, set up
# with ha_setup) holds the standby's place like any other: when the primary
# is killed with an unreplicated tail, the replacement promotes and the old
# primary merges its tail into the replacement before following it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node ha_pair ha_set_peer ha_seeds ha_wait_writable);

my ($a, $b) = ha_pair(names => [ 'ra', 'rb' ]);
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://one.test/' || i]) FROM generate_series(1, 5) i");
$b->poll_query_until('postgres', 'SELECT count(*) = 5 FROM crawl_sessions') or die;
$a->kill9;
ok(defined ha_wait_writable($b, 120), 'rb promoted');
$b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://two.test/' || i]) FROM generate_series(1, 5) i");

# replace ra by an empty node with the same id
my $c = new_node('ra2', node_id => 1, extra_conf => "crawler_ha.health_check_interval = '1s'\n");
ha_set_peer($b, $c);
ha_set_peer($c, $b);
$c->safe_psql('postgres', "SELECT ha_setup('standby')");
$c->poll_query_until('postgres', 'SELECT count(*) = 10 FROM crawl_sessions') or die 'no copy';
$b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://three.test/' || i]) FROM generate_series(1, 5) i");
$c->poll_query_until('postgres', 'SELECT count(*) = 15 FROM crawl_sessions') or die 'no streaming';
# every table's initial copy done, not only crawl_sessions': a standby whose
# copy is unfinished is not promoted automatically
$c->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate <> 'r'")
  or die 'initial copy unfinished';
pass('the replacement has the copy and the stream');

# a tail on rb, then rb dies
$c->stop;
$b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://tail.test/' || i]) FROM generate_series(1, 4) i");
$b->kill9;
$c->start;
ok(defined ha_wait_writable($c, 120), 'the replacement promoted');
note($c->safe_psql('postgres', 'SELECT term, split_lsn FROM ha_state'));
$b->start;
$b->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state")
  or die 'rb did not rejoin: ' . $b->safe_psql('postgres', "SELECT string_agg(kind || ': ' || reason, E'\n' ORDER BY id) FROM ha_events");
like($b->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY id) FROM ha_events WHERE kind IN ('merge', 'rejoin')"),
	qr/merge,rejoin$/, 'rb merged its tail into the replacement, then rejoined');
is($c->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE seeds[1] LIKE 'http://tail.test/%'"), '4',
	'the replacement holds the tail');
$b->poll_query_until('postgres', 'SELECT count(*) = 19 FROM crawl_sessions') or die 'no copy';
is_deeply(ha_seeds($b), ha_seeds($c), 'both hold the union');
done_testing();
