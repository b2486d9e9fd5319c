# With a witness: only the link between the two data nodes is cut; both still
# reach the witness. The standby detects the primary's failure and asks the
# witness for a new term, which it refuses (the primary still reports): no
# promotion, and the primary keeps accepting writes. After the heal the
# standby replicates again. Also: the settings' order (fence_timeout below
# health_check_interval x failure_threshold) is enforced; and with the standby
# paused (no promotion), an isolated primary fences itself, stays fenced
# across a restart, lifts its fence when it reaches the witness again and is
# still the newest term's primary, and a primary restarted while cut off
# accepts no write before it has reached the witness or its standby.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_trio ha_partition ha_heal);

my $conf = <<'CONF';
crawler_ha.health_check_interval = '1s'
crawler_ha.failure_threshold = 3
crawler_ha.fence_timeout = '2s'
crawler_ha.response_timeout = '2s'
CONF
my ($a, $b, $w) = ha_trio(conf => $conf);
$w->poll_query_until('postgres', 'SELECT count(*) = 2 FROM ha_witness_nodes WHERE reports > 0')
  or die 'the data nodes do not report to the witness';

ha_partition([$a], [$b]);

# several refused requests: at least two detections' worth of checks
$b->poll_query_until('postgres', "SELECT EXISTS (SELECT 1 FROM ha_events WHERE kind = 'grant_refused')")
  or die 'beta did not ask the witness';
pass('beta detected the failure and asked the witness');
$b->poll_query_until('postgres', 'SELECT consecutive_failures >= 8 FROM ha_status() WHERE node_name = \'alpha\'')
  or die 'beta stopped checking';
like($b->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'grant_refused' ORDER BY id LIMIT 1"),
	qr/the witness refused a new term: the primary alpha reported to the witness \d+ ms ago/,
	"beta's refusal says why");
is($b->safe_psql('postgres', "SELECT count(*) FROM ha_events WHERE kind = 'grant_refused'"), '1',
	'recorded once per detection (it asks again at every check)');
like($w->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'grant_refused' ORDER BY id LIMIT 1"),
	qr/term 2 refused to beta: the primary alpha reported/, 'the witness records the refusal too');
is($w->safe_psql('postgres', "SELECT count(*) FROM ha_events WHERE kind = 'grant'"), '0', 'no grant');
is($b->safe_psql('postgres', 'SELECT role, term FROM ha_state'), 'standby|1', 'no promotion');
is($a->safe_psql('postgres', 'SELECT role, term, fenced FROM ha_state'), 'primary|1|f',
	'alpha, which still reaches the witness, is the unfenced primary');
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://during-cut.test/'])");
pass('alpha keeps accepting writes');
like($a->safe_psql('postgres', "SELECT detail FROM ha_status() WHERE detail LIKE 'witness:%'"),
	qr/sees alpha: primary term 1.*beta: standby term 1/, "alpha's ha_status() shows what the witness sees");

ha_heal();
$b->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_sessions WHERE seeds[1] = 'http://during-cut.test/'")
  or die 'replication did not resume';
pass('healed: the write made during the cut reached beta');
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://after-heal.test/'])");
$b->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_sessions WHERE seeds[1] = 'http://after-heal.test/'")
  or die 'replication does not flow';
pass('and new writes flow');
# Replication resumes at once; the recovery is the next health check's.
$b->poll_query_until('postgres', "SELECT EXISTS (SELECT 1 FROM ha_events WHERE kind = 'recovery' "
	  . "AND id > (SELECT min(id) FROM ha_events WHERE kind = 'grant_refused'))")
  or diag 'beta recorded no recovery';
like($b->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY id) FROM ha_events"),
	qr/detection.*grant_refused.*recovery/, 'beta: detection, refusal, recovery');

# settings out of order: ha_setup refuses, the worker alerts and reports it
$b->append_conf('postgresql.conf', "crawler_ha.fence_timeout = '5s'\n");
$b->reload;
$b->poll_query_until('postgres', "SELECT current_setting('crawler_ha.fence_timeout') = '5s'") or die;
my ($rc, $out, $err) = $b->psql('postgres', "SELECT ha_setup('standby')");
like($err, qr/fence_timeout \(5000 ms\) must be below health_check_interval x failure_threshold \(3000 ms\)/,
	'ha_setup() refuses a fence_timeout that is not below the promotion delay');
$b->poll_query_until('postgres', "SELECT EXISTS (SELECT 1 FROM ha_events WHERE kind = 'alert' AND reason LIKE '%fence_timeout%')")
  or die 'no alert';
pass('the worker records an alert');
like($b->safe_psql('postgres', 'SELECT detail FROM ha_status() WHERE is_local'), qr/ALERT: crawler_ha.fence_timeout/,
	'ha_status() shows it');
$b->append_conf('postgresql.conf', "crawler_ha.fence_timeout = '2s'\n");
$b->reload;
$b->poll_query_until('postgres', "SELECT current_setting('crawler_ha.fence_timeout') = '2s'") or die;

# self-fence and unfence: beta paused, so alpha stays the newest term's primary
is($b->safe_psql('postgres', 'SELECT ha_pause()'), 'paused', 'beta paused: it will not promote');
ha_partition([$a], [ $b, $w ]);
$a->poll_query_until('postgres', "SELECT fenced AND fence_reason = 'isolation' FROM ha_state")
  or die 'alpha did not fence itself';
pass('alpha, cut off from both, fenced itself');
# The fence is recorded in ha_state first, then written to the server's
# settings and reloaded: a session started in between still reads off.
ok($a->poll_query_until('postgres', 'SHOW default_transaction_read_only', 'on'), 'read-only');
$a->restart;
($rc, $out, $err) = $a->psql('postgres', "SELECT crawl_start(ARRAY['http://fenced.test/'])");
like($err, qr/does not accept writes: it is fenced/, 'restarted while cut off: still fenced');
ha_heal();
$a->poll_query_until('postgres', "SELECT NOT fenced FROM ha_state") or die 'alpha did not lift its fence';
like($a->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'unfence' ORDER BY id DESC LIMIT 1"),
	qr/the witness is reachable again and term 1 is still this node's/, 'unfenced: still the primary of term 1');
ok(defined CrawlerHA::Test::ha_wait_writable($a, 120), 'alpha accepts writes again');

# restarted while cut off, before any fence: no write until it reaches someone
$a->stop;
ha_partition([$a], [ $b, $w ]);
$a->start;
($rc, $out, $err) = $a->psql('postgres', "SELECT crawl_start(ARRAY['http://restarted.test/'])");
like($err, qr/does not accept writes/, 'a primary restarted while cut off refuses writes');
ha_heal();
ok(defined CrawlerHA::Test::ha_wait_writable($a, 120), 'once it reaches the witness again it accepts writes');
is($a->safe_psql('postgres', 'SELECT role, term FROM ha_state'), 'primary|1', 'still the primary of term 1');
$b->safe_psql('postgres', 'SELECT ha_resume()');

done_testing();
