# The crawl command's fixed costs around the crawl itself:
# - its start is one transaction: crawl_start(), the session settings and
#   the first claim, queued while the connection is made, are sent and
#   committed together, so the seed is leased with crawl_start's answer
#   (the server's log, one virtual transaction id for the three);
# - its end: the summary and --stats-json are complete although the process
#   ends without its teardown once the session is over, and the server
#   sessions were closed by the worker (Terminate), not cut by its exit;
# - a running service (crawler-worker run), idle, hears of a session started
#   from SQL at once: crawl_start() notifies at commit the channel its
#   claims' connection LISTENs on, again after that connection was cut.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use IPC::Run;
use Time::HiRes ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node);

my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
my $root = "$FindBin::RealBin/../..";

my $site = tempdir(CLEANUP => 1) . '/deep';
system("$root/scripts/gen-sample-site", '--shape', 'deep', $site) == 0 or die 'gen-sample-site failed';
my ($ds_out, $ds_err) = ('', '');
my $ds = IPC::Run::start([ "$root/scripts/delay-server", '--root', $site, '--delay-ms', '5' ],
	'>', \$ds_out, '2>', \$ds_err, IPC::Run::timeout(600));
push @started, $ds;
$ds->pump until $ds_out =~ /listening on (\S+)/;
my $base = $1;
$base =~ s{/$}{};

# Every statement logged with its backend and virtual transaction id; a
# session's end says whether the client ended it (log_disconnections).
my $node = new_node('startend', extra_conf => <<'CONF');
log_statement = 'all'
log_line_prefix = '%m [%p] vxid=%v '
log_connections = on
log_disconnections = on
log_min_messages = debug1
CONF
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';

my $log_from = -s $node->logfile;
my $storage = tempdir(CLEANUP => 1);
my $stats = tempdir(CLEANUP => 1) . '/stats.json';
my ($out, $err) = ('', '');
IPC::Run::run([ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', "$base/", '--no-robots',
		'--delay-ms', '0', '--per-host', '16', '--concurrency', '16', '--max-depth', '20',
		'--stats-json', $stats ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(120));
is($? >> 8, 0, 'the crawl succeeds') or diag $err;
my $sid = $node->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');
is($node->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid"),
	'120', 'every image has its row');

# ---- The start: one transaction ----
my $log = slurp_file($node->logfile, $log_from);
my ($pid, $vxid) = $log =~ /\[(\d+)\] vxid=(\S+) LOG:  execute crawl_start:/;
ok(defined $pid, 'crawl_start was called') or diag $log;
my @first = grep { /\[$pid\] vxid=\Q$vxid\E LOG:  execute / } split /\n/, $log;
my @names = map { /execute (\S+?):/ ? $1 : () } @first;
is_deeply([ grep { $_ ne '<unnamed>' } @names ], [ 'crawl_start', 'session_settings', 'crawl_claim' ],
	'crawl_start, the settings and the first claim share one transaction')
  or diag join("\n", @first);
is(scalar(grep { $_ eq '<unnamed>' } @names), 2, '... between one BEGIN and one COMMIT')
  or diag join("\n", @first);
is($node->safe_psql('postgres',
		"SELECT attempts FROM crawl_frontier WHERE session_id = $sid AND depth = 0"),
	'1', 'the seed was leased once');

# ---- The end: output complete, server sessions closed by the worker ----
like($out, qr/session $sid: finished in/, 'the summary is printed') or diag $out;
like(slurp_file($stats), qr/\}\s*\z/, '--stats-json is written whole');
# (A backend logs its end as it exits, just after the worker's.)
my (@workers, %ended);
for (1 .. 100)
{
	$log = slurp_file($node->logfile, $log_from);
	@workers = ($log =~ /\[(\d+)\] vxid=\S* LOG:  connection authorized: user=crawler database=/g);
	%ended = map { $_ => 1 } ($log =~ /\[(\d+)\] vxid=\S* LOG:  disconnection: /g);
	last unless grep { !$ended{$_} } @workers;
	Time::HiRes::usleep(100_000);
}
ok(@workers >= 2 && !grep({ !$ended{$_} } @workers), 'every worker connection was ended (' . scalar(@workers) . ')')
  or diag $log;
unlike($log, qr/unexpected EOF on client connection/, 'by the worker, not by its exit');

# ---- A running service is told of new sessions ----
{
	my ($svc_out, $svc_err) = ('', '');
	my $svc_storage = tempdir(CLEANUP => 1);
	my $svc = IPC::Run::start([ $worker, 'run', '--db', $db, '--storage', $svc_storage, '--worker-id', 'svc',
			'--concurrency', '8', '--host-connections', '8', '--log-level', 'debug' ],
		'>', \$svc_out, '2>', \$svc_err, IPC::Run::timeout(120));
	push @started, $svc;
	my $listens = sub { my @l = (slurp_file($node->logfile, $log_from) =~ /statement: LISTEN crawler_ha_work/g); scalar @l };
	my $announced = sub { my @l = ($svc_err =~ /new work announced: claiming now/g); scalar @l };
	for (1 .. 100)
	{
		$svc->pump_nb;
		last if $listens->() >= 1;
		Time::HiRes::usleep(100_000);
	}
	is($listens->(), 1, 'the idle service LISTENs on crawler_ha_work');
	# idle long enough for its claims to back off to their longest wait
	Time::HiRes::usleep(1_500_000);
	$svc->pump_nb;
	is($announced->(), 0, 'nothing was announced before a session started');

	my $opts = '{"delay_ms": 0, "per_host": 16, "max_depth": 20, "robots": false}';
	my $s1 = $node->safe_psql('postgres', "SELECT crawl_start(ARRAY['$base/c0/1.html'], '$opts')");
	ok($node->poll_query_until('postgres', "SELECT status = 'finished' FROM crawl_status($s1)"),
		'the service crawls the session started from SQL');
	$svc->pump_nb;
	is($announced->(), 1, 'crawl_start() was announced to it, and it claimed at once') or diag $svc_err;
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM crawl_frontier WHERE session_id = $s1 AND kind = 'image' AND state = 'done'"),
		'30', "every image of the session's chain is done");

	# Its connections cut (a restart, a failover): the claims' connection,
	# made again, listens again.
	$node->safe_psql('postgres', "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'crawler'");
	for (1 .. 100)
	{
		$svc->pump_nb;
		last if $listens->() >= 2;
		Time::HiRes::usleep(100_000);
	}
	is($listens->(), 2, 'after its connections were cut, the service LISTENs again');
	my $s2 = $node->safe_psql('postgres', "SELECT crawl_start(ARRAY['$base/c1/1.html'], '$opts')");
	ok($node->poll_query_until('postgres', "SELECT status = 'finished' FROM crawl_status($s2)"),
		'the service crawls a second session');
	$svc->pump_nb;
	is($announced->(), 2, 'which was announced to it on the new connection') or diag $svc_err;

	$svc->signal('TERM');
	$svc->finish;
	is($svc->full_result(0), 0, 'the service exits 0 on SIGTERM') or diag $svc_err;
}

$ds->kill_kill;
done_testing();
