# Helpers shared by the TAP suites: nodes with the extension loaded as in
# production, each with its own node id.
package CrawlerHA::Test;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Exporter 'import';
use IPC::Run;
use IO::Socket::INET;
use Time::HiRes ();
use Test::More ();
use POSIX ();
use IO::Handle;
use FindBin ();

our @EXPORT_OK = qw(new_node shared_dir nginx_serve ha_conninfo ha_set_peer ha_pair ha_multihost
  wait_port bench_conf median ha_writer_start ha_writer_stop ha_acked ha_acks ha_seeds ha_wait_writable
  ha_node_user ha_partition ha_cut ha_heal ha_witness ha_set_witness ha_trio sample_site
  sample_site_worker);

my $next_node_id = 1;

# new_node($name, %opts): an initialised, started node with crawler_ha (and
# pg_cron) preloaded, wal_level=logical, and the extension created in the
# database "postgres" unless no_extension => 1. extra_conf => "..." is
# appended to postgresql.conf before the start.
sub new_node
{
	my ($name, %opts) = @_;
	my $id = $opts{node_id} // $next_node_id++;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 'logical');
	$node->append_conf('postgresql.conf', <<"CONF");
shared_preload_libraries = 'crawler_ha,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
crawler_ha.node_id = $id
crawler_ha.node_name = '$name'
max_connections = 40
max_worker_processes = 16
max_logical_replication_workers = 8
CONF
	$node->append_conf('postgresql.conf', $opts{extra_conf}) if $opts{extra_conf};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION crawler_ha') unless $opts{no_extension};
	return $node;
}

# The shared/ folder beside the clone (sites used by tests), or undef.
sub shared_dir
{
	my $d = $ENV{CRAWLER_HA_SHARED};
	return (defined $d && -d $d) ? $d : undef;
}

# sample_site($dir): the demo sample site (scripts/gen-sample-site) written
# to $dir, which must not exist. The site is deterministic and takes the
# vips command tens of seconds to make, so `make check` makes it once
# (CRAWLER_HA_SAMPLE_SITE) and each test takes a copy of its own; without
# it the site is generated here. Dies when neither works.
sub sample_site
{
	my ($dir) = @_;
	my $made = $ENV{CRAWLER_HA_SAMPLE_SITE};
	if (defined $made && $made ne '' && -f "$made/EXPECTED-IMAGES")
	{
		system('cp', '-a', $made, $dir) == 0 or die "cp -a $made $dir failed";
		return $dir;
	}
	my $gen = "$FindBin::RealBin/../../scripts/gen-sample-site";
	system($gen, $dir) == 0 or die 'gen-sample-site failed';
	return $dir;
}

# sample_site_worker(): the built crawler-worker (CRAWLER_WORKER) of a suite
# that crawls the sample site on nginx. The whole suite is skipped, saying
# why, when the worker, nginx or the vips command (which makes the site's
# images) is missing: without them there is nothing it could check.
sub sample_site_worker
{
	my $worker = $ENV{CRAWLER_WORKER};
	Test::More::plan(skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set')
	  unless $worker && -x $worker;
	Test::More::plan(skip_all => 'nginx is not installed') unless -x '/usr/sbin/nginx';
	Test::More::plan(skip_all => 'the vips command (libvips-tools) is not installed')
	  unless grep { -x "$_/vips" } split /:/, $ENV{PATH};
	return $worker;
}

# --- HA pairs -------------------------------------------------------------

# ha_node_user($node): the role $node uses to connect to the other nodes. Each
# node has its own, so that a partition can refuse one node's connections
# (ha_partition) without touching the others' or the test's own sessions.
sub ha_node_user
{
	my ($node) = @_;
	return 'ha_' . $node->name;
}

# ha_allow($node, $from): create on $node the superuser role $from connects
# with (a peer connects for checks, replication and switchover calls).
sub ha_allow
{
	my ($node, $from) = @_;
	my $u = ha_node_user($from);
	$node->safe_psql('postgres',
		"DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$u') THEN "
		  . "CREATE ROLE \"$u\" LOGIN SUPERUSER; END IF; END\$\$");
	return;
}

# ha_conninfo($node, $from): how $from (a node) reaches $node; without $from,
# as the test's own user.
sub ha_conninfo
{
	my ($node, $from) = @_;
	return 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres'
	  . ($from ? ' user=' . ha_node_user($from) : '');
}

# ha_set_peer($node, $peer): point $node's crawler_ha.peer_conninfo at $peer
# (as $node's own role, created on $peer), reload, and wait until new
# sessions see it.
sub ha_set_peer
{
	my ($node, $peer) = @_;
	ha_allow($peer, $node);
	my $ci = ha_conninfo($peer, $node);
	$node->append_conf('postgresql.conf', "crawler_ha.peer_conninfo = '$ci'\n");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('crawler_ha.peer_conninfo') = '$ci'")
	  or die "peer_conninfo not reloaded on " . $node->name;
}

# ha_set_witness($node, $witness): the same for crawler_ha.witness_conninfo.
sub ha_set_witness
{
	my ($node, $witness) = @_;
	ha_allow($witness, $node);
	my $ci = ha_conninfo($witness, $node);
	$node->append_conf('postgresql.conf', "crawler_ha.witness_conninfo = '$ci'\n");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('crawler_ha.witness_conninfo') = '$ci'")
	  or die "witness_conninfo not reloaded on " . $node->name;
}

# ha_witness($name, %opts): a witness node (extension, ha_setup('witness')).
# conf => extra postgresql.conf text.
sub ha_witness
{
	my ($name, %opts) = @_;
	my $conf = "crawler_ha.health_check_interval = '1s'\n" . ($opts{conf} // '');
	my $w = new_node($name, extra_conf => $conf, ($opts{node_id} ? (node_id => $opts{node_id}) : ()));
	$w->safe_psql('postgres', "SELECT ha_setup('witness')");
	return $w;
}

# ha_trio(%opts): alpha (primary), beta (standby) and a witness that both
# report to, set up as ha_pair does. names => [a, b, w], conf => extra
# postgresql.conf text for all three. Returns ($a, $b, $w).
sub ha_trio
{
	my (%opts) = @_;
	my ($na, $nb, $nw) = @{ $opts{names} // [ 'alpha', 'beta', 'witness' ] };
	my $w = ha_witness($nw, conf => $opts{conf});
	my ($a, $b) = ha_pair(names => [ $na, $nb ], conf => $opts{conf}, witness => $w);
	return ($a, $b, $w);
}

# --- partitions -------------------------------------------------------------
# The tests run unprivileged (no network namespaces), so a partition is made by
# the nodes themselves refusing each other's roles: a pg_hba.conf "reject" line
# at the top for each role of the other side, a reload, and the end of the
# sessions those roles already hold (health checks, walsenders of
# subscriptions). The test's own user is never refused, so clients and the
# test reach every node throughout.

my %partitioned;    # name => [node, refused users], every node that holds partition lines
my $hba_mark = '# crawler_ha test partition';

sub _running
{
	my ($node) = @_;
	return -f $node->data_dir . '/postmaster.pid';
}

# Is $user refused by $node's loaded pg_hba.conf? (Authentication comes
# before the role lookup, so the role need not exist.) The query goes in -c,
# not on stdin: a refused psql exits before reading stdin, and writing to it
# then fails with a broken pipe.
sub _refused
{
	my ($node, $user) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-h', $node->host, '-p', $node->port, '-U', $user, '-d', 'postgres',
			'-c', 'SELECT 1' ], '<', \undef, '>', \$out, '2>', \$err);
	return $err =~ /pg_hba\.conf rejects/ ? 1 : 0;
}

sub _cut
{
	my ($node, $others) = @_;
	my @users = map { ha_node_user($_) } @$others;
	return unless @users;
	my $hba = $node->data_dir . '/pg_hba.conf';
	open(my $in, '<', $hba) or die "$hba: $!";
	my $text = do { local $/; <$in> };
	close $in;
	my $lines = '';
	for my $u (@users)
	{
		$lines .= "local all $u reject $hba_mark\n"
		  . "local replication $u reject $hba_mark\n"
		  . "host all $u all reject $hba_mark\n"
		  . "host replication $u all reject $hba_mark\n";
	}
	open(my $out, '>', $hba) or die "$hba: $!";
	print $out $lines . $text;
	close $out;
	my $p = $partitioned{ $node->name } //= [ $node, [] ];
	push @{ $p->[1] }, @users;
	return unless _running($node);
	$node->reload;
	for my $u (@users)
	{
		my $ok = 0;
		for (1 .. 600) { $ok = 1, last if _refused($node, $u); Time::HiRes::sleep(0.05); }
		die $node->name . ": pg_hba.conf reject for $u not loaded" unless $ok;
	}
	# sessions opened before the reload: end them until none is left
	my $list = join(',', map { "'$_'" } @users);
	$node->poll_query_until('postgres',
		"SELECT count(pg_terminate_backend(pid)) = 0 FROM pg_stat_activity WHERE usename IN ($list)")
	  or die $node->name . ': sessions of ' . $list . ' do not end';
	return;
}

# ha_cut($node, \@from): a one-way cut: $node refuses connections from the
# nodes in @from (it still reaches them), until ha_heal.
sub ha_cut
{
	my ($node, $from) = @_;
	_cut($node, $from);
	return;
}

# ha_partition(\@side1, \@side2): no node of one side can connect to a node
# of the other from now on (until ha_heal), and the connections they had are
# ended. Nodes not running get the lines too; they apply at their start.
sub ha_partition
{
	my ($s1, $s2) = @_;
	_cut($_, $s2) for @$s1;
	_cut($_, $s1) for @$s2;
	return;
}

# ha_heal(): remove every partition line, reload, and wait until the roles
# are accepted again.
sub ha_heal
{
	for my $p (values %partitioned)
	{
		my ($node, $users) = @$p;
		my $hba = $node->data_dir . '/pg_hba.conf';
		open(my $in, '<', $hba) or die "$hba: $!";
		my @keep = grep { index($_, $hba_mark) < 0 } <$in>;
		close $in;
		open(my $out, '>', $hba) or die "$hba: $!";
		print $out @keep;
		close $out;
		next unless _running($node);
		$node->reload;
		for my $u (@$users)
		{
			my $ok = 0;
			for (1 .. 600) { $ok = 1, last unless _refused($node, $u); Time::HiRes::sleep(0.05); }
			die $node->name . ": pg_hba.conf still refuses $u after heal" unless $ok;
		}
	}
	%partitioned = ();
	return;
}

# ha_pair(%opts): two data nodes set up as primary + standby, initial copy done.
# names => [a, b], conf => extra postgresql.conf text for both, witness => a
# witness node (ha_witness) both report to.
sub ha_pair
{
	my (%opts) = @_;
	my ($na, $nb) = @{ $opts{names} // [ 'alpha', 'beta' ] };
	my $conf = "crawler_ha.health_check_interval = '1s'\n" . ($opts{conf} // '');
	my $a = new_node($na, extra_conf => $conf);
	my $b = new_node($nb, extra_conf => $conf);
	ha_set_peer($a, $b);
	ha_set_peer($b, $a);
	if ($opts{witness})
	{
		ha_set_witness($a, $opts{witness});
		ha_set_witness($b, $opts{witness});
	}
	$a->safe_psql('postgres', "SELECT ha_setup('primary')");
	$b->safe_psql('postgres', "SELECT ha_setup('standby')");
	$b->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate <> 'r'")
	  or die "initial copy did not finish";
	$b->poll_query_until('postgres', "SELECT current_setting('default_transaction_read_only') = 'on'")
	  or die "standby did not turn read-only";
	return ($a, $b);
}

# ha_multihost(@nodes): a libpq conninfo that finds the writable one.
sub ha_multihost
{
	my (@nodes) = @_;
	return 'host=' . join(',', map { $_->host } @nodes)
	  . ' port=' . join(',', map { $_->port } @nodes)
	  . ' dbname=postgres target_session_attrs=read-write connect_timeout=2';
}

# ha_writer_start($conninfo, $tag): a child process that calls crawl_start()
# in a loop, one psql per call (so every call reconnects through libpq's
# multi-host logic), and appends "url id" for every call that returned
# success. Returns a handle for ha_writer_stop / ha_acked.
sub ha_writer_start
{
	my ($conninfo, $tag) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $w = { file => "$dir/acked", stop => "$dir/stop", errors => "$dir/errors" };
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(my $fh, '>>', $w->{file}) or die;
		open(my $eh, '>>', $w->{errors}) or die;
		$fh->autoflush(1);
		$eh->autoflush(1);
		my $i = 0;
		my $deadline = time + 600;
		while (!-e $w->{stop} && time < $deadline)
		{
			$i++;
			my $url = "http://w.test/$tag/$i";
			my $t0 = Time::HiRes::time();
			my $out = `timeout 60 psql -XAtq -d "$conninfo" -v ON_ERROR_STOP=1 -c "SELECT crawl_start(ARRAY['$url'])" 2>&1`;
			chomp $out;
			# url, id, when the reply came, when the call began (client clock)
			if ($? == 0 && $out =~ /^\d+$/) { printf $fh "%s %s %.3f %.3f\n", $url, $out, Time::HiRes::time(), $t0; }
			else { $out =~ s/\n/ /g; print $eh "$url $out\n"; select(undef, undef, undef, 0.05); }
		}
		close $fh;
		close $eh;
		# no END blocks here: they belong to the parent (they stop the nodes)
		POSIX::_exit(0);
	}
	$w->{pid} = $pid;
	return $w;
}

sub ha_writer_stop
{
	my ($w) = @_;
	open(my $fh, '>', $w->{stop}) or die;
	close $fh;
	waitpid($w->{pid}, 0);
	return;
}

# ha_acked($w): { url => id } of every acknowledged write so far.
sub ha_acked
{
	my ($w) = @_;
	my %acked;
	open(my $fh, '<', $w->{file}) or return {};
	while (my $l = <$fh>)
	{
		chomp $l;
		my ($url, $id) = split / /, $l;
		$acked{$url} = $id if defined $id;
	}
	return \%acked;
}

# ha_acks($w): [ [url, id, time of the reply, time the call began], ... ] in
# acknowledgement order.
sub ha_acks
{
	my ($w) = @_;
	my @acks;
	open(my $fh, '<', $w->{file}) or return [];
	while (my $l = <$fh>)
	{
		chomp $l;
		my @f = split / /, $l;
		push @acks, \@f if @f >= 3;
	}
	return \@acks;
}

# ha_seeds($node): { url => id } of the sessions a node holds.
sub ha_seeds
{
	my ($node) = @_;
	my %have;
	for my $l (split /\n/,
		$node->safe_psql('postgres', "SELECT seeds[1] || ' ' || id FROM crawl_sessions"))
	{
		my ($url, $id) = split / /, $l;
		$have{$url} = $id;
	}
	return \%have;
}

# ha_wait_writable($node, $max_s): seconds until ha_health() says writable.
sub ha_wait_writable
{
	my ($node, $max) = @_;
	my $t0 = Time::HiRes::time();
	while (Time::HiRes::time() - $t0 < ($max // 120))
	{
		my $w = $node->safe_psql('postgres', 'SELECT writable FROM ha_health()');
		return Time::HiRes::time() - $t0 if $w eq 't';
		Time::HiRes::sleep(0.05);
	}
	return undef;
}

# nginx_serve($root_dir): nginx, run as this user with its own config, pid,
# logs and temp paths, serving $root_dir on a free loopback port. Returns
# { harness => IPC::Run harness (kill_kill it), port, base => 'http://...',
# access_log => path (one request URI per line) }.
# bench_conf(@lines): postgresql.conf settings for a benchmark's nodes:
# production-like ones (not the framework's tiny shared_buffers, fsync on,
# no statement or connection logging, loopback TCP), then @lines.
sub bench_conf
{
	return join('', map { "$_\n" } "listen_addresses = '127.0.0.1'", "shared_buffers = '256MB'", 'fsync = on',
		"log_statement = 'none'", 'log_min_duration_statement = -1', 'log_connections = off',
		'log_disconnections = off', 'max_connections = 100', @_);
}

# median(@values): the middle value, or the mean of the two middle ones for
# an even count; what every bench reports of its rounds.
sub median
{
	my @v = sort { $a <=> $b } @_;
	return @v % 2 ? $v[ $#v / 2 ] : ($v[ @v / 2 - 1 ] + $v[ @v / 2 ]) / 2;
}

# wait_port($port, $seconds): true once something accepts connections on
# 127.0.0.1:$port, false after $seconds (a server that failed to start).
sub wait_port
{
	my ($port, $seconds) = @_;
	my $until = Time::HiRes::time() + $seconds;
	while (Time::HiRes::time() < $until)
	{
		return 1 if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 1);
		Time::HiRes::sleep(0.1);
	}
	return 0;
}

# nginx_serve($dir): a real nginx serving $dir on a free loopback port, as
# the default server (any Host, so *.localhost names reach it too). Returns
# { harness, port, base (http://127.0.0.1:port), access_log (one URI a
# line), status_log ("status body_bytes uri"), timed_log ("msec host uri") }.
sub nginx_serve
{
	my ($root_dir) = @_;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $dir = PostgreSQL::Test::Utils::tempdir();
	open my $cf, '>', "$dir/nginx.conf" or die $!;
	print $cf <<"CONF";
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  types { image/avif avif; image/heic heic; }
  log_format plain '\$request_uri';
  access_log $dir/access.log plain;
  log_format status '\$status \$body_bytes_sent \$request_uri';
  access_log $dir/status.log status;
  log_format timed '\$msec \$host \$request_uri';
  access_log $dir/timed.log timed;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  server { listen 127.0.0.1:$port; root $root_dir; }
}
CONF
	close $cf;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ '/usr/sbin/nginx', '-e', 'stderr', '-p', $dir, '-c', "$dir/nginx.conf" ],
		'>', \$out, '2>', \$err);
	wait_port($port, 5) or die "nginx did not start: $err";
	return { harness => $h, port => $port, base => "http://127.0.0.1:$port",
		access_log => "$dir/access.log", status_log => "$dir/status.log", timed_log => "$dir/timed.log" };
}

1;
