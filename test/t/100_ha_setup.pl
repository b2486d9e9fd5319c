# Two nodes become primary + standby: the data replicates, the standby is
# read-only and refuses the write API with 25006 naming the primary, a libpq
# multi-host read-write conninfo lands on the primary, ha_status() shows both.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair ha_multihost);

my ($a, $b) = ha_pair();

is($a->safe_psql('postgres', "SELECT role || ' ' || term FROM ha_state"), 'primary 1', 'alpha is the primary of term 1');
is($b->safe_psql('postgres', "SELECT role || ' ' || term FROM ha_state"), 'standby 1', 'beta is the standby of term 1');
is($a->safe_psql('postgres', "SELECT ha_setup('primary')"), 'primary', 'ha_setup is idempotent on the primary');
is($b->safe_psql('postgres', "SELECT ha_setup('standby')"), 'standby', 'ha_setup is idempotent on the standby');

is($a->safe_psql('postgres',
		"SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'crawler_ha_pub'"),
	'crawl_frontier,crawl_hosts,crawl_session_counts,crawl_sessions,images',
	'the publication lists exactly the five data tables');

# replication works
my $sid = $a->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://example.com/'])");
$a->safe_psql('postgres', "SELECT crawl_host_set('example.com', '2 s')");
$b->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_sessions WHERE id = $sid")
  or die 'session did not replicate';
$b->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_hosts WHERE host = 'example.com'")
  or die 'host did not replicate';
pass('a session and a host written on the primary reach the standby');

# the standby is read-only and the fence names the primary
is($b->safe_psql('postgres', 'SHOW default_transaction_read_only'), 'on', 'standby runs read-only');
my ($rc, $out, $err) = $b->psql('postgres',
	"SELECT crawl_start(ARRAY['http://example.org/'])", on_error_stop => 1);
isnt($rc, 0, 'a write on the standby fails');
like($err, qr/does not accept writes/, 'with the fence message');
($rc, $out, $err) = $b->psql('postgres',
	"\\set VERBOSITY verbose\nBEGIN READ WRITE; SELECT crawl_start(ARRAY['http://example.org/']);");
like($err, qr/25006/, 'BEGIN READ WRITE does not get past the fence (25006)');
like($err, qr/alpha/, 'the refusal names the primary');

# libpq multi-host read-write lands on the primary whatever the order
my $ci = ha_multihost($b, $a);
my $landed = `psql -XAtq -d "$ci" -c "SELECT current_setting('crawler_ha.node_name')"`;
chomp $landed;
is($landed, 'alpha', 'target_session_attrs=read-write finds the primary');

# ha_status() and ha_health()
$b->poll_query_until('postgres',
	"SELECT healthy AND role = 'primary' FROM ha_status() WHERE node_name = 'alpha'")
  or die 'standby never saw a healthy primary';
pass('the standby sees alpha as a healthy primary in ha_status()');
# and alpha has made its own first check of beta (the two workers check independently)
$a->poll_query_until('postgres', "SELECT count(*) > 0 FROM ha_status() WHERE NOT is_local AND last_check IS NOT NULL")
  or die 'the primary never checked its peer';
is($a->safe_psql('postgres', "SELECT writable, role FROM ha_health()"), 't|primary', 'ha_health on the primary');
is($b->safe_psql('postgres', "SELECT writable, role FROM ha_health()"), 'f|standby', 'ha_health on the standby');
is($a->safe_psql('postgres', "SELECT count(*) FROM ha_status()"), '2', 'ha_status has this node and the peer');
ok($a->safe_psql('postgres', "SELECT latency_ms >= 0 AND consecutive_failures = 0 FROM ha_status() WHERE NOT is_local") eq 't',
	'latency and failures of the peer are shown');

# no direct DML on the data tables for the writer role, only the API
$a->safe_psql('postgres', "CREATE ROLE w LOGIN IN ROLE crawler_ha_writer");
($rc, $out, $err) = $a->psql('postgres', "SET ROLE w; INSERT INTO crawl_hosts(host) VALUES ('x.test')");
like($err, qr/permission denied/, 'the writer role cannot insert directly');
($rc, $out, $err) = $a->psql('postgres', "SET ROLE w; SELECT ha_failover()");
like($err, qr/permission denied/, 'the writer role cannot call ha_failover');

# the conninfo settings are superuser-only and refuse passwords
($rc, $out, $err) = $a->psql('postgres', "SET ROLE w; SHOW crawler_ha.peer_conninfo");
like($err, qr/permission denied|must be superuser|privileges/, 'peer_conninfo is hidden from non-superusers');
($rc, $out, $err) = $a->psql('postgres', "ALTER SYSTEM SET crawler_ha.peer_conninfo = 'host=x password=secret'");
like($err, qr/must not contain a password/, 'a conninfo with a password is refused');
unlike($err, qr/secret/, 'and the password is not echoed');

# the worker comes back when it dies
my $pid = $b->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'crawler_ha worker'");
ok($pid =~ /^\d+$/, 'the HA worker runs');
$b->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$b->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'crawler_ha worker' AND pid <> $pid")
  or die 'worker not restarted';
pass('a terminated HA worker is started again');
$b->poll_query_until('postgres', "SELECT healthy FROM ha_status() WHERE node_name = 'alpha'") or die;
pass('and checks the peer again');

# every event is also a NOTIFY, whose payload is only the event's id: the
# channel is open to anyone, so a listener reads the event from the table
my $heard = $a->safe_psql('postgres',
	"LISTEN crawler_ha_events; SELECT ha_record_event('alert', 'notify check')");
my ($id) = $heard =~ /^(\d+)/;
like($heard, qr/Asynchronous notification "crawler_ha_events" with payload "$id" received/,
	'an event is sent as NOTIFY crawler_ha_events with its id as the payload');
is($a->safe_psql('postgres', "SELECT reason FROM ha_events WHERE id = $id"), 'notify check',
	'the id finds the event in ha_events');
unlike($heard, qr/payload ".*notify check/, 'the payload carries nothing of the event itself');

# per-node state is not replicated
$a->safe_psql('postgres', "SELECT ha_record_event('alert', 'test event only on alpha')");
sleep 1;
is($b->safe_psql('postgres', "SELECT count(*) FROM ha_events WHERE reason = 'test event only on alpha'"), '0',
	'ha_events stay on their node');

# The publication holds exactly the tables of ha_data_tables(), on both nodes.
for my $n ($a, $b)
{
	is($n->safe_psql('postgres',
			"SELECT string_agg(format('%I.%I', schemaname, tablename), ', ' ORDER BY tablename) "
			  . "FROM pg_publication_tables WHERE pubname = 'crawler_ha_pub'"),
		$n->safe_psql('postgres', "SELECT string_agg(t, ', ' ORDER BY t) FROM unnest(string_to_array(ha_data_table_list(), ', ')) t"),
		$n->name . ': the publication holds exactly ha_data_tables()');
}

# A query the peer refuses is raised again with the peer's SQLSTATE, message,
# detail and hint, as postgres_fdw does, not turned into a connection error.
($rc, $out, $err) = $a->psql('postgres',
	"DO \$\$ BEGIN PERFORM ha_peer_query('SELECT 1/0'); EXCEPTION WHEN division_by_zero THEN "
	  . "RAISE EXCEPTION 'peer said: % (%)', SQLERRM, SQLSTATE; END \$\$");
like($err, qr/peer said: division by zero \(22012\)/, 'a remote error keeps its SQLSTATE and message');
($rc, $out, $err) = $a->psql('postgres',
	"SELECT ha_peer_query(\$q\$DO \$x\$ BEGIN RAISE EXCEPTION 'nope' USING DETAIL = 'the detail', HINT = 'the hint', ERRCODE = '22023'; END \$x\$ \$q\$)");
like($err, qr/ERROR:  nope.*DETAIL:  the detail.*HINT:  the hint/s, 'and its detail and hint');

# ha_peer_send(query, params, timeout_ms): the params are $1..$n, sent apart
# from the text (a merge's chunks), NULL elements as SQL NULL; hostile text
# arrives as it was sent, as does a value of megabytes; one connection serves
# the calls of a transaction; a refused query keeps its SQLSTATE.
$a->safe_psql('postgres', q{
	CREATE FUNCTION public.peer_trip(q text, p text[]) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN PERFORM ha_peer_send(q, p); RETURN ha_peer_receive(); END $$;});
my $hostile = q{x'); DROP TABLE images; --} . "\\ \" \t\n" . "\xc3\xa9\xe4\xb8\xad";
is($a->safe_psql('postgres',
		q{SELECT peer_trip('SELECT format(''%s|%s|%s'', $1::text, $2::text IS NULL, length($3::text))', ARRAY[$h$}
		  . $hostile . q{$h$, NULL, repeat('a', 8000000)])}),
	"$hostile|t|8000000", 'ha_peer_send: params arrive as sent (hostile text, NULL, 8 MB)');
is($a->safe_psql('postgres',
		q{SELECT peer_trip('SELECT pg_backend_pid()::text = $1', ARRAY[peer_trip('SELECT pg_backend_pid()', NULL)])}),
	't', 'ha_peer_send: the calls of one transaction share one connection');
($rc, $out, $err) = $a->psql('postgres',
	q{DO $$ BEGIN PERFORM peer_trip('SELECT 1 / $1::integer', ARRAY['0']);
	  EXCEPTION WHEN division_by_zero THEN RAISE EXCEPTION 'peer said: % (%)', SQLERRM, SQLSTATE; END $$});
like($err, qr/peer said: division by zero \(22012\)/, 'ha_peer_receive: a refused query keeps its SQLSTATE');
for my $bad (
	[ q{SELECT ha_peer_send('SELECT $1', ARRAY[['a'], ['b']])}, 'params must be a one-dimensional array', '2202E' ],
	[ q{SELECT ha_peer_send('SELECT 1', NULL, 0)}, 'timeout_ms must be between', '22023' ],
	[ q{SELECT ha_peer_send('SELECT 1', NULL, 3600001)}, 'timeout_ms must be between', '22023' ],
	[ q{SELECT ha_peer_send(NULL)}, 'query must not be NULL', '22004' ],
	[ q{SELECT ha_peer_send('SELECT $1', ARRAY(SELECT 'x' FROM generate_series(1, 70000)))}, 'at most 65535 params', '54000' ])
{
	($rc, $out, $err) = $a->psql('postgres', "\\set VERBOSITY verbose\n$bad->[0]");
	like($err, qr/\Q$bad->[2]\E: \Q$bad->[1]\E/, "ha_peer_send refuses ($bad->[2]): $bad->[0]");
}
# a refused call leaves nothing under way: the next one in the transaction runs
is($a->safe_psql('postgres', q{
	DO $$ BEGIN PERFORM ha_peer_send('SELECT $1', ARRAY[['a'], ['b']]); EXCEPTION WHEN OTHERS THEN NULL; END $$;
	SELECT peer_trip('SELECT $1 || $2', ARRAY['o', 'k']);}), 'ok', 'ha_peer_send: after a refused call, the next one runs');
$a->safe_psql('postgres', 'DROP FUNCTION public.peer_trip(text, text[])');

done_testing();
