# Reading an old primary's tail from its slot (docs/ha.md, "Rejoin with
# merge"): ha_tail_changes() reads a temporary copy of the slot with the
# extension's output plugin (extension/ha_tail_keys_plugin.c). What it reads
# is what pgoutput sends for the publication: inserts, updates, deletes and
# truncates of the followed tables committed after the split point, none of
# an unfollowed table, of a rolled-back transaction or of one committed
# before; pgoutput itself, peeked on the real slot, is the oracle for the
# counts. The real slot is left as it was and the copy is dropped, also when
# the reading fails. The plugin refuses bad options; the functions refuse
# bad arguments and wrong callers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node);

my $n = new_node('tail');
$n->safe_psql('postgres', "SELECT ha_setup('primary')");
$n->safe_psql('postgres', q{
	CREATE TABLE tail_other (id int PRIMARY KEY, v text);
	SELECT pg_create_logical_replication_slot('old_standby', 'pgoutput')});

# before the split: not in the tail
$n->safe_psql('postgres', q{INSERT INTO crawl_hosts (host) VALUES ('before.test')});
my $split = $n->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');

# the tail, one transaction per statement
$n->safe_psql('postgres', $_) for (
	q{INSERT INTO crawl_hosts (host) VALUES ('a.test'), ('sp ace ü.test')},
	q{UPDATE crawl_hosts SET crawl_delay = '1 s' WHERE host = 'a.test'},
	q{UPDATE crawl_hosts SET host = 'b.test' WHERE host = 'before.test'},
	q{DELETE FROM crawl_hosts WHERE host = 'sp ace ü.test'},
	q{INSERT INTO tail_other VALUES (1, 'x'), (2, 'y')},
	q{UPDATE tail_other SET v = 'z'},
	q{DELETE FROM tail_other WHERE id = 2},
	q{BEGIN; INSERT INTO crawl_hosts (host) VALUES ('rolled.back'); ROLLBACK},
	q{TRUNCATE tail_other},
	q{TRUNCATE crawl_hosts, tail_other},
	q{INSERT INTO crawl_hosts (host) VALUES ('c.test')},
	q{TRUNCATE crawl_hosts, crawl_session_counts});

my $slot_row = q{SELECT plugin, restart_lsn, confirmed_flush_lsn, catalog_xmin, temporary
                   FROM pg_replication_slots WHERE slot_name = 'old_standby'};
my $before = $n->safe_psql('postgres', $slot_row);

is($n->safe_psql('postgres', qq{
	SELECT string_agg(op::text || ' ' || coalesce(rel::regclass::text, '-') || ' ' || coalesce(key, '-'), E'\n')
	  FROM ha_tail_changes('old_standby', '$split')}),
	join("\n",
		'I crawl_hosts a.test', 'I crawl_hosts sp ace ü.test', 'U crawl_hosts a.test', 'U crawl_hosts b.test',
		'D crawl_hosts sp ace ü.test', 'T crawl_hosts -', 'I crawl_hosts c.test', 'T - -'),
	'the tail: each change of a followed table after the split, with its key; a truncate names its one followed table');

# pgoutput, on the real slot, sends as many messages of each kind
my $pgoutput = $n->safe_psql('postgres', qq{
	WITH m AS MATERIALIZED (
	    SELECT lsn, xid, chr(get_byte(data, 0)) AS op
	      FROM pg_logical_slot_peek_binary_changes('old_standby', NULL, NULL, 'proto_version', '1',
	                                               'publication_names', 'crawler_ha_pub'))
	SELECT string_agg(op || count, ' ' ORDER BY op) FROM (
	    SELECT op, count(*) FROM m
	     WHERE op IN ('I', 'U', 'D', 'T') AND xid IN (SELECT xid FROM m WHERE op = 'C' AND lsn > '$split')
	     GROUP BY op) c});
is($n->safe_psql('postgres', qq{
	SELECT string_agg(op || count, ' ' ORDER BY op)
	  FROM (SELECT op::text, count(*) FROM ha_tail_changes('old_standby', '$split') GROUP BY op) c}),
	$pgoutput, "as many changes of each kind as pgoutput sends ($pgoutput)");

is($n->safe_psql('postgres', qq{SELECT changes || ' ' || keys::text FROM ha_tail_summary('old_standby', '$split')}),
	'8 {"public.crawl_hosts": ["a.test", "b.test", "c.test", "sp ace ü.test"]}',
	'the summary: every change counted, each key once, in order');
is($n->safe_psql('postgres', qq{SELECT changes || ' ' || keys::text FROM ha_tail_summary('old_standby', pg_current_wal_insert_lsn())}),
	'0 {}', 'nothing after the end of the WAL');

is($n->safe_psql('postgres', $slot_row), $before, 'the real slot is as it was');
is($n->safe_psql('postgres', 'SELECT string_agg(slot_name, \',\') FROM pg_replication_slots'), 'old_standby',
	'and no copy is left');

# --- failures leave no copy ------------------------------------------------------
sub fails_with
{
	my ($sql, $state, $name) = @_;
	my ($rc, $out, $err) = $n->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	like($err, qr/ERROR:  $state/, "$name ($state)");
}
fails_with(qq{BEGIN; INSERT INTO tail_other VALUES (3, 'w'); SELECT * FROM ha_tail_changes('old_standby', '$split'); COMMIT},
	'25001', 'a transaction that has written cannot copy a slot');
$n->safe_psql('postgres', q{SELECT pg_create_physical_replication_slot('physical')});
fails_with(q{SELECT * FROM ha_tail_summary('physical', '0/0')}, '0A000', 'a physical slot has no changes to read');
fails_with(q{SELECT * FROM ha_tail_changes('x''; DROP TABLE images; --', '0/0')}, '42704', 'a hostile slot name is a name');
is($n->safe_psql('postgres', 'SELECT count(*) FROM pg_class WHERE relname = \'images\''), '1', 'and no SQL');
is($n->safe_psql('postgres', 'SELECT string_agg(slot_name, \',\' ORDER BY slot_name) FROM pg_replication_slots'),
	'old_standby,physical', 'no copy is left after a failure');
is($n->safe_psql('postgres', qq{SELECT changes FROM ha_tail_summary('old_standby', '$split')}), '8',
	'and the tail reads again in the same session');

# PostgreSQL 15.19 and later load as an output plugin only what
# output_plugin_libraries names; the reading allows its own plugin for itself
my $allow = $n->safe_psql('postgres', "SELECT current_setting('output_plugin_libraries', true) IS NOT NULL") eq 't'
  ? "SET output_plugin_libraries = 'crawler_ha';" : '';
if ($allow)
{
	is($n->safe_psql('postgres', qq{
		BEGIN;
		SELECT count(*) FROM ha_tail_changes('old_standby', '$split');
		SELECT current_setting('output_plugin_libraries');
		COMMIT}), "8\npgoutput, test_decoding", 'the allowed output plugins are as they were after the reading');
}

# an interrupted reading's copy (a temporary slot of this backend) is replaced
is($n->safe_psql('postgres', qq{
	$allow
	SELECT count(*) FROM pg_copy_logical_replication_slot('old_standby', 'crawler_ha_tail_' || pg_backend_pid(), true, 'crawler_ha');
	SELECT changes FROM ha_tail_summary('old_standby', '$split');
	SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'crawler_ha_tail_%'}),
	"1\n8\n0", 'a copy left in this backend is dropped first');

# wrong callers: the functions are the superuser's; the plugin needs the
# REPLICATION attribute that any logical decoding needs
$n->safe_psql('postgres', q{CREATE ROLE tail_admin LOGIN IN ROLE crawler_ha_admin; CREATE ROLE tail_repl LOGIN REPLICATION});
for my $role ('tail_admin', 'tail_repl')
{
	for my $f ('ha_tail_changes', 'ha_tail_summary')
	{
		my ($rc, $out, $err) = $n->psql('postgres', "\\set VERBOSITY verbose\nSELECT * FROM $f('old_standby', '$split')",
			extra_params => [ '-U', $role ]);
		like($err, qr/ERROR:  42501/, "$role may not call $f()");
	}
}

# --- the plugin on its own ----------------------------------------------------------
$n->safe_psql('postgres', "$allow SELECT pg_create_logical_replication_slot('direct', 'crawler_ha')");
my $hosts = $n->safe_psql('postgres', q{SELECT 'crawl_hosts'::regclass::oid});
$n->safe_psql('postgres', $_) for (
	q{INSERT INTO crawl_hosts (host) VALUES ('d.test')},
	q{UPDATE crawl_hosts SET crawl_delay = '2 s'},
	q{INSERT INTO tail_other VALUES (5, 'v')},
	q{DELETE FROM crawl_hosts});
is($n->safe_psql('postgres', qq{$allow
	SELECT string_agg(data, '|') FROM pg_logical_slot_peek_changes('direct', NULL, NULL, 'relations', '$hosts', 'after_lsn', '0/0')}),
	"I $hosts d.test|U $hosts d.test|D $hosts d.test", 'one line per change of a followed table: op, OID, key');
is($n->safe_psql('postgres', qq{$allow
	SELECT string_agg(data, '|') FROM pg_logical_slot_peek_changes('direct', NULL, NULL, 'relations', '$hosts', 'after_lsn', '0/0',
	                                                               'actions', 'UD')}),
	"U $hosts d.test|D $hosts d.test", 'actions chooses the operations followed');
is($n->safe_psql('postgres', qq{$allow
	SELECT count(*) FROM pg_logical_slot_peek_changes('direct', NULL, NULL, 'relations', '', 'after_lsn', '0/0')}),
	'0', 'no relations, no lines');
for my $opts (
	q{}, q{'relations', '1'}, q{'after_lsn', '0/0'}, q{'relations', 'x', 'after_lsn', '0/0'},
	q{'relations', '1,,2', 'after_lsn', '0/0'}, q{'relations', '1,', 'after_lsn', '0/0'},
	q{'relations', '0', 'after_lsn', '0/0'}, q{'relations', '4294967296', 'after_lsn', '0/0'},
	q{'relations', '-1', 'after_lsn', '0/0'}, q{'relations', ' 1', 'after_lsn', '0/0'},
	q{'relations', repeat('1,', 64) || '1', 'after_lsn', '0/0'},
	q{'relations', '1', 'after_lsn', 'zz'},
	q{'relations', '1', 'after_lsn', '0/0', 'actions', 'X'}, q{'relations', '1', 'after_lsn', '0/0', 'proto_version', '1'})
{
	my $o = $opts eq '' ? '' : ", $opts";
	fails_with("$allow SELECT * FROM pg_logical_slot_peek_changes('direct', NULL, NULL$o)", '22023', "the plugin refuses options ($opts)");
}
$n->safe_psql('postgres', q{SELECT pg_drop_replication_slot('direct')});

$n->stop;
done_testing();
