# Pages that are hard on an HTML parser (scripts/gen-hostile-pages: a gallery
# of thousands of <img>, a <br> flood, unclosed lists, misnested tags,
# 100,000 attributes, a 1 MB srcset, CSS, unclosed constructs, and a
# real-world page), about 1 MB each, served by nginx and crawled through the
# write API: the worker survives them, every page ends done (parsed in one
# pass, whatever its shape), and each page's images in the frontier are exactly those its
# manifest lists, every one of them recorded. A second crawl does the same
# behind a 500 kB robots.txt of wildcard rules that never match, with a page
# at a 2,000-character path. How fast parsing is belongs to bench/parse, not
# here: the time limits only keep a hung worker from hanging the suite.
use strict;
use warnings;
use FindBin;
use File::Find;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IPC::Run;
use JSON::PP;
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
plan skip_all => 'the site ../shared/sites/diveintohtml5 (the realistic page is made of it) is absent: CRAWLER_HA_SHARED unset or wrong'
  unless $shared && -f "$shared/sites/diveintohtml5/index.html";
plan skip_all => 'nginx is not installed' unless -x '/usr/sbin/nginx';
my $root = "$FindBin::RealBin/../..";

sub generate
{
	my ($out, @args) = @_;
	my ($o, $e) = ('', '');
	local $ENV{CRAWLER_HA_SHARED} = $shared;
	IPC::Run::run([ "$root/scripts/gen-hostile-pages", '--out', $out, @args ], '>', \$o, '2>', \$e)
	  or die "gen-hostile-pages failed: $e";
	open my $fh, '<', "$out/manifest.json" or die "$out/manifest.json: $!";
	my $m = decode_json(do { local $/; <$fh> });
	close $fh;
	return $m;
}

# The on-site image URLs of a page's images_file, absolute under $base.
sub expected_images
{
	my ($dir, $page, $base) = @_;
	open my $fh, '<', "$dir/$page->{images_file}" or die $!;
	my @urls = map { chomp; "$base$_" } grep { m{^/} } <$fh>;
	close $fh;
	return \@urls;
}

my $node = new_node('hostile');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';

# crawl($seed): one crawl session to the end; the pages are at depth 1 and
# their images at 2, so --max-depth 1 takes every image and none of the
# thousands of links the list page holds.
sub crawl
{
	my ($seed, $what) = @_;
	my $storage = tempdir(CLEANUP => 1);
	my ($out, $err) = ('', '');
	my $t0 = time;
	IPC::Run::run([ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', $seed,
			'--delay-ms', '0', '--per-host', '16', '--concurrency', '16', '--max-depth', '1',
			'--max-page-bytes', '50000000' ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(300));
	my $status = $?;
	note "$what took " . (time - $t0) . " s";
	note $out;
	is($status >> 8, 0, "$what: the crawl exits 0") or diag substr($err, -4000);
	is($status & 127, 0, "$what: the worker was not killed by a signal");
	my $sid = $node->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');
	is($node->safe_psql('postgres', "SELECT status FROM crawl_sessions WHERE id = $sid"), 'finished',
		"$what: the session is finished");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND state IN ('queued', 'leased')"),
		'0', "$what: nothing is left queued or leased");
	return ($sid, $storage);
}

# check_pages($sid, $dir, $base, $manifest): each page done and its images
# in the frontier exactly the
# manifest's on-site ones.
sub check_pages
{
	my ($sid, $dir, $base, $m, $what) = @_;
	for my $page (@{ $m->{pages} })
	{
		my $url = "$base/$page->{file}";
		my ($state, $error) = split /\|/, $node->safe_psql('postgres',
			"SELECT state || '|' || coalesce(last_error, '') FROM crawl_frontier WHERE session_id = $sid AND url = '$url'"), 2;
		$state //= 'missing';
		# The one-pass extractor parses every shape: none may fail (a tree
		# parser refused the deep ones, or took minutes on the others).
		is($state, 'done', "$what: $page->{shape} ($page->{bytes} bytes) is done")
		  or diag "its error: $error";
		next unless $state eq 'done';
		my @found = split /\n/, $node->safe_psql('postgres',
			"SELECT url FROM crawl_frontier WHERE session_id = $sid AND kind = 'image' AND found_on = '$url' ORDER BY url");
		my $want = expected_images($dir, $page, $base);
		is(scalar @found, $page->{site_images},
			"$what: $page->{shape}: the crawl queued the manifest's $page->{site_images} images from it");
		my %f = map { $_ => 1 } @found;
		my %w = map { $_ => 1 } @$want;
		my @missing = grep { !$f{$_} } @$want;
		my @extra = grep { !$w{$_} } @found;
		ok(!@missing && !@extra, "$what: $page->{shape}: the very URLs the manifest lists")
		  or diag scalar(@missing) . " missing, e.g. @missing[0 .. ($#missing < 4 ? $#missing : 4)]; "
		  . scalar(@extra) . " extra, e.g. @extra[0 .. ($#extra < 4 ? $#extra : 4)]";
	}
	return;
}

# check_images($sid, $storage, $dir): no image lost. Every image the crawl
# queued is recorded with its file in the store, except references the real
# site makes to files it does not have (404).
sub check_images
{
	my ($sid, $storage, $dir, $base, $what) = @_;
	my %state;
	for my $row (split /\n/, $node->safe_psql('postgres',
			"SELECT url, state, coalesce(last_error, '') FROM crawl_frontier WHERE session_id = $sid AND kind = 'image'"))
	{
		my ($u, $st, $e) = split /\|/, $row, 3;
		$state{$u} = [ $st, $e ];
	}
	my @bad;
	for my $u (sort keys %state)
	{
		my ($st, $e) = @{ $state{$u} };
		next if $st eq 'done';
		my ($path) = $u =~ m{^\Q$base\E(/[^?#]*)};
		next if $e =~ /^HTTP 404/ && defined $path && !-e "$dir$path";
		push @bad, "$u: $st $e";
	}
	is(scalar @bad, 0, "$what: every image queued is done (" . scalar(keys %state) . '), but for files the real site lacks')
	  or diag join("\n", @bad[0 .. ($#bad < 20 ? $#bad : 20)]);
	my $done = grep { $_->[0] eq 'done' } values %state;
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM images i JOIN crawl_frontier f ON f.session_id = $sid AND f.url = i.url "
			  . "AND f.kind = 'image' AND f.state = 'done' WHERE i.session_id = $sid"),
		$done, "$what: every image done has its row in images");
	my $missing_files = 0;
	for my $p (split /\n/, $node->safe_psql('postgres', "SELECT DISTINCT file_path FROM images WHERE session_id = $sid"))
	{
		$missing_files++ unless -f "$storage/$p";
	}
	is($missing_files, 0, "$what: every recorded file is in the store");
	my @tmp;
	find(sub { push @tmp, $File::Find::name if -f $_ }, "$storage/.tmp") if -d "$storage/.tmp";
	is(scalar @tmp, 0, "$what: no temporary file left");
	return;
}

# 1. Every shape at about 1 MB, no robots.txt.
my $site = PostgreSQL::Test::Utils::tempdir();
my $m = generate($site, '--size-mb', '1');
my $web = nginx_serve($site);
push @started, $web->{harness};
my $base = $web->{base};
my ($sid, $storage) = crawl("$base/index.html", 'hostile pages');
is($node->safe_psql('postgres',
		"SELECT state FROM crawl_frontier WHERE session_id = $sid AND url = '$base/index.html'"),
	'done', 'the index is done');
note join("\n", map { "$_->{shape}: $_->{bytes} bytes, $_->{site_images} images" } @{ $m->{pages} });
check_pages($sid, $site, $base, $m, 'hostile pages');
check_images($sid, $storage, $site, $base, 'hostile pages');

# 2. Behind a hostile robots.txt: a smaller site, its robots.txt 500 kB of
# rules that match nothing, and a page at the manifest's 2,000-character path.
my $site2 = PostgreSQL::Test::Utils::tempdir();
my $m2 = generate($site2, '--size-mb', '0.2', '--shapes', 'realistic,gallery', '--robots', "$site2/robots.txt");
my $long = $m2->{robots}{long_path};
my ($long_dir) = $long =~ m{^(.*)/[^/]+$};
make_path("$site2$long_dir");
open my $lp, '>', "$site2$long" or die "$site2$long: $!";
print $lp qq{<!DOCTYPE html>\n<title>long path</title>\n<img src="/img/gallery.png?n=long-path">\n};
close $lp;
{
	open my $in, '<', "$site2/index.html" or die $!;
	my $index = do { local $/; <$in> };
	close $in;
	$index =~ s{</ul>}{<li><a href="$long">a page at a long path</a>\n</ul>};
	open my $out, '>', "$site2/index.html" or die $!;
	print $out $index;
	close $out;
}
my $web2 = nginx_serve($site2);
push @started, $web2->{harness};
my $base2 = $web2->{base};
my ($sid2, $storage2) = crawl("$base2/index.html", 'hostile robots.txt');
my $host2 = $base2 =~ s{^http://}{}r;
cmp_ok($node->safe_psql('postgres', "SELECT coalesce(octet_length(robots_txt), 0) FROM crawl_hosts WHERE host = '$host2'"),
	'>=', $m2->{robots}{bytes} - 1000, "the hostile robots.txt ($m2->{robots}{bytes} bytes, $m2->{robots}{rules} rules) was read");
is($node->safe_psql('postgres',
		"SELECT count(*) FROM crawl_frontier WHERE session_id = $sid2 AND last_error LIKE '%robots.txt%'"),
	'0', 'none of its rules disallowed anything');
is($node->safe_psql('postgres', "SELECT state FROM crawl_frontier WHERE session_id = $sid2 AND url = '$base2$long'"),
	'done', 'the page at the ' . length($long) . '-character path is done');
is($node->safe_psql('postgres',
		"SELECT state FROM crawl_frontier WHERE session_id = $sid2 AND url = '$base2/img/gallery.png?n=long-path'"),
	'done', 'and its image too');
check_pages($sid2, $site2, $base2, $m2, 'hostile robots.txt');
check_images($sid2, $storage2, $site2, $base2, 'hostile robots.txt');

$_->{harness}->kill_kill for ($web, $web2);
done_testing();
