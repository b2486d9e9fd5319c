-- Restores (84_restore.sql): ha_backup_restore_tested(), which records a
-- restore test of one of this node's backups, and ha_restored(), which
-- makes a restored cluster the primary of a new term. Signatures and
-- callers; bad input (NULLs, malformed and hostile values, a backup this
-- node never recorded) with its SQLSTATE; what each writes. Everything
-- rolls back.
BEGIN;
SELECT * FROM no_plan();

SELECT ok(to_regprocedure('public.ha_backup_restore_tested(text, text, boolean, jsonb)') IS NOT NULL,
          'ha_backup_restore_tested(text, text, boolean, jsonb) exists');
SELECT ok((SELECT prosecdef FROM pg_proc WHERE oid = 'public.ha_backup_restore_tested(text, text, boolean, jsonb)'::regprocedure),
          '... SECURITY DEFINER (ha_backups is written only through functions)');
SELECT ok(to_regprocedure('public.ha_restored(text, text, text)') IS NOT NULL, 'ha_restored(text, text, text) exists');
SELECT ok(NOT (SELECT prosecdef FROM pg_proc WHERE oid = 'public.ha_restored(text, text, text)'::regprocedure),
          '... not SECURITY DEFINER (the superuser''s own)');
SELECT ok((SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_proc WHERE oid = f::regprocedure),
          f || ' has a fixed search_path')
  FROM unnest(ARRAY['public.ha_backup_restore_tested(text, text, boolean, jsonb)', 'public.ha_restored(text, text, text)']) f;
SELECT matches(obj_description(f::regprocedure, 'pg_proc'), '^crawler_ha: ', f || ' has a COMMENT')
  FROM unnest(ARRAY['public.ha_backup_restore_tested(text, text, boolean, jsonb)', 'public.ha_restored(text, text, text)']) f;
SELECT ok('restore_test_ok' IN (SELECT column_name FROM information_schema.columns WHERE table_name = 'ha_backups'),
          'ha_backups has the restore test''s columns');
SELECT ok(pg_get_function_result('public.ha_backups()'::regprocedure) LIKE '%restore_tested_at timestamp with time zone, restore_test_ok boolean, restore_test_detail jsonb)',
          'ha_backups() lists them');

-- A backup this node recorded (inserted as the superuser: the recording
-- itself is 14_backups.sql's).
INSERT INTO ha_backups (stanza, label, type, node, term, system_identifier, started_at, stopped_at, start_lsn,
                        stop_lsn, wal_start, wal_stop, size_bytes, delta_bytes, repo_size_bytes, repo_delta_bytes,
                        restore_point, restore_point_lsn, figures, figures_at, verify_ok, verify_detail)
VALUES ('tap', '20260101-000000F', 'full', 'n', 1, 1, now(), now(), '0/1', '0/2', repeat('0', 24), repeat('0', 24),
        1, 1, 1, 1, 'crawler_ha_20260101-000000F', '0/3', '{}', now(), true, '');

CREATE ROLE tap_rs_a LOGIN IN ROLE crawler_ha_admin;
CREATE ROLE tap_rs_r LOGIN IN ROLE crawler_ha_reader;
CREATE ROLE tap_rs_w LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE tap_rs_g LOGIN IN ROLE crawler_ha_agent;

-- Wrong callers.
SET ROLE tap_rs_r;
SELECT throws_ok('SELECT ha_backup_restore_tested(''tap'', ''20260101-000000F'', true, ''{}'')', '42501', NULL,
                 'a reader may not record a restore test');
SELECT throws_ok('SELECT ha_restored(''tap'', ''20260101-000000F'', NULL)', '42501', NULL, 'nor make a node restored');
RESET ROLE;
SET ROLE tap_rs_w;
SELECT throws_ok('SELECT ha_backup_restore_tested(''tap'', ''20260101-000000F'', true, ''{}'')', '42501', NULL,
                 'a writer may not record a restore test');
RESET ROLE;
SET ROLE tap_rs_g;
SELECT throws_ok('SELECT ha_backup_restore_tested(''tap'', ''20260101-000000F'', true, ''{}'')', '42501', NULL,
                 'the agent''s role may not either (its scheduler runs the command as the admin)');
RESET ROLE;
SET ROLE tap_rs_a;
SELECT throws_ok('SELECT ha_restored(''tap'', ''20260101-000000F'', NULL)', '42501', NULL,
                 'the admin may not make a node restored: the superuser''s alone');

-- Bad input, as the admin.
SELECT throws_ok(q, st, NULL, 'ha_backup_restore_tested: ' || q || ' is ' || st) FROM (VALUES
    ('SELECT ha_backup_restore_tested(NULL, ''20260101-000000F'', true, ''{}'')', '22004'),
    ('SELECT ha_backup_restore_tested(''tap'', NULL, true, ''{}'')', '22004'),
    ('SELECT ha_backup_restore_tested(''tap'', ''20260101-000000F'', NULL, ''{}'')', '22004'),
    ('SELECT ha_backup_restore_tested(''tap'', ''20260101-000000F'', true, NULL)', '22004'),
    ('SELECT ha_backup_restore_tested(''t a p'', ''20260101-000000F'', true, ''{}'')', '22023'),
    ('SELECT ha_backup_restore_tested(repeat(''s'', 64), ''20260101-000000F'', true, ''{}'')', '22023'),
    ('SELECT ha_backup_restore_tested(''tap'', ''yesterday'', true, ''{}'')', '22023'),
    ('SELECT ha_backup_restore_tested(''tap'', ''20260101-000000F''''; DROP TABLE images; --'', true, ''{}'')', '22023'),
    ('SELECT ha_backup_restore_tested(''tap'', ''20260101-000000F'', true, ''[1]'')', '22023'),
    ('SELECT ha_backup_restore_tested(''tap'', ''20260101-000000F'', true, ''"x"'')', '22023'),
    ('SELECT ha_backup_restore_tested(''tap'', ''20260101-000000F'', true, jsonb_build_object(''x'', repeat(''x'', 100001)))', '22023'),
    ('SELECT ha_backup_restore_tested(''tap'', ''20260102-000000F'', true, ''{}'')', 'P0002'),
    ('SELECT ha_backup_restore_tested(''other'', ''20260101-000000F'', true, ''{}'')', 'P0002')) AS t(q, st);

-- A passed test, then a failed one: the newest replaces it on the row,
-- each is an event.
SELECT lives_ok('SELECT ha_backup_restore_tested(''tap'', ''20260101-000000F'', true, ''{"seconds": 2.5, "figures_equal": true}'')',
                'the admin records a passed restore test');
RESET ROLE;
SELECT is((SELECT restore_test_ok::text || ' ' || (restore_test_detail ->> 'figures_equal') FROM ha_backups WHERE stanza = 'tap'),
          'true true', '... on the backup''s row');
SELECT is((SELECT reason FROM ha_events WHERE kind = 'restore' ORDER BY id DESC LIMIT 1),
          'restore test of full backup 20260101-000000F of stanza tap: restored, figures and blobs as recorded',
          '... and as a restore event');
SELECT is((SELECT duration_ms FROM ha_events WHERE kind = 'restore' ORDER BY id DESC LIMIT 1), 2500::double precision,
          '... with its duration');
SET ROLE tap_rs_a;
SELECT lives_ok(E'SELECT ha_backup_restore_tested(''tap'', ''20260101-000000F'', false, ''{"problem": "figures differ\\n(images)", "ok": true, "seconds": "soon"}'')',
                'a failed one');
RESET ROLE;
SELECT is((SELECT restore_test_ok FROM ha_backups WHERE stanza = 'tap'), false, '... replaces the passed one on the row');
SELECT is((SELECT reason FROM ha_events WHERE kind = 'restore' ORDER BY id DESC LIMIT 1),
          'restore test of full backup 20260101-000000F of stanza tap: FAILED: figures differ (images)',
          '... its event says why, on one line');
SELECT is((SELECT (detail ->> 'ok') || ' ' || coalesce(duration_ms::text, 'none') FROM ha_events WHERE kind = 'restore' ORDER BY id DESC LIMIT 1),
          'false none', '... the detail''s own "ok" cannot override the outcome, nor a "seconds" that is no number make one');

-- ha_restored(), as the superuser.
SELECT throws_ok(q, st, NULL, 'ha_restored: ' || q || ' is ' || st) FROM (VALUES
    ('SELECT ha_restored(NULL, ''20260101-000000F'', NULL)', '22004'),
    ('SELECT ha_restored(''tap'', NULL, NULL)', '22004'),
    ('SELECT ha_restored(''t;ap'', ''20260101-000000F'', NULL)', '22023'),
    ('SELECT ha_restored(''tap'', ''x'', NULL)', '22023'),
    ('SELECT ha_restored(''tap'', ''20260101-000000F'', repeat(''t'', 201))', '22023')) AS t(q, st);
SELECT is(ha_restored('tap', '20260101-000000F', '2026-01-01 00:00:00+00'),
          (SELECT greatest(s.term, coalesce((SELECT max(term) FROM ha_terms), 0)) + 1 FROM ha_state s),
          'ha_restored() returns a term past every term the node knew');
SELECT is((SELECT role || ' ' || fenced || ' ' || needs_rejoin || ' ' || (term = (SELECT max(term) FROM ha_terms))
             FROM ha_state), 'primary false false true', '... the node is its unfenced primary');
SELECT is((SELECT reason FROM ha_terms ORDER BY term DESC LIMIT 1), 'restore', '... the term''s reason is restore');
SELECT matches((SELECT reason FROM ha_events WHERE kind = 'restore' ORDER BY id DESC LIMIT 1),
               '^restored from backup 20260101-000000F of stanza tap to 2026-01-01 00:00:00\+00: primary of term [0-9]+, alone until a standby joins$',
               '... and a restore event says so');
SELECT is((SELECT count(*) FROM pg_subscription WHERE subname = 'crawler_ha_sub'), 0::bigint, '... with no subscription');

SELECT * FROM finish();
ROLLBACK;
