-- Alerts: ha_alert_evaluate() (conditions, states, HA events, what is due
-- and from which node), ha_alert_notified(), ha_alerts(),
-- ha_alert_configure() and ha_alert_sender(). Their signatures and callers;
-- bad input (NULLs, out-of-range and hostile values) with its SQLSTATE; each
-- alert fired by crafting what it reads, once, with its cooldown, resolved.
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
    $$VALUES ('consistency_differences', 'CrawlerHaConsistencyDifferences', 'warning', 'cluster', 0::float8, 1800, true),
             ('database_down', 'CrawlerHaDatabaseDown', 'critical', 'cluster', NULL, 300, true),
             ('disk_usage', 'CrawlerHaDiskUsage', 'warning', 'node', 85, 1800, true),
             ('failover', 'CrawlerHaFailover', 'critical', 'cluster', 600, 300, true),
             ('file_sync_behind', 'CrawlerHaFileSyncBehind', 'warning', 'node', 300, 900, true),
             ('node_fenced', 'CrawlerHaNodeFenced', 'critical', 'node', NULL, 300, true),
             ('replication_lag', 'CrawlerHaReplicationLag', 'warning', 'cluster', NULL, 600, true),
             ('switchover', 'CrawlerHaSwitchover', 'info', 'cluster', 600, 300, true)$$,
    'eight alerts; database down 300 s, lag 600 s, disk 85 % and 1800 s as the specification says');

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
    'SELECT * FROM ha_alert_configure(''disk_usage'', cooldown_s => 2592001)']) q;
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

SELECT * FROM finish();
ROLLBACK;
