# The crawler against a fault-injecting server (scripts/fault-server): slow
# and stalled responses, truncated bodies, redirect loops, 404/410/500,
# 429/503 with Retry-After, wrong content types, non-image bytes named .jpg,
# corrupt images, empty bodies, huge bodies (declared and streamed),
# compression bombs (image and page), a pixel bomb and a robots.txt refusal.
# Each URL ends with a clear error recorded in the frontier, the worker does
# not crash, no partial file stays in the store and the crawl completes.
use strict;
use warnings;
use FindBin;
use File::Find;
use File::Temp qw(tempdir);
use IPC::Run;
use Digest::SHA;
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node);

# Servers and workers started here are killed at exit, also when a test dies.
my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
my $root = "$FindBin::RealBin/../..";

my $node = new_node('faults');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';

# the fault server on a free loopback port
my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($fs_out, $fs_err) = ('', '');
my $fs = IPC::Run::start([ "$root/scripts/fault-server", '--port', $port ],
	'>', \$fs_out, '2>', \$fs_err, IPC::Run::timeout(600));
push @started, $fs;
$fs->pump until $fs_out =~ /listening on (\S+)/;
my $base = $1;
note "fault server at $base";

my $storage = tempdir(CLEANUP => 1);
# The seed comes from a file (with a comment and a blank line), and the
# statistics go to a JSON file.
my $files = tempdir(CLEANUP => 1);
my $seeds_file = "$files/seeds.txt";
open my $sf, '>', $seeds_file or die;
print $sf "# the fault server\n\n  $base  \n";
close $sf;
my $stats_file = "$files/stats.json";
my ($out, $err) = ('', '');
my $t0 = time;
my $ok = IPC::Run::run([
		$worker, 'crawl', '--db', $db, '--storage', $storage, '--seeds-file', $seeds_file, '--stats-json', $stats_file,
		'--delay-ms', '0', '--per-host', '8', '--max-attempts', '2',
		'--low-speed-seconds', '2', '--low-speed-bytes', '100', '--timeout-ms', '8000',
		'--connect-timeout-ms', '3000', '--max-image-bytes', '5000000',
		'--max-page-bytes', '1000000', '--max-retry-after', '3' ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(300));
my $status = $?;
note "crawl took " . (time - $t0) . " s";
note $out;
is($status >> 8, 0, 'the crawl completes with exit status 0') or diag $err;
is($status & 127, 0, 'the worker was not killed by a signal');
like($out, qr/session \d+: finished/, 'the summary says the session finished');

my $sid = $node->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');
is($node->safe_psql('postgres', "SELECT status FROM crawl_sessions WHERE id = $sid"), 'finished',
	'the session is finished');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND state IN ('queued', 'leased')"),
	'0', 'nothing is left queued or leased');

my %state;
for my $row (split /\n/, $node->safe_psql('postgres',
		"SELECT url, state, coalesce(last_error, '') FROM crawl_frontier WHERE session_id = $sid"))
{
	my ($url, $st, $e) = split /\|/, $row, 3;
	$url =~ s/^\Q$base\E/\//;
	$state{$url} = [ $st, $e ];
}

my %expect_error = (
	'/slow.jpg'          => qr/Timeout was reached|too slow/,
	'/stall.jpg'         => qr/Timeout was reached|too slow/,
	'/slow.html'         => qr/Timeout was reached|too slow/,
	'/truncated.jpg'     => qr/partial file/i,
	'/loop-a.png'        => qr/too many redirects/,
	'/loop-a.html'       => qr/too many redirects/,
	'/404.png'           => qr/^HTTP 404/,
	'/404.html'          => qr/^HTTP 404/,
	'/410.png'           => qr/^HTTP 410/,
	'/500.png'           => qr/^HTTP 500/,
	'/429.png'           => qr/^HTTP 429 .*Retry-After 1 s/,
	'/503.png'           => qr/^HTTP 503 .*Retry-After 2 s/,
	'/wrong-type.png'    => qr/not an image: the content is HTML text \(Content-Type text\/html\)/,
	'/fake.jpg'          => qr/not an image: the content is plain text/,
	'/corrupt.jpg'       => qr/corrupt jpeg image/,
	'/empty.png'         => qr/not an image: the body is empty/,
	'/huge-declared.jpg' => qr/too large/,
	'/huge-stream.jpg'   => qr/too large: body larger than 5000000 bytes/,
	'/bomb.png'          => qr/too large: body larger than 5000000 bytes/,
	'/page-bomb.html'    => qr/too large: body larger than 1000000 bytes/,
	'/pixel-bomb.png'    => qr/too many pixels: 100000x100000/,
	'/private/secret.png' => qr/disallowed by robots\.txt/,
	'/to-private.png'    => qr{^redirected to \Q${base}\Eprivate/moved\.png: disallowed by robots\.txt$},);
for my $u (sort keys %expect_error)
{
	my ($st, $e) = @{ $state{$u} // [ 'missing', '' ] };
	is($st, 'failed', "$u ends failed");
	like($e, $expect_error{$u}, "$u records a clear error") or diag "got: $e";
}
for my $u ('/', '/ok.png', '/ok.jpg', '/real-as-text.png', '/binary-page.html', '/moved.png', '/nofollow.html',
	'/deep.html', '/deep-end.png', '/noai.html', '/noimageai.png', '/noai-for-us.png', '/noai-for-others.png')
{
	is($state{$u}[0] // 'missing', 'done', "$u is done");
}
is($node->safe_psql('postgres', "SELECT result->>'note' FROM crawl_frontier WHERE session_id = $sid AND url = '${base}binary-page.html'"),
	'not a page: Content-Type application/zip; not parsed', 'a link to a non-page is done with a note, not parsed');
like($node->safe_psql('postgres', "SELECT state || ' ' || (result->>'note') FROM crawl_frontier WHERE session_id = $sid AND url = '${base}offsite.png'"),
	qr{^done redirected to http://localhost:\d+/ok\.png, outside the crawl's allowed domains: not followed$},
	'a redirect out of the crawl\'s scope is not followed, and says so');


# noai and noimageai (img2dataset's rule): an image whose own response says
# so is done with a note and not kept; a page that says so gives no images.
is($node->safe_psql('postgres', "SELECT string_agg(substr(url, length('$base')) || ' ' || (result->>'note'), ', ' ORDER BY url) "
			. "FROM crawl_frontier WHERE session_id = $sid AND url IN ('${base}noimageai.png', '${base}noai-for-us.png')"),
	'/noai-for-us.png X-Robots-Tag noimageai: not stored, /noimageai.png X-Robots-Tag noimageai: not stored',
	'images sent with X-Robots-Tag noimageai, or noai for this crawler, are done without being stored');
ok(!exists $state{'/behind-noai.png'}, 'a page\'s meta noai keeps its images out of the frontier');

is($node->safe_psql('postgres',
		"SELECT attempts FROM crawl_frontier WHERE session_id = $sid AND url = '${base}500.png'"),
	'2', 'a transient error (500) is retried up to max_attempts');
is($node->safe_psql('postgres',
		"SELECT attempts FROM crawl_frontier WHERE session_id = $sid AND url = '${base}404.png'"),
	'1', 'a permanent error (404) is not retried');

# The images that are images are recorded with their header's facts.
is($node->safe_psql('postgres',
		"SELECT string_agg(filename || ' ' || format || ' ' || width || 'x' || height, ', ' ORDER BY filename) FROM images WHERE session_id = $sid"),
	'deep-end.png png 64x48, moved.png png 64x48, noai-for-others.png png 24x24, ok.jpg jpeg 32x24, ok.png png 64x48, real-as-text.png png 16x16',
	'six images recorded (one through a redirect, one behind 140,000 unclosed elements, one with another crawler\'s noai): type by magic bytes, size from the header');

# --stats-json: the session's counts and success rate as crawl_status()
# gives them, this worker's responses by status and failures by kind.
my $stats = decode_json(do { local (@ARGV, $/) = $stats_file; <> });
my ($pages_fetched, $failed, $rate) = split /\|/, $node->safe_psql('postgres',
	"SELECT pages_fetched, failed, success_rate FROM crawl_status($sid)");
is($stats->{session}, $sid, 'stats: the session');
is($stats->{status}, 'finished', 'stats: its status');
is($stats->{session_counts}{pages_fetched}, $pages_fetched, 'stats: pages fetched, as crawl_status() counts them');
is($stats->{session_counts}{failed}, $failed, 'stats: failed URLs, as crawl_status() counts them');
cmp_ok(abs($stats->{success_rate} - $rate), '<', 1e-9, "stats: crawl_status()'s success rate ($rate)");
my $by_status = $stats->{worker}{responses_by_status};
is($by_status->{404}, 2, 'stats: two 404 responses (an image and a page)');
is($by_status->{410}, 1, 'stats: one 410');
is($by_status->{500}, 2, 'stats: two 500 responses (the URL tried twice)');
cmp_ok($by_status->{200} // 0, '>=', 10, 'stats: the 200 responses');
my $kinds = $stats->{worker}{failures_by_kind};
is($kinds->{robots_disallowed}, 2, 'stats: two URLs refused by robots.txt (one a redirect hop)');
is($kinds->{redirects}, 2, 'stats: two redirect loops');
cmp_ok($kinds->{timeout} // 0, '>=', 3, 'stats: the timeouts (slow and stalled, with retries)');
cmp_ok($kinds->{http} // 0, '>=', 7, 'stats: the HTTP errors (404, 410, 500, 429, 503, with retries)');
is($kinds->{not_an_image}, 4, 'stats: four bodies that are not images (wrong type, fake, corrupt, empty)');
is($kinds->{too_large}, 5, 'stats: five too large (declared, streamed, two bombs, a pixel bomb)');
like($out, qr/^  responses       200: \d+, .*404: 2/m, 'the summary counts the responses by status');
like($out, qr/^  failures        .*robots_disallowed 2/m, 'the summary counts the failures by kind');
like($out, qr/^  success rate    [\d.]+ % \(session\)$/m, 'the summary gives the success rate');

# Each hop of a redirect is checked against robots.txt before it is fetched:
# the server never saw a request for a disallowed path.
my $seen = decode_json(HTTP::Tiny->new->get("${base}_requests")->{content});
is($seen->{'/to-private.png'}, 1, 'the redirect into a disallowed path was requested once');
is($seen->{'/private/moved.png'} // 0, 0, 'its disallowed target was never fetched');
is($seen->{'/private/secret.png'} // 0, 0, 'nor the disallowed image linked from the page');
ok(!exists $state{'/behind-nofollow.html'} && !exists $state{'/behind-noimageindex.png'},
	'a page\'s X-Robots-Tag nofollow and meta noimageindex are obeyed: neither URL is queued');
is($seen->{'/behind-nofollow.html'} // 0, 0, 'the link behind nofollow is never requested');
is($seen->{'/behind-noai.png'} // 0, 0, 'the image behind a page\'s noai is never requested');
is($seen->{'/ok.png'}, 2, 'a followed redirect fetches its target (ok.png: linked, and behind moved.png)');

# The store: no temporary file left, every file named by its sha256 and
# referenced by a row.
my @files;
find(sub { push @files, $File::Find::name if -f $_ }, $storage);
my @tmp = grep { m{/\.tmp/} } @files;
is(scalar @tmp, 0, 'no partial file in the store') or diag "@tmp";
my %paths = map { $_ => 1 } split /\n/, $node->safe_psql('postgres', "SELECT file_path FROM images WHERE session_id = $sid");
my @stored = grep { !m{/\.tmp/} } @files;
is(scalar @stored, scalar keys %paths, 'one file per distinct content');
for my $f (@stored)
{
	(my $rel = $f) =~ s/^\Q$storage\E\///;
	ok($paths{$rel}, "$rel is recorded");
	my ($sha) = $rel =~ m{([0-9a-f]{64})\.};
	is(Digest::SHA->new(256)->addfile($f)->hexdigest, $sha, "$rel is named by its sha256");
}

# The worker asked the whole host to back off after 429/503 (shared through the database).
ok($node->safe_psql('postgres', "SELECT backoff_until IS NOT NULL FROM crawl_hosts WHERE host = '127.0.0.1:$port'") eq 't',
	'429/503 set a host-wide back-off');
like($node->safe_psql('postgres', "SELECT robots_txt FROM crawl_hosts WHERE host = '127.0.0.1:$port'"),
	qr/Disallow: \/private\//, 'robots.txt is shared through crawl_hosts');

# The same redirect in a crawl that takes images from any host: the
# extension's scope (crawl_redirect_allowed) lets the worker follow it.
{
	my $any_storage = tempdir(CLEANUP => 1);
	my ($any_out, $any_err) = ('', '');
	IPC::Run::run([
			$worker, 'crawl', '--db', $db, '--storage', $any_storage, '--seed', "${base}offsite.html",
			'--images-any-host', '--delay-ms', '0', '--max-depth', '1' ],
		'>', \$any_out, '2>', \$any_err, IPC::Run::timeout(120));
	is($? >> 8, 0, 'images from any host: the crawl completes') or diag $any_err;
	my $any = $node->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');
	is($node->safe_psql('postgres',
			"SELECT state || ' ' || coalesce(result->>'note', '-') FROM crawl_frontier WHERE session_id = $any AND url = '${base}offsite.png'"),
		'done -', 'images from any host: the redirect to another host is followed');
	is($node->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $any"),
		'1', 'images from any host: the image behind it is recorded');
}

$fs->kill_kill;
done_testing();
