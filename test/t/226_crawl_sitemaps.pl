# Sitemaps on real nginx, against one PostgreSQL node for every case:
# - robots.txt names a sitemap index, which names two sitemaps (one of them
#   gzipped, served as a plain .gz file), listing pages no page links to and
#   images with image:image; the crawl finds, fetches and records them, at
#   the depth of a link from the root, the images found on their pages;
# - a page and an image a sitemap lists outside the crawl's domains are
#   never queued nor fetched;
# - robots.txt also names a broken sitemap: its URL fails (not_parsed) and
#   the crawl still completes;
# - --no-sitemaps fetches no sitemap; --max-depth 0 queues none (their pages
#   would be too deep); --sitemap URL starts from a sitemap even with
#   --no-robots (no robots.txt read at all).
# The site is made here: a few HTML pages, 1x1 PNGs of distinct colours.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use File::Path qw(make_path);
use IPC::Run;
use JSON::PP;
use Compress::Zlib qw(compress crc32);
use IO::Compress::Gzip qw(gzip $GzipError);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node nginx_serve);

my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;

# --- the site -----------------------------------------------------------------
my $site = tempdir(CLEANUP => 1);
my $nginx = nginx_serve($site);
push @started, $nginx->{harness};
my $base = $nginx->{base};
# Another name of the same server: a host outside the crawl's domains.
(my $outside = $base) =~ s/127\.0\.0\.1/localhost/;

sub put
{
	my ($path, $content) = @_;
	(my $dir = "$site$path") =~ s{/[^/]*$}{};
	make_path($dir);
	open my $fh, '>:raw', "$site$path" or die "$path: $!";
	print $fh $content;
	close $fh;
}

# A 1x1 RGB PNG: its own colour, its own sha256.
my $colour = 0;
sub png
{
	$colour += 7;
	my $chunk = sub { my ($type, $data) = @_; pack('N', length $data) . $type . $data . pack('N', crc32($type . $data)) };
	return "\x89PNG\r\n\x1a\n" . $chunk->('IHDR', pack('NNCCCCC', 1, 1, 8, 2, 0, 0, 0))
	  . $chunk->('IDAT', compress(pack('C4', 0, $colour % 256, 100, 200))) . $chunk->('IEND', '');
}

sub page { my ($title, $body) = @_; return "<!doctype html><html><head><title>$title</title></head><body>$body</body></html>" }

put('/index.html', page('home', '<a href="/linked.html">linked</a>'));
put('/linked.html', page('linked', '<img src="/img/linked.png">'));
put('/img/linked.png', png());
for my $n (1 .. 3)
{
	put("/hidden/h$n.html", page("hidden $n", "<img src=\"/img/h$n.png\">"));
	put("/img/h$n.png", png());
	put("/img/s$n.png", png());
}
put('/outside.html', page('outside', ''));
put('/img/outside.png', png());

put('/robots.txt', "User-agent: *\nDisallow: /nothing\n\nSitemap: $base/sitemap_index.xml\nSitemap: $base/broken.xml\n");
put('/sitemap_index.xml', <<"XML");
<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>$base/sitemaps/pages.xml</loc></sitemap>
  <sitemap><loc>$base/sitemaps/more.xml.gz</loc></sitemap>
</sitemapindex>
XML
my $urlset = '<?xml version="1.0" encoding="UTF-8"?>'
  . '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
  . 'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">';
put('/sitemaps/pages.xml', $urlset . <<"XML");
  <url><loc>$base/hidden/h1.html</loc>
    <image:image><image:loc>$base/img/s1.png</image:loc></image:image></url>
  <url><loc>$base/hidden/h2.html</loc></url>
  <url><loc>$outside/outside.html</loc>
    <image:image><image:loc>$outside/img/outside.png</image:loc></image:image></url>
</urlset>
XML
my $more = $urlset . <<"XML";
  <url><loc>$base/hidden/h3.html</loc>
    <image:image><image:loc>$base/img/s3.png</image:loc></image:image></url>
</urlset>
XML
gzip(\$more => \my $gz) or die $GzipError;
put('/sitemaps/more.xml.gz', $gz);
put('/broken.xml', substr($urlset . "<url><loc>$base/hidden/h2.html</loc></url></urlset>", 0, 200));

# --- the crawls ---------------------------------------------------------------
my $node = new_node('sitemaps');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';
my $storage = tempdir(CLEANUP => 1);
my $files = tempdir(CLEANUP => 1);

my $log_at = 0;
sub requested
{
	open my $fh, '<', $nginx->{access_log} or die $!;
	seek $fh, $log_at, 0;
	my @r = map { chomp; $_ } <$fh>;
	$log_at = tell $fh;
	return @r;
}

my $n = 0;
sub crawl
{
	my ($name, @extra) = @_;
	my $stats = "$files/stats" . ++$n . '.json';
	my ($out, $err) = ('', '');
	IPC::Run::run([ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', "$base/",
			'--delay-ms', '0', '--per-host', '8', '--stats-json', $stats, @extra ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(60));
	is($? >> 8, 0, "$name: the crawl exits 0") or diag "$out\n$err";
	my $s = decode_json(do { local (@ARGV, $/) = $stats; <> });
	return ($s, $out, $err);
}

sub rows
{
	my ($session, $where) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(substr(url, length('$base') + 1) || ' ' || kind || ' ' || depth || ' ' || state, ', ' ORDER BY url) "
		  . "FROM crawl_frontier WHERE session_id = $session AND ($where)");
}

# 1: robots.txt's sitemaps, followed.
my ($s1, $out1) = crawl('sitemaps');
my $id = $s1->{session};
is(rows($id, "kind = 'sitemap'"),
	'/broken.xml sitemap 0 failed, /sitemap_index.xml sitemap 0 done, /sitemaps/more.xml.gz sitemap 0 done, '
	  . '/sitemaps/pages.xml sitemap 0 done',
	'the sitemaps of robots.txt and of the index, at depth 0; the broken one failed');
is(rows($id, "url LIKE '%/hidden/%'"),
	'/hidden/h1.html page 1 done, /hidden/h2.html page 1 done, /hidden/h3.html page 1 done',
	'the pages only sitemaps list: fetched, a level below them');
is($node->safe_psql('postgres', "SELECT string_agg(substr(url, length('$base') + 1) || ' on ' || "
			. "substr(found_on, length('$base') + 1), ', ' ORDER BY url) FROM images "
			. "WHERE session_id = $id AND url LIKE '%/img/s%'"),
	'/img/s1.png on /hidden/h1.html, /img/s3.png on /hidden/h3.html',
	'image:image entries stored, found on their page (the gzipped sitemap\'s too)');
is($node->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $id AND url ~ '/img/h[123]\\.png\$'"),
	3, 'the hidden pages were parsed: their own images stored');
like($node->safe_psql('postgres', "SELECT last_error FROM crawl_frontier WHERE session_id = $id AND url = '$base/broken.xml'"),
	qr/^not a sitemap: not well-formed XML/, 'the broken sitemap: its error recorded');
is($node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $id AND url LIKE '%outside%'"),
	0, 'a page and an image listed outside the crawl\'s domains: not queued');
my @r1 = requested();
is(scalar(grep { /outside/ } @r1), 0, '... nor fetched');
is(scalar(grep { $_ eq '/sitemaps/more.xml.gz' } @r1), 1, 'each sitemap fetched once');
is($s1->{worker}{sitemaps}, 3, "the worker's statistics count the sitemaps it read");
is($s1->{worker}{failures_by_kind}{not_parsed}, 1, '... and the broken one as not_parsed');
is($s1->{session_counts}{pages_fetched}, 2 + 3 + 3, 'the session counts the sitemaps it read as pages');
like($out1, qr/^  this worker     8 pages \(3 of them sitemaps\)/m, 'the summary says how many were sitemaps');

# 2: --no-sitemaps: robots.txt is read, its sitemaps are not.
my ($s2) = crawl('no sitemaps', '--no-sitemaps');
is(rows($s2->{session}, "kind = 'sitemap' OR url LIKE '%/hidden/%'"), '', '--no-sitemaps: no sitemap queued, no hidden page');
is(scalar(grep { /sitemap|broken/ } requested()), 0, '--no-sitemaps: no sitemap fetched');

# 3: --max-depth 0: a sitemap's pages would be too deep, so none is queued.
my ($s3) = crawl('max depth 0', '--max-depth', '0');
is(rows($s3->{session}, "kind = 'sitemap'"), '', '--max-depth 0: no sitemap queued');
requested();

# 4: --sitemap with --no-robots: no robots.txt, the given sitemap read.
my ($s4) = crawl('--sitemap', '--no-robots', '--sitemap', "$base/sitemaps/pages.xml");
is(rows($s4->{session}, "kind = 'sitemap' OR url LIKE '%/hidden/%'"),
	'/hidden/h1.html page 1 done, /hidden/h2.html page 1 done, /sitemaps/pages.xml sitemap 0 done',
	'--sitemap: the given sitemap and its pages');
is(scalar(grep { $_ eq '/robots.txt' } requested()), 0, '--sitemap with --no-robots: robots.txt not read');

done_testing();
