# Results the database refuses do not stop the worker. In the middle of a
# crawl of 2,000 images, the leases the worker holds are taken over by
# another worker (what an expiry and a new claim do): their image_record
# calls fail with SQLSTATE 55000 inside batches of other results; each such
# batch is rolled back and sent again call by call, the refusals are logged,
# no connection stays in a failed transaction, and the crawl completes once
# the taken-over leases expire and come back, every image recorded once.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use IPC::Run;
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node nginx_serve);

# Servers and workers started here are killed at exit, also when a test dies.
my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
plan skip_all => 'nginx is not installed' unless -x '/usr/sbin/nginx';
my $root = "$FindBin::RealBin/../..";

my $site = tempdir(CLEANUP => 1) . '/site';
system("$root/scripts/gen-sample-site", '--bench-images', '2000', '--bench-pages', '20', $site) == 0
  or BAIL_OUT('gen-sample-site failed');
my $web = nginx_serve($site);
push @started, $web->{harness};
my $port = $web->{port};

my $node = new_node('refused');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';
my $sid = $node->safe_psql('postgres',
	"SELECT crawl_start(ARRAY['http://127.0.0.1:$port/'], '{\"delay_ms\": 0, \"per_host\": 64, \"robots\": false}')");

my ($out, $err) = ('', '');
my $h = IPC::Run::start([ $worker, 'run', '--db', $db, '--storage', tempdir(CLEANUP => 1),
		'--worker-id', 'w', '--concurrency', '16', '--lease-seconds', '4' ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(300));
push @started, $h;
ok($node->poll_query_until('postgres', "SELECT count(*) >= 300 FROM images WHERE session_id = $sid"),
	'the crawl is under way');
my $taken = 0;
for (1 .. 20)
{
	$taken += $node->safe_psql('postgres',
		"WITH t AS (UPDATE crawl_frontier SET lease_owner = 'other-worker' WHERE id IN "
		  . "(SELECT id FROM crawl_frontier WHERE session_id = $sid AND state = 'leased' AND lease_owner = 'w' "
		  . "FOR UPDATE SKIP LOCKED) RETURNING 1) SELECT count(*) FROM t");
	select undef, undef, undef, 0.05;
}
note "$taken leases taken over";
ok($taken > 0, 'some leases were taken over while their images were being fetched');
ok($node->poll_query_until('postgres', "SELECT status = 'finished' FROM crawl_status($sid)"),
	'the session still finishes (the taken-over leases expire and are fetched again)');
$h->signal('TERM');
$h->finish;
is($h->full_result(0), 0, 'the worker stops cleanly') or diag substr($err, -3000);
like($err, qr/image_record for item \d+: .*\[55000\]/, 'the refused results are logged with their SQLSTATE');
is($node->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid"), '2000',
	'every image is recorded, once');
is($node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND state <> 'done'"),
	'0', 'every URL is done');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'crawler-worker' AND state LIKE 'idle in transaction%'"),
	'0', 'no connection was left inside a transaction');

$web->{harness}->kill_kill;
done_testing();
