# The project's own sample site (scripts/gen-sample-site, the one `make demo`
# crawls): every way of referencing an image it uses is found (the generator's
# EXPECTED-IMAGES list), images of all nine formats are recorded with their
# header's size, the same bytes under two URLs make one file and two rows, an
# HTML page named .jpg is a recorded error, and text is never markup.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use IPC::Run;
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node nginx_serve sample_site);

# Servers and workers started here are killed at exit, also when a test dies.
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

my $node = new_node('sample');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';
my $storage = tempdir(CLEANUP => 1);
my ($out, $err) = ('', '');
IPC::Run::run([ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', "$base/",
		'--delay-ms', '0', '--per-host', '8', '--max-depth', '30' ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(300));
is($? >> 8, 0, 'the crawl of the sample site succeeds') or diag $err;
note $out;
my $sid = $node->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');

open my $fx, '<', "$site/EXPECTED-IMAGES" or die $!;
my @expected = sort grep { length && !/^#/ } map { chomp; $_ } <$fx>;
close $fx;
my @found = sort split /\n/, $node->safe_psql('postgres',
	"SELECT substr(url, length('$base') + 1) FROM crawl_frontier WHERE session_id = $sid AND kind = 'image'");
is_deeply(\@found, \@expected, 'exactly the images the generator put in, by every construct');
is($node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND kind = 'page' AND state = 'done'"),
	'39', 'all 37 pages (as / and /index.html) and the linked stylesheet are fetched, the depth-20 chain included');
is($node->safe_psql('postgres', "SELECT string_agg(DISTINCT format, ' ' ORDER BY format) FROM images WHERE session_id = $sid"),
	'avif bmp gif heic ico jpeg png svg webp', 'images of all nine formats are recorded');
is($node->safe_psql('postgres', "SELECT width || 'x' || height FROM images WHERE session_id = $sid AND url = '$base/img/og-card.jpg'"),
	'1200x630', 'width and height come from the header');
is($node->safe_psql('postgres',
		"SELECT count(*) || ' rows, ' || count(DISTINCT file_path) || ' file' FROM images WHERE session_id = $sid AND url IN ('$base/img/logo.png', '$base/img/logo-copy.png')"),
	'2 rows, 1 file', 'the same bytes under two URLs: two rows, one file');
like($node->safe_psql('postgres', "SELECT last_error FROM crawl_frontier WHERE session_id = $sid AND url = '$base/img/not-really.jpg'"),
	qr/not an image: the content is HTML text/, 'an HTML page named .jpg is a recorded error');
ok(!grep({ /in-(code|script|textarea|comment)|typed|commented-out|not-an-image|fonts|\.js$/ } @found),
	'text, scripts, comments, fonts and form values are never images');

$web->{harness}->kill_kill;
done_testing();
