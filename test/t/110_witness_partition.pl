# With a witness, in sync mode: the primary is cut off from both the standby
# and the witness. It fences itself after fence_timeout, the witness grants
# term 2 to the standby only after that, and the standby promotes with it.
# Two writers hammer BOTH nodes directly (not through multi-host) and record
# when each acknowledged call began and ended (client clock): the old
# primary's last acknowledged write ended before the new primary's first
# acknowledged write began. When the cut heals, the old primary learns term 2
# (from the witness and the peer), steps down and rejoins; in sync mode its
# unacknowledged tail is dropped by the plain rejoin, and no acknowledged
# write is lost.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use List::Util ();
use CrawlerHA::Test qw(ha_trio ha_conninfo ha_partition ha_cut ha_heal ha_writer_start ha_writer_stop
  ha_acks ha_acked ha_seeds ha_wait_writable);

my $conf = <<'CONF';
crawler_ha.health_check_interval = '1s'
crawler_ha.failure_threshold = 3
crawler_ha.fence_timeout = '2s'
crawler_ha.response_timeout = '2s'
crawler_ha.replication_mode = 'sync'
CONF
my ($a, $b, $w) = ha_trio(conf => $conf);

# both data nodes report to the witness
$w->poll_query_until('postgres', 'SELECT count(*) = 2 FROM ha_witness_nodes WHERE reports > 0')
  or die 'the data nodes do not report to the witness';
is($w->safe_psql('postgres', 'SELECT role, term, primary_name FROM ha_state'), 'witness|1|alpha',
	'the witness adopted term 1 from its primary alpha');
is($w->safe_psql('postgres', "SELECT string_agg(node_name || ':' || role, ',' ORDER BY node_id) FROM ha_status() WHERE NOT is_local"),
	'alpha:primary,beta:standby', "ha_status() on the witness shows the data nodes it hears from");
$a->poll_query_until('postgres', "SELECT healthy AND term = 1 AND detail LIKE '%beta: standby%' FROM ha_status() WHERE detail LIKE 'witness:%'")
  or die 'alpha does not see the witness';
like($a->safe_psql('postgres', "SELECT detail FROM ha_status() WHERE detail LIKE 'witness:%'"),
	qr/term 1, primary alpha; sees alpha: primary term 1.*beta: standby term 1/,
	"alpha's ha_status() shows the witness, its term and what it sees");
my ($rc, $out, $err) = $w->psql('postgres', "SELECT crawl_start(ARRAY['http://w.test/'])");
like($err, qr/does not accept writes: it is a witness/, 'the witness refuses the write API (25006)');
$a->poll_query_until('postgres', "SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'crawler_ha_sub'")
  or die 'standby is not synchronous';

my $wa = ha_writer_start(ha_conninfo($a), 'a');
my $wb = ha_writer_start(ha_conninfo($b), 'b');
sleep 0.1 until @{ ha_acks($wa) } >= 20;
is(scalar @{ ha_acks($wb) }, 0, 'before the cut only alpha acknowledges writes');

my $t_cut = time;
ha_partition([$a], [ $b, $w ]);
note(sprintf('cut at %.3f', $t_cut));

$a->poll_query_until('postgres', "SELECT fenced AND fence_reason = 'isolation' FROM ha_state")
  or die 'alpha did not fence itself';
pass('alpha, isolated, fenced itself');
# Its alerts as its agent would fetch them: its own fence is due from it;
# the cluster's (beta unhealthy to it) are not, since a fenced node's view
# is the stale one.
is($a->safe_psql('postgres',
		"BEGIN READ WRITE; SELECT string_agg(alert || ' ' || status || ' ' || (labels ->> 'node'), ',' ORDER BY alert) "
		  . 'FROM ha_alert_evaluate(NULL); COMMIT'),
	'node_fenced firing alpha', 'alerts due from the fenced alpha: node_fenced about itself, nothing of the cluster');
is($a->safe_psql('postgres', 'SELECT ha_alert_sender()'), 'f', '... it is not the cluster\'s sender');
like($a->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'fence' ORDER BY id DESC LIMIT 1"),
	qr/isolated: neither the standby nor the witness reached/, 'with a fence event saying why');
($rc, $out, $err) = $a->psql('postgres', "SELECT crawl_start(ARRAY['http://fenced.test/'])");
like($err, qr/does not accept writes/, 'the fenced primary refuses writes');

ok(defined ha_wait_writable($b, 120), 'beta became writable');
is($b->safe_psql('postgres', 'SELECT role, term FROM ha_state'), 'primary|2', 'beta is the primary of term 2');
is($w->safe_psql('postgres', 'SELECT term, primary_name FROM ha_terms WHERE term = 2'), '2|beta',
	'the witness granted term 2 to beta, once');
like($w->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY id) FROM ha_events"), qr/grant/,
	'the grant is an event on the witness');
like($b->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'promotion'"),
	qr/term 2 granted by the witness/, 'beta promoted with the granted term');
note('refusals before the grant: '
	  . $w->safe_psql('postgres', "SELECT count(*) FROM ha_events WHERE kind = 'grant_refused'"));

# heal: alpha hears of term 2, steps down and rejoins (sync: its tail is unacknowledged)
ha_heal();
$a->poll_query_until('postgres', "SELECT role = 'standby' AND term = 2 AND NOT needs_rejoin FROM ha_state")
  or die 'alpha did not rejoin';
pass('healed: alpha stepped down and rejoined as the standby of beta');
like($a->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY id) FROM ha_events"),
	qr/fence.*demotion.*rejoin/, 'alpha: fence, demotion, rejoin');

# beta's writes wait for a synchronous standby: they flow once alpha is back
my $nb = @{ ha_acks($wb) };
sleep 0.1 until @{ ha_acks($wb) } >= $nb + 20;
ha_writer_stop($wa);
ha_writer_stop($wb);

my @acks_a = @{ ha_acks($wa) };
my @acks_b = @{ ha_acks($wb) };
my $last_a_end = List::Util::max(map { $_->[2] } @acks_a);
my $first_b_start = List::Util::min(map { $_->[3] } @acks_b);
note(sprintf('alpha: %d acknowledged, last ended %.3f s after the cut; beta: %d acknowledged, first began %.3f s after the cut',
		scalar @acks_a, $last_a_end - $t_cut, scalar @acks_b, $first_b_start - $t_cut));
ok($last_a_end < $first_b_start,
	"never two writers: alpha's last acknowledged write ended before beta's first began");

my $total = $b->safe_psql('postgres', 'SELECT count(*) FROM crawl_sessions');
$a->poll_query_until('postgres', "SELECT count(*) = $total FROM crawl_sessions") or die 'alpha behind';
my $on_b = ha_seeds($b);
my @lost = grep { !exists $on_b->{$_} } (keys %{ ha_acked($wa) }, keys %{ ha_acked($wb) });
is(scalar(@lost), 0, 'no acknowledged write is lost (sync mode)');
is_deeply(ha_seeds($a), $on_b, 'both nodes hold identical sessions');

# A one-way cut: the standby alpha cannot reach beta (beta refuses it) but
# beta still reaches alpha, and beta cannot reach the witness. Beta's checks
# of alpha succeed, but alpha says it does not see beta: that is no contact,
# so beta fences itself before the witness grants alpha the next term.
$a->poll_query_until('postgres', "SELECT sees_peer FROM ha_ping()") or die 'alpha does not see beta';
my $ev = $b->safe_psql('postgres', 'SELECT max(id) FROM ha_events');
ha_cut($b, [$a]);
ha_cut($w, [$b]);
$b->poll_query_until('postgres', "SELECT EXISTS (SELECT 1 FROM ha_events WHERE kind = 'fence' AND id > $ev)")
  or die 'beta did not fence itself';
pass('one-way cut: beta, which still reaches alpha, fenced itself');
ok(defined ha_wait_writable($a, 120), 'one-way cut: alpha became writable');
is($a->safe_psql('postgres', 'SELECT role, term FROM ha_state'), 'primary|3', 'alpha is the primary of term 3');
$b->poll_query_until('postgres', "SELECT role = 'standby' AND term = 3 FROM ha_state") or die 'beta did not step down';
my $fenced_at = $b->safe_psql('postgres', "SELECT max(at) FROM ha_events WHERE kind = 'fence'");
ok($a->safe_psql('postgres', "SELECT min(at) > '$fenced_at' FROM ha_events WHERE kind = 'promotion' AND term = 3") eq 't',
	"beta fenced itself (a standby that cannot reach it is no contact) before alpha's promotion");
ha_heal();
$b->poll_query_until('postgres', "SELECT role = 'standby' AND term = 3 AND NOT needs_rejoin FROM ha_state")
  or die 'beta did not rejoin';
pass('healed: beta rejoined as the standby of alpha');

done_testing();
