-- Alerts: ha_alert_evaluate() (conditions, states, HA events, what is due
-- and from which node), ha_alert_notified(), ha_alerts(),
-- ha_alert_configure() and ha_alert_sender(). Their signatures and callers;
-- bad input (NULLs, out-of-range and hostile values) with its SQLSTATE; each
-- alert fired by crafting what it reads, once, with its cooldown, resolved;
-- the backup alerts from crafted ha_backups rows, backup events and terms,
-- and restore_test_failed from restore tests recorded on those rows.
-- Everything runs in one transaction, so now() stands still: a cooldown of
-- 0 s has passed at once, any other has not.
BEGIN;
SELECT * FROM no_plan();

-- Signatures, SECURITY DEFINER where they write or read per-node tables,
-- fixed search_path, comments.
SELECT has_function('public', f, a, f || ' exists')
  FROM (VALUES ('ha_alert_evaluate', ARRAY['double precision']), ('ha_alert_notified', ARRAY['text', 'jsonb', 'text']),
               ('ha_alerts', ARRAY[]::text[]), ('ha_alert_configure', ARRAY['text', 'double precision', 'integer', 'boolean']),
               ('ha_alert_sender', ARRAY[]::text[]), ('ha_alert_conditions', ARRAY['double precision'])) v(f, a);
SELECT is(pg_get_function_result('public.ha_alert_evaluate(double precision)'::regprocedure),
          'TABLE(alert text, alertname text, status text, severity text, labels jsonb, summary text, description text, value double precision, started_at timestamp with time zone, ended_at timestamp with time zone)',
          'ha_alert_evaluate() returns the notifications due');
SELECT ok((SELECT prosecdef AND 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_proc WHERE oid = f::regprocedure),
          f || ': SECURITY DEFINER with a fixed search_path')
  FROM unnest(ARRAY['public.ha_alert_evaluate(double precision)', 'public.ha_alert_notified(text, jsonb, text)',
                    'public.ha_alerts()', 'public.ha_alert_configure(text, double precision, integer, boolean)']) f;
SELECT matches(obj_description(f::regprocedure, 'pg_proc'), '^crawler_ha: ', f || ' has a COMMENT')
  FROM unnest(ARRAY['public.ha_alert_evaluate(double precision)', 'public.ha_alert_notified(text, jsonb, text)',
                    'public.ha_alerts()', 'public.ha_alert_configure(text, double precision, integer, boolean)',
                    'public.ha_alert_sender()', 'public.ha_alert_conditions(double precision)']) f;

-- The rules as shipped: the original specification's thresholds and cooldowns.
SELECT results_eq(
    'SELECT alert, alertname, severity, scope, threshold, cooldown_s, enabled FROM ha_alert_rules ORDER BY alert',
    $$VALUES ('backup_failed', 'CrawlerHaBackupFailed', 'warning', 'cluster', NULL::float8, 3600, true),
             ('backup_stale', 'CrawlerHaBackupStale', 'critical', 'cluster', 93600, 14400, true),
             ('consistency_differences', 'CrawlerHaConsistencyDifferences', 'warning', 'cluster', 0::float8, 1800, true),
             ('database_down', 'CrawlerHaDatabaseDown', 'critical', 'cluster', NULL::float8, 300, true),
             ('disk_usage', 'CrawlerHaDiskUsage', 'warning', 'node', 85, 1800, true),
             ('failover', 'CrawlerHaFailover', 'critical', 'cluster', 600, 300, true),
             ('file_sync_behind', 'CrawlerHaFileSyncBehind', 'warning', 'node', 300, 900, true),
             ('node_fenced', 'CrawlerHaNodeFenced', 'critical', 'node', NULL, 300, true),
             ('replication_lag', 'CrawlerHaReplicationLag', 'warning', 'cluster', NULL, 600, true),
             ('restore_test_failed', 'CrawlerHaRestoreTestFailed', 'warning', 'cluster', NULL, 14400, true),
             ('switchover', 'CrawlerHaSwitchover', 'info', 'cluster', 600, 300, true)$$,
    'eleven alerts; database down 300 s, lag 600 s, disk 85 % and 1800 s as the specification says; backups stale after 26 h');

-- Wrong callers: only the agent evaluates and reports deliveries, only the
-- admin configures, readers only read.
CREATE ROLE tap_alert_w LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE tap_alert_r LOGIN IN ROLE crawler_ha_reader;
CREATE ROLE tap_alert_a LOGIN IN ROLE crawler_ha_admin;
SET ROLE tap_alert_w;
SELECT throws_ok(q, '42501', NULL, 'writer: ' || q || ' is refused')
  FROM unnest(ARRAY['SELECT * FROM ha_alert_evaluate(1)', 'SELECT ha_alert_notified(''disk_usage'', ''{}'', ''firing'')',
                    'SELECT * FROM ha_alerts()', 'SELECT * FROM ha_alert_configure(''disk_usage'', 1)',
                    'SELECT * FROM ha_alert_rules', 'SELECT * FROM ha_alert_state']) q;
RESET ROLE;
SET ROLE tap_alert_r;
SELECT throws_ok(q, '42501', NULL, 'reader: ' || q || ' is refused')
  FROM unnest(ARRAY['SELECT * FROM ha_alert_evaluate(1)', 'SELECT ha_alert_notified(''disk_usage'', ''{}'', ''firing'')',
                    'SELECT * FROM ha_alert_configure(''disk_usage'', 1)', 'UPDATE ha_alert_rules SET threshold = 0']) q;
SELECT lives_ok('SELECT * FROM ha_alerts()', 'reader: ha_alerts() is allowed');
RESET ROLE;
SET ROLE tap_alert_a;
SELECT throws_ok('SELECT * FROM ha_alert_evaluate(1)', '42501', NULL, 'admin: ha_alert_evaluate() is the agent''s');
SELECT lives_ok('SELECT * FROM ha_alert_configure(''disk_usage'')', 'admin: ha_alert_configure() is allowed');
RESET ROLE;

-- ha_alert_configure(): bad input.
SELECT throws_ok(q, '22023', NULL, 'ha_alert_configure: ' || q || ' is refused')
  FROM unnest(ARRAY[
    'SELECT * FROM ha_alert_configure(NULL)',
    'SELECT * FROM ha_alert_configure(''nope'')',
    'SELECT * FROM ha_alert_configure(''disk_usage''''; DROP TABLE images; --'')',
    'SELECT * FROM ha_alert_configure(repeat(''x'', 100000))',
    'SELECT * FROM ha_alert_configure(''database_down'', threshold => 5)',
    'SELECT * FROM ha_alert_configure(''replication_lag'', threshold => 5)',
    'SELECT * FROM ha_alert_configure(''node_fenced'', threshold => 1)',
    'SELECT * FROM ha_alert_configure(''disk_usage'', threshold => ''NaN'')',
    'SELECT * FROM ha_alert_configure(''disk_usage'', threshold => ''Infinity'')',
    'SELECT * FROM ha_alert_configure(''disk_usage'', threshold => -1)',
    'SELECT * FROM ha_alert_configure(''disk_usage'', threshold => 100.5)',
    'SELECT * FROM ha_alert_configure(''failover'', threshold => ''-Infinity'')',
    'SELECT * FROM ha_alert_configure(''disk_usage'', cooldown_s => -1)',
    'SELECT * FROM ha_alert_configure(''disk_usage'', cooldown_s => 2592001)',
    'SELECT * FROM ha_alert_configure(''backup_failed'', threshold => 1)',
    'SELECT * FROM ha_alert_configure(''backup_stale'', threshold => -1)',
    'SELECT * FROM ha_alert_configure(''backup_stale'', threshold => ''NaN'')',
    'SELECT * FROM ha_alert_configure(''backup_stale'', threshold => ''Infinity'')',
    'SELECT * FROM ha_alert_configure(''backup_stale'', cooldown_s => -1)',
    'SELECT * FROM ha_alert_configure(''backup_stale ''::text)',
    'SELECT * FROM ha_alert_configure(''restore_test_failed'', threshold => 1)',
    'SELECT * FROM ha_alert_configure(''restore_test_failed'', threshold => 0)',
    'SELECT * FROM ha_alert_configure(''restore_test_failed'', threshold => ''NaN'')',
    'SELECT * FROM ha_alert_configure(''restore_test_failed'', threshold => -1)',
    'SELECT * FROM ha_alert_configure(''restore_test_failed'', cooldown_s => -1)',
    'SELECT * FROM ha_alert_configure(''restore_test_failed'', cooldown_s => 2592001)',
    'SELECT * FROM ha_alert_configure(''Restore_Test_Failed'')',
    'SELECT * FROM ha_alert_configure(''CrawlerHaRestoreTestFailed'')']) q;
SELECT throws_like('SELECT * FROM ha_alert_configure(''restore_test_failed'', threshold => 1)',
                   '%no threshold of its own%', 'restore_test_failed fires on a state: no threshold');
SELECT results_eq($$SELECT alert, threshold, cooldown_s, enabled FROM ha_alert_configure('restore_test_failed', NULL, NULL, NULL)$$,
                  $$VALUES ('restore_test_failed', NULL::float8, 14400, true)$$,
                  'ha_alert_configure(restore_test_failed, NULLs) keeps it as it is');
SELECT results_eq($$SELECT alert, threshold, cooldown_s, enabled FROM ha_alert_configure('restore_test_failed', cooldown_s => 3600)$$,
                  $$VALUES ('restore_test_failed', NULL::float8, 3600, true)$$, 'its cooldown is configurable');
SELECT results_eq($$SELECT alert, threshold, cooldown_s, enabled FROM ha_alert_configure('restore_test_failed', cooldown_s => 14400)$$,
                  $$VALUES ('restore_test_failed', NULL::float8, 14400, true)$$, '... and set back');
SELECT throws_like('SELECT * FROM ha_alert_configure(''backup_failed'', threshold => 1)',
                   '%no threshold of its own%', 'backup_failed fires on a state: no threshold');
SELECT results_eq($$SELECT alert, threshold, cooldown_s, enabled FROM ha_alert_configure('backup_stale', NULL, NULL, NULL)$$,
                  $$VALUES ('backup_stale', 93600::float8, 14400, true)$$, 'ha_alert_configure(backup_stale, NULLs) keeps it as it is');
SELECT throws_like('SELECT * FROM ha_alert_configure(''database_down'', threshold => 5)',
                   '%no threshold of its own%', 'database_down follows the HA worker''s crawler_ha.failure_threshold');
SELECT results_eq($$SELECT alert, threshold, cooldown_s, enabled FROM ha_alert_configure('file_sync_behind', 60, 30)$$,
                  $$VALUES ('file_sync_behind', 60::float8, 30, true)$$, 'ha_alert_configure returns the rule as set');
SELECT results_eq($$SELECT threshold, cooldown_s, enabled FROM ha_alert_configure('file_sync_behind', enabled => false)$$,
                  $$VALUES (60::float8, 30, false)$$, '... NULL keeps what is set');
SELECT lives_ok($$SELECT * FROM ha_alert_configure('file_sync_behind', enabled => true)$$, '... and enabled again');

-- ha_alert_evaluate() and ha_alert_notified(): bad input.
SELECT throws_ok(q, '22023', NULL, q || ' is refused')
  FROM unnest(ARRAY['SELECT * FROM ha_alert_evaluate(''NaN'')', 'SELECT * FROM ha_alert_evaluate(-0.1)',
                    'SELECT * FROM ha_alert_evaluate(100.1)', 'SELECT * FROM ha_alert_evaluate(''Infinity'')',
                    'SELECT ha_alert_notified(NULL, ''{}'', ''firing'')',
                    'SELECT ha_alert_notified(''disk_usage'', NULL, ''firing'')',
                    'SELECT ha_alert_notified(''disk_usage'', ''{}'', NULL)',
                    'SELECT ha_alert_notified(''disk_usage'', ''{}'', ''pending'')']) q;
SELECT is(ha_alert_notified('nope''); --', '{"x": "y"}', 'firing'), false, 'ha_alert_notified of no alert state: false');

-- A node sends the cluster's alerts when it is the writable primary, or a
-- standby whose primary is unhealthy to it; never when fenced. This node
-- was never paired: its HA worker makes it a writable primary after a while,
-- so what it sends depends on when the suite runs. The tests below say
-- which, from sends.
CREATE TEMP TABLE sends AS SELECT ha_alert_sender() AS cluster;
SELECT is((SELECT cluster FROM sends),
          (SELECT NOT fenced AND (writable OR (role = 'standby' AND peer_healthy IS FALSE)) FROM ha_health()),
          'ha_alert_sender(): the writable primary, or a standby whose primary is unhealthy, never a fenced node');

-- disk_usage (scope node): fires above 85 %, once, with an HA event.
SELECT is_empty('SELECT * FROM ha_alert_evaluate(85)', '85 % is not above 85 %: nothing');
SELECT results_eq($$SELECT alert, alertname, status, severity, labels, value, ended_at IS NULL FROM ha_alert_evaluate(90)$$,
                  $$SELECT 'disk_usage', 'CrawlerHaDiskUsage', 'firing', 'warning',
                           jsonb_build_object('node', (SELECT node_name FROM ha_node)), 90::float8, true$$,
                  '90 %: disk_usage firing, labelled with this node');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'alert' AND reason LIKE 'alert disk_usage firing: %'), 1::bigint,
          '... one HA event');
SELECT is((SELECT detail ->> 'status' FROM ha_events WHERE kind = 'alert' ORDER BY id DESC LIMIT 1), 'firing',
          '... whose detail says firing');
SELECT results_eq('SELECT alert, status FROM ha_alert_evaluate(91)', $$VALUES ('disk_usage', 'firing')$$,
                  'not yet delivered: due again at the next evaluation (a failed delivery is retried)');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'alert'), 1::bigint, '... without a second event');
SELECT is((SELECT value FROM ha_alerts() WHERE alert = 'disk_usage'), 91::float8, '... its figure brought up to date');
SELECT is(ha_alert_notified('disk_usage', jsonb_build_object('node', (SELECT node_name FROM ha_node)), 'firing'), true,
          'ha_alert_notified: delivered');
SELECT is_empty('SELECT * FROM ha_alert_evaluate(92)', 'delivered: not due again within its cooldown (1800 s)');
SELECT is_empty('SELECT * FROM ha_alert_evaluate(NULL)', 'not measured (NULL): it stays as it was, nothing due');
SELECT is((SELECT active FROM ha_alerts() WHERE alert = 'disk_usage'), true, '... still active');
SELECT results_eq($$SELECT status, ended_at IS NOT NULL FROM ha_alert_evaluate(10)$$, $$VALUES ('resolved', true)$$,
                  '10 %: resolved is due, with its end');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'alert' AND reason LIKE 'alert disk_usage resolved: %'), 1::bigint,
          '... one HA event');
SELECT is(ha_alert_notified('disk_usage', jsonb_build_object('node', (SELECT node_name FROM ha_node)), 'resolved'), true,
          'resolved delivered');
SELECT is_empty('SELECT * FROM ha_alert_evaluate(10)', 'nothing more');
-- Flapping within the cooldown: recorded, not notified.
SELECT is_empty('SELECT * FROM ha_alert_evaluate(95)', 'firing again within the cooldown: not notified');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'alert' AND reason LIKE 'alert disk_usage firing: %'), 2::bigint,
          '... but recorded as an HA event');
SELECT is_empty('SELECT * FROM ha_alert_evaluate(10)', 'and its resolution owes no notice (none said it fired)');
SELECT is_empty('SELECT * FROM ha_alert_evaluate(95)', 'firing again');
SELECT lives_ok($$SELECT * FROM ha_alert_configure('disk_usage', cooldown_s => 0)$$, 'cooldown 0 s');
SELECT results_eq('SELECT alert, status FROM ha_alert_evaluate(95)', $$VALUES ('disk_usage', 'firing')$$,
                  'the cooldown has passed: due');
SELECT is(ha_alert_notified('disk_usage', jsonb_build_object('node', (SELECT node_name FROM ha_node)), 'firing'), true,
          'delivered');
SELECT lives_ok($$SELECT * FROM ha_alert_configure('disk_usage', threshold => 99)$$, 'a threshold of 99 %');
SELECT results_eq('SELECT alert, status FROM ha_alert_evaluate(95)', $$VALUES ('disk_usage', 'resolved')$$,
                  '95 % is below the new threshold: resolved');
SELECT lives_ok($$SELECT * FROM ha_alert_configure('disk_usage', enabled => false)$$, 'disk_usage disabled');
SELECT is_empty($$SELECT * FROM ha_alert_evaluate(100) WHERE status = 'firing'$$, 'a disabled alert never fires');

-- file_sync_behind (scope node): a blob missing longer than its threshold.
INSERT INTO ha_blob_wanted (sha256, file_path, file_size, wanted_since)
VALUES (repeat('a', 64), 'aa/aa/' || repeat('a', 64) || '.jpg', 10, now() - interval '59 seconds');
SELECT is_empty($$SELECT * FROM ha_alert_evaluate(1) WHERE alert = 'file_sync_behind'$$,
                'a blob missing 59 s, threshold 60 s: nothing');
UPDATE ha_blob_wanted SET wanted_since = now() - interval '2 hours';
SELECT results_eq($$SELECT alert, alertname, status, value::integer FROM ha_alert_evaluate(1) WHERE alert = 'file_sync_behind'$$,
                  $$VALUES ('file_sync_behind', 'CrawlerHaFileSyncBehind', 'firing', 7200)$$,
                  'missing 2 hours: file_sync_behind firing, its age the value');
INSERT INTO ha_blobs (sha256, size) VALUES (repeat('a', 64), 10);
SELECT is_empty($$SELECT alert, status FROM ha_alert_evaluate(1) WHERE alert = 'file_sync_behind'$$,
                'held now: resolved, and no notice owed, since none said it fired');
SELECT is((SELECT active FROM ha_alerts() WHERE alert = 'file_sync_behind'), false, '... inactive in ha_alerts()');

-- Cluster alerts: kept and recorded on every node, due only from the sender.
INSERT INTO ha_terms (term, primary_name, primary_node_id, reason)
VALUES (1000, (SELECT node_name FROM ha_node), (SELECT node_id FROM ha_node), 'failover: the primary was unhealthy'),
       (1001, (SELECT node_name FROM ha_node), (SELECT node_id FROM ha_node), 'switchover from other');
INSERT INTO ha_sync_log (kind, table_name, ok, result)
VALUES ('check', 'public.images', false, '{"differing": 7}'), ('check', 'public.crawl_hosts', true, '{"differing": 0}');
SELECT results_eq($$SELECT alert, status FROM ha_alert_evaluate(1)
                     WHERE alert IN ('failover', 'switchover', 'consistency_differences') ORDER BY alert$$,
                  $$SELECT a, 'firing' FROM unnest(ARRAY['consistency_differences', 'failover', 'switchover']) a, sends
                     WHERE sends.cluster ORDER BY a$$,
                  'failover, switchover and consistency differences: due from the sender only');
SELECT results_eq($$SELECT alert, labels, active FROM ha_alerts()
                     WHERE alert IN ('failover', 'switchover', 'consistency_differences') ORDER BY alert$$,
                  $$VALUES ('consistency_differences', '{"table": "public.images"}'::jsonb, true),
                           ('failover', jsonb_build_object('node', (SELECT node_name FROM ha_node), 'term', '1000'), true),
                           ('switchover', jsonb_build_object('node', (SELECT node_name FROM ha_node), 'term', '1001'), true)$$,
                  '... but active in ha_alerts(), each with its labels (the table, the term)');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'alert' AND reason ~ '^alert (failover|switchover|consistency_differences) firing'),
          3::bigint, '... and each an HA event');
SELECT lives_ok($$SELECT * FROM ha_alert_configure('consistency_differences', threshold => 7)$$, 'more than 7 rows now');
SELECT is_empty($$SELECT * FROM ha_alert_evaluate(1) WHERE alert = 'consistency_differences'$$, '7 is not more than 7');
SELECT is((SELECT active FROM ha_alerts() WHERE alert = 'consistency_differences'), false, '... resolved');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'alert' AND reason LIKE 'alert switchover firing: %switchover from other'),
          1::bigint, 'the switchover''s event quotes the term''s reason');

-- Hostile names stay data: a table name with quotes and a newline.
INSERT INTO ha_sync_log (kind, table_name, ok, result) VALUES ('check', E'x"}\n''; DROP TABLE images; --', false, '{"differing": 100}');
SELECT is_empty($$SELECT * FROM ha_alert_evaluate(1) WHERE alert = 'consistency_differences'$$,
                'ha_sync_status() only reports the data tables: a forged log line is no alert');
SELECT is((SELECT count(*) FROM ha_alerts() WHERE alert = 'consistency_differences' AND active), 0::bigint,
          '... none active');
SELECT has_table('public', 'images', 'and nothing was run');

-- Backups: backup_stale and backup_failed (scope cluster), on the node that
-- backs up (ha_state: the primary, not fenced). The HA worker makes this
-- node a writable primary: wait for it, so that it sends the cluster's
-- alerts. Then no backup and no backup event (deleted here, as
-- superuser), and this node primary since 3 days ago: term 2001 after
-- another node's 2000.
DO $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN (SELECT writable FROM ha_health());
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT ok(ha_alert_sender(), 'this node is a writable primary now: it sends the cluster''s alerts');
DELETE FROM ha_backups;
DELETE FROM ha_events WHERE kind = 'backup';
INSERT INTO ha_terms (term, primary_name, primary_node_id, reason, started_at)
VALUES (2000, 'other', 1023, 'switchover', now() - interval '10 days'),
       (2001, (SELECT node_name FROM ha_node), (SELECT node_id FROM ha_node), 'switchover from other', now() - interval '3 days');
CREATE TEMP TABLE me AS SELECT jsonb_build_object('node', node_name) AS labels FROM ha_node;
-- A row of ha_backups: its type from its label, stopped at stopped,
-- recorded 2 minutes later.
CREATE FUNCTION pg_temp.bk(label text, stopped timestamptz, verified boolean DEFAULT true) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO ha_backups (stanza, label, type, prior, node, term, system_identifier, started_at, stopped_at, start_lsn,
                            stop_lsn, wal_start, wal_stop, size_bytes, delta_bytes, repo_size_bytes, repo_delta_bytes,
                            restore_point, restore_point_lsn, figures, figures_at, verify_ok, verify_detail, recorded_at)
    VALUES ('alpha', label, CASE right(label, 1) WHEN 'F' THEN 'full' WHEN 'D' THEN 'diff' ELSE 'incr' END,
            CASE WHEN right(label, 1) <> 'F' THEN split_part(label, '_', 1) END, 'tap', 1, 1,
            stopped - interval '1 minute', stopped, '0/1', '0/2', repeat('0', 24), repeat('0', 24), 1000, 1000, 100, 10,
            'crawler_ha_' || label, '0/3', '{}', stopped + interval '1 minute', verified,
            CASE WHEN verified THEN 'status: ok' ELSE 'status: error' END, stopped + interval '2 minutes')
$$;
-- The backup alerts' notifications due now.
CREATE FUNCTION pg_temp.due() RETURNS TABLE (alert text, alertname text, status text, severity text, labels jsonb,
                                             value double precision, summary text)
LANGUAGE sql AS $$
    SELECT e.alert, e.alertname, e.status, e.severity, e.labels, e.value, e.summary
      FROM ha_alert_evaluate(1) e WHERE e.alert IN ('backup_stale', 'backup_failed') ORDER BY e.alert
$$;

SELECT is_empty('SELECT * FROM pg_temp.due()',
                'no backup and no failure ever recorded (backups not configured): neither alert, primary for 3 days or not');
SELECT is((SELECT count(*) FROM ha_alerts() WHERE alert IN ('backup_stale', 'backup_failed')), 0::bigint, '... none active');

-- backup_stale: the newest successful backup older than 93600 s.
SELECT pg_temp.bk('20261201-000000F', now() - interval '2 hours');
SELECT is_empty('SELECT * FROM pg_temp.due()', 'a full backup 2 hours ago: nothing');
UPDATE ha_backups SET started_at = now() - interval '2 days', stopped_at = now() - interval '93600 seconds';
SELECT is_empty('SELECT * FROM pg_temp.due()', 'ended 93600 s ago: not older than 93600 s');
UPDATE ha_backups SET stopped_at = now() - interval '93601 seconds';
SELECT results_eq('SELECT alert, alertname, status, severity, labels, value FROM pg_temp.due()',
                  $$SELECT 'backup_stale', 'CrawlerHaBackupStale', 'firing', 'critical', me.labels, 93601::float8 FROM me$$,
                  'ended 93601 s ago: backup_stale firing, critical, labelled with this node, its age the value');
SELECT matches((SELECT summary FROM ha_alerts() WHERE alert = 'backup_stale'),
               '^the newest successful backup of .+ ended at .+, more than 93600 s ago$', '... saying when it ended');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'alert' AND reason LIKE 'alert backup_stale firing: %'), 1::bigint,
          '... one HA event');
SELECT results_eq('SELECT alert, status FROM pg_temp.due()', $$VALUES ('backup_stale', 'firing')$$,
                  'not delivered: due again at the next evaluation');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'alert' AND reason LIKE 'alert backup_stale %'), 1::bigint,
          '... without a second event');
SELECT is(ha_alert_notified('backup_stale', (SELECT labels FROM me), 'firing'), true, 'delivered');
SELECT is_empty('SELECT * FROM pg_temp.due()', 'not due again within its cooldown (14400 s)');
SELECT pg_temp.bk('20261201-000000F_20261202-000000I', now() - interval '1 hour');
SELECT results_eq('SELECT alert, status FROM pg_temp.due()', $$VALUES ('backup_stale', 'resolved')$$,
                  'an incremental backup an hour ago: resolved, due');
SELECT is(ha_alert_notified('backup_stale', (SELECT labels FROM me), 'resolved'), true, 'resolved delivered');
-- Its threshold is configurable.
SELECT lives_ok($$SELECT * FROM ha_alert_configure('backup_stale', threshold => 3000)$$, 'backup_stale after 3000 s');
SELECT is_empty('SELECT * FROM pg_temp.due()', 'active again within the cooldown: not notified');
SELECT results_eq($$SELECT active, value FROM ha_alerts() WHERE alert = 'backup_stale'$$, $$VALUES (true, 3600::float8)$$,
                  '... but active, the backup an hour old');
SELECT lives_ok($$SELECT * FROM ha_alert_configure('backup_stale', threshold => 93600)$$, 'back to 93600 s');
SELECT is_empty('SELECT * FROM pg_temp.due()', 'resolved again: no notice owed (none said it fired)');
SELECT is((SELECT active FROM ha_alerts() WHERE alert = 'backup_stale'), false, '... inactive');

-- backup_failed: a failure newer than the newest success.
SELECT ok(ha_backup_failed('alpha', 'incr', 'blobs', E'blob 0f is not in the store\n''; DROP TABLE images; --') > 0,
          'a backup fails at its blob step');
SELECT results_eq('SELECT alert, alertname, status, severity, labels FROM pg_temp.due()',
                  $$SELECT 'backup_failed', 'CrawlerHaBackupFailed', 'firing', 'warning', me.labels FROM me$$,
                  'backup_failed firing, warning, labelled with this node');
SELECT is((SELECT value FROM ha_alerts() WHERE alert = 'backup_failed'),
          (SELECT extract(epoch FROM max(at))::float8 FROM ha_events WHERE kind = 'backup'), '... its value the failure''s time');
SELECT matches((SELECT summary FROM ha_alerts() WHERE alert = 'backup_failed'),
               '^the newest backup attempt on .+ failed at .+: incr backup of stanza alpha failed at blobs: blob 0f is not in the store '';',
               '... quoting the failure on one line');
SELECT is(ha_alert_notified('backup_failed', (SELECT labels FROM me), 'firing'), true, 'delivered');
SELECT is_empty('SELECT * FROM pg_temp.due()', 'not due again within its cooldown (3600 s)');
SELECT lives_ok($$SELECT * FROM ha_alert_configure('backup_failed', cooldown_s => 0)$$, 'cooldown 0 s');
SELECT results_eq('SELECT alert, status FROM pg_temp.due()', $$VALUES ('backup_failed', 'firing')$$, 'the cooldown has passed: due');
SELECT is(ha_alert_notified('backup_failed', (SELECT labels FROM me), 'firing'), true, 'delivered');
SELECT pg_temp.bk('20261201-000000F_20261202-010000I', clock_timestamp());
SELECT results_eq('SELECT alert, status FROM pg_temp.due()', $$VALUES ('backup_failed', 'resolved')$$,
                  'a backup that succeeded after the failure: resolved');
SELECT is(ha_alert_notified('backup_failed', (SELECT labels FROM me), 'resolved'), true, 'resolved delivered');
-- A backup recorded with its verify failed is a failure too, event or not.
SELECT pg_temp.bk('20261201-000000F_20261202-020000I', clock_timestamp() + interval '1 minute', verified => false);
SELECT results_eq('SELECT alert, status, summary LIKE ''%: its verify failed'' FROM pg_temp.due()',
                  $$VALUES ('backup_failed', 'firing', true)$$, 'a newer backup whose verify failed: firing, saying so');
-- From here on, what is due is delivered at once: the firing or resolution
-- each step returns.
CREATE FUNCTION pg_temp.delivered() RETURNS TABLE (alert text, status text, value double precision)
LANGUAGE sql AS $$
    SELECT d.alert, d.status, CASE WHEN d.status = 'firing' THEN d.value END
      FROM pg_temp.due() d WHERE ha_alert_notified(d.alert, d.labels, d.status) ORDER BY d.alert
$$;
SELECT results_eq('SELECT alert, status FROM pg_temp.delivered()', $$VALUES ('backup_failed', 'firing')$$, 'delivered');

-- Before this node became primary: its failures and successes from then are
-- history; the other node's backups covered the cluster. A success 5 days
-- ago, a failure 4 days ago, primary since 3 days ago.
DELETE FROM ha_backups;
DELETE FROM ha_events WHERE kind = 'backup';
SELECT pg_temp.bk('20261125-000000F', now() - interval '5 days');
INSERT INTO ha_events (at, term, node, kind, reason, detail)
VALUES (now() - interval '4 days', 1, 'tap', 'backup', 'full backup of stanza alpha failed at check: x', '{"ok": false}');
SELECT lives_ok($$SELECT * FROM ha_alert_configure('backup_stale', cooldown_s => 0)$$, 'backup_stale: cooldown 0 s');
SELECT results_eq('SELECT * FROM pg_temp.delivered()',
                  $$VALUES ('backup_failed', 'resolved', NULL::float8), ('backup_stale', 'firing', 259200::float8)$$,
                  'a failure before this node became primary does not count; stale since it became primary, 3 days');
SELECT matches((SELECT summary FROM ha_alerts() WHERE alert = 'backup_stale'),
               '^.+ has made no successful backup since it became primary at .+, more than 93600 s ago$', '... saying so');
UPDATE ha_terms SET started_at = now() - interval '1 hour' WHERE term = 2001;
SELECT results_eq('SELECT * FROM pg_temp.delivered()', $$VALUES ('backup_stale', 'resolved', NULL::float8)$$,
                  'primary for an hour: it has the threshold to make its first backup');
SELECT is((SELECT count(*) FROM ha_alerts() WHERE alert IN ('backup_stale', 'backup_failed') AND active), 0::bigint, '... none active');

-- A node that never became primary by a term (standalone): from its first
-- attempt. Only a failure 4 days ago: both fire.
DELETE FROM ha_terms WHERE term = 2001;
DELETE FROM ha_backups;
SELECT results_eq('SELECT * FROM pg_temp.delivered()',
                  $$SELECT 'backup_failed', 'firing', extract(epoch FROM now() - interval '4 days')::float8
                    UNION ALL SELECT 'backup_stale', 'firing', 345600::float8$$,
                  'never a success, the first attempt 4 days ago: failed, and stale for 4 days');
SELECT matches((SELECT summary FROM ha_alerts() WHERE alert = 'backup_stale'),
               '^.+ has made no successful backup since its first attempt at .+, more than 93600 s ago$', '... saying so');

-- Only the node that backs up: not a standby, not a fenced primary (the
-- state changed in this transaction only).
LOCK TABLE ha_state IN EXCLUSIVE MODE;  -- as a demotion does
UPDATE ha_state SET role = 'standby';
SELECT results_eq('SELECT alert, status FROM pg_temp.delivered()',
                  $$VALUES ('backup_failed', 'resolved'), ('backup_stale', 'resolved')$$, 'a standby: both resolve');
UPDATE ha_state SET role = 'primary', fenced = true;
SELECT is_empty('SELECT * FROM pg_temp.delivered()', 'a fenced primary: neither');
SELECT is((SELECT count(*) FROM ha_alerts() WHERE alert IN ('backup_stale', 'backup_failed') AND active), 0::bigint, '... none active');
UPDATE ha_state SET fenced = false;
SELECT results_eq('SELECT alert, status FROM pg_temp.delivered()',
                  $$VALUES ('backup_failed', 'firing'), ('backup_stale', 'firing')$$, 'the primary again: both fire');
SELECT lives_ok($$SELECT x.* FROM unnest(ARRAY['backup_stale', 'backup_failed']) a, ha_alert_configure(a, enabled => false) x$$,
                'both disabled');
SELECT results_eq('SELECT alert, status FROM pg_temp.delivered()',
                  $$VALUES ('backup_failed', 'resolved'), ('backup_stale', 'resolved')$$, 'a disabled alert resolves and never fires');
SELECT is_empty('SELECT * FROM pg_temp.delivered()', '... nothing more');

-- restore_test_failed (scope cluster): the newest restore test of a kept
-- backup failed, on the node that backs up. This node is the primary, and
-- by no term since another node's (2001 is gone): every test counts.
DELETE FROM ha_backups;
DELETE FROM ha_events WHERE kind IN ('backup', 'restore');
CREATE FUNCTION pg_temp.due_rt() RETURNS TABLE (alert text, alertname text, status text, severity text, labels jsonb,
                                                value double precision, summary text)
LANGUAGE sql AS $$
    SELECT e.alert, e.alertname, e.status, e.severity, e.labels, e.value, e.summary
      FROM ha_alert_evaluate(1) e WHERE e.alert = 'restore_test_failed'
$$;
-- What is due, delivered at once.
CREATE FUNCTION pg_temp.delivered_rt() RETURNS TABLE (alert text, status text)
LANGUAGE sql AS $$
    SELECT d.alert, d.status FROM pg_temp.due_rt() d WHERE ha_alert_notified(d.alert, d.labels, d.status)
$$;
SELECT pg_temp.bk('20261203-000000F', now() - interval '3 hours');
SELECT pg_temp.bk('20261203-000000F_20261203-010000I', now() - interval '2 hours');
SELECT is_empty('SELECT * FROM pg_temp.due_rt()', 'backups, never a restore test: nothing');
SELECT ok(ha_backup_restore_tested('alpha', '20261203-000000F', true, '{"seconds": 1}') > 0, 'the full backup''s test passed');
SELECT is_empty('SELECT * FROM pg_temp.due_rt()', 'the newest test passed: nothing');
SELECT ok(ha_backup_restore_tested('alpha', '20261203-000000F_20261203-010000I', false,
                                   jsonb_build_object('problem', E'figures differ (public.images)\n''; DROP TABLE images; --')) > 0,
          'the incremental backup''s test failed');
SELECT results_eq('SELECT alert, alertname, status, severity, labels FROM pg_temp.due_rt()',
                  $$SELECT 'restore_test_failed', 'CrawlerHaRestoreTestFailed', 'firing', 'warning', me.labels FROM me$$,
                  'restore_test_failed firing, warning, labelled with this node');
SELECT is((SELECT value FROM ha_alerts() WHERE alert = 'restore_test_failed'),
          (SELECT extract(epoch FROM restore_tested_at)::float8 FROM ha_backups WHERE label = '20261203-000000F_20261203-010000I'),
          '... its value the failed test''s time');
SELECT matches((SELECT summary FROM ha_alerts() WHERE alert = 'restore_test_failed'),
               '^the newest restore test on .+, of incr backup 20261203-000000F_20261203-010000I of stanza alpha, failed at .+: figures differ \(public\.images\) ''; DROP TABLE images; --$',
               '... naming the backup and quoting the problem on one line');
SELECT has_table('public', 'images', '... which stays data');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'alert' AND reason LIKE 'alert restore_test_failed firing: %'), 1::bigint,
          '... one HA event');
SELECT is((SELECT value FROM ha_metrics() WHERE name = 'crawler_ha_backup_restore_test_ok'), 0::float8,
          '... and crawler_ha_backup_restore_test_ok is 0');
SELECT results_eq('SELECT alert, status FROM pg_temp.due_rt()', $$VALUES ('restore_test_failed', 'firing')$$,
                  'not delivered: due again at the next evaluation');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'alert' AND reason LIKE 'alert restore_test_failed %'), 1::bigint,
          '... without a second event');
SELECT is(ha_alert_notified('restore_test_failed', (SELECT labels FROM me), 'firing'), true, 'delivered');
SELECT is_empty('SELECT * FROM pg_temp.due_rt()', 'not due again within its cooldown (14400 s)');
SELECT lives_ok($$SELECT * FROM ha_alert_configure('restore_test_failed', cooldown_s => 0)$$, 'cooldown 0 s');
SELECT results_eq('SELECT * FROM pg_temp.delivered_rt()', $$VALUES ('restore_test_failed', 'firing')$$,
                  'the cooldown has passed: due, delivered');
-- Only the node that backs up, and only tests since it became primary.
UPDATE ha_state SET role = 'standby';
SELECT results_eq('SELECT * FROM pg_temp.delivered_rt()', $$VALUES ('restore_test_failed', 'resolved')$$, 'a standby: resolved');
UPDATE ha_state SET role = 'primary';
SELECT results_eq('SELECT * FROM pg_temp.delivered_rt()', $$VALUES ('restore_test_failed', 'firing')$$, 'the primary again: firing');
INSERT INTO ha_terms (term, primary_name, primary_node_id, reason, started_at)
VALUES (2002, (SELECT node_name FROM ha_node), (SELECT node_id FROM ha_node), 'switchover from other', clock_timestamp());
SELECT results_eq('SELECT * FROM pg_temp.delivered_rt()', $$VALUES ('restore_test_failed', 'resolved')$$,
                  'a test that failed before this node became primary is history: resolved');
DELETE FROM ha_terms WHERE term = 2002;
SELECT results_eq('SELECT * FROM pg_temp.delivered_rt()', $$VALUES ('restore_test_failed', 'firing')$$, 'without that term: firing');
-- A later test that passes resolves it, of any kept backup.
SELECT ok(ha_backup_restore_tested('alpha', '20261203-000000F', true, '{}') > 0, 'the full backup tested again: passed');
SELECT results_eq('SELECT * FROM pg_temp.delivered_rt()', $$VALUES ('restore_test_failed', 'resolved')$$,
                  'a later test passed: resolved');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'alert' AND reason LIKE 'alert restore_test_failed resolved: %'), 3::bigint,
          '... an HA event at each resolution');
-- A failed test of a backup retention then removed no longer counts.
SELECT ok(ha_backup_restore_tested('alpha', '20261203-000000F_20261203-010000I', false, '{}') > 0, 'the incremental one fails again');
SELECT results_eq('SELECT alert, status, summary LIKE ''%: see its restore event'' FROM pg_temp.due_rt()',
                  $$VALUES ('restore_test_failed', 'firing', true)$$, 'firing (no problem recorded: the summary says where to look)');
SELECT is(ha_alert_notified('restore_test_failed', (SELECT labels FROM me), 'firing'), true, 'delivered');
UPDATE ha_backups SET expired_at = now() WHERE label = '20261203-000000F_20261203-010000I';
SELECT results_eq('SELECT * FROM pg_temp.delivered_rt()', $$VALUES ('restore_test_failed', 'resolved')$$,
                  'that backup expired: the full one''s passed test is the newest, resolved');
-- Disabled: never fires.
UPDATE ha_backups SET expired_at = NULL;
SELECT lives_ok($$SELECT * FROM ha_alert_configure('restore_test_failed', enabled => false)$$, 'restore_test_failed disabled');
SELECT is_empty('SELECT * FROM pg_temp.due_rt()', 'a disabled alert never fires');
SELECT is((SELECT count(*) FROM ha_alerts() WHERE alert = 'restore_test_failed' AND active), 0::bigint, '... none active');

SELECT * FROM finish();
ROLLBACK;
