# Consistency between two real nodes: made to differ on purpose (rows missing
# on each side, changed rows, extra rows, at the edges of the key range, an
# empty table, a one-row table), the check names every differing key and
# nothing else; a dry run changes nothing; ha_sync makes them identical; the
# pg_cron jobs exist and run.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use CrawlerHA::Test qw(ha_pair new_node);

# pg_cron 1.4 runs a job at most once a minute: its jobs are scheduled first,
# on a node of their own (a consistency check running at a moment of its
# choosing would add events to the pair's), and their first run is looked
# for at the end.
my $cron = new_node('cons_cron');
$cron->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
my $jobs = $cron->safe_psql('postgres',
	"SELECT string_agg(job_name, ' ' ORDER BY job_name) FROM ha_schedule_maintenance(check_schedule => '* * * * *')");

my ($p, $s) = ha_pair(names => [ 'cons_p', 'cons_s' ]);

# Data on the primary through the write API.
my $sid = $p->safe_psql('postgres',
	q{SELECT crawl_start(ARRAY['http://c.test/'], '{"delay_ms": 0, "allowed_domains": ["c.test"]}')});
$p->safe_psql('postgres', qq{
	SELECT crawl_enqueue($sid, ARRAY(SELECT 'http://c.test/p' || i FROM generate_series(1, 300) i), 1, 'page');
	SELECT count(image_record($sid, 'http://c.test/i' || i || '.png', lpad(to_hex(i), 64, '0'),
	                          '00/00/' || lpad(to_hex(i), 64, '0') || '.png', i, i, i, 'png', 'image/png'))
	  FROM generate_series(1, 2000) i;});
my $catchup = q{SELECT (SELECT count(*) FROM images) || '/' || (SELECT count(*) FROM crawl_frontier)};
my $want = $p->safe_psql('postgres', $catchup);
$s->poll_query_until('postgres', $catchup, $want) or die 'standby did not catch up';

sub diff_of
{
	my ($table) = @_;
	return $p->safe_psql('postgres',
		"SELECT coalesce(string_agg(kind || ':' || key, ' ' ORDER BY kind, key::numeric), '') FROM ha_diff('$table', recheck => '0')");
}

is(diff_of('images'), '', 'identical nodes: no differing image');
my $all = $p->safe_psql('postgres',
	"SELECT string_agg(check_name || '=' || ok, ' ') FROM ha_check_consistency() WHERE table_name = 'public.images'");
is($all, 'row_count=true latest_record=true id_range=true range_hash=true', 'all four checks pass on identical nodes');

# Make the standby differ, behind replication's back.
my ($min, $max) = split /\|/, $p->safe_psql('postgres', 'SELECT min(id), max(id) FROM images');
my $mid = $p->safe_psql('postgres', 'SELECT id FROM images ORDER BY id OFFSET 1000 LIMIT 1');
my $mid2 = $p->safe_psql('postgres', 'SELECT id FROM images ORDER BY id OFFSET 1500 LIMIT 1');
my $upd = $p->safe_psql('postgres', 'SELECT id FROM images ORDER BY id OFFSET 77 LIMIT 1');
my $extra_low = $min - 1024;
my $extra_high = $max + 1024 * 5;
$s->safe_psql('postgres', qq{
	BEGIN READ WRITE;
	SET LOCAL session_replication_role = replica;
	DELETE FROM images WHERE id IN ($min, $max, $mid);
	UPDATE images SET width = width + 1 WHERE id IN ($upd, $mid2);
	INSERT INTO images (id, url, file_path, file_size, sha256, session_id)
	VALUES ($extra_low, 'http://c.test/extra-low.png', 'x', 1, repeat('e', 64), $sid),
	       ($extra_high, 'http://c.test/extra-high.png', 'y', 2, repeat('f', 64), $sid);
	UPDATE crawl_sessions SET settings = settings || '{"user_agent": "changed on the standby"}';
	UPDATE crawl_session_counts SET errors = 99 WHERE key = (SELECT min(key) FROM crawl_session_counts);
	INSERT INTO crawl_hosts (host) VALUES ('only-on-standby.test');
	COMMIT;});
# crawl_hosts: on the primary it holds c.test; make it empty there for the
# empty-table case on the primary side is covered by a separate table below.

my @expect = (
	"changed:$upd", "changed:$mid2",
	"missing_here:$extra_low", "missing_here:$extra_high",
	"missing_on_peer:$min", "missing_on_peer:$max", "missing_on_peer:$mid");
is(diff_of('images'), join(' ', sort { (split /:/, $a)[0] cmp (split /:/, $b)[0] || (split /:/, $a)[1] <=> (split /:/, $b)[1] } @expect),
	'images: every differing id named, at both edges and inside, and nothing else');
is(diff_of('crawl_sessions'), "changed:$sid", 'one-row table: the changed row is named');
my $ckey = $p->safe_psql('postgres', 'SELECT min(key) FROM crawl_session_counts');
is($p->safe_psql('postgres', "SELECT string_agg(kind || ':' || key, ' ') FROM ha_diff('crawl_session_counts', recheck => '0')"),
	"changed:$ckey", 'the counters: the changed row is named by its key');
is($p->safe_psql('postgres', "SELECT string_agg(kind || ':' || key, ' ') FROM ha_diff('crawl_hosts', recheck => '0')"),
	'missing_here:only-on-standby.test', 'a table keyed by text: the extra host is named');
is(diff_of('crawl_frontier'), '', 'an untouched table: nothing');

# Only the data tables: another table, even one both nodes have, is refused
# before anything of it is read (the functions run as the extension's owner).
$p->safe_psql('postgres', 'CREATE TABLE public.probe (id bigint PRIMARY KEY, v text)');
$s->safe_psql('postgres', q{BEGIN READ WRITE; CREATE TABLE public.probe (id bigint PRIMARY KEY, v text);
	INSERT INTO public.probe VALUES (1, 'x'); COMMIT;});
my ($prc, $pout, $perr) = $p->psql('postgres', "SELECT * FROM ha_diff('public.probe')");
like($perr, qr/public\.probe is not a crawler_ha data table/, 'ha_diff refuses a table that is not a data table');
($prc, $pout, $perr) = $p->psql('postgres', "SELECT * FROM ha_check_consistency(ARRAY['public.probe'::regclass])");
like($perr, qr/public\.probe is not a crawler_ha data table/, 'so does ha_check_consistency');
# On the standby the check says where to run it; ha_diff works there.
($prc, $pout, $perr) = $s->psql('postgres', 'SELECT * FROM ha_check_consistency()');
like($perr, qr/runs on the primary; node cons_s is the standby/, 'ha_check_consistency on the standby: 25006, run it on the primary');
is($s->safe_psql('postgres', "SELECT count(*) FROM ha_diff('images', recheck => '0')"), '7', 'ha_diff works on the standby');

my $checks = $p->safe_psql('postgres',
	"SELECT ok || ' ' || detail FROM ha_check_consistency(ARRAY['images'::regclass]) WHERE check_name = 'range_hash'");
like($checks, qr/^false 7 differing rows/, 'ha_check_consistency reports the 7 differing rows');

# Dry run: counts, no change.
my $dry = $p->safe_psql('postgres',
	"SELECT string_agg(table_name || ':' || inserted || '/' || updated || '/' || deleted, ' ') FROM ha_sync(dry_run => true)");
like($dry, qr/images:3\/2\/2/, "dry run counts images: 3 to insert, 2 to update, 2 to delete ($dry)");
is(diff_of('images'), join(' ', sort { (split /:/, $a)[0] cmp (split /:/, $b)[0] || (split /:/, $a)[1] <=> (split /:/, $b)[1] } @expect),
	'dry run changed nothing');

# Repair.
my $rep = $p->safe_psql('postgres',
	"SELECT string_agg(table_name || ':' || inserted || '/' || updated || '/' || deleted, ' ') FROM ha_sync()");
like($rep, qr/images:3\/2\/2/, "repair: $rep");
is(diff_of($_), '', "after repair $_ is identical") for qw(images crawl_sessions crawl_session_counts crawl_hosts crawl_frontier);
is($p->safe_psql('postgres', "SELECT bool_and(ok) FROM ha_check_consistency() WHERE check_name = 'range_hash'"),
	't', 'the range-hash check passes on every table');
is($p->safe_psql('postgres', "SELECT count(*) FROM ha_sync_status() WHERE last_check IS NOT NULL AND last_repair IS NOT NULL"),
	'5', 'ha_sync_status has a check and a repair for each data table');
is($p->safe_psql('postgres', "SELECT count(*) > 0 FROM ha_events WHERE kind = 'repair'"), 't', 'the repair is an event');
# Replication still works after the repair (the subscription was not disturbed).
$p->safe_psql('postgres', "SELECT image_record($sid, 'http://c.test/after.png', repeat('a', 64), 'aa/aa/' || repeat('a', 64) || '.png', 1, 1, 1, 'png', 'image/png')");
$s->poll_query_until('postgres', "SELECT count(*) = 1 FROM images WHERE url = 'http://c.test/after.png'")
  or die;
pass('replication continues after the repair');

# Full repair of a difference.
$s->safe_psql('postgres', "BEGIN READ WRITE; SET LOCAL session_replication_role = replica; DELETE FROM images WHERE id = $upd; COMMIT;");
$p->safe_psql('postgres', "SELECT count(*) FROM ha_sync('full')");
is(diff_of('images'), '', 'full repair: identical');

# While the crawl goes on: rows written during the check (replication in
# flight) are not reported as divergence.
{
	my $writer = IPC::Run::start(
		[ 'psql', '-X', '-q', '-h', $p->host, '-p', $p->port, '-d', 'postgres', '-c', qq{
		  DO \$\$ BEGIN
		    FOR i IN 1..60 LOOP
		      PERFORM image_record($sid, 'http://c.test/live' || i || '.png', repeat('b', 64), 'bb/bb/' || repeat('b', 64) || '.png', i, 1, 1, 'png', 'image/png');
		      COMMIT;
		      PERFORM pg_sleep(0.05);
		    END LOOP;
		  END \$\$;} ],
		'>', '/dev/null', '2>', \my $werr);
	my $during = '';
	for (1 .. 3)
	{
		$during .= $p->safe_psql('postgres',
			"SELECT coalesce(string_agg(kind || ':' || key, ' '), '') FROM ha_diff('images', recheck => '1 second')");
	}
	$writer->finish;
	is($during, '', 'checks during a stream of writes report no divergence');
}

# After a failover (or switchover, promotion, rejoin) a check runs by itself.
$p->safe_psql('postgres', "SELECT ha_record_event('failover', 'test: a failover happened')");
is($p->safe_psql('postgres', 'SELECT ha_check_after_events()'), 't', 'the after-failover job checks once a failover is newer');
is($p->safe_psql('postgres', "SELECT count(*) FROM ha_events WHERE kind = 'consistency' AND at > (SELECT max(at) FROM ha_events WHERE kind = 'failover')"),
	'1', 'and records its result as an event');
is($p->safe_psql('postgres', 'SELECT ha_check_after_events()'), 'f', 'no new failover: no check');

# Bad arguments.
my ($rc, $out, $err) = $p->psql('postgres', "SELECT * FROM ha_sync('sideways')");
like($err, qr/mode must be incremental or full/, 'ha_sync refuses an unknown mode');
($rc, $out, $err) = $s->psql('postgres', "SELECT * FROM ha_sync()");
like($err, qr/runs on the primary/, 'ha_sync refuses to run on the standby');
($rc, $out, $err) = $p->psql('postgres', "SELECT * FROM ha_diff(NULL)");
like($err, qr/must not be NULL/, 'ha_diff(NULL) is refused');
($rc, $out, $err) = $p->psql('postgres', "SELECT * FROM ha_diff('pg_catalog.pg_authid')");
like($err, qr/pg_catalog\.pg_authid is not a crawler_ha data table/, 'a catalog is refused');
($rc, $out, $err) = $p->psql('postgres', "SELECT * FROM ha_check_consistency(ARRAY[NULL]::regclass[])");
like($err, qr/without NULLs/, 'a NULL table in the list is refused');
$p->safe_psql('postgres', 'CREATE ROLE cons_writer LOGIN IN ROLE crawler_ha_writer');
($rc, $out, $err) = $p->psql('postgres', "SELECT * FROM ha_sync()", extra_params => [ '-U', 'cons_writer' ]);
like($err, qr/permission denied/, 'the writer role cannot repair');

# pg_cron: the jobs exist and run.
is($jobs, 'crawler_ha_after_failover crawler_ha_consistency crawler_ha_lease_reaper crawler_ha_retention',
	'four named pg_cron jobs registered');
is($cron->safe_psql('postgres', "SELECT count(*) FROM cron.job WHERE jobname LIKE 'crawler_ha_%'"), '4',
	'they are in cron.job');
ok($cron->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		  WHERE j.jobname = 'crawler_ha_consistency' AND d.status = 'succeeded'"),
	'the consistency job ran (pg_cron, every minute here)');

$p->stop;
$s->stop;
$cron->stop;
done_testing();
