# Helpers shared by the TAP suites: nodes with the extension loaded as in
# production, each with its own node id.
package CrawlerHA::Test;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Exporter 'import';

our @EXPORT_OK = qw(new_node shared_dir ha_conninfo ha_set_peer ha_pair ha_multihost);

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

1;
