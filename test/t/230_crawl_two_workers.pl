# Two workers (`crawler-worker run`, the service) on one session started in
# SQL: between them every URL is fetched exactly once (nginx's access log
# counts the requests), both take part, and SIGTERM stops each cleanly.
use strict;
use warnings;
use FindBin;
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
plan skip_all => 'the site ../shared/sites/diveintohtml5 is absent: nothing to crawl'
  unless $site && -f "$site/index.html";
my $nginx = '/usr/sbin/nginx';
plan skip_all => 'nginx is not installed' unless -x $nginx;

my $web = nginx_serve($site);
push @started, $web->{harness};
my $port = $web->{port};
my $base = "http://127.0.0.1:$port";

my $node = new_node('two');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';
my $storage = tempdir(CLEANUP => 1);

my (%out, %err, %h);
for my $w ('w1', 'w2')
{
	($out{$w}, $err{$w}) = ('', '');
	$h{$w} = IPC::Run::start([ $worker, 'run', '--db', $db, '--storage', $storage,
			'--worker-id', $w, '--concurrency', '2', '--claim-batch', '4' ],
		'>', \$out{$w}, '2>', \$err{$w}, IPC::Run::timeout(300));
	push @started, $h{$w};
}
# Both are connected and asking for work before there is any; a 10 ms
# politeness delay spreads the claims over a second or two.
for my $w ('w1', 'w2')
{
	$h{$w}->pump until $err{$w} =~ /database: connection 2 to/;
}
my $sid = $node->safe_psql('postgres',
	"SELECT crawl_start(ARRAY['$base/'], '{\"delay_ms\": 10, \"per_host\": 8, \"robots\": false}')");
ok($node->poll_query_until('postgres', "SELECT status = 'finished' FROM crawl_status($sid)"),
	'the two workers finish the session');

for my $w ('w1', 'w2')
{
	$h{$w}->signal('TERM');
	$h{$w}->finish;
	is($h{$w}->full_result(0), 0, "$w exits 0 on SIGTERM") or diag "status " . $h{$w}->full_result(0) . "\n" . $err{$w};
	like($err{$w}, qr/stopped/, "$w says it stopped");
}

my %requests;
open my $log, '<', $web->{access_log} or die $!;
while (my $l = <$log>) { chomp $l; $requests{$l}++ }
close $log;
my @twice = grep { $requests{$_} > 1 } sort keys %requests;
is_deeply(\@twice, [], 'no URL was requested twice');
my $urls = $node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $sid");
my $fetched = scalar grep { $_ ne '/robots.txt' } keys %requests;
is($fetched, $urls, "every URL of the frontier was requested once ($urls)");
is($node->safe_psql('postgres', "SELECT max(attempts) FROM crawl_frontier WHERE session_id = $sid"), '1',
	'no URL was leased twice');
my ($c1, $c2) = map { () = $err{$_} =~ /^/mg } ('w1', 'w2');
my $w1 = $node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND lease_owner = 'w1'");
my $w2 = $node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND lease_owner = 'w2'");
note "w1 handled $w1 URLs, w2 handled $w2";
ok($w1 > 0 && $w2 > 0, 'both workers took part');
is($node->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid"),
	$node->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND kind = 'image' AND state = 'done'"),
	'one image row per image fetched');

$web->{harness}->kill_kill;
done_testing();
