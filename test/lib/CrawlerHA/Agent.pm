# Node agents (crawler-ha agent) for the TAP suites: one beside each node,
# with TLS (a throwaway CA and a certificate for 127.0.0.1 made once per
# test), a shared bearer token, its own store and its own database role
# (crawler_ha_agent, never a superuser). The node's crawler_ha.agent_url
# points at it, so that workers and the peer agent find it through SQL.
package CrawlerHA::Agent;

use strict;
use warnings;
use Exporter 'import';
use File::Path qw(make_path);
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes ();

our @EXPORT_OK = qw(agent_pki agent_start agent_stop agent_kill agent_url agent_curl agent_wait_log
  agent_blob_files agent_role);

my $pki;

# agent_pki(): { dir, ca, cert, key, token, token_file }: made once per test.
sub agent_pki
{
	return $pki if $pki;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $run = sub {
		my @cmd = @_;
		my ($out, $err) = ('', '');
		IPC::Run::run(\@cmd, '>', \$out, '2>', \$err) or die "@cmd: $err";
	};
	$run->('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
		'-subj', '/CN=crawler_ha test CA', '-keyout', "$dir/ca.key", '-out', "$dir/ca.crt");
	$run->('openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1',
		'-keyout', "$dir/agent.key", '-out', "$dir/agent.csr");
	open my $ext, '>', "$dir/ext.cnf" or die $!;
	print $ext "subjectAltName = IP:127.0.0.1, DNS:localhost\n";
	close $ext;
	$run->('openssl', 'x509', '-req', '-in', "$dir/agent.csr", '-CA', "$dir/ca.crt", '-CAkey', "$dir/ca.key",
		'-CAcreateserial', '-days', '2', '-extfile', "$dir/ext.cnf", '-out', "$dir/agent.crt");
	chmod 0600, "$dir/agent.key";
	my $token = join '', map { ('a' .. 'z', 0 .. 9)[ int rand 36 ] } 1 .. 40;
	open my $t, '>', "$dir/token" or die $!;
	print $t "$token\n";
	close $t;
	chmod 0600, "$dir/token";
	$pki = { dir => $dir, ca => "$dir/ca.crt", cert => "$dir/agent.crt", key => "$dir/agent.key",
		token => $token, token_file => "$dir/token" };
	return $pki;
}

# agent_role($node): the login role the agent of $node connects as (created
# once, on a standby too: catalog writes with an explicit READ WRITE).
sub agent_role
{
	my ($node) = @_;
	my $u = 'agent_' . $node->name;
	$node->safe_psql('postgres',
		"BEGIN READ WRITE; DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$u') THEN "
		  . "CREATE ROLE \"$u\" LOGIN IN ROLE crawler_ha_agent; END IF; END\$\$; "
		  # the HTTP API switches to the role of a call's token scope
		  . "GRANT crawler_ha_reader, crawler_ha_writer, crawler_ha_admin TO \"$u\"; COMMIT");
	return $u;
}

# agent_start($node, %opts): starts (or restarts, on the same port and store)
# the agent of $node and points crawler_ha.agent_url at it. Options: store
# => DIR (default a new one, kept across restarts), args => [extra
# command-line settings], plain => 1 (plain HTTP instead of TLS; kept across
# restarts until plain => 0). Returns the agent's handle { node, port, url,
# ha_port, ha_url (the HA port), store, log, harness, plain }.
sub agent_start
{
	my ($node, %opts) = @_;
	my $bin = $ENV{CRAWLER_HA} or die 'CRAWLER_HA (the built crawler-ha) is not set';
	my $p = agent_pki();
	my $a = $opts{agent} // {};
	$a->{node} = $node;
	$a->{port} //= PostgreSQL::Test::Cluster::get_free_port();
	$a->{ha_port} //= PostgreSQL::Test::Cluster::get_free_port();
	$a->{store} //= $opts{store} // PostgreSQL::Test::Utils::tempdir() . '/store';
	$a->{plain} = $opts{plain} if defined $opts{plain};
	my $scheme = $a->{plain} ? 'http' : 'https';
	$a->{url} = "$scheme://127.0.0.1:$a->{port}";
	$a->{ha_url} = "$scheme://127.0.0.1:$a->{ha_port}";
	$a->{log} = $PostgreSQL::Test::Utils::log_path . '/agent_' . $node->name . '.log';
	$a->{args} = $opts{args} if $opts{args};
	make_path($a->{store});
	my $user = agent_role($node);
	my @cmd = ($bin, 'agent',
		'--db', 'host=' . $node->host . ' port=' . $node->port . " dbname=postgres user=$user",
		'--store', $a->{store},
		'--listen', "127.0.0.1:$a->{port}", '--ha-listen', "127.0.0.1:$a->{ha_port}",
		($a->{plain} ? ('--plain-http') : ('--tls-cert-file', $p->{cert}, '--tls-key-file', $p->{key})),
		'--ca-file', $p->{ca},
		'--token-file', $p->{token_file},
		# debug unless the caller chose a level (the option may be given once)
		((grep { $_ eq '--log-level' } @{ $a->{args} // [] }) ? () : ('--log-level', 'debug')),
		@{ $a->{args} // [] });
	open my $lf, '>>', $a->{log} or die $!;
	print $lf "### started: @cmd\n";
	close $lf;
	$a->{harness} = IPC::Run::start(\@cmd, '>>', $a->{log}, '2>>', $a->{log});
	my $up = 0;
	for (1 .. 200)
	{
		$up = 1, last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$a->{port}", Timeout => 1);
		Time::HiRes::sleep(0.05);
	}
	die 'agent of ' . $node->name . " did not start; see $a->{log}" unless $up;
	my $url = $a->{url};
	if (($node->safe_psql('postgres', "SELECT current_setting('crawler_ha.agent_url')")) ne $url)
	{
		$node->append_conf('postgresql.conf', "crawler_ha.agent_url = '$url'\n");
		$node->reload;
		$node->poll_query_until('postgres', "SELECT current_setting('crawler_ha.agent_url') = '$url'")
		  or die 'agent_url not reloaded on ' . $node->name;
	}
	return $a;
}

# agent_stop($a): SIGTERM, then wait for the exit. agent_kill($a): kill -9.
sub agent_stop
{
	my ($a) = @_;
	return unless $a->{harness};
	$a->{harness}->signal('TERM');
	eval { $a->{harness}->finish; };
	delete $a->{harness};
	return;
}

sub agent_kill
{
	my ($a) = @_;
	return unless $a->{harness};
	$a->{harness}->kill_kill;
	delete $a->{harness};
	return;
}

sub agent_url { return $_[0]->{url}; }

# agent_curl($a, @args): runs curl against the agent (CA and token set);
# returns (http_code, body). An argument that starts with '/' and is not an
# existing file is a route, relative to the agent's URL.
sub agent_curl
{
	my ($a, @args) = @_;
	my $p = agent_pki();
	my $no_token = grep { $_ eq '--no-token' } @args;
	@args = grep { $_ ne '--no-token' } @args;
	# A route, not a file to upload: starts with '/' and names no file here.
	@args = map { m{^/} && !-e $_ ? $a->{url} . $_ : $_ } @args;
	my @cmd = ('curl', '-sS', '--cacert', $p->{ca}, '-o', '-', '-w', '\n%{http_code}',
		($no_token ? () : ('-H', "Authorization: Bearer $p->{token}")), @args);
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	my ($body, $code) = $out =~ /\A(.*)\n(\d{3})\z/s ? ($1, $2) : ($out, '000');
	# No answer at all: say why (curl's error), once, where the test log shows it.
	Test::More::diag("curl @args: $err") if $code eq '000' && $err ne '';
	return ($code, $body);
}

# agent_wait_log($a, $regex, $max_s): true once the agent's log, since its
# latest start (the log is appended to across restarts), matches.
sub agent_wait_log
{
	my ($a, $re, $max) = @_;
	my $t0 = Time::HiRes::time();
	while (Time::HiRes::time() - $t0 < ($max // 60))
	{
		my $log = PostgreSQL::Test::Utils::slurp_file($a->{log});
		my $run = rindex($log, '### started: ');
		return 1 if substr($log, $run < 0 ? 0 : $run) =~ $re;
		Time::HiRes::sleep(0.1);
	}
	return 0;
}

# agent_blob_files($a): { sha256 => path } of the blobs in the agent's store.
sub agent_blob_files
{
	my ($a) = @_;
	my %have;
	for my $f (glob("$a->{store}/[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"))
	{
		$have{$1} = $f if $f =~ m{/([0-9a-f]{64})\.[a-z0-9]+\z};
	}
	return \%have;
}

1;
