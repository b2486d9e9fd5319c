# Cookies and a proxy, on real servers: scripts/fault-server's /members.html
# answers 403 unless the request carries the cookie member=yes; nginx is the
# forward proxy (absolute-form requests passed on to the server they name).
# - without --cookies the seed fails with HTTP 403 and nothing is stored;
# - with --cookies FILE (the Netscape format of curl and wget) the page and
#   its image are fetched and the image stored;
# - with --proxy every request (robots.txt included) goes through nginx;
# - a proxy URL of another scheme, or a cookies file that is missing or a
#   directory, is refused before anything starts (exit status 2), and a file
#   without a cookie in it is said in the log.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use IPC::Run;
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node wait_port);

# Servers and workers started here are killed at exit, also when a test dies.
my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
my $root = "$FindBin::RealBin/../..";

my $node = new_node('cookies');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($fs_out, $fs_err) = ('', '');
my $fs = IPC::Run::start([ "$root/scripts/fault-server", '--port', $port ],
	'>', \$fs_out, '2>', \$fs_err, IPC::Run::timeout(600));
push @started, $fs;
$fs->pump until $fs_out =~ /listening on (\S+)/;
my $base = $1;
my $seed = "${base}members.html";

# nginx as a forward proxy: the request line's absolute URL names the server.
my $proxy_port = PostgreSQL::Test::Cluster::get_free_port();
my $pdir = tempdir(CLEANUP => 1);
open my $pc, '>', "$pdir/nginx.conf" or die $!;
print $pc <<"CONF";
worker_processes 1;
daemon off;
pid $pdir/nginx.pid;
error_log $pdir/error.log;
events { worker_connections 64; }
http {
  log_format proxied '\$http_host \$request_uri \$status';
  access_log $pdir/access.log proxied;
  client_body_temp_path $pdir/body; proxy_temp_path $pdir/proxy;
  fastcgi_temp_path $pdir/fastcgi; uwsgi_temp_path $pdir/uwsgi; scgi_temp_path $pdir/scgi;
  server {
    listen 127.0.0.1:$proxy_port;
    location / { proxy_pass http://\$http_host\$request_uri; proxy_set_header Host \$http_host; }
  }
}
CONF
close $pc;
my ($pn_out, $pn_err) = ('', '');
my $pn = IPC::Run::start([ '/usr/sbin/nginx', '-e', 'stderr', '-p', $pdir, '-c', "$pdir/nginx.conf" ],
	'>', \$pn_out, '2>', \$pn_err);
push @started, $pn;
wait_port($proxy_port, 5) or die "nginx (proxy) did not start: $pn_err";

my $files = tempdir(CLEANUP => 1);
my $n = 0;
sub crawl
{
	my (@extra) = @_;
	my $storage = "$files/store" . ++$n;
	mkdir $storage;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $worker, 'crawl', '--db', $db, '--storage', $storage, '--seed', $seed,
			'--delay-ms', '0', '--max-attempts', '1', @extra ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(120));
	my $rc = $? >> 8;    # before psql sets $? again
	my $sid = $node->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');
	return ($rc, $out, $err, $sid);
}
# The image's item in session $sid: done and recorded (the images row is the
# URL's, whichever session stored it first).
sub photo_stored
{
	my ($sid) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM crawl_frontier f JOIN images i ON i.url = f.url "
		  . "WHERE f.session_id = $sid AND f.url = '${base}members/photo.png' AND f.state = 'done'");
}

# 1. No cookie: 403.
my ($rc, $out, $err, $sid) = crawl();
is($rc, 1, 'without cookies the crawl fetches nothing (exit 1)');
like($node->safe_psql('postgres', "SELECT last_error FROM crawl_frontier WHERE session_id = $sid AND url = '$seed'"),
	qr/^HTTP 403/, 'the seed failed with HTTP 403');

# 2. The cookie from a Netscape cookie file (a comment, a cookie for another
# host, and ours).
my $jar = "$files/cookies.txt";
open my $cj, '>', $jar or die $!;
print $cj "# Netscape HTTP Cookie File\n",
  join("\t", 'other.test', 'FALSE', '/', 'FALSE', '0', 'member', 'no'), "\n",
  join("\t", '127.0.0.1', 'FALSE', '/', 'FALSE', '0', 'member', 'yes'), "\n";
close $cj;
($rc, $out, $err, $sid) = crawl('--cookies', $jar);
is($rc, 0, 'with --cookies the crawl succeeds') or diag "$out\n$err";
is(photo_stored($sid), 1, 'the members-only image is stored');
like($err, qr/cookies: 2 read from \Q$jar\E/, 'the log says how many cookies were read');

# 3. Through the proxy, with the cookie.
my $seen_before = decode_json(HTTP::Tiny->new->get("${base}_requests")->{content});
# (--image-expiry-s 0: the image, known now, is asked for again; the stored
# robots.txt is forgotten, so that it is fetched again, through the proxy.)
$node->safe_psql('postgres', 'UPDATE crawl_hosts SET robots_txt = NULL, robots_fetched_at = NULL');
($rc, $out, $err, $sid) = crawl('--cookies', $jar, '--proxy', "http://127.0.0.1:$proxy_port", '--image-expiry-s', '0');
is($rc, 0, 'with --proxy the crawl succeeds') or diag "$out\n$err";
is(photo_stored($sid), 1, 'the image came through the proxy');
my @proxied = do { open my $al, '<', "$pdir/access.log" or die $!; map { chomp; $_ } <$al> };
my ($host) = $base =~ m{^http://([^/]+)/};
ok((grep { $_ eq "$host /robots.txt 200" } @proxied), 'robots.txt was asked for through the proxy')
  or diag join("\n", @proxied);
ok((grep { $_ eq "$host /members.html 200" } @proxied), 'the page came through the proxy');
ok((grep { $_ eq "$host /members/photo.png 200" } @proxied), 'the image came through the proxy');
my $seen_after = decode_json(HTTP::Tiny->new->get("${base}_requests")->{content});
is($seen_after->{'/members/photo.png'} - ($seen_before->{'/members/photo.png'} // 0), 1,
	'the server saw the image asked for once, from the proxy');

# 4. Mistakes are said before anything starts.
for my $case ([ [ '--proxy', 'ftp://127.0.0.1:21' ], qr/--proxy "ftp:\/\/127\.0\.0\.1:21": a proxy URL is http:\/\// ],
	[ [ '--proxy', "http://a b" ], qr/--proxy: spaces or control characters/ ],
	[ [ '--cookies', "$files/none.txt" ], qr/--cookies \Q$files\E\/none\.txt: No such file/ ],
	[ [ '--cookies', $files ], qr/--cookies \Q$files\E: not a regular file/ ])
{
	my ($args, $msg) = @$case;
	my ($crc, $cout, $cerr) = crawl(@$args);
	is($crc, 2, "@$args: exit status 2");
	like($cerr, $msg, "@$args: said why");
}
my $empty = "$files/empty-cookies.txt";
open my $ej, '>', $empty or die $!;
print $ej "not a cookie file\n";
close $ej;
($rc, $out, $err) = crawl('--cookies', $empty);
like($err, qr/--cookies \Q$empty\E: no cookie read/, 'a cookies file without a cookie is said in the log');

done_testing();
