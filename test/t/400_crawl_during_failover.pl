# Where the HA layer and the crawler meet: a crawl of the sample site through
# a multi-host read-write conninfo, the primary killed (kill -9) halfway. The
# standby promotes, the worker reconnects and retries, and the crawl completes
# on the new primary with every image recorded exactly once and no URL left
# unfinished.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use IPC::Run;
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair ha_multihost nginx_serve sample_site);

my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
plan skip_all => 'nginx is not installed' unless -x '/usr/sbin/nginx';
plan skip_all => 'the vips command (libvips-tools) is not installed'
  unless grep { -x "$_/vips" } split /:/, $ENV{PATH};
my $root = "$FindBin::RealBin/../..";

my $site = tempdir(CLEANUP => 1) . '/site';
eval { sample_site($site); 1 } or BAIL_OUT("the sample site: $@");
my $web = nginx_serve($site);
push @started, $web->{harness};
my $port = $web->{port};
my $base = "http://127.0.0.1:$port";

my ($p, $s) = ha_pair(names => [ 'crawl_p', 'crawl_s' ]);
$_->safe_psql('postgres', 'BEGIN READ WRITE; CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer; COMMIT') for ($p, $s);
my $db = ha_multihost($p, $s) . ' user=crawler';
my $storage = tempdir(CLEANUP => 1);

# A politeness delay keeps the crawl long enough to fail over in the middle.
my ($out, $err) = ('', '');
my $crawl = IPC::Run::start(
	[ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', "$base/",
		'--delay-ms', '60', '--per-host', '4', '--max-depth', '30' ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(600));
push @started, $crawl;

ok($p->poll_query_until('postgres',
		"SELECT count(*) FILTER (WHERE state = 'done') * 2 >= count(*) AND count(*) > 20 FROM crawl_frontier"),
	'the crawl is halfway on the primary');
my $done_before = $p->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE state = 'done'");
$p->stop('immediate');
ok($s->poll_query_until('postgres', 'SELECT writable FROM ha_health()'), 'the standby promoted itself');

$crawl->finish;
is($? >> 8, 0, 'the crawl completes after the failover') or diag $err;
like($err, qr/reconnect/i, 'the worker reconnected to the new primary');
note $out;

my $sid = $s->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');
cmp_ok($s->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE state = 'done'"), '>', $done_before,
	'work went on on the new primary');
is($s->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND state IN ('queued', 'leased')"),
	'0', 'no URL left unfinished');
open my $fx, '<', "$site/EXPECTED-IMAGES" or die $!;
my @expected = sort grep { length && !/^#/ } map { chomp; $_ } <$fx>;
close $fx;
my @found = sort split /\n/, $s->safe_psql('postgres',
	"SELECT substr(url, length('$base') + 1) FROM crawl_frontier WHERE session_id = $sid AND kind = 'image'");
is_deeply(\@found, \@expected, 'every image of the site was found');
is($s->safe_psql('postgres',
		"SELECT count(*) FROM crawl_frontier f WHERE f.session_id = $sid AND f.kind = 'image' AND f.state = 'done'
		    AND NOT EXISTS (SELECT 1 FROM images i WHERE i.url = f.url)"),
	'0', 'every image item done has its image row (nothing completed was lost)');
is($s->safe_psql('postgres', "SELECT count(*) - count(DISTINCT url) FROM images"), '0', 'no image recorded twice');
is($s->safe_psql('postgres', "SELECT images_stored FROM crawl_session_totals WHERE session_id = $sid"),
	$s->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid"),
	'the session counter counted each image once');
my $rows = $s->safe_psql('postgres', 'SELECT count(*) FROM images');
my $files = () = grep { -f } glob("$storage/*/*/*");
cmp_ok($files, '<=', $rows, "files on disk ($files) never outnumber image rows ($rows): no orphan from a retried write");

$web->{harness}->kill_kill;
$s->stop;
done_testing();
