# Without shared_preload_libraries the crawl API still works on a single
# node, and the HA functions refuse clearly, saying how to load them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('plain');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION crawler_ha');
like($node->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://example.com/'])"), qr/^\d+$/,
	'the write API works on a standalone node');
for my $f ('ha_status()', 'ha_health()', 'ha_failover()', 'ha_pause()')
{
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT * FROM $f");
	like($err, qr/high availability is not loaded/, "$f refuses");
	like($err, qr/HINT:.*shared_preload_libraries/, "$f says how to load it");
}
done_testing();
