# The HA port of the node agents behind a real load balancer. Two nodes,
# each with its agent; every route of the HA port with curl (TLS), bad
# input, wrong methods and the token rule; then HAProxy (Debian's) in front
# of both nodes' PostgreSQL with `option httpchk GET /primary` on the HA
# port, a client that knows only HAProxy's one port writing through it,
# kill -9 of the primary's PostgreSQL: the client resumes on the new primary,
# the old one comes back as a standby, and no check ever called a node that
# may not write the primary, so no write reached it.
use strict;
use warnings;
use IPC::Run;
use Digest::SHA;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_pair ha_writer_start ha_writer_stop ha_acked ha_seeds ha_wait_writable);
use CrawlerHA::Agent qw(agent_start agent_stop agent_kill agent_pki agent_curl agent_wait_log);

my $haproxy_bin = '/usr/sbin/haproxy';
plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};
plan skip_all => 'haproxy is not installed (scripts/install-deps installs it)' unless -x $haproxy_bin;

my @agents;
my $haproxy;
my $writer;
END
{
	eval { ha_writer_stop($writer) } if $writer;
	eval { $haproxy->kill_kill } if $haproxy;
	eval { agent_kill($_) } for @agents;
}

# TCP on loopback too: HAProxy forwards TCP to the nodes' PostgreSQL ports.
my ($a, $b) = ha_pair(names => [ 'lb_a', 'lb_b' ], conf => "listen_addresses = '127.0.0.1'\n");
my $aa = agent_start($a);
my $ab = agent_start($b);
# Right after ha_setup() the standby's HA worker may still hold the role an
# unpaired node starts with; the checks' reasons below name the role it
# holds once it has taken the table's.
$b->poll_query_until('postgres', "SELECT ok FROM ha_endpoint_check('replica')")
  or die 'node b did not become a healthy replica';
push @agents, $aa, $ab;
my $pki = agent_pki();

# ha($agent, $route, @curl_args): (code, decoded JSON or undef, raw body)
# from the agent's HA port.
sub ha
{
	my ($agent, $route, @args) = @_;
	my ($code, $body) = agent_curl($agent, @args, $agent->{ha_url} . $route);
	my $json = eval { decode_json($body) };
	return ($code, $json, $body);
}

# code_counts(@codes): "000 x3 503 x40": how often each answer came.
sub code_counts
{
	my %n;
	$n{$_}++ for @_;
	return join ' ', map { "$_ x$n{$_}" } sort keys %n;
}

# --- the checks, on a healthy pair ---
my $lb_placeholder_port = PostgreSQL::Test::Cluster::get_free_port();
my ($code, $j) = ha($aa, '/primary');
is($code, '200', '/primary on the primary: 200');
ok($j->{ok} && $j->{check} eq 'primary' && $j->{node}{role} eq 'primary' && $j->{node}{writable},
	'... its body says ok, the role and writable (ha_health() inside)');
($code, $j) = ha($ab, '/primary');
is($code, '503', '/primary on the standby: 503');
like($j->{reason} // '', qr/standby/, '... with the reason: ' . ($j->{reason} // 'none'));
is((ha($aa, '/read-write'))[0], '200', '/read-write is /primary\'s alias (primary: 200)');
is((ha($ab, '/read-write'))[0], '503', '... (standby: 503)');

ok($b->poll_query_until('postgres', "SELECT ok FROM ha_endpoint_check('replica')"),
	'the standby knows its lag (the primary seen by its health check)');
($code, $j) = ha($ab, '/replica');
is($code, '200', '/replica on a caught-up standby: 200');
ok(defined $j->{lag_bytes} && $j->{lag_bytes} >= 0, "... with its lag in bytes ($j->{lag_bytes})");
is((ha($aa, '/replica'))[0], '503', '/replica on the primary: 503');
is((ha($ab, '/replica?lag=1GB'))[0], '200', '/replica?lag=1GB: 200');
is((ha($ab, '/replica?lag=1%20GB'))[0], '200', '... the size percent-encoded with a space');
is((ha($aa, '/read-only'))[0], '200', '/read-only on the primary: 200');
is((ha($ab, '/read-only'))[0], '200', '/read-only on a healthy standby: 200');
is((ha($aa, '/health'))[0], '200', '/health on the primary: 200');
is((ha($ab, '/health'))[0], '200', '/health on the standby: 200');

# ha_status() shows the peer as this node's last check of it saw it: until
# the first check after the standby's setup, that is the peer before it
# became a standby
ok($a->poll_query_until('postgres', "SELECT count(*) = 1 FROM ha_status() WHERE role = 'primary'"),
	'the primary has checked its standby since the setup');
($code, $j) = ha($aa, '/api/status');
is($code, '200', '/api/status: 200');
is(scalar(grep { $_->{role} eq 'primary' } @{ $j->{nodes} // [] }), 1, '... ha_status() as JSON: one primary');
is(scalar(@{ $j->{nodes} // [] }), 2, '... and two nodes');
($code, $j) = ha($ab, '/api/health');
is($code, '200', '/api/health on the standby: 200');
is($j->{role}, 'standby', '... ha_health() as JSON');

# HEAD and OPTIONS (HAProxy's httpchk default) answer as GET does.
($code, undef, my $raw) = ha($aa, '/primary', '-I');
is($code, '200', 'HEAD /primary: 200');
unlike($raw, qr/"ok"/, '... without a body');
is((ha($aa, '/primary', '-X', 'OPTIONS'))[0], '200', 'OPTIONS /primary: 200');
is((ha($ab, '/primary', '-X', 'OPTIONS'))[0], '503', 'OPTIONS /primary on the standby: 503');

# --- bad input and wrong callers ---
($code, $j) = ha($ab, '/replica?lag=abc');
is($code, '400', '/replica?lag=abc: 400');
is($j->{error} . ' ' . ($j->{sqlstate} // ''), 'bad_parameter 22023', '... bad_parameter with SQLSTATE 22023');
($code, $j) = ha($ab, '/replica?lag=-5');
is($code, '400', 'a negative lag: 400');
($code, $j) = ha($ab, '/replica?lag=' . ('9' x 1000) . 'PB');
is($code, '400', 'a huge lag: 400 (' . ($j->{sqlstate} // 'no sqlstate') . ')');
($code, $j) = ha($ab, '/replica?lag=%zz');
is($code . ' ' . ($j->{error} // ''), '400 bad_query', 'a bad %-escape: 400 bad_query');
($code, $j) = ha($ab, '/replica?lag=1&lag=2');
is($code . ' ' . ($j->{error} // ''), '400 bad_query', 'a parameter twice: 400 bad_query');
($code, $j) = ha($aa, '/primary?lag=1');
is($code . ' ' . ($j->{error} // ''), '400 unknown_parameter', '/primary takes no lag: 400 unknown_parameter');
($code, $j) = ha($aa, "/primary?%27%3B%20DROP%20TABLE%20images%3B--=1");
is($code . ' ' . ($j->{error} // ''), '400 unknown_parameter', 'a hostile parameter name: 400');
is($a->safe_psql('postgres', "SELECT to_regclass('images') IS NOT NULL"), 't', '... and nothing ran');
($code, $j) = ha($aa, '/replica?lag=%00');
is($code, '400', 'a NUL byte: 400');
($code, $j) = ha($aa, '/primary', '-X', 'POST');
is($code . ' ' . ($j->{error} // ''), '405 method_not_allowed', 'POST /primary: 405');
($code, $j) = ha($aa, '/api/status', '-X', 'OPTIONS');
is($code, '405', 'OPTIONS /api/status: 405 (only the checks take OPTIONS)');
($code, $j) = ha($aa, '/api/blobs/' . ('0' x 64));
is($code . ' ' . ($j->{error} // ''), '404 not_found', 'the blob routes are not on the HA port: 404');
($code, $j) = ha($aa, '/primary' . ('x' x 20000));
like($code, qr/^4\d\d$/, 'a 20 kB target: ' . $code);

# Plain HTTP against the TLS port gets no answer.
my ($out, $err) = ('', '');
IPC::Run::run([ 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', "http://127.0.0.1:$aa->{ha_port}/primary" ],
	'>', \$out, '2>', \$err);
isnt($out, '200', 'plain HTTP on the TLS port: no 200');

# With read_token_required the /api routes need the token; the checks stay
# open, as load balancers send none.
agent_stop($ab);
agent_start($b, agent => $ab, args => ['--read-token-required']);
is((ha($ab, '/api/status', '--no-token'))[0], '401', 'read_token_required: /api/status without a token: 401');
is((ha($ab, '/api/status', '--no-token', '-H', 'Authorization: Bearer wrong'))[0], '401', '... with a wrong token: 401');
is((ha($ab, '/api/status'))[0], '200', '... with the token: 200');
is((ha($ab, '/replica', '--no-token'))[0], '200', '... /replica without a token: still 200');
ok(agent_wait_log($ab, qr/refused GET \/api\/status from .*: 401 unauthorized/, 10), 'the refusal is logged with its reason');

# Scoped tokens (hashed in api_tokens_file), the admin routes, the client
# networks and the rate limit, on node b's agent.
my $tokdir = PostgreSQL::Test::Utils::tempdir();
my %tok = map { $_ => "tok-$_-" . join('', map { ('a' .. 'z')[ int rand 26 ] } 1 .. 24) } qw(read operate admin);
open my $tf, '>', "$tokdir/api_tokens" or die $!;
print $tf "# scope sha256 name\n";
print $tf "$_ " . Digest::SHA::sha256_hex($tok{$_}) . " $_-token\n" for qw(read operate admin);
close $tf;
chmod 0600, "$tokdir/api_tokens";
agent_stop($ab);
agent_start($b, agent => $ab, args => [ '--read-token-required', '--api-tokens-file', "$tokdir/api_tokens" ]);
my @as_read = ('--no-token', '-H', "Authorization: Bearer $tok{read}");
my @as_admin = ('--no-token', '-H', "Authorization: Bearer $tok{admin}");
is((ha($ab, '/api/status', @as_read))[0], '200', 'a read token reads /api/status');
($code, $j) = ha($ab, '/api/events?limit=2', @as_read);
is($code, '200', 'GET /api/events?limit=2: 200');
is(scalar(@{ $j->{events} // [] }), 2, '... two events');
my $next = $j->{next_since};
($code, $j) = ha($ab, "/api/events?since=$next&limit=1000", @as_read);
ok($code eq '200' && !grep({ $_->{id} <= $next } @{ $j->{events} }), '... the next page starts after the last one seen');
is((ha($ab, '/api/events?limit=0', @as_read))[0], '400', 'limit=0: 400');
is((ha($ab, '/api/events?limit=1001', @as_read))[0], '400', 'limit=1001: 400');
is((ha($ab, '/api/events?since=-1', @as_read))[0], '400', 'since=-1: 400');
is((ha($ab, '/api/sync-status', @as_read))[0], '200', 'GET /api/sync-status: 200');
($code, $j) = ha($ab, '/api/pause', @as_read, '-X', 'POST');
is($code . ' ' . ($j->{error} // ''), '403 insufficient_scope', 'POST /api/pause with a read token: 403 insufficient_scope');
is((ha($ab, '/api/pause', '--no-token', '-H', "Authorization: Bearer $tok{operate}", '-X', 'POST'))[0], '403',
	'... with an operate token: 403');
is((ha($ab, '/api/pause', '-X', 'POST'))[0], '403', '... with the shared agent token: 403 (it reads, it does not steer)');
is((ha($ab, '/api/pause', '--no-token', '-X', 'POST'))[0], '401', '... without a token: 401');
($code, $j) = ha($ab, '/api/pause', @as_admin, '-X', 'POST');
is($code, '200', 'POST /api/pause with an admin token: 200 (' . ($j->{result} // '') . ')');
ok($b->poll_query_until('postgres', 'SELECT paused FROM ha_health()'), '... node b is paused');
is((ha($ab, '/api/resume', @as_admin, '-X', 'POST', '-d', '{}'))[0], '200', 'POST /api/resume: 200');
ok($b->poll_query_until('postgres', 'SELECT NOT paused FROM ha_health()'), '... node b is not paused');
($code, $j) = ha($ab, '/api/failover', @as_admin, '-X', 'POST', '-d', '{"target": "nosuchnode"}');
like($code, qr/^4\d\d$/, "failover to an unknown node: $code " . ($j->{error} // '') . ': ' . ($j->{message} // ''));
($code, $j) = ha($ab, '/api/failover', @as_admin, '-X', 'POST', '-d', '{"target": 5}');
is($code . ' ' . ($j->{error} // ''), '400 bad_body', 'a target that is not a string: 400 bad_body');
($code, $j) = ha($ab, '/api/failover', @as_admin, '-X', 'POST', '-d', '{"drop": "table"}');
is($code . ' ' . ($j->{error} // ''), '400 bad_body', 'an unknown member: 400 bad_body');
($code, $j) = ha($ab, '/api/pause', @as_admin, '-X', 'POST', '-d', '[1');
is($code . ' ' . ($j->{error} // ''), '400 bad_body', 'malformed JSON: 400 bad_body');
($code, $j) = ha($ab, '/api/pause', @as_admin, '-X', 'POST', '-d', 'x' x 5000);
is($code, '413', 'a 5000-byte body: 413');
is((ha($ab, '/api/pause', @as_admin))[0], '405', 'GET /api/pause: 405');
is($b->safe_psql('postgres', 'SELECT paused FROM ha_health()'), 'f', 'node b was left unpaused');

agent_stop($ab);
agent_start($b, agent => $ab, args => [ '--allowed-clients', '10.0.0.0/8, fd00::/8' ]);
($code, $j) = ha($ab, '/health');
is($code . ' ' . ($j->{error} // ''), '403 client_not_allowed', 'a client outside allowed_clients: 403');
ok(agent_wait_log($ab, qr/refused GET \/health from 127\.0\.0\.1:\d+: 403 client_not_allowed/, 10),
	'... logged with its reason');
agent_stop($ab);
# One token per 20 s: five requests made one after another, each a curl with
# its own TLS handshake, stay within one token's time even on a loaded machine.
agent_start($b, agent => $ab, args => [ '--rate-limit-per-second', '0.05', '--rate-limit-burst', '3' ]);
my @limited = map { [ ha($ab, '/health') ] } 1 .. 5;
is(join(' ', map { $_->[0] } @limited), '200 200 200 429 429', 'rate limit 0.05/s, burst 3: the 4th request is 429');
my ($o4, $e4) = ('', '');
IPC::Run::run([ 'curl', '-sS', '-D', '-', '-o', '/dev/null', '--cacert', $pki->{ca}, "$ab->{ha_url}/health" ], '>', \$o4, '2>', \$e4);
like($o4, qr/^retry-after: [1-9]\d*\r?$/mi, '... with Retry-After');
agent_stop($ab);
agent_start($b, agent => $ab, args => []);  # the handle keeps the last args otherwise

# The database gone: the checks say 503, the agent stays up.
$b->stop('fast');
($code, $j) = ha($ab, '/health');
is($code . ' ' . ($j->{error} // ''), '503 database_unavailable', '/health with PostgreSQL stopped: 503 database_unavailable');
is((ha($ab, '/replica'))[0], '503', '/replica with PostgreSQL stopped: 503');
$b->start;
ok($b->poll_query_until('postgres', "SELECT ok FROM ha_endpoint_check('replica')"), 'the standby is back');
is((ha($ab, '/replica'))[0], '200', '... and /replica says 200 again, without restarting the agent');

# --- crawler-ha status and check, as an operator with the reader role ---
$_->safe_psql('postgres', 'BEGIN READ WRITE; CREATE ROLE ops LOGIN IN ROLE crawler_ha_reader; COMMIT') for ($a, $b);
my $nodes = 'host=' . $a->host . ',' . $b->host . ' port=' . $a->port . ',' . $b->port . ' dbname=postgres user=ops';

# cli(@args): (exit status, stdout) of crawler-ha.
sub cli
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $ENV{CRAWLER_HA}, @_ ], '>', \$o, '2>', \$e, IPC::Run::timeout(60));
	return ($? >> 8, $o . $e);
}

my ($rc, $text) = cli('status', '--db', $nodes);
is($rc, 0, 'crawler-ha status: exit 0');
like($text, qr/^lb_a\s+\S+\s+primary\s+1\s+yes\s+running/m, '... node a: primary, term 1, writable') or diag($text);
like($text, qr/^lb_b\s+\S+\s+standby\s+1\s+no\s+running/m, '... node b: standby') or diag($text);
($rc, $text) = cli('status', '--db', $nodes, '--json');
my $doc = eval { decode_json($text) };
is($doc && $doc->{primary}, 'lb_a', 'status --json names the primary');
is(scalar(@{ $doc->{nodes} // [] }), 2, '... and both nodes');
($rc, $text) = cli('check', '--db', $nodes);
is($rc, 0, 'crawler-ha check on a healthy pair: exit 0');
like($text, qr/^CRAWLER_HA OK - primary lb_a \(term 1\) writable; standby lb_b \d+ bytes behind$/, '... ' . $text);
($rc, $text) = cli('check', '--db', 'host=a port=1,2,3 hostaddr=1.2.3.4,5.6.7.8');
is($rc, 3, 'check with a bad connection string: exit 3 (UNKNOWN)');
($rc, $text) = cli('check', '--db', "host=127.0.0.1 port=$lb_placeholder_port dbname=postgres user=ops");
is($rc, 3, 'check with no node answering: exit 3 (UNKNOWN)');
like($text, qr/^CRAWLER_HA UNKNOWN - no node answers/, '... ' . (split /\n/, $text)[0]);
($rc, $text) = cli('status', '--nonsense');
is($rc, 2, 'status with an unknown option: exit 2');
$b->safe_psql('postgres', 'BEGIN READ WRITE; CREATE ROLE nobody_special LOGIN; COMMIT');
$a->safe_psql('postgres', 'CREATE ROLE nobody_special LOGIN');
($rc, $text) = cli('check', '--db', $nodes =~ s/user=ops/user=nobody_special/r);
is($rc, 3, 'check as a role without the reader grants: UNKNOWN');
like($text, qr/42501|permission denied/, '... saying permission denied');

# --- HAProxy in front, as with Patroni ---
my $lb_port = PostgreSQL::Test::Cluster::get_free_port();
my $stats_port = PostgreSQL::Test::Cluster::get_free_port();
my $cfg = PostgreSQL::Test::Utils::tempdir() . '/haproxy.cfg';
open my $fh, '>', $cfg or die $!;
print $fh <<"CFG";
global
    maxconn 200
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout check 2s
listen stats
    mode http
    bind 127.0.0.1:$stats_port
    stats enable
    stats uri /stats
frontend postgres
    bind 127.0.0.1:$lb_port
    default_backend primary
backend primary
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2 on-marked-down shutdown-sessions check-ssl verify required ca-file $pki->{ca}
    server lb_a 127.0.0.1:@{[ $a->port ]} check port $aa->{ha_port}
    server lb_b 127.0.0.1:@{[ $b->port ]} check port $ab->{ha_port}
CFG
close $fh;
($out, $err) = ('', '');
IPC::Run::run([ $haproxy_bin, '-c', '-f', $cfg ], '>', \$out, '2>', \$err);
is($?, 0, 'haproxy -c accepts the configuration') or diag($out . $err);
my $lb_log = $PostgreSQL::Test::Utils::log_path . '/haproxy.log';
$haproxy = IPC::Run::start([ $haproxy_bin, '-db', '-f', $cfg ], '>', $lb_log, '2>&1');

# server => status (UP, DOWN, ...) from HAProxy's own statistics.
# lb_says($a_status, $b_status): HAProxy's statistics show both now.
sub lb_says
{
	my ($sa, $sb) = @_;
	my $st = lb_status();
	return ($st->{lb_a} // '') eq $sa && ($st->{lb_b} // '') eq $sb;
}

sub lb_status
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'curl', '-sS', "http://127.0.0.1:$stats_port/stats;csv" ], '>', \$o, '2>', \$e);
	my %st;
	for (split /\n/, $o)
	{
		my @f = split /,/;
		$st{ $f[1] } = $f[17] if @f > 17 && $f[0] eq 'primary';
	}
	return \%st;
}

# HAProxy takes a server for UP until its checks fail `fall` times.
my $t0 = time;
sleep 0.1 until lb_says('UP', 'DOWN') || time - $t0 > 30;
is_deeply([ @{ lb_status() }{qw(lb_a lb_b)} ], [ 'UP', 'DOWN' ], 'HAProxy: the primary UP, the standby DOWN');

my $lb_conninfo = "host=127.0.0.1 port=$lb_port dbname=postgres connect_timeout=2";
is($a->safe_psql('postgres', 'SELECT 1'), '1', 'node a answers');
($out, $err) = ('', '');
IPC::Run::run([ 'psql', '-XAtq', '-d', $lb_conninfo, '-c', 'SELECT node_name FROM ha_health()' ], '>', \$out, '2>', \$err);
chomp $out;
is($out, 'lb_a', 'a client connected to HAProxy reaches the primary');

$writer = ha_writer_start($lb_conninfo, 'lb');
sleep 0.2 until keys %{ ha_acked($writer) } >= 20 || time - $t0 > 60;
my $before = keys %{ ha_acked($writer) };
ok($before >= 20, "writes flow through HAProxy ($before acknowledged)");

# Watch node a's /primary from here on: it must never say 200 again.
my $watch_file = PostgreSQL::Test::Utils::tempdir() . '/a_primary_codes';
my $watch_pid = fork();
die "fork: $!" unless defined $watch_pid;
if ($watch_pid == 0)
{
	open my $wf, '>>', $watch_file or die;
	$wf->autoflush(1);
	while (1)
	{
		my $c = `curl -s -o /dev/null -m 2 -w '%{http_code}' --cacert $pki->{ca} $aa->{ha_url}/primary`;
		print $wf "$c\n";
		select(undef, undef, undef, 0.1);
	}
}

$a->kill9;
$t0 = time;
($rc, $text) = cli('check', '--db', $nodes, '--connect-timeout', '1');
ok($rc == 1 || $rc == 2, "check right after the kill: WARNING or CRITICAL (exit $rc: $text)");
ok(defined ha_wait_writable($b, 120), 'node b promoted itself after kill -9 of node a\'s PostgreSQL');
($rc, $text) = cli('status', '--db', $nodes);
like($text, qr/^lb_a\s+\S+\s+unreachable\s.*last saw it as/m, 'status: node a unreachable, as node b last saw it') or diag($text);
is(scalar(() = $text =~ /\sprimary\s+\d+\s+yes/g), 1, '... and exactly one primary shown') or diag($text);
($rc, $text) = cli('check', '--db', $nodes);
is($rc, 1, 'check with node a down: exit 1 (WARNING)');
like($text, qr/^CRAWLER_HA WARNING - .*lb_a does not answer.*primary lb_b \(term 2\) writable/, '... ' . $text);
my $promoted = keys %{ ha_acked($writer) };
sleep 0.2 until keys %{ ha_acked($writer) } >= $promoted + 20 || time - $t0 > 90;
my $after = scalar(keys %{ ha_acked($writer) }) - $promoted;
ok($after >= 20, "the same client, through HAProxy's one port, writes on the new primary ($after more)");
note(sprintf('kill -9 to 20 writes through HAProxy on the new primary: %.1f s', time - $t0));
sleep 0.1 until lb_says('DOWN', 'UP') || time - $t0 > 120;
is_deeply([ @{ lb_status() }{qw(lb_a lb_b)} ], [ 'DOWN', 'UP' ], 'HAProxy: node a DOWN, node b UP');

# Node a comes back: it sees the newer term, refuses writes and rejoins as
# the standby; its /primary never says 200 meanwhile.
$a->start;
ok($a->poll_query_until('postgres', "SELECT role = 'standby' AND NOT needs_rejoin FROM ha_state"),
	'node a rejoined as the standby');
ok($a->poll_query_until('postgres', "SELECT ok FROM ha_endpoint_check('replica')"), 'node a is a healthy replica');
is((ha($aa, '/replica'))[0], '200', 'its /replica says 200');
($rc, $text) = cli('check', '--db', $nodes);
is($rc, 0, 'check after the rejoin: OK again');
like($text, qr/^CRAWLER_HA OK - standby lb_a \d+ bytes behind; primary lb_b \(term 2\) writable$/, '... ' . $text);
sleep 1.5;  # a few more checks of the rejoined node
kill 'KILL', $watch_pid;
waitpid($watch_pid, 0);
my @codes = split /\n/, PostgreSQL::Test::Utils::slurp_file($watch_file);
is(scalar(grep { $_ eq '200' } @codes), 0,
	'node a\'s /primary never said 200 after the kill (' . scalar(@codes) . ' checks: ' . code_counts(@codes) . ')');
is(lb_status()->{lb_a}, 'DOWN', 'HAProxy never took node a back as the primary');

my $more = keys %{ ha_acked($writer) };
sleep 0.2 until keys %{ ha_acked($writer) } >= $more + 10 || time - $t0 > 120;
ha_writer_stop($writer);
my $acked = ha_acked($writer);
undef $writer;
ok($b->poll_query_until('postgres', 'SELECT count(*) > 0 FROM crawl_sessions'), 'node b has the sessions');
# After a rejoin with merge an unreplicated tail of node a reaches node b too.
my $have = ha_seeds($b);
my @lost = grep { !exists $have->{$_} } sort keys %$acked;
is(scalar(@lost), 0, 'every write acknowledged through HAProxy is on the primary ('
	  . scalar(keys %$acked) . ' acknowledged)') or diag("lost: @lost[0 .. ($#lost < 9 ? $#lost : 9)]");
$a->poll_query_until('postgres', 'SELECT count(*) >= ' . scalar(keys %$acked) . ' FROM crawl_sessions')
  or diag('node a has not caught up with node b');

$haproxy->kill_kill;
undef $haproxy;
done_testing();
