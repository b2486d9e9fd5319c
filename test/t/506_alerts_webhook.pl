# Alerts delivered by the node agents to a real HTTP receiver, in
# Alertmanager's webhook format, on a live pair: each alert fires once,
# keeps its cooldown, resolves with a notice, and is an HA event; a
# failed delivery is retried; a cluster-wide alert comes from one node only
# (the primary, or the standby when the primary is gone); a switchover, a
# failover, consistency differences and a blob missing too long are alerts
# too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_pair);
use CrawlerHA::Agent qw(agent_start agent_kill);
use CrawlerHA::Webhook qw(webhook_start webhook_stop webhook_requests webhook_fail);

plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};

my (@agents, $rx);
END
{
	# $? is the test's exit status here: the receiver's reaping must not change it.
	my $status = $?;
	eval { agent_kill($_) } for @agents;
	webhook_stop($rx) if $rx;
	$? = $status;
}

my ($a, $b) = ha_pair(names => [ 'alerts_a', 'alerts_b' ]);
for my $node ($a, $b)
{
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 2 AND count(DISTINCT term) = 1 FROM ha_status() WHERE role IN ('primary', 'standby')"),
		'node ' . $node->name . ' has checked its peer');
}

# configure($node, $alert, %settings): ha_alert_configure() on a node (a
# standby too: the rules are per node).
sub configure
{
	my ($node, $alert, %s) = @_;
	my @args = ("'$alert'");
	push @args, "threshold => $s{threshold}" if defined $s{threshold};
	push @args, "cooldown_s => $s{cooldown}" if defined $s{cooldown};
	$node->safe_psql('postgres', 'BEGIN READ WRITE; SELECT * FROM ha_alert_configure(' . join(', ', @args) . '); COMMIT');
}

# Before the agents start: a test machine's disk may be fuller than 85 %.
configure($_, 'disk_usage', threshold => 100) for $a, $b;

$rx = webhook_start();
my $dir = PostgreSQL::Test::Utils::tempdir();
my $token_file = "$dir/receiver_token";
PostgreSQL::Test::Utils::append_to_file($token_file, "receiver-secret\n");
chmod 0600, $token_file;
my @args = ('--alert-interval-s', '1', '--alert-webhook-url', $rx->{url}, '--alert-webhook-token-file', $token_file,
	'--alert-webhook-attempts', '2', '--alert-webhook-timeout-ms', '2000');
push @agents, agent_start($a, args => \@args), agent_start($b, args => \@args);

# notices(%match): the notifications received and answered 200 whose
# labels match (alertname => ..., node => ..., status => ...).
sub notices
{
	my (%m) = @_;
	my @out;
	for my $r (webhook_requests($rx))
	{
		next unless $r->{answered} == 200 && $r->{json};
		my $alert = $r->{json}{alerts}[0] or next;
		next if defined $m{status} && $alert->{status} ne $m{status};
		next if grep { $_ ne 'status' && ($alert->{labels}{$_} // '') ne $m{$_} } keys %m;
		push @out, { %$alert, request => $r };
	}
	return @out;
}

# wait_for($sub): polls $sub (true when done) for up to 60 s.
sub wait_for
{
	my ($sub) = @_;
	my $t0 = time;
	while (time - $t0 < 60)
	{
		return 1 if $sub->();
		sleep 0.2;
	}
	return 0;
}

sleep 3;
my @at_rest = webhook_requests($rx);
is(scalar(@at_rest), 0, 'a healthy pair at rest: no notification in 3 s');

# --- disk_usage: an alert about a node, sent by that node ---
configure($_, 'disk_usage', threshold => 0, cooldown => 3600) for $a, $b;
ok(wait_for(sub { notices(alertname => 'CrawlerHaDiskUsage', status => 'firing') == 2 }),
	'disk use above 0 %: CrawlerHaDiskUsage firing, one notification from each node')
  or diag(explain([ webhook_requests($rx) ]));
for my $node ($a, $b)
{
	my ($n) = notices(alertname => 'CrawlerHaDiskUsage', node => $node->name, status => 'firing');
	ok($n, '... for node ' . $node->name) or next;
	is($n->{annotations}{reported_by}, $node->name, '... sent by that node');
	is($n->{labels}{severity}, 'warning', '... severity warning');
	like($n->{annotations}{summary}, qr/^the blob store of \Q${\$node->name}\E is [0-9.]+ % full, above 0 %$/,
		'... its summary');
	like($n->{startsAt}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, '... startsAt in RFC 3339');
	is($n->{endsAt}, '0001-01-01T00:00:00Z', '... no end while firing');
	like($n->{fingerprint}, qr/^[0-9a-f]{16}$/, '... a fingerprint');
	my $r = $n->{request};
	is($r->{method} . ' ' . $r->{path}, 'POST /hook', '... POSTed to the configured URL');
	is($r->{authorization}, 'Bearer receiver-secret', '... with the receiver\'s token');
	is($r->{content_type}, 'application/json', '... as JSON');
	is_deeply([ @{ $r->{json} }{qw(version status receiver truncatedAlerts)} ], [ '4', 'firing', 'crawler-ha', 0 ],
		'... Alertmanager\'s webhook body (version 4)');
	is_deeply($r->{json}{commonLabels}, $n->{labels}, '... commonLabels are the alert\'s labels');
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM ha_events WHERE kind = 'alert' AND reason LIKE 'alert disk_usage firing: %'"),
		'1', '... one HA event on that node');
	isnt($node->safe_psql('postgres', "SELECT notified_at FROM ha_alerts() WHERE alert = 'disk_usage'"), '',
		'... ha_alerts() says when it was delivered');
}
sleep 3;
is(scalar(notices(alertname => 'CrawlerHaDiskUsage')), 2, 'within its cooldown (3600 s): not sent again');

configure($_, 'disk_usage', threshold => 100) for $a, $b;
ok(wait_for(sub { notices(alertname => 'CrawlerHaDiskUsage', status => 'resolved') == 2 }),
	'back under the threshold: a resolved notice from each node');
my ($resolved) = notices(alertname => 'CrawlerHaDiskUsage', status => 'resolved', node => 'alerts_a');
like($resolved->{endsAt}, qr/^\d{4}-\d\d-\d\dT[0-9:.]+Z$/, '... with its end');
isnt($resolved->{endsAt}, '0001-01-01T00:00:00Z', '... a real one');
is($resolved->{fingerprint}, (notices(alertname => 'CrawlerHaDiskUsage', status => 'firing', node => 'alerts_a'))[0]{fingerprint},
	'... the same fingerprint as its firing notice');

# Flapping within the cooldown: recorded, not sent.
configure($a, 'disk_usage', threshold => 0);
ok($a->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM ha_events WHERE kind = 'alert' AND reason LIKE 'alert disk_usage firing: %'"),
	'firing again within the cooldown: a second HA event');
sleep 2;
is(scalar(notices(alertname => 'CrawlerHaDiskUsage', node => 'alerts_a')), 2, '... but no notification');
configure($a, 'disk_usage', threshold => 100);
ok($a->poll_query_until('postgres', "SELECT NOT active FROM ha_alerts() WHERE alert = 'disk_usage'"), '... resolved');
sleep 2;
is(scalar(notices(alertname => 'CrawlerHaDiskUsage', node => 'alerts_a')), 2,
	'... and no resolved notice for what was not announced');

# --- delivery failures: retried until the receiver takes it ---
webhook_fail($rx, 1);
configure($a, 'disk_usage', threshold => 0, cooldown => 0);
ok(wait_for(sub { grep({ $_->{answered} == 503 } webhook_requests($rx)) >= 4 }),
	'the receiver answers 503: the agent tries again (2 attempts per evaluation, every evaluation)');
is(scalar(notices(alertname => 'CrawlerHaDiskUsage', node => 'alerts_a', status => 'firing')), 1,
	'... nothing new delivered meanwhile');
is($a->safe_psql('postgres', "SELECT notified_at < now() - interval '1 second' FROM ha_alerts() WHERE alert = 'disk_usage'"),
	't', '... and ha_alerts() still shows the last delivery, not this one');
webhook_fail($rx, 0);
ok(wait_for(sub { notices(alertname => 'CrawlerHaDiskUsage', node => 'alerts_a', status => 'firing') >= 3 }),
	'the receiver back: delivered, and with a cooldown of 0 s repeated at each evaluation');
configure($a, 'disk_usage', threshold => 100, cooldown => 3600);
ok(wait_for(sub { notices(alertname => 'CrawlerHaDiskUsage', node => 'alerts_a', status => 'resolved') == 2 }),
	'... then resolved');

# --- a database down: one notification, from the node that sees it; and
# the lag that grows meanwhile (the HA worker's threshold, 2 s here) ---
$a->append_conf('postgresql.conf', "crawler_ha.replication_lag_threshold = '2s'\n");
$a->reload;
$b->stop('immediate');
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://lag.example/'], '{}')");
ok(wait_for(sub { notices(alertname => 'CrawlerHaDatabaseDown', status => 'firing') >= 1 }),
	'node b\'s PostgreSQL stopped: CrawlerHaDatabaseDown firing');
my @down = notices(alertname => 'CrawlerHaDatabaseDown', status => 'firing');
is($down[0]{labels}{node}, 'alerts_b', '... about node b');
is($down[0]{annotations}{reported_by}, 'alerts_a', '... sent by node a (the primary)');
is($down[0]{labels}{severity}, 'critical', '... critical');
like($down[0]{annotations}{summary}, qr/^alerts_b \(standby\) is unhealthy to alerts_a: \d+ health checks failed in a row/,
	'... its summary');
sleep 3;
is(scalar(notices(alertname => 'CrawlerHaDatabaseDown')), 1, '... once (its cooldown is 300 s; node b sends nothing)');
is($a->safe_psql('postgres', "SELECT count(*) FROM ha_events WHERE reason LIKE 'alert database_down firing: %'"), '1',
	'... an HA event on node a');
ok(wait_for(sub { notices(alertname => 'CrawlerHaReplicationLag', status => 'firing') == 1 }),
	'rows written while node b is away: CrawlerHaReplicationLag firing');
my ($lag) = notices(alertname => 'CrawlerHaReplicationLag', status => 'firing');
is($lag->{annotations}{reported_by}, 'alerts_a', '... sent by the primary');
like($lag->{annotations}{summary}, qr/^replication to \S+ is [0-9.]+ s behind \(\d+ bytes\), above 2 s$/,
	'... its summary, with the HA worker\'s threshold');
$b->start;
ok(wait_for(sub { notices(alertname => 'CrawlerHaDatabaseDown', status => 'resolved') == 1 }),
	'node b back: resolved, from node a');
ok(wait_for(sub { notices(alertname => 'CrawlerHaReplicationLag', status => 'resolved') == 1 }),
	'... and caught up: the lag resolved');
is(scalar(notices(alertname => 'CrawlerHaReplicationLag')), 2, '... one notice each way');
$a->append_conf('postgresql.conf', "crawler_ha.replication_lag_threshold = '60s'\n");
$a->reload;
ok($b->poll_query_until('postgres', "SELECT ok FROM ha_endpoint_check('replica')"), 'node b is a healthy standby again');

# --- a switchover: announced by the new primary alone ---
configure($_, 'switchover', threshold => 8) for $a, $b;
$a->safe_psql('postgres', 'SELECT ha_failover()');
ok($b->poll_query_until('postgres', "SELECT ok FROM ha_endpoint_check('primary')"), 'switchover: node b is the primary');
ok(wait_for(sub { notices(alertname => 'CrawlerHaSwitchover', status => 'firing') == 1 }),
	'CrawlerHaSwitchover firing');
my ($sw) = notices(alertname => 'CrawlerHaSwitchover', status => 'firing');
is_deeply([ @{ $sw->{labels} }{qw(node term severity)} ], [ 'alerts_b', '2', 'info' ],
	'... about node b in term 2, severity info');
is($sw->{annotations}{reported_by}, 'alerts_b', '... sent by the new primary');
ok(wait_for(sub { notices(alertname => 'CrawlerHaSwitchover', status => 'resolved') == 1 }),
	'... resolved once its window (8 s) has passed');
is(scalar(notices(alertname => 'CrawlerHaSwitchover')), 2, '... one firing and one resolved notice in all');
is(scalar(notices(alertname => 'CrawlerHaFailover')), 0, 'no CrawlerHaFailover for a switchover');

# --- consistency differences found by the primary's check ---
my $sid = $b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://alerts.example/'], '{}')");
ok($a->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_sessions WHERE id = $sid"), 'a session, replicated');
$a->safe_psql('postgres',
	"BEGIN READ WRITE; SET LOCAL session_replication_role = replica; DELETE FROM crawl_sessions WHERE id = $sid; COMMIT");
$b->safe_psql('postgres', 'SELECT * FROM ha_check_consistency()');
ok(wait_for(sub { notices(alertname => 'CrawlerHaConsistencyDifferences', status => 'firing') == 1 }),
	'the standby made to differ: CrawlerHaConsistencyDifferences firing');
my ($cd) = notices(alertname => 'CrawlerHaConsistencyDifferences', status => 'firing');
like($cd->{labels}{table}, qr/crawl_sessions$/, '... labelled with the table');
is($cd->{annotations}{reported_by}, 'alerts_b', '... sent by the primary');
$b->safe_psql('postgres', 'SELECT * FROM ha_sync()');
$b->safe_psql('postgres', 'SELECT * FROM ha_check_consistency()');
ok(wait_for(sub { notices(alertname => 'CrawlerHaConsistencyDifferences', status => 'resolved') == 1 }),
	'repaired and checked again: resolved');

# --- a failover: the primary's PostgreSQL gone, node a promotes itself ---
$b->stop('immediate');
ok($a->poll_query_until('postgres', "SELECT ok FROM ha_endpoint_check('primary')"), 'node b stopped: node a promoted');
ok(wait_for(sub { notices(alertname => 'CrawlerHaFailover', status => 'firing') == 1 }), 'CrawlerHaFailover firing');
my ($fo) = notices(alertname => 'CrawlerHaFailover', status => 'firing');
is_deeply([ @{ $fo->{labels} }{qw(node severity)} ], [ 'alerts_a', 'critical' ], '... about node a, critical');
is($fo->{annotations}{reported_by}, 'alerts_a', '... sent by the new primary');
ok($a->poll_query_until('postgres',
		"SELECT active FROM ha_alerts() WHERE alert = 'database_down' AND labels = '{\"node\": \"alerts_b\"}'"),
	'... and database_down about node b active on node a');
is(scalar(notices(alertname => 'CrawlerHaDatabaseDown', status => 'firing')), 1,
	'... not notified again: node b\'s earlier outage was less than its cooldown (300 s) ago');

# --- file sync behind: a blob node a's rows want and cannot fetch ---
configure($a, 'file_sync_behind', threshold => 60);
my $sha = 'f' x 64;
# An image recorded without its file (as by a worker whose upload never
# reached this node): the row wants the blob; the peer that could send it
# is down. Its wait is made an hour long.
my $fsid = $a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://sync.example/'], '{}')");
$a->safe_psql('postgres',
	"SELECT image_record($fsid, 'http://sync.example/a.jpg', '$sha', 'ff/ff/$sha.jpg', 10, 1, 1, 'jpeg', 'image/jpeg')");
$a->safe_psql('postgres',
	"BEGIN READ WRITE; UPDATE ha_blob_wanted SET wanted_since = now() - interval '1 hour' WHERE sha256 = '$sha'; COMMIT");
ok(wait_for(sub { notices(alertname => 'CrawlerHaFileSyncBehind', status => 'firing') == 1 }),
	'a blob missing for an hour (its peer down): CrawlerHaFileSyncBehind firing');
my ($fs) = notices(alertname => 'CrawlerHaFileSyncBehind', status => 'firing');
is($fs->{labels}{node}, 'alerts_a', '... about node a, from node a');
$a->safe_psql('postgres', "SELECT image_delete(id) FROM images WHERE sha256 = '$sha'");
ok(wait_for(sub { notices(alertname => 'CrawlerHaFileSyncBehind', status => 'resolved') == 1 }),
	'... its image deleted, the blob no longer wanted: resolved');

# --- the agent's session is read-write; a read-only one is refused ---
my ($rc, $out, $err) = $a->psql('postgres', 'SELECT * FROM ha_alert_evaluate(1)',
	extra_params => [ '-v', 'ON_ERROR_STOP=1' ], connstr => $a->connstr('postgres') . ' options=-cdefault_transaction_read_only=on');
like($err, qr/cannot run read-only/, 'ha_alert_evaluate() in a read-only session: refused (25006)');

my @all = webhook_requests($rx);
is(scalar(grep { !$_->{json} } @all), 0, 'every request the receiver got was JSON (' . scalar(@all) . ' requests)');
done_testing();
