# Image files as highly available as their rows: two nodes, each with its
# agent; a crawl of the generated sample site stores every file, and a
# thumbnail of each, through the primary's agent; the primary's PostgreSQL and its agent are killed (kill -9)
# mid-crawl. The crawl finishes on the other node, where every images row has
# its blobs (its file and its thumbnail), verified by hash. The killed node comes back and its store
# catches up until both stores hold the same blobs. Then the scrub finds a
# blob corrupted on disk and repairs it from the peer.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use Digest::SHA;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use CrawlerHA::Test qw(ha_pair ha_multihost nginx_serve sample_site);
use CrawlerHA::Agent qw(agent_start agent_stop agent_kill agent_pki agent_blob_files agent_wait_log);

my @started;
my @agents;
END { eval { $_->kill_kill } for @started; eval { agent_kill($_) } for @agents; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};
plan skip_all => 'nginx is not installed' unless -x '/usr/sbin/nginx';
my $root = "$FindBin::RealBin/../..";

my $site = tempdir(CLEANUP => 1) . '/site';
eval { sample_site($site); 1 } or BAIL_OUT("the sample site: $@");
my $web = nginx_serve($site);
push @started, $web->{harness};
my $base = $web->{base};

# semi_sync: while the standby is there a blob is on both nodes before its
# row commits, so the kill of the primary's agent loses no file the new
# primary's rows need; the promoted node starts degraded and goes on alone.
my ($p, $s) = ha_pair(names => [ 'files_p', 'files_s' ], conf => "crawler_ha.replication_mode = 'semi_sync'\n");
$_->safe_psql('postgres', 'BEGIN READ WRITE; CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer; COMMIT') for ($p, $s);
# The scrub re-hashes fast and often here, blobs stored a moment ago too, so
# that a corruption is found within the test's patience.
my @fast = ('--scrub-bytes-per-second', '100000000', '--scrub-min-age-s', '0');
my $ap = agent_start($p, args => \@fast);
my $as = agent_start($s, args => \@fast);
push @agents, $ap, $as;

is($p->safe_psql('postgres', 'SELECT agent_url FROM crawl_blob_target()'), $ap->{url},
	'a worker learns the primary\'s agent from the database');
# The standby hears the primary's agent_url with its next health check.
ok($s->poll_query_until('postgres',
		"SELECT agent_url = '$ap->{url}' FROM ha_status() WHERE NOT is_local AND role = 'primary'"),
	'the standby knows the primary\'s agent through the ping');

my $pki = agent_pki();
my $spool = tempdir(CLEANUP => 1);
my $db = ha_multihost($p, $s) . ' user=crawler';
my ($out, $err) = ('', '');
my $crawl = IPC::Run::start(
	[ $worker, 'crawl', '--db', $db, '--storage-agent', '--agent-token-file', $pki->{token_file},
		'--agent-ca-file', $pki->{ca}, '--spool', $spool, '--seed', "$base/",
		'--delay-ms', '60', '--per-host', '4', '--max-depth', '30', '--thumbnail', 'small=50' ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(600));
push @started, $crawl;

ok($p->poll_query_until('postgres',
		"SELECT count(*) FILTER (WHERE state = 'done' AND kind = 'image') >= 10 FROM crawl_frontier"),
	'images are being stored through the primary\'s agent');
# Every row that committed on the primary has its blobs in the primary's
# store (the uploads came first): its file and its thumbnail (image_blobs:
# every blob of every row).
my %rows_p = map { split / / } split /\n/, $p->safe_psql('postgres', "SELECT sha256 || ' ' || file_path FROM image_blobs");
my $have_p = agent_blob_files($ap);
is(scalar(grep { !$have_p->{$_} } keys %rows_p), 0,
	'no row on the primary points at a blob its store lacks (' . scalar(keys %rows_p) . ' rows)');

# kill -9 of the primary's database and its agent together, mid-crawl.
agent_kill($ap);
$p->stop('immediate');
ok($s->poll_query_until('postgres', 'SELECT writable FROM ha_health()'), 'the standby promoted itself');

$crawl->finish;
is($? >> 8, 0, 'the crawl completes after the failover') or diag $err;
like($err, qr/reconnect|agent/i, 'the worker moved to the new primary and its agent');

my $sid = $s->safe_psql('postgres', 'SELECT max(id) FROM crawl_sessions');
is($s->safe_psql('postgres', "SELECT count(*) FROM crawl_frontier WHERE session_id = $sid AND state IN ('queued', 'leased')"),
	'0', 'no URL left unfinished');
open my $fx, '<', "$site/EXPECTED-IMAGES" or die $!;
my @expected = sort grep { length && !/^#/ } map { chomp; $_ } <$fx>;
close $fx;
my @found = sort split /\n/, $s->safe_psql('postgres',
	"SELECT substr(url, length('$base') + 1) FROM crawl_frontier WHERE session_id = $sid AND kind = 'image'");
is_deeply(\@found, \@expected, 'every image of the site was found');
# The site holds one file named .jpg that is HTML: recorded as a per-URL
# error, with no row. Every other image has its row on the new primary.
is($s->safe_psql('postgres', "SELECT string_agg(substr(url, length('$base') + 1), ' ') FROM crawl_frontier "
	  . "WHERE session_id = $sid AND kind = 'image' AND state = 'failed'"),
	'/img/not-really.jpg', 'the one image that failed is the HTML page named .jpg');
is($s->safe_psql('postgres', "SELECT count(*) FROM images WHERE session_id = $sid"), scalar(@expected) - 1,
	'every other image of the site has its row on the new primary')
  or diag 'frontier entries of images with no row: '
  . $s->safe_psql('postgres', "SELECT string_agg(url || ' ' || state || ' ' || coalesce(last_error, '-'), E'\\n') "
	  . "FROM crawl_frontier f WHERE session_id = $sid AND kind = 'image' "
	  . "AND NOT EXISTS (SELECT 1 FROM images i WHERE i.session_id = f.session_id AND i.url = f.url)")
  . "\nworker's log:\n$err";

# Every row on the new primary has its blob there, verified by hash: those
# from before the kill were copied to it before their rows committed, those
# after were uploaded to it.
my $wait_all = sub {
	my ($node, $agent, $max) = @_;
	my $t0 = Time::HiRes::time();
	my @missing;
	while (Time::HiRes::time() - $t0 < $max)
	{
		my %rows = map { split / / } split /\n/, $node->safe_psql('postgres', "SELECT sha256 || ' ' || file_path FROM image_blobs");
		my $have = agent_blob_files($agent);
		@missing = grep { !$have->{$_} } keys %rows;
		return (scalar(keys %rows), []) unless @missing;
		Time::HiRes::sleep(0.2);
	}
	return (undef, \@missing);
};
my $verify = sub {
	my ($agent) = @_;
	my $have = agent_blob_files($agent);
	my @bad = grep { Digest::SHA->new(256)->addfile($have->{$_})->hexdigest ne $_ } keys %$have;
	return \@bad;
};
my ($n, $missing) = $wait_all->($s, $as, 60);
ok(defined $n, "every images row on the new primary has its blobs there ($n blobs, thumbnails included)")
  or diag "missing: @$missing";
cmp_ok($s->safe_psql('postgres', "SELECT count(*) FROM image_blobs WHERE thumbnail = 'small'"), '>=',
	scalar(@expected) - 3, 'the rows have their thumbnails (all but the HTML page, the BMP and the ICO)');
is_deeply($verify->($as), [], 'every blob on the new primary matches its hash');

# The old primary comes back: its database rejoins, its agent restarts on
# the same store and catches up with what it missed.
$p->start;
ok($p->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_health()"),
	'the old primary rejoined as the standby');
$ap = agent_start($p, agent => $ap, args => \@fast);
$agents[0] = $ap;
my $rows_s = $s->safe_psql('postgres', 'SELECT count(*) FROM images');
ok($p->poll_query_until('postgres', "SELECT count(*) = $rows_s FROM images"), "its rows caught up ($rows_s rows)");
($n, $missing) = $wait_all->($p, $ap, 120);
ok(defined $n, 'the returning node\'s store caught up: every row has its blobs, thumbnails fetched like files')
  or diag "missing: @$missing";
is_deeply([ sort keys %{ agent_blob_files($ap) } ], [ sort keys %{ agent_blob_files($as) } ],
	'both stores hold the same blobs');
is_deeply($verify->($ap), [], 'every blob on the returning node matches its hash');
is($p->safe_psql('postgres', 'SELECT blobs_missing FROM ha_file_sync_status()'), '0',
	'ha_file_sync_status() on the returning node: nothing missing');

# A blob corrupted on disk is found by the scrub and fetched again.
my ($victim_sha, $victim) = %{ agent_blob_files($ap) };
open my $vf, '+<', $victim or die $!;
binmode $vf;
seek $vf, 0, 0;
print $vf "corrupted!";
close $vf;
ok($p->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM ha_events WHERE kind = 'blob_repaired' AND (reason || detail::text) LIKE '%$victim_sha%'"),
	'the scrub found the corrupt blob and the repair is an HA event');
is(Digest::SHA->new(256)->addfile($victim)->hexdigest, $victim_sha, 'the blob was fetched again from the peer, intact');
ok(scalar(glob("$ap->{store}/.corrupt/$victim_sha*")), 'the corrupt copy was set aside, not deleted');

agent_stop($_) for @agents;
$web->{harness}->kill_kill;
$_->stop for ($p, $s);
done_testing();
