# A primary that hangs (every process stopped: no refusal, no answer) is
# detected through response_timeout; the standby promotes. When the old
# primary wakes up it still believes it is the primary of the old term: at
# its first check it sees the newer term, refuses writes at once, ends its
# open client sessions, and rejoins.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair ha_wait_writable);

my ($a, $b) = ha_pair(conf => "crawler_ha.response_timeout = '1s'\n");
$a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://before.test/'])");
$b->poll_query_until('postgres', 'SELECT count(*) = 1 FROM crawl_sessions') or die;

# a client session that stays open on alpha through it all
my $client = $a->background_psql('postgres', on_error_stop => 0);
$client->query_safe("SELECT 1");

my $pm = $a->{_pid};
my @pids = ($pm, split /\s+/, `ps -o pid= --ppid $pm`);
@pids = grep { /^\d+$/ } @pids;
kill 'STOP', @pids;
ok(defined ha_wait_writable($b, 120), 'the standby promoted while the primary hung');
like($b->safe_psql('postgres', "SELECT reason FROM ha_events WHERE kind = 'detection'"), qr/no response within 1000 ms/,
	'the hung checks failed on response_timeout');
kill 'CONT', @pids;

$a->poll_query_until('postgres', "SELECT role = 'standby' AND term = 2 FROM ha_state") or die 'alpha did not step down';
pass('the woken old primary stepped down on seeing term 2');
my ($rc, $out, $err) = $a->psql('postgres', "BEGIN READ WRITE; SELECT crawl_start(ARRAY['http://late.test/'])");
like($err, qr/does not accept writes/, 'it refuses writes');
my $res = eval { $client->query("SELECT 1") };
ok(!defined $res || $res ne '1' || $@, 'its open client session was ended');
$a->poll_query_until('postgres', "SELECT NOT needs_rejoin FROM ha_state") or die 'no rejoin';
pass('it rejoined (it wrote nothing the new primary lacks)');
$b->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://after.test/'])");
$a->poll_query_until('postgres', 'SELECT count(*) = 2 FROM crawl_sessions') or die;
pass('and follows the new primary');
done_testing();
