# Stopping and surviving the database:
# 1. SIGTERM while transfers are running: the worker exits promptly with
#    status 0 and gives its leases back (crawl_release): nothing stays leased.
# 2. The database restarts in the middle of a crawl: the worker reconnects,
#    sends again what was not acknowledged, and the crawl completes with every
#    URL done or failed once and every image recorded exactly once.
use strict;
use warnings;
use FindBin;
use File::Find;
use File::Temp qw(tempdir);
use IPC::Run;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node shared_dir);

# Servers and workers started here are killed at exit, also when a test dies.
my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
my $root = "$FindBin::RealBin/../..";

my $node = new_node('stop');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';

# --- 1. SIGTERM returns the leases --------------------------------------
my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($fs_out, $fs_err) = ('', '');
my $fs = IPC::Run::start([ "$root/scripts/fault-server", '--port', $port ],
	'>', \$fs_out, '2>', \$fs_err, IPC::Run::timeout(600));
push @started, $fs;
$fs->pump until $fs_out =~ /listening on (\S+)/;
my $fbase = $1;

my $sid = $node->safe_psql('postgres',
	"SELECT crawl_start(ARRAY['${fbase}stall.jpg', '${fbase}slow.html'], "
	  . "'{\"delay_ms\": 0, \"per_host\": 8, \"robots\": false}')");
my ($out, $err) = ('', '');
my $h = IPC::Run::start([ $worker, 'run', '--db', $db, '--storage', tempdir(CLEANUP => 1),
		'--worker-id', 'stopper', '--timeout-ms', '60000', '--low-speed-seconds', '60' ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(120));
push @started, $h;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM crawl_frontier WHERE session_id = $sid AND state = 'leased' AND lease_owner = 'stopper'"),
	'the worker leases the two slow URLs');
sleep 1;    # the transfers are under way
my $t0 = time;
$h->signal('TERM');
$h->finish;
my $took = time - $t0;
is($h->full_result(0), 0, 'SIGTERM: exit status 0') or diag $err;
ok($took < 10, sprintf('the worker stopped in %.1f s, not after the transfers', $took));
like($err, qr/returning 2 lease\(s\)/, 'it says it returns its leases');
is($node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND state = 'queued'"),
	'2', 'the two URLs are queued again, for any worker');
$node->safe_psql('postgres', "SELECT crawl_stop($sid)");
$fs->kill_kill;

# --- 2. the database restarts mid-crawl ----------------------------------
SKIP:
{
	my $shared = shared_dir();
	my $site = $shared ? "$shared/sites/diveintohtml5" : undef;
	skip 'the site ../shared/sites/diveintohtml5 is absent: no crawl to interrupt', 8
	  unless $site && -f "$site/index.html" && -x '/usr/sbin/nginx';
	my $nport = PostgreSQL::Test::Cluster::get_free_port();
	my $ngdir = tempdir(CLEANUP => 1);
	open my $cf, '>', "$ngdir/nginx.conf" or die $!;
	print $cf <<"CONF";
worker_processes 1;
daemon off;
pid $ngdir/nginx.pid;
error_log $ngdir/error.log;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  client_body_temp_path $ngdir/body; proxy_temp_path $ngdir/proxy;
  fastcgi_temp_path $ngdir/fastcgi; uwsgi_temp_path $ngdir/uwsgi; scgi_temp_path $ngdir/scgi;
  server { listen 127.0.0.1:$nport; root $site; }
}
CONF
	close $cf;
	my $ng = IPC::Run::start([ '/usr/sbin/nginx', '-e', 'stderr', '-p', $ngdir, '-c', "$ngdir/nginx.conf" ],
		'>', \my $ng_out, '2>', \my $ng_err);
	push @started, $ng;
	for (1 .. 50)
	{
		last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$nport", Timeout => 1);
		sleep 0.1;
	}
	my $storage = tempdir(CLEANUP => 1);
	($out, $err) = ('', '');
	# one fetch per 40 ms: about 8 s for the site's ~185 URLs
	my $crawl = IPC::Run::start([ $worker, 'crawl', '--db', $db, '--storage', $storage,
			'--seed', "http://127.0.0.1:$nport/", '--delay-ms', '40', '--per-host', '1', '--no-robots' ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(300));
	push @started, $crawl;
	my $sid2;
	$node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM crawl_session_totals WHERE session_id > $sid AND images_stored >= 10")
	  or die 'the crawl did not start';
	$sid2 = $node->safe_psql('postgres', "SELECT max(id) FROM crawl_sessions");
	$node->restart(fail_ok => 0);
	pass('the database restarted in the middle of the crawl');
	$crawl->finish;
	is($crawl->full_result(0), 0, 'the crawl still completes with exit status 0') or diag $err;
	like($err, qr/database: reconnected/, 'the worker reconnected');
	is($node->safe_psql('postgres', "SELECT status FROM crawl_sessions WHERE id = $sid2"), 'finished', 'the session is finished');
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM crawl_frontier WHERE session_id = $sid2 AND state NOT IN ('done', 'failed')"),
		'0', 'every URL ended done or failed');
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM crawl_frontier WHERE session_id = $sid2 AND state = 'done' AND kind = 'image'"),
		$node->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid2"),
		'every image fetched is recorded exactly once');
	my $images = $node->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid2");
	ok($images >= 100, "all the site's images are there ($images)");
	my $nofile = 0;
	$nofile += !-f "$storage/$_" for split /\n/, $node->safe_psql('postgres', "SELECT file_path FROM images WHERE session_id = $sid2");
	is($nofile, 0, 'every recorded file is in the store');
	$ng->kill_kill;
}

done_testing();
