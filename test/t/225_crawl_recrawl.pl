# Re-crawls of one site on real nginx (which answers conditional requests
# with 304 Not Modified):
# - a first crawl stores every image, with its ETag and Last-Modified;
# - a second one within image_expiry_s (the default, 90 days) asks for no
#   image at all: each is fresh, done as it is queued, never leased;
# - a third with --image-expiry-s 0 asks for every known image with its
#   validators and gets 304s: no image body is sent twice, each counted
#   unchanged, checked_at moved;
# - after one image changed on the server, a fourth gets that one's new
#   bytes (counted changed, its row and file follow) and 304s for the rest;
# - an image whose row was deleted is fetched whole again;
# - URL patterns, scope site (the Public Suffix List) and a random wait.
# Early fetches never fetch a re-crawl's images (no unconditional request).
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use File::Find;
use IPC::Run;
use Digest::SHA;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node nginx_serve);

# Servers and workers started here are killed at exit, also when a test dies.
my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
my $root = "$FindBin::RealBin/../..";

# 60 distinct PNGs on 6 pages linked from index.html.
my $site = tempdir(CLEANUP => 1) . '/site';
system("$root/scripts/gen-sample-site", '--bench-images', '60', '--bench-pages', '6', $site) == 0
  or die 'gen-sample-site failed';
my $nginx = nginx_serve($site);
push @started, $nginx->{harness};

my $node = new_node('recrawl');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';
my $storage = tempdir(CLEANUP => 1);
my $files = tempdir(CLEANUP => 1);

# The status log's lines since the last call: [status, body bytes, uri].
my $log_at = 0;
sub requests
{
	open my $fh, '<', $nginx->{status_log} or die $!;
	seek $fh, $log_at, 0;
	my @r;
	while (my $line = <$fh>)
	{
		chomp $line;
		push @r, [ split / /, $line, 3 ];
	}
	$log_at = tell $fh;
	return @r;
}

my $n = 0;
sub crawl
{
	my (@extra) = @_;
	my $stats = "$files/stats" . ++$n . '.json';
	my ($out, $err) = ('', '');
	my @delay = grep({ $_ eq '--delay-ms' } @extra) ? () : ('--delay-ms', '0');
	IPC::Run::run([ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', "$nginx->{base}/",
			@delay, '--per-host', '16', '--no-robots', '--stats-json', $stats, @extra ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(120));
	is($? >> 8, 0, "crawl $n exits 0") or diag "$out\n$err";
	my $s = decode_json(do { local (@ARGV, $/) = $stats; <> });
	return ($s, $out);
}

my @images = map { s{^\Q$site\E}{}r } glob("$site/*/*.png $site/*.png");
my $total = scalar @images;
cmp_ok($total, '>=', 60, "the site has $total images");

# 1: everything is new.
my ($s1) = crawl();
is($s1->{session_counts}{images_stored}, $total, 'first crawl: every image stored');
my @r1 = requests();
is(scalar(grep { $_->[2] =~ /\.png$/ && $_->[0] eq '200' } @r1), $total, 'first crawl: every image sent whole once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM images WHERE etag IS NOT NULL AND last_modified IS NOT NULL'),
	$total, "every image row has nginx's ETag and Last-Modified");

# 2: within image_expiry_s (90 days by default): nothing asked for.
my ($s2, $out2) = crawl();
my @r2 = requests();
is(scalar(grep { $_->[2] =~ /\.png$/ } @r2), 0, 'second crawl: no image requested at all');
is($s2->{session_counts}{images_fresh}, $total, 'second crawl: every image counted fresh');
is($s2->{session_counts}{images_stored} + $s2->{session_counts}{images_changed} + $s2->{session_counts}{images_unchanged},
	0, 'second crawl: nothing stored, changed or unchanged');
is($node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $s2->{session} "
		. "AND kind = 'image' AND attempts = 0 AND leased_at IS NULL"),
	$total, 'second crawl: no fresh image leased either (the enqueue put it in done)');
like($out2, qr/^  known images    0 changed, 0 unchanged, $total fresh \(not fetched\)$/m, 'the summary says so');
is($node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $s2->{session} "
		. "AND kind = 'image' AND state = 'done' AND result ->> 'note' LIKE 'fresh:%'"),
	$total, 'second crawl: every image item done as fresh');

# 3: every known image revalidated: 304s, no body.
my $checked_before = $node->safe_psql('postgres', 'SELECT max(checked_at) FROM images');
my ($s3) = crawl('--image-expiry-s', '0');
my @r3 = grep { $_->[2] =~ /\.png$/ } requests();
is(scalar @r3, $total, 'third crawl: every image asked for once');
is(scalar(grep { $_->[0] eq '304' && $_->[1] eq '0' } @r3), $total, 'third crawl: every answer a 304 without a body');
is($s3->{session_counts}{images_unchanged}, $total, 'third crawl: every image counted unchanged');
is($s3->{session_counts}{images_stored} + $s3->{session_counts}{images_changed}, 0, 'third crawl: nothing stored or changed');
is($s3->{worker}{responses_by_status}{304}, $total, "third crawl: the worker's responses by status count the 304s");
is($node->safe_psql('postgres', "SELECT count(*) FROM images WHERE checked_at > '$checked_before'"),
	$total, 'third crawl: checked_at moved for every image');

# 4: one image changed on the server.
my $changed = $images[0];
system('vips', 'black', "$site$changed", '33', '44') == 0 or do {
	# without vips: another valid PNG, copied from a sibling with other bytes
	system('cp', "$site$images[1]", "$site$changed") == 0 or die 'cannot change an image';
};
utime(undef, time + 5, "$site$changed");
my $old_sha = $node->safe_psql('postgres', "SELECT sha256 FROM images WHERE url = '$nginx->{base}$changed'");
my ($s4) = crawl('--image-expiry-s', '0');
my @r4 = grep { $_->[2] =~ /\.png$/ } requests();
is(scalar(grep { $_->[0] eq '200' } @r4), 1, 'fourth crawl: one image sent whole');
is((grep { $_->[0] eq '200' } @r4)[0][2], $changed, 'fourth crawl: the changed one');
is(scalar(grep { $_->[0] eq '304' } @r4), $total - 1, 'fourth crawl: 304 for the others');
is($s4->{session_counts}{images_changed}, 1, 'fourth crawl: one image counted changed');
is($s4->{session_counts}{images_unchanged}, $total - 1, 'fourth crawl: the others unchanged');
my ($new_sha, $path) = split /\|/, $node->safe_psql('postgres',
	"SELECT sha256, file_path FROM images WHERE url = '$nginx->{base}$changed'");
isnt($new_sha, $old_sha, "fourth crawl: the changed image's row has its new sha256");
is(Digest::SHA->new(256)->addfile("$storage/$path")->hexdigest, $new_sha, 'and its new file is in the store');
is(Digest::SHA->new(256)->addfile("$site$changed")->hexdigest, $new_sha, 'with the bytes the server has now');

# 5: a deleted images row: its URL is new again, leased without validators
# and fetched whole. (A row deleted between the lease and the worker's answer
# makes image_unchanged() answer NULL and the item go back to the queue:
# sql/30_images.sql covers that answer.)
my $gone = $images[2];
$node->safe_psql('postgres', "SELECT image_delete(id) FROM images WHERE url = '$nginx->{base}$gone'");
my ($s5) = crawl('--image-expiry-s', '0');
my @r5 = grep { $_->[2] =~ /\.png$/ } requests();
is(scalar(grep { $_->[0] eq '200' } @r5), 1, 'a deleted row: its image sent whole again');
is($s5->{session_counts}{images_stored}, 1, 'a deleted row: stored again as new');
is($node->safe_psql('postgres', "SELECT count(*) FROM images WHERE url = '$nginx->{base}$gone' AND etag IS NOT NULL"),
	1, 'a deleted row: back, with its validators');

# 6: URL patterns, checked by the frontier: pages followed only when an
# accept pattern matches and no reject pattern does (the seed always), images
# the same with their own patterns.
my ($s6) = crawl('--accept-page', '/p00[0-3]\\.html$', '--reject-page', 'p003', '--reject-image', '/i/000[0-1][0-9]\\.png$',
	'--image-expiry-s', '0');
my $q6 = "SELECT string_agg(substr(url, length('$nginx->{base}') + 1), ' ' ORDER BY url) FROM crawl_frontier "
  . "WHERE session_id = $s6->{session} AND kind = ";
is($node->safe_psql('postgres', $q6 . "'page'"), '/ /p000.html /p001.html /p002.html',
	'patterns: the seed, and the pages accepted and not rejected');
is($node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $s6->{session} AND kind = 'image' "
			. "AND url ~ '/i/000[0-1][0-9]\\.png\$'"), 0, 'patterns: no rejected image queued');
cmp_ok($node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $s6->{session} AND kind = 'image'"),
	'>', 0, 'patterns: the other images of those pages queued');
requests();

# 7: scope. Names under localhost resolve to loopback in libcurl, so one
# nginx serves several hosts. By the Public Suffix List's default rule the
# registrable domain of www.site.localhost is site.localhost: scope site
# follows img.site.localhost and site.localhost, not other.localhost; scope
# hosts (the default) none of them.
my $p = $nginx->{port};
mkdir "$site/scope" or die $!;
my %scope_links = (a => "img.site.localhost:$p", b => "other.localhost:$p", c => "site.localhost:$p");
for my $name ('index', sort keys %scope_links)
{
	open my $fh, '>', "$site/scope/$name.html" or die $!;
	print $fh "<html><body>\n";
	print $fh qq(<a href="http://$scope_links{$_}/scope/$_.html">$_</a>\n) for $name eq 'index' ? sort keys %scope_links : ();
	print $fh "</body></html>\n";
	close $fh;
}
my $scope_seed = "http://www.site.localhost:$p/scope/index.html";
# (crawl() seeds the main site too: its pages are left out here)
my $q7 = "SELECT string_agg(url, ' ' ORDER BY url) FROM crawl_frontier WHERE kind = 'page' AND state = 'done' "
  . "AND url LIKE '%/scope/%' AND session_id = ";
my ($s7) = crawl('--seed', $scope_seed, '--scope', 'site', '--max-depth', '1');
is($node->safe_psql('postgres', $q7 . $s7->{session}),
	"http://img.site.localhost:$p/scope/a.html http://site.localhost:$p/scope/c.html $scope_seed",
	'scope site: the seed\'s registrable domain and its subdomains crawled, another site not');
is($node->safe_psql('postgres', "SELECT settings -> 'allowed_domains' FROM crawl_sessions WHERE id = $s7->{session}"),
	'["127.0.0.1:' . $p . '", "site.localhost"]', "scope site: the session's domains, an IP address kept as it is");
my ($s7h) = crawl('--seed', $scope_seed, '--max-depth', '1');
is($node->safe_psql('postgres', $q7 . $s7h->{session}), $scope_seed, 'scope hosts (the default): only the seed\'s host');
my ($out7, $err7) = ('', '');
IPC::Run::run([ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', 'http://example.co.uk/',
		'--allow-domain', 'co.uk' ], '>', \$out7, '2>', \$err7, IPC::Run::timeout(60));
isnt($? >> 8, 0, 'a public suffix as the allowed domain: refused');
like($err7, qr/domain "co\.uk" in option allowed_domains is a public suffix/, 'and the error says why');

# 8: a random wait: the fetches of one host come 0.5 to 1.5 times
# --delay-ms apart (drawn by the frontier, crawl_wait_spread()).
requests();
my $timed_at = -s $nginx->{timed_log};
my ($s8) = crawl('--delay-ms', '150', '--random-wait', '--reject-image', '.', '--max-depth', '1');
is($node->safe_psql('postgres', "SELECT settings ->> 'random_wait' FROM crawl_sessions WHERE id = $s8->{session}"),
	'true', 'random wait: the session has it');
open my $tl, '<', $nginx->{timed_log} or die $!;
seek $tl, $timed_at, 0;
# (nginx's $host has no port)
my @at = map { (split / /)[0] } grep { m{ 127\.0\.0\.1 /(p\d+\.html)?$} } <$tl>;
close $tl;
my @gaps = map { $at[$_] - $at[ $_ - 1 ] } 1 .. $#at;
note(sprintf('random wait: gaps of %s s', join(' ', map { sprintf('%.3f', $_) } @gaps)));
cmp_ok(scalar @gaps, '>=', 5, 'random wait: the pages of one host fetched one after another');
# The frontier spaces the leases; a request follows its lease after a
# varying moment, so the floor checked is below half the delay.
cmp_ok((sort { $a <=> $b } @gaps)[0], '>=', 0.04, 'random wait: the fetches of the host spaced out');
requests();

# Early fetches never reached a re-crawl's images: every image request of
# crawls 2 to 5 was conditional or the changed one (checked above); the
# early-fetch counts of the worker show pages only.
for my $s ($s2, $s3, $s4, $s5)
{
	cmp_ok($s->{worker}{early_fetches}{started}, '<=', 7, "session $s->{session}: early fetches of pages only");
}

done_testing();
