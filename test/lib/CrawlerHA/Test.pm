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
use POSIX ();
use IO::Handle;

our @EXPORT_OK = qw(new_node shared_dir nginx_serve ha_conninfo ha_set_peer ha_pair ha_multihost
  ha_writer_start ha_writer_stop ha_acked ha_acks ha_seeds ha_wait_writable);

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

# --- HA pairs (issue 3) ---------------------------------------------------

# ha_conninfo($node): how a peer reaches $node.
sub ha_conninfo
{
	my ($node) = @_;
	return 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
}

# ha_set_peer($node, $peer): point $node's crawler_ha.peer_conninfo at $peer,
# reload, and wait until new sessions see it.
sub ha_set_peer
{
	my ($node, $peer) = @_;
	my $ci = ha_conninfo($peer);
	$node->append_conf('postgresql.conf', "crawler_ha.peer_conninfo = '$ci'\n");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('crawler_ha.peer_conninfo') = '$ci'")
	  or die "peer_conninfo not reloaded on " . $node->name;
}

# ha_pair(%opts): two data nodes set up as primary + standby, initial copy done.
# names => [a, b], conf => extra postgresql.conf text for both.
sub ha_pair
{
	my (%opts) = @_;
	my ($na, $nb) = @{ $opts{names} // [ 'alpha', 'beta' ] };
	my $conf = "crawler_ha.health_check_interval = '1s'\n" . ($opts{conf} // '');
	my $a = new_node($na, extra_conf => $conf);
	my $b = new_node($nb, extra_conf => $conf);
	ha_set_peer($a, $b);
	ha_set_peer($b, $a);
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
			my $out = `timeout 60 psql -XAtq -d "$conninfo" -v ON_ERROR_STOP=1 -c "SELECT crawl_start(ARRAY['$url'])" 2>&1`;
			chomp $out;
			if ($? == 0 && $out =~ /^\d+$/) { printf $fh "%s %s %.3f\n", $url, $out, Time::HiRes::time(); }
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

# ha_acks($w): [ [url, id, time], ... ] in acknowledgement order.
sub ha_acks
{
	my ($w) = @_;
	my @acks;
	open(my $fh, '<', $w->{file}) or return [];
	while (my $l = <$fh>)
	{
		chomp $l;
		my @f = split / /, $l;
		push @acks, \@f if @f == 3;
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
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  server { listen 127.0.0.1:$port; root $root_dir; }
}
CONF
	close $cf;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ '/usr/sbin/nginx', '-e', 'stderr', '-p', $dir, '-c', "$dir/nginx.conf" ],
		'>', \$out, '2>', \$err);
	my $up = 0;
	for (1 .. 50)
	{
		$up = 1, last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 1);
		select undef, undef, undef, 0.1;
	}
	die "nginx did not start: $err" unless $up;
	return { harness => $h, port => $port, base => "http://127.0.0.1:$port",
		access_log => "$dir/access.log" };
}

1;
