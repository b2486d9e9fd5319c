-- The functions beyond the write API: who may call which (wrong callers are
-- refused), and bad input for the node, consistency and maintenance
-- functions (NULLs, out-of-range and hostile values) gets its SQLSTATE.
BEGIN;
SELECT * FROM no_plan();

-- Exactly these functions are executable by each role; everything else of
-- the extension (internal helpers, ha_peer_query, ha_alter_system, ...) by
-- nobody but superusers and the owner.
CREATE TEMP TABLE allowed (role name, fn text);
GRANT SELECT ON allowed TO PUBLIC;
INSERT INTO allowed
SELECT 'crawler_ha_writer', unnest(ARRAY[
    'crawl_claim', 'crawl_next_claim_in', 'crawl_lease_early', 'crawl_complete', 'crawl_enqueue', 'crawl_enqueue_many', 'crawl_fail', 'crawl_host_set',
    'crawl_blob_target',
    'crawl_redirect_allowed', 'crawl_release', 'crawl_renew', 'crawl_session_settings', 'crawl_start', 'crawl_status', 'crawl_stop', 'ha_endpoint_check', 'ha_health', 'ha_ping', 'ha_status',
    'image_delete', 'image_get', 'image_record', 'image_unchanged',
    'crawl_list', 'image_list', 'crawl_url_host_of', 'crawl_registrable_domain', 'crawl_public_suffix'])
UNION ALL
SELECT 'crawler_ha_reader', unnest(ARRAY['crawl_status', 'ha_endpoint_check', 'ha_health', 'ha_ping', 'ha_status', 'ha_sync_status', 'image_get',
    'ha_witness_seen', 'ha_file_sync_status', 'crawl_list', 'image_list', 'crawl_url_host_of',
    'crawl_registrable_domain', 'crawl_public_suffix',
    'ha_metrics', 'crawl_error_kind', 'crawl_success_rate', 'ha_alerts', 'ha_backups', 'ha_backup_summary'])
UNION ALL
SELECT 'crawler_ha_admin', unnest(ARRAY[
    'crawl_reap_leases', 'ha_check_consistency', 'ha_diff', 'ha_endpoint_check', 'ha_failover', 'ha_file_sync_status', 'ha_health', 'ha_merge_columns', 'ha_merge_receive', 'ha_merge_rows',
    'ha_pause', 'ha_ping',
    'ha_promote', 'ha_rejoin', 'ha_resume', 'ha_retention', 'ha_schedule_maintenance', 'ha_set_node_id',
    'ha_setup', 'ha_status', 'ha_sync', 'ha_sync_status',
    'ha_witness_grant', 'ha_witness_report', 'ha_witness_seen', 'crawl_list', 'image_list', 'crawl_url_host_of',
    'crawl_registrable_domain', 'crawl_public_suffix',
    'ha_metrics', 'crawl_error_kind', 'crawl_success_rate', 'ha_alerts', 'ha_alert_configure',
    'ha_backup_begin', 'ha_backup_freeze', 'ha_backup_record', 'ha_backup_failed', 'ha_backups',
    'ha_backup_blob_manifest', 'ha_backup_record_blobs', 'ha_backup_blobs_done', 'ha_backup_summary',
    'ha_backup_restore_tested'])
UNION ALL
SELECT 'crawler_ha_agent', unnest(ARRAY[
    'blob_corrupt', 'blob_fetch_failed', 'blob_inventory', 'blob_orphans', 'blob_referenced', 'blob_removed',
    'blob_requeue_missing', 'blob_scrub_next', 'blob_store_attach', 'blob_stored', 'blob_stored_many',
    'blob_verified', 'blob_wanted', 'ha_endpoint_check', 'ha_file_sync_status', 'ha_health', 'ha_status',
    'ha_alert_evaluate', 'ha_alert_notified', 'ha_alerts']);

SELECT is(ARRAY(SELECT DISTINCT p.proname::text
                  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
                  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crawler_ha'
                 WHERE has_function_privilege(r, p.oid, 'EXECUTE') ORDER BY 1),
          ARRAY(SELECT a.fn FROM allowed a WHERE a.role = r ORDER BY 1),
          r || ' may execute exactly its functions')
  FROM unnest(ARRAY['crawler_ha_writer', 'crawler_ha_reader', 'crawler_ha_admin', 'crawler_ha_agent']::name[]) r;

-- Wrong callers, for real: a login role in each group.
CREATE ROLE tap_w LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE tap_r LOGIN IN ROLE crawler_ha_reader;
SET ROLE tap_w;
SELECT throws_ok(q, '42501', NULL, 'writer: ' || q || ' is refused')
  FROM unnest(ARRAY['SELECT ha_sync()', 'SELECT * FROM ha_diff(''images'')', 'SELECT ha_set_node_id(2)',
                    'SELECT ha_failover()', 'SELECT ha_setup(''primary'')', 'SELECT ha_pause()',
                    'SELECT ha_peer_query(''SELECT 1'')', 'SELECT ha_alter_system(''work_mem'', ''1GB'')',
                    'SELECT ha_peer_send(''SELECT 1'')', 'SELECT ha_apply_rows(''images'', ''[]'', ''[]'')',
                    'SELECT ha_record_event(''alert'', ''x'')', 'SELECT crawl_reap_leases()',
                    'SELECT * FROM ha_schedule_maintenance()',
                    'SELECT * FROM ha_witness_report(2, ''b'', ''primary'', 1, false, NULL, true, 1, 1, 1)',
                    'SELECT * FROM ha_witness_grant(2, ''b'', 1, 0)', 'SELECT ha_setup_witness()',
                    'SELECT ha_check_fence_order()', 'SELECT ha_witness_require()',
                    'SELECT ha_witness_check_node(2, ''b'')']) q;
RESET ROLE;
SET ROLE tap_r;
SELECT throws_ok(q, '42501', NULL, 'reader: ' || q || ' is refused')
  FROM unnest(ARRAY['SELECT ha_sync()', 'SELECT * FROM ha_check_consistency()', 'SELECT ha_retention()',
                    'SELECT ha_rejoin()',
                    'SELECT * FROM ha_witness_report(2, ''b'', ''primary'', 1, false, NULL, true, 1, 1, 1)',
                    'SELECT * FROM ha_witness_grant(2, ''b'', 1, 0)']) q;
SELECT lives_ok('SELECT * FROM ha_witness_seen()', 'reader: ha_witness_seen() is allowed');
SELECT lives_ok('SELECT * FROM ha_sync_status()', 'reader: ha_sync_status() is allowed');
RESET ROLE;

-- Bad input.
SELECT throws_ok(q, c, NULL, q || ' -> ' || c)
  FROM (VALUES
    ('SELECT ha_set_node_id(NULL)', '22004'),
    ('SELECT ha_set_node_id(0)', '22023'),
    ('SELECT ha_set_node_id(1024)', '22023'),
    ('SELECT ha_set_node_id(-2147483648)', '22023'),
    ('SELECT ha_set_node_id(2, '''')', '22023'),
    ('SELECT ha_set_node_id(2, ''x''''; DROP TABLE images; --'')', '22023'),
    ('SELECT ha_set_node_id(2, repeat(''n'', 102400))', '22023'),
    ('SELECT * FROM ha_diff(NULL)', '22004'),
    ('SELECT * FROM ha_diff(''images'', buckets => 1)', '22023'),
    ('SELECT * FROM ha_diff(''images'', buckets => 2147483647)', '22023'),
    ('SELECT * FROM ha_diff(''images'', leaf_rows => 0)', '22023'),
    ('SELECT * FROM ha_diff(''images'', recheck => ''-1 s'')', '22023'),
    ('SELECT * FROM ha_diff(''images'', recheck => NULL)', '22023'),
    ('SELECT * FROM ha_diff(''pg_catalog.pg_depend'')', '22023'),
    ('SELECT * FROM ha_check_consistency(ARRAY[]::regclass[])', '22023'),
    ('SELECT * FROM ha_check_consistency(ARRAY[NULL]::regclass[])', '22023'),
    ('SELECT * FROM ha_sync(NULL)', '22023'),
    ('SELECT * FROM ha_sync(''incremental; DROP TABLE images'')', '22023'),
    ('SELECT * FROM ha_sync(repeat(''m'', 102400))', '22023'),
    ('SELECT * FROM ha_sync(''full'', NULL)', '22004'),
    ('SELECT * FROM ha_schedule_maintenance(NULL)', '22004'),
    ('SELECT ha_retention(NULL)', '22023'),
    ('SELECT ha_retention(''1 minute'')', '22023'),
    ('SELECT crawl_reap_leases(NULL)', '22023'),
    ('SELECT crawl_reap_leases(0)', '22023'),
    ('SELECT crawl_reap_leases(-2147483648)', '22023'),
    ('SELECT ha_setup(''witness; DROP TABLE images'')', '22023'),
    ('SELECT * FROM ha_witness_report(NULL, ''b'', ''primary'', 1, false, NULL, true, 1, 1, 1)', '22004'),
    ('SELECT * FROM ha_witness_report(2, NULL, ''primary'', 1, false, NULL, true, 1, 1, 1)', '22004'),
    ('SELECT * FROM ha_witness_report(0, ''b'', ''primary'', 1, false, NULL, true, 1, 1, 1)', '22023'),
    ('SELECT * FROM ha_witness_report(1024, ''b'', ''primary'', 1, false, NULL, true, 1, 1, 1)', '22023'),
    ('SELECT * FROM ha_witness_report(2, ''b''''; DROP TABLE images; --'', ''primary'', 1, false, NULL, true, 1, 1, 1)', '22023'),
    ('SELECT * FROM ha_witness_report(2, repeat(''n'', 102400), ''primary'', 1, false, NULL, true, 1, 1, 1)', '22023'),
    ('SELECT * FROM ha_witness_report(2, ''b'', NULL, 1, false, NULL, true, 1, 1, 1)', '22023'),
    ('SELECT * FROM ha_witness_report(2, ''b'', ''witness'', 1, false, NULL, true, 1, 1, 1)', '22023'),
    ('SELECT * FROM ha_witness_report(2, ''b'', ''primary'', NULL, false, NULL, true, 1, 1, 1)', '22023'),
    ('SELECT * FROM ha_witness_report(2, ''b'', ''primary'', -1, false, NULL, true, 1, 1, 1)', '22023'),
    ('SELECT * FROM ha_witness_report(2, ''b'', ''primary'', 1, false, NULL, true, NULL, 1, 1)', '22023'),
    ('SELECT * FROM ha_witness_report(2, ''b'', ''primary'', 1, false, NULL, true, 1, -1, 1)', '22023'),
    ('SELECT * FROM ha_witness_grant(NULL, ''b'', 1, 0)', '22004'),
    ('SELECT * FROM ha_witness_grant(2, NULL, 1, 0)', '22004'),
    ('SELECT * FROM ha_witness_grant(-2147483648, ''b'', 1, 0)', '22023'),
    ('SELECT * FROM ha_witness_grant(2, ''b c'', 1, 0)', '22023'),
    ('SELECT * FROM ha_witness_grant(2, ''b'', NULL, 0)', '22023'),
    ('SELECT * FROM ha_witness_grant(2, ''b'', 0, 0)', '22023'),
    ('SELECT * FROM ha_witness_grant(2, ''b'', 1, NULL)', '22023'),
    ('SELECT * FROM ha_witness_grant(2, ''b'', 1, -1)', '22023'),
    ('SELECT * FROM ha_witness_grant(2, ''b'', 1, 0, repeat(''r'', 102400))', '22023'),
    -- a data node is not a witness
    ('SELECT * FROM ha_witness_report(2, ''b'', ''primary'', 1, false, NULL, true, 1, 1, 1)', '55000'),
    ('SELECT * FROM ha_witness_grant(2, ''b'', 1, 0)', '55000')
  ) AS cases(q, c);

-- The peer's number is refused: both nodes would hand out the same ids.
UPDATE ha_state SET peer_node_id = 77;
SELECT throws_ok('SELECT ha_set_node_id(77)', '22023', 'node_id 77 is the peer''s', 'ha_set_node_id(the peer''s id) -> 22023');
UPDATE ha_state SET peer_node_id = NULL;

-- Without a peer the checks say so instead of failing obscurely.
SELECT throws_ok('SELECT * FROM ha_diff(''images'')', '08001', NULL, 'ha_diff without a configured peer -> 08001')
 WHERE coalesce(current_setting('crawler_ha.peer_conninfo', true), '') = '';
-- Without pg_cron in this database, scheduling explains how to enable it.
SELECT throws_ok('SELECT * FROM ha_schedule_maintenance()', '55000', NULL, 'no pg_cron: 55000 with a hint')
 WHERE to_regproc('cron.schedule_in_database') IS NULL;
-- The reaper on a healthy frontier changes nothing.
SELECT is(crawl_reap_leases(), 0, 'nothing expired: nothing reaped');

SELECT * FROM finish();
ROLLBACK;
