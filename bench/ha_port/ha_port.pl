# The HA port's load-balancer check against the database's own cheapest
# answer, same run, same machine, both over TLS:
#  1. A check on a new connection, as HAProxy makes one every `inter`:
#     GET /primary (ab, one client, no keep-alive: TLS handshake, request,
#     one SQL call on a kept session) against pgbench -C running SELECT 1
#     (TLS connection, authentication, backend start, query).
#  2. Kept connections, many clients: GET /primary with keep-alive (ab -k)
#     against pgbench's SELECT 1 on kept connections, requests per second.
# GET /primary is one SQL call (ha_endpoint_check() and ha_health()) on one
# of the agent's api_db_sessions, so its floor is that SELECT's own cost.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_pair bench_conf);
use CrawlerHA::Agent qw(agent_start agent_stop agent_pki);

my $requests = $ENV{HA_PORT_REQUESTS} // 2000;
my $seconds = $ENV{HA_PORT_SECONDS} // 5;
my $clients = $ENV{HA_PORT_CLIENTS} // 8;
sub out { my ($l) = @_; print "$l\n"; }

my $pki = agent_pki();
# Production settings (not the test framework's tiny ones), TLS with the
# agents' own certificate, TCP on loopback for pgbench.
my $conf = bench_conf('ssl = on', "ssl_cert_file = '$pki->{cert}'", "ssl_key_file = '$pki->{key}'");
my ($p, $s) = ha_pair(names => [ 'hp_a', 'hp_b' ], conf => $conf);
my $agent = agent_start($p, args => [ '--log-level', 'warning' ]);
my $url = "$agent->{ha_url}/primary";
my $dsn = 'host=127.0.0.1 port=' . $p->port . ' dbname=postgres sslmode=require';

# ab: (requests per second, mean ms, p50 ms, p99 ms, failed)
sub ab
{
	my (@args) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'ab', '-q', @args, $url ], '>', \$o, '2>', \$e) or die "ab @args: $e";
	my ($rps) = $o =~ /Requests per second:\s+([\d.]+)/;
	my ($mean) = $o =~ /Time per request:\s+([\d.]+) \[ms\] \(mean\)/;
	my ($p50) = $o =~ /^\s+50%\s+(\d+)/m;
	my ($p99) = $o =~ /^\s+99%\s+(\d+)/m;
	# ab counts an answer whose length differs from the first one as failed
	# ("Length"); the check's JSON carries a timestamp and a lag, so only
	# broken connections, exceptions and non-2xx answers are failures here.
	my ($connect, $receive, $exceptions) = $o =~ /Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)/;
	my ($non2xx) = $o =~ /Non-2xx responses:\s+(\d+)/;
	return ($rps, $mean, $p50, $p99, ($connect // 0) + ($receive // 0) + ($exceptions // 0) + ($non2xx // 0));
}

# pgbench running SELECT 1: (transactions per second, mean latency ms)
my $script = PostgreSQL::Test::Utils::tempdir() . '/select1.sql';
open my $fh, '>', $script or die;
print $fh "SELECT 1;\n";
close $fh;
sub pgbench
{
	my (@args) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'pgbench', '-n', '-f', $script, @args, $dsn ], '>', \$o, '2>', \$e) or die "pgbench @args: $e";
	my ($lat) = $o =~ /latency average = ([\d.]+) ms/;
	my ($tps) = $o =~ /tps = ([\d.]+) \((?:including|without)/;
	return ($tps, $lat);
}

# Warm both up.
ab('-n', 200, '-c', 1);
pgbench('-c', 1, '-t', 200);

# 1. A new connection per check, one client.
my ($c_rps, $c_mean, $c_p50, $c_p99, $c_failed) = ab('-n', $requests, '-c', 1);
my ($pc_tps, $pc_lat) = pgbench('-C', '-c', 1, '-t', $requests);
# 2. Kept connections, $clients clients.
my $kept_requests = $requests * 20;
my ($k_rps, $k_mean, $k_p50, $k_p99, $k_failed) = ab('-k', '-n', $kept_requests, '-c', $clients);
my ($pk_tps, $pk_lat) = pgbench('-c', $clients, '-j', 2, '-T', $seconds);
my ($k1_rps, $k1_mean) = ab('-k', '-n', $requests * 5, '-c', 1);
my ($p1_tps, $p1_lat) = pgbench('-c', 1, '-T', $seconds);

out('| GET /primary against SELECT 1 (both TLS) | per second | mean ms | p50 ms | p99 ms | failed |');
out('|---|---:|---:|---:|---:|---:|');
out(sprintf('| GET /primary, new connection each (as HAProxy checks), 1 client | %.0f | %.2f | %s | %s | %d |',
	$c_rps, $c_mean, $c_p50, $c_p99, $c_failed));
out(sprintf('| pgbench -C SELECT 1, new connection each, 1 client | %.0f | %.2f | | | |', $pc_tps, $pc_lat));
out(sprintf('| GET /primary, keep-alive, 1 client | %.0f | %.2f | | | |', $k1_rps, $k1_mean));
out(sprintf('| pgbench SELECT 1, kept connection, 1 client | %.0f | %.3f | | | |', $p1_tps, $p1_lat));
out(sprintf('| GET /primary, keep-alive, %d clients | %.0f | %.2f | %s | %s | %d |',
	$clients, $k_rps, $k_mean / 1, $k_p50, $k_p99, $k_failed));
out(sprintf('| pgbench SELECT 1, kept connections, %d clients | %.0f | %.3f | | | |', $clients, $pk_tps, $pk_lat));
out(sprintf('| ratio, new connection: /primary checks per second / SELECT 1 connections per second | %.2fx | | | | |',
	$c_rps / $pc_tps));
out(sprintf('| ratio, kept, 1 client: /primary / SELECT 1 | %.2fx | | | | |', $k1_rps / $p1_tps));
out(sprintf('| ratio, kept, %d clients: /primary / SELECT 1 | %.2fx | | | | |', $clients, $k_rps / $pk_tps));

agent_stop($agent);
$_->stop for ($p, $s);
