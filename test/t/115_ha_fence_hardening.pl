# The write fence and the HA worker against what a client or an operator can
# do to them:
# - a client's own default_transaction_read_only (PGOPTIONS) does not lift
#   the server's read-only part of the fence;
# - a writer idle in its open transaction does not hold a demotion up;
# - a changed peer_conninfo is used from the next check on, not whenever the
#   old connection happens to fail;
# - a merge into a sync-mode primary whose writers wait, row locks held, for
#   the synchronous standby that is the merging node finishes: the merge
#   releases those waits instead of waiting for ever (ha_merge_rows alone
#   waits for them);
# - a rejoin that cannot proceed says why, and tries again by itself.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(sleep time);
use CrawlerHA::Test qw(ha_pair ha_conninfo);

my ($a, $b) = ha_pair();
$a->poll_query_until('postgres', "SELECT healthy FROM ha_status() WHERE NOT is_local") or die 'no peer';

# psql as a client that sets its own options; returns (exit code, stdout, stderr)
sub client_psql
{
	my ($node, $sql, $pgoptions) = @_;
	local $ENV{PGOPTIONS} = $pgoptions // '';
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	return ($rc, $out, $err);
}

# --- 1. the server's read-only setting holds whatever the client sets -----
my $client_off = '-c default_transaction_read_only=off';
my ($rc, $out, $err) = client_psql($a, "SELECT crawl_start(ARRAY['http://ro.test/1'])", $client_off);
is($rc, 0, 'the primary takes writes (a client setting read-only off changes nothing there)');

$a->safe_psql('postgres', 'ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf()');
$a->poll_query_until('postgres', 'SELECT NOT writable FROM ha_health()')
  or die 'ha_health() did not see the server turn read-only';
($rc, $out, $err) = client_psql($a, "SELECT crawl_start(ARRAY['http://ro.test/2'])", $client_off);
isnt($rc, 0, 'with the server read-only, a client that sets read-only off for itself is refused');
like($err, qr/25006.*does not accept writes/s, 'with SQLSTATE 25006 and the reason');
($rc, $out) = client_psql($a, 'SELECT writable FROM ha_health()', $client_off);
is($out, 'f', "ha_health() says not writable to that client too");
is($a->safe_psql('postgres', "SELECT count(*) FROM crawl_sessions WHERE seeds = ARRAY['http://ro.test/2']"),
	'0', 'and nothing was written');

$a->safe_psql('postgres', 'ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf()');
$a->poll_query_until('postgres', 'SELECT writable FROM ha_health()') or die 'not writable again';
($rc) = client_psql($a, "SELECT crawl_start(ARRAY['http://ro.test/3'])");
is($rc, 0, 'writes are taken again once the server setting is reset');

# --- 2. an idle open transaction does not stall a demotion -----------------
# A writer calls the write API in a transaction it leaves open: it holds
# ha_state in ROW EXCLUSIVE mode, which the demotion's EXCLUSIVE lock has to
# wait for.
my ($in, $hold_out, $hold_err) = ("BEGIN;\nSELECT crawl_start(ARRAY['http://hold.test/']);\n", '', '');
my $hold = IPC::Run::start(
	[ 'psql', '-X', '-q', '-h', $a->host, '-p', $a->port, '-d', 'postgres' ],
	'<', \$in, '>', \$hold_out, '2>', \$hold_err);
$hold->pump while length $in;
$a->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%hold.test%'")
  or die 'the holding transaction did not start';
pass('a writer sits idle in a transaction that called crawl_start()');

# The fence is that table lock, not a lock on the state row: the row is not
# locked by the writer's transaction, and a lock that would stop writes has
# to wait.
is( $a->safe_psql('postgres',
		"SELECT string_agg(l.mode, ',') FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
		  . "WHERE a.query LIKE '%hold.test%' AND a.pid <> pg_backend_pid() AND l.relation = 'ha_state'::regclass"),
	'RowExclusiveLock', "the open writer holds ha_state in ROW EXCLUSIVE mode, nothing stronger");
is( $a->safe_psql('postgres',
		"SELECT count(*) FROM ha_state s, pg_stat_activity a WHERE a.query LIKE '%hold.test%' "
		  . "AND a.pid <> pg_backend_pid() AND s.xmax = a.backend_xid"),
	'0', 'and has not locked its row');
my ($l_rc, $l_out, $l_err) =
  $a->psql('postgres', 'BEGIN; LOCK TABLE ha_state IN EXCLUSIVE MODE NOWAIT; ROLLBACK', timeout => 60);
like($l_err, qr/could not obtain lock on relation "ha_state"/, "the fence's EXCLUSIVE lock waits for it");

# Pausing alpha changes only the state row, which writes no longer lock: it
# is not held up by the open writer.
my ($p_rc, $p_out, $p_err) = $a->psql('postgres', 'SELECT ha_pause()', timeout => 60);
is($p_rc, 0, 'ha_pause() while a writer holds its transaction open: done, not held up') or diag($p_err);
is($a->safe_psql('postgres', 'SELECT paused FROM ha_state'), 't', 'and paused');
$a->safe_psql('postgres', 'SELECT ha_resume()');
is($a->safe_psql('postgres', 'SELECT paused FROM ha_state'), 'f', 'resumed');

# beta takes a newer term (as a forced failover would); alpha must step down
my $t0 = time();
$b->safe_psql('postgres', "SELECT ha_promote('test: newer term while alpha holds a transaction open')");
ok($a->poll_query_until('postgres', "SELECT role = 'standby' FROM ha_state"),
	'alpha steps down although a writer holds its transaction open');
my $took = time() - $t0;
cmp_ok($took, '<', 30, sprintf('the demotion did not wait for the open transaction (%.1f s)', $took));
is($a->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%hold.test%' AND pid <> pg_backend_pid()"),
	'0', "the idle writer's session was ended");
eval { $hold->kill_kill };
like($a->safe_psql('postgres', "SELECT string_agg(reason, ' | ') FROM ha_events WHERE kind = 'demotion'"),
	qr/client sessions ended/, 'the demotion event says sessions were ended');

ok($a->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state"),
	'alpha rejoins as the standby of beta');

# --- a rejoin that cannot proceed says why, and tries again by itself ------
# beta takes the next term while alpha is paused (it steps down all the
# same, but does not rejoin by itself), and the slot beta made for alpha is
# dropped: alpha's rejoin cannot proceed
$a->safe_psql('postgres', "SELECT ha_failover()");
ok($a->poll_query_until('postgres', "SELECT role = 'primary' FROM ha_state"), 'alpha is the primary again (switchover)');
$a->safe_psql('postgres', 'SELECT ha_pause()');
$b->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state") or die 'beta did not follow';
my $a_id = $a->safe_psql('postgres', 'SELECT node_id FROM ha_node');
$b->safe_psql('postgres', "SELECT ha_promote('test: a newer term while alpha is paused')");
$a->poll_query_until('postgres', "SELECT role = 'standby' AND needs_rejoin FROM ha_state") or die 'alpha did not step down';
$b->safe_psql('postgres', "SELECT pg_drop_replication_slot('crawler_ha_node_$a_id')");
$a->safe_psql('postgres', 'SELECT ha_resume()');
ok( $a->poll_query_until('postgres',
		"SELECT detail ~ 'rejoin refused: .*no replication slot crawler_ha_node_$a_id .*attempt [2-9]' "
		  . "FROM ha_status() WHERE is_local"),
	'a refused rejoin is in ha_status() with its reason, and is attempted again');
is($a->safe_psql('postgres',
		"SELECT count(*) FROM ha_events WHERE kind = 'rejoin_refused' AND reason ~ 'no replication slot'"),
	'1', 'ha_events has the refusal once, not once per attempt');
$b->safe_psql('postgres', "SELECT pg_create_logical_replication_slot('crawler_ha_node_$a_id', 'pgoutput')");
ok($a->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state"),
	'once the slot is back, alpha rejoins as the standby of beta by itself');
unlike($a->safe_psql('postgres', "SELECT detail FROM ha_status() WHERE is_local"), qr/rejoin refused/,
	'and ha_status() no longer reports a refusal');

# --- 3. a changed peer_conninfo is used at once ----------------------------
my $dead_port = PostgreSQL::Test::Cluster::get_free_port();
$b->append_conf('postgresql.conf',
	"crawler_ha.peer_conninfo = 'host=" . $a->host . " port=$dead_port dbname=postgres connect_timeout=1'\n");
$b->reload;
ok( $b->poll_query_until('postgres',
		"SELECT NOT healthy AND consecutive_failures >= 3 FROM ha_status() WHERE NOT is_local AND node_name <> 'witness'"),
	'after a reload pointing peer_conninfo elsewhere, the worker checks the new peer (and fails), '
	  . 'instead of reusing its open connection to the old one');
like($b->safe_psql('postgres', "SELECT detail FROM ha_status() WHERE NOT is_local"),
	qr/$dead_port|connect|refused/i, 'the peer row reports the new connection error');
$b->append_conf('postgresql.conf', "crawler_ha.peer_conninfo = '" . ha_conninfo($a, $b) . "'\n");
$b->reload;
ok($b->poll_query_until('postgres', "SELECT healthy FROM ha_status() WHERE NOT is_local"),
	'pointed back, the peer is healthy again');

# --- 4. a merge is not held up by commits waiting for the merging standby --
$_->append_conf('postgresql.conf', "crawler_ha.replication_mode = 'sync'\n") for ($a, $b);
$_->reload for ($a, $b);
$b->poll_query_until('postgres',
	"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'crawler_ha_sub'")
  or die 'alpha is not the synchronous standby';
my $sid = $b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://sync.test/'])");
my $rows = $b->safe_psql('postgres', "SELECT jsonb_agg(to_jsonb(c)) FROM crawl_sessions c WHERE id = $sid");
# the same row as a rejoining node sends it: records, and the columns they were built for
my $recs = $b->safe_psql('postgres', "SELECT array_agg(c)::text FROM crawl_sessions c WHERE id = $sid");
my $cols = q{ARRAY(SELECT e ->> 'name' FROM jsonb_array_elements(ha_merge_columns() -> 'crawl_sessions') e)};
$a->stop('immediate');

# a writer commits, then waits for the synchronous standby with the session
# row still locked (crawl_enqueue counts the URL in the session row)
my ($w_out, $w_err) = ('', '');
my $writer = IPC::Run::start(
	[
		'psql', '-X', '-h', $b->host, '-p', $b->port, '-d', 'postgres', '-c',
		"SELECT crawl_enqueue($sid, ARRAY['http://sync.test/a'], 1, 'page')"
	],
	'>', \$w_out, '2>', \$w_err);
$b->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
  or die 'the writer does not wait for the synchronous standby';
pass('a writer waits for the absent synchronous standby, holding the session row');

my ($mrc, $mout, $merr) = ('', '', '');
$mrc = $b->psql('postgres',
	"SET statement_timeout = '3s'; SELECT ha_merge_rows('crawl_sessions', '$rows'::jsonb, '[]', 'alpha', 1)",
	stdout => \$mout, stderr => \$merr);
like($merr, qr/statement timeout/, 'ha_merge_rows() alone waits for that lock (stopped by a 3 s statement_timeout)');

$t0 = time();
my $res = $b->safe_psql('postgres',
	"SELECT ha_merge_receive('crawl_sessions', \$r\$$recs\$r\$, $cols, '[]', 'alpha', 1)");
my $merge_s = time() - $t0;
like($res, qr/"kept": 1/, "ha_merge_receive() gets the row in spite of the wait that held it: $res");
cmp_ok($merge_s, '<', 20, sprintf('and finishes (%.1f s)', $merge_s));
$writer->finish;
like($w_err, qr/canceling wait for synchronous replication/,
	'the writer gets PostgreSQL\'s warning: committed here, not acknowledged by a standby');
is($b->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE url = 'http://sync.test/a'"), '1',
	'its write is kept on the primary');
# freed by beta's HA worker, which cancels the waits ahead of a waiting
# merge, or by the merge itself once a lock wait times out
like($b->safe_psql('postgres', "SELECT string_agg(reason, ' | ') FROM ha_events WHERE kind = 'sync_wait_cancelled'"),
	qr/1 (such waits cancelled|commits waiting for the synchronous standby held up)/,
	'a sync_wait_cancelled event says what happened');

# bad input to the new function
for my $case (
	[ "SELECT ha_merge_receive('crawl_sessions', '{}', $cols, '[]', 'x', 1, -1)",    '22023' ],
	[ "SELECT ha_merge_receive('crawl_sessions', '{}', $cols, '[]', 'x', 1, NULL)",  '22023' ],
	[ "SELECT ha_merge_receive('crawl_sessions', '{}', $cols, '[]', 'x', 1, 10, 5)", '22023' ],
	[ "SELECT ha_merge_receive('pg_class', '{}', '{}')",                             '22023' ],
	[ "SELECT ha_merge_receive('crawl_sessions', '{}', '{id}')",                     '42804' ],
	[ "SELECT ha_merge_receive(NULL, NULL, NULL)",                                   '22004' ])
{
	my ($q, $code) = @$case;
	my ($e1, $e2) = ('', '');
	$b->psql('postgres', $q, stdout => \$e1, stderr => \$e2, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($e2, qr/$code/, "$q: SQLSTATE $code");
}

$a->start;
$b->poll_query_until('postgres',
	"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'crawler_ha_sub'")
  or die 'alpha did not come back as the synchronous standby';
$a->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_frontier WHERE url = 'http://sync.test/a'")
  or die 'the kept write did not reach alpha';
pass('alpha, back, receives the write whose wait was cancelled');

done_testing();
