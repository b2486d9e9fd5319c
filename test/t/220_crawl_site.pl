# A real site: ../shared/sites/diveintohtml5 served by nginx (run as this
# unprivileged user on a free loopback port) and crawled by crawler-worker.
# The set of image URLs found equals the fixture list that a careful reading
# of the HTML gives (test/fixtures/crawler/diveintohtml5-images.txt, made by
# test/fixtures/crawler/make-site-image-list), text inside <code> is never an
# image, and every image fetched is recorded once with its file in the store.
use strict;
use warnings;
use FindBin;
use File::Find;
use File::Temp qw(tempdir);
use IPC::Run;
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node shared_dir nginx_serve);

# Servers and workers started here are killed at exit, also when a test dies.
my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
my $shared = shared_dir();
my $site = $shared ? "$shared/sites/diveintohtml5" : undef;
plan skip_all => 'the site ../shared/sites/diveintohtml5 is absent (CRAWLER_HA_SHARED unset or wrong): nothing to crawl'
  unless $site && -f "$site/index.html";
my $nginx = -x '/usr/sbin/nginx' ? '/usr/sbin/nginx' : `command -v nginx`;
chomp $nginx;
plan skip_all => 'nginx is not installed' unless $nginx && -x $nginx;
my $root = "$FindBin::RealBin/../..";

# nginx with its own config, pid, logs and temp paths
my $web = nginx_serve($site);
push @started, $web->{harness};
my $port = $web->{port};
my $base = "http://127.0.0.1:$port";

my $node = new_node('site');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';
my $storage = tempdir(CLEANUP => 1);

my ($out, $err) = ('', '');
IPC::Run::run([ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', "$base/",
		'--delay-ms', '0', '--per-host', '16', '--concurrency', '16' ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(300));
is($? >> 8, 0, 'the crawl of the site succeeds') or diag $err;
note $out;
my $sid = $node->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');

open my $fx, '<', "$root/test/fixtures/crawler/diveintohtml5-images.txt" or die $!;
my @expected = sort grep { length && !/^#/ } map { chomp; $_ } <$fx>;
close $fx;
my @found = sort split /\n/, $node->safe_psql('postgres',
	"SELECT substr(url, length('$base') + 1) FROM crawl_frontier WHERE session_id = $sid AND kind = 'image'");
is(scalar @found, scalar @expected, 'as many images found as the fixture lists (' . scalar(@expected) . ')');
my %f = map { $_ => 1 } @found;
my %e = map { $_ => 1 } @expected;
my @missing = grep { !$f{$_} } @expected;
my @extra = grep { !$e{$_} } @found;
is_deeply(\@missing, [], 'no image of the fixture is missed');
is_deeply(\@extra, [], 'nothing beyond the fixture is taken for an image');
ok(!grep({ m{images/cat\.png} } @found), '"&lt;img src=images/cat.png&gt;" shown inside <code> is not an image');

# every image that exists on disk is recorded with its file
my $done = $node->safe_psql('postgres',
	"SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND kind = 'image' AND state = 'done'");
my $rows = $node->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid");
is($rows, $done, "every fetched image has one row ($rows)");
my $missing_files = 0;
for my $p (split /\n/, $node->safe_psql('postgres', "SELECT file_path FROM images WHERE session_id = $sid"))
{
	$missing_files++ unless -f "$storage/$p";
}
is($missing_files, 0, 'every recorded file is in the store');
my @tmp;
find(sub { push @tmp, $File::Find::name if -f $_ }, "$storage/.tmp");
is(scalar @tmp, 0, 'no temporary file left');
my $failed_images = $node->safe_psql('postgres',
	"SELECT string_agg(url || ': ' || last_error, E'\\n') FROM crawl_frontier WHERE session_id = $sid AND kind = 'image' AND state = 'failed'");
my $absent = 0;
for my $line (split /\n/, $failed_images)
{
	my ($u) = $line =~ /^\Q$base\E(\S+):/;
	$absent++ if $u && !-e "$site$u";
}
is($absent, scalar(grep { length } split /\n/, $failed_images), 'only images absent from the site failed')
  or diag $failed_images;
is($node->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid AND (width <= 0 OR height <= 0 OR format IS NULL)"),
	'0', 'every image has a format and a size from its header');

$web->{harness}->kill_kill;
done_testing();
