-- Backups (80_backups.sql): ha_backup_begin(), ha_backup_freeze(),
-- ha_backup_record(), ha_backup_failed() and ha_backups(), and the blobs'
-- ha_backup_blob_manifest(), ha_backup_record_blobs() and
-- ha_backup_blobs_done() (the list in the figures' snapshot). Signatures and
-- callers; bad input (NULLs, out-of-range and hostile values) with its
-- SQLSTATE; the refusals of a standby and a fenced node; and the freeze for
-- real, in two more sessions of this server (dblink): a write waits while
-- writes are frozen, the figures leave it out, a snapshot taken before or
-- after the freeze is refused, a label is recorded once, and retention's
-- expiry. What the other sessions commit is deleted at the end; the rest
-- rolls back.
BEGIN;
SELECT * FROM no_plan();

-- Signatures, SECURITY DEFINER where they need the owner's rights, fixed
-- search_path, comments.
CREATE TEMP TABLE fn (sig text, definer boolean);
INSERT INTO fn VALUES
    ('public.ha_backup_begin()', true),
    ('public.ha_backup_freeze(text)', true),
    ('public.ha_backup_record(text, text, text, text, timestamptz, timestamptz, pg_lsn, pg_lsn, text, text, bigint, bigint, bigint, bigint, boolean, text, pg_lsn, xid8, text[])', true),
    ('public.ha_backup_failed(text, text, text, text)', true),
    ('public.ha_backup_blob_manifest()', true),
    ('public.ha_backup_record_blobs(text, text, text)', true),
    ('public.ha_backup_blobs_done(text, text, boolean, bigint, bigint, text)', true),
    ('public.ha_backups()', false);
SELECT ok(to_regprocedure(sig) IS NOT NULL, sig || ' exists') FROM fn;
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = sig::regprocedure), definer,
          sig || CASE WHEN definer THEN ' is' ELSE ' is not' END || ' SECURITY DEFINER') FROM fn;
SELECT ok((SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_proc WHERE oid = sig::regprocedure),
          sig || ' has a fixed search_path') FROM fn;
SELECT matches(obj_description(sig::regprocedure, 'pg_proc'), '^crawler_ha: ', sig || ' has a COMMENT') FROM fn;
SELECT is(pg_get_function_result('public.ha_backup_freeze(text)'::regprocedure),
          'TABLE(restore_point text, restore_point_lsn pg_lsn, freeze_xid xid8)', 'ha_backup_freeze() returns the restore point and its id');
SELECT is(pg_get_function_result('public.ha_backup_begin()'::regprocedure),
          'TABLE(node_name text, node_id integer, term bigint, system_identifier bigint, archive_command text)',
          'ha_backup_begin() returns what the backup command needs');

-- Per node: not a replicated table.
SELECT ok(NOT 'public.ha_backups'::regclass = ANY (ha_data_tables()), 'ha_backups is not a data table (never replicated)');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_publication_tables WHERE tablename = 'ha_backups'), '... nor published');

-- Wrong callers, for real.
CREATE ROLE tap_bk_w LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE tap_bk_r LOGIN IN ROLE crawler_ha_reader;
CREATE ROLE tap_bk_g LOGIN IN ROLE crawler_ha_agent;
CREATE ROLE tap_bk_a LOGIN IN ROLE crawler_ha_admin;
CREATE TEMP TABLE admin_calls (q text);
INSERT INTO admin_calls VALUES
    ('SELECT * FROM ha_backup_begin()'),
    ('SELECT * FROM ha_backup_freeze(''20260101-000000F'')'),
    ('SELECT ha_backup_record(''s'', ''20260101-000000F'', ''full'', NULL, now(), now(), ''0/1'', ''0/2'', repeat(''0'', 24), repeat(''0'', 24), 1, 1, 1, 1, true, '''', ''0/3'', ''1'', ''{20260101-000000F}'')'),
    ('SELECT ha_backup_failed(''s'', ''full'', ''backup'', ''x'')'),
    ('SELECT * FROM ha_backup_blob_manifest()'),
    ('SELECT * FROM ha_backup_record_blobs(''s'', ''20260101-000000F'', ''crawler_ha/blobs/manifests/s/20260101-000000F.json.enc'')'),
    ('SELECT ha_backup_blobs_done(''s'', ''20260101-000000F'', true, 0, 0, NULL)');
GRANT SELECT ON admin_calls TO PUBLIC;
SET ROLE tap_bk_w;
SELECT throws_ok(q, '42501', NULL, 'writer: ' || q || ' is refused') FROM admin_calls;
SELECT throws_ok('SELECT * FROM ha_backups()', '42501', NULL, 'writer: ha_backups() is refused');
SELECT throws_ok('SELECT * FROM ha_backups', '42501', NULL, 'writer: the table is not readable');
RESET ROLE;
SET ROLE tap_bk_g;
SELECT throws_ok(q, '42501', NULL, 'agent: ' || q || ' is refused') FROM admin_calls;
SELECT throws_ok('SELECT * FROM ha_backups()', '42501', NULL, 'agent: ha_backups() is refused');
RESET ROLE;
SET ROLE tap_bk_r;
SELECT throws_ok(q, '42501', NULL, 'reader: ' || q || ' is refused') FROM admin_calls;
SELECT lives_ok('SELECT * FROM ha_backups()', 'reader: ha_backups() is allowed');
SELECT throws_ok('DELETE FROM ha_backups', '42501', NULL, 'reader: the table is read-only to it');
RESET ROLE;
SET ROLE tap_bk_a;
-- The admin passes the privilege check and meets the function's own rules:
-- this test server does not archive WAL, and this transaction has an id.
SELECT throws_ok('SELECT * FROM ha_backup_begin()', '55000', 'WAL archiving is off on this node: a backup could not be restored',
                 'admin: ha_backup_begin() without WAL archiving -> 55000');
SELECT throws_ok('SELECT * FROM ha_backup_freeze(''20260101-000000F'')', '25000', NULL,
                 'admin: ha_backup_freeze() after this transaction wrote -> 25000 (it must come first)');
SELECT lives_ok('SELECT * FROM ha_backups()', 'admin: ha_backups() is allowed');
SELECT throws_ok('SELECT * FROM ha_backup_blob_manifest()', '25000', 'ha_backup_blob_manifest() needs a REPEATABLE READ transaction',
                 'admin: the blob list outside a REPEATABLE READ transaction -> 25000 (it must be the figures'' snapshot)');
SELECT throws_ok('SELECT * FROM ha_backup_record_blobs(''s'', ''20260101-000000F'', ''crawler_ha/blobs/manifests/s/20260101-000000F.json.enc'')',
                 '25000', NULL, 'admin: the blob summary outside a REPEATABLE READ transaction -> 25000');
SELECT throws_ok('SELECT ha_backup_blobs_done(''s'', ''20260101-000000F'', true, 0, 0, NULL)', '55000', NULL,
                 'admin: the blobs'' outcome of a backup never recorded -> 55000');
RESET ROLE;
SELECT throws_ok(q, c, NULL, q || ' -> ' || c)
  FROM (VALUES
    ('SELECT * FROM ha_backup_record_blobs(NULL, ''20260101-000000F'', ''x'')', '22004'),
    ('SELECT * FROM ha_backup_record_blobs(''s'', NULL, ''x'')', '22004'),
    ('SELECT * FROM ha_backup_record_blobs(''s'', ''20260101-000000F'', NULL)', '22004'),
    ('SELECT * FROM ha_backup_record_blobs(''s'', ''20260101-000000F'', ''crawler_ha/blobs/manifests/t/20260101-000000F.json.enc'')', '22023'),
    ('SELECT * FROM ha_backup_record_blobs(''s'', ''20260101-000000F'', ''../../etc/passwd'')', '22023'),
    ('SELECT * FROM ha_backup_record_blobs(''s/..'', ''20260101-000000F'', ''crawler_ha/blobs/manifests/s/../20260101-000000F.json.enc'')', '22023'),
    ('SELECT * FROM ha_backup_record_blobs(''s'', ''latest'', ''crawler_ha/blobs/manifests/s/latest.json.enc'')', '22023'),
    ('SELECT ha_backup_blobs_done(NULL, ''20260101-000000F'', true, 0, 0, NULL)', '22004'),
    ('SELECT ha_backup_blobs_done(''s'', ''20260101-000000F'', NULL, 0, 0, NULL)', '22004'),
    ('SELECT ha_backup_blobs_done(''s'', ''20260101-000000F'', true, NULL, 0, NULL)', '22004'),
    ('SELECT ha_backup_blobs_done(''s'', ''20260101-000000F'', true, -1, 0, NULL)', '22023'),
    ('SELECT ha_backup_blobs_done(''s'', ''20260101-000000F'', true, 0, -1, NULL)', '22023')
  ) AS cases(q, c);

-- Bad input. ha_backup_record's arguments are checked before anything
-- else, so one valid call (through pg_temp.r, every argument named with a
-- good default) changes one argument at a time.
CREATE FUNCTION pg_temp.r(stanza text DEFAULT 'alpha', label text DEFAULT '20260101-000000F', type text DEFAULT 'full',
                          prior text DEFAULT NULL, started_at timestamptz DEFAULT '2026-01-01 00:00:00+00',
                          stopped_at timestamptz DEFAULT '2026-01-01 00:00:05+00', start_lsn pg_lsn DEFAULT '0/2000028',
                          stop_lsn pg_lsn DEFAULT '0/3000050', wal_start text DEFAULT '000000010000000000000002',
                          wal_stop text DEFAULT '000000010000000000000003', size_bytes bigint DEFAULT 100,
                          delta_bytes bigint DEFAULT 100, repo_size_bytes bigint DEFAULT 10,
                          repo_delta_bytes bigint DEFAULT 10, verify_ok boolean DEFAULT true,
                          verify_detail text DEFAULT 'status: ok', restore_point_lsn pg_lsn DEFAULT '0/4000000',
                          freeze_xid xid8 DEFAULT '1', kept_labels text[] DEFAULT '{20260101-000000F}')
RETURNS bigint LANGUAGE sql AS $$
    SELECT ha_backup_record(stanza, label, type, prior, started_at, stopped_at, start_lsn, stop_lsn, wal_start, wal_stop,
                            size_bytes, delta_bytes, repo_size_bytes, repo_delta_bytes, verify_ok, verify_detail,
                            restore_point_lsn, freeze_xid, kept_labels)
$$;
SELECT throws_ok('SELECT pg_temp.r(' || a || ' => NULL)', '22004', NULL, 'ha_backup_record(' || a || ' NULL) -> 22004')
  FROM unnest(ARRAY['stanza', 'label', 'type', 'started_at', 'stopped_at', 'start_lsn', 'stop_lsn', 'wal_start', 'wal_stop',
                    'size_bytes', 'delta_bytes', 'repo_size_bytes', 'repo_delta_bytes', 'verify_ok', 'verify_detail',
                    'restore_point_lsn', 'freeze_xid', 'kept_labels']) a;
SELECT throws_ok('SELECT pg_temp.r(' || a || ')', '22023', NULL, 'ha_backup_record(' || a || ') -> 22023')
  FROM unnest(ARRAY[
    'stanza => ''alpha''''; DROP TABLE images; --''', 'stanza => repeat(''s'', 64)', 'stanza => ''''',
    'stanza => E''a\nb''', 'stanza => repeat(''s'', 100000)',
    'label => ''latest''', 'label => ''20260101-000000F''''; --''', 'label => ''20260101-000000I''',
    'label => ''20260101-000000F_20260101-000100X''', 'label => repeat(''1'', 100000)',
    'type => ''FULL''', 'type => ''full; DROP TABLE images''',
    'type => ''incr''',                                                           -- an F label is a full one
    'prior => ''20251231-000000F''',                                              -- a full backup has none
    'label => ''20260101-000000F_20260101-000100I'', type => ''incr''',          -- an incremental one has one
    'label => ''20260101-000000F_20260101-000100I'', type => ''diff'', prior => ''20260101-000000F''',
    'label => ''20260101-000000F_20260101-000100I'', type => ''incr'', prior => ''20251231-000000F''',
    'stopped_at => ''2025-12-31 23:59:59+00''', 'stop_lsn => ''0/1000000''',
    'wal_start => ''00000001000000000000000''', 'wal_stop => ''00000001000000000000000g''',
    'wal_start => ''../../../etc/passwd000000''',
    'size_bytes => -1', 'delta_bytes => -9223372036854775808', 'repo_size_bytes => -1', 'repo_delta_bytes => -1',
    'verify_detail => repeat(''v'', 10001)',
    'restore_point_lsn => ''0/3000000''',
    'kept_labels => ''{}''', 'kept_labels => ''{20251231-000000F}''', 'kept_labels => ARRAY[''20260101-000000F'', NULL]'
  ]) a;
SELECT throws_ok('SELECT pg_temp.r()', '25000', 'ha_backup_record() needs a REPEATABLE READ transaction',
                 'valid arguments in a READ COMMITTED transaction -> 25000');
SELECT throws_ok(q, c, NULL, q || ' -> ' || c)
  FROM (VALUES
    ('SELECT * FROM ha_backup_freeze(NULL)', '22004'),
    ('SELECT * FROM ha_backup_freeze(''20260101-000000F''''; DROP TABLE images; --'')', '22023'),
    ('SELECT * FROM ha_backup_freeze(repeat(''2'', 100000))', '22023'),
    ('SELECT * FROM ha_backup_freeze('''')', '22023'),
    ('SELECT ha_backup_failed(NULL, ''full'', ''backup'', ''x'')', '22004'),
    ('SELECT ha_backup_failed(''alpha'', ''full'', NULL, ''x'')', '22004'),
    ('SELECT ha_backup_failed(''alpha'', ''full'', ''backup'', NULL)', '22004'),
    ('SELECT ha_backup_failed(''alpha''''; DROP TABLE images; --'', ''full'', ''backup'', ''x'')', '22023'),
    ('SELECT ha_backup_failed(''alpha'', ''weekly'', ''backup'', ''x'')', '22023'),
    ('SELECT ha_backup_failed(''alpha'', ''full'', ''restore'', ''x'')', '22023'),
    ('SELECT ha_backup_failed(''alpha'', ''full'', repeat(''b'', 100000), ''x'')', '22023')
  ) AS cases(q, c);

-- A failure is an event; a hostile or huge message is kept as data, cut
-- to whole characters, and its reason stays one line.
SELECT ok(ha_backup_failed('alpha', NULL, 'backup', E'ERROR: [041]: unable to open file\n''; DROP TABLE images; --\t' || repeat('é', 5000)) > 0,
          'ha_backup_failed() records an event');
SELECT results_eq($$SELECT kind, detail ->> 'ok', detail ->> 'step', reason !~ '[[:cntrl:]]', octet_length(detail ->> 'message') <= 2000,
                           detail ->> 'message' LIKE E'ERROR: [041]: unable to open file\n''; DROP TABLE images; --\t%',
                           reason LIKE 'a backup of stanza alpha failed at backup: ERROR: [041]: unable to open file ''; DROP TABLE images; -- é%'
                      FROM ha_events WHERE kind = 'backup' ORDER BY id DESC LIMIT 1$$,
                  $$VALUES ('backup', 'false', 'backup', true, true, true, true)$$,
                  '... kind backup, ok false, the step, the message kept (cut at 2000 bytes), a one-line reason');
SELECT is((SELECT count(*) FROM images), 0::bigint, '... and images is still there');

-- The freeze, for real. Two more sessions: "l" holds the freeze, "f" takes
-- the figures' snapshot; "w" is a writer.
CREATE EXTENSION dblink;
CREATE TEMP TABLE peer (conn text);
INSERT INTO peer SELECT format('dbname=%s port=%s host=%s', current_database(), current_setting('port'),
                               split_part(current_setting('unix_socket_directories'), ',', 1));
SELECT dblink_connect(c, (SELECT conn FROM peer)) FROM unnest(ARRAY['l', 'f', 'w']) c;
-- A standalone node is a writable primary; wait for its HA worker's first
-- round all the same, so that no refusal of the write rule comes in the way.
DO $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN (SELECT writable FROM ha_health());
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT ok((SELECT writable FROM ha_health()), 'this node may write (and so back up)');

-- One round of the protocol backup run follows, in the other sessions;
-- `snapshot` says when "f" takes its snapshot: 'during' (as it must),
-- 'before' the freeze, or 'after' it ended. Returns the record's id; an
-- error is raised again here with its SQLSTATE, both sessions rolled back.
CREATE TABLE pg_temp.rounds (label text, rp text, rp_lsn pg_lsn, xid xid8, writer_waited boolean);
CREATE TABLE pg_temp.blob_lists (label text, sha256 text, file_path text, file_size bigint);
CREATE FUNCTION pg_temp.round(label text, type text, prior text, kept text[], snapshot text DEFAULT 'during',
                              write boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    fr record;
    id bigint;
    waited boolean;
BEGIN
    IF snapshot = 'before' THEN
        PERFORM dblink_exec('f', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
        PERFORM * FROM dblink('f', 'SELECT 1') AS t(x int);
    END IF;
    PERFORM dblink_exec('l', 'BEGIN');
    SELECT * INTO fr FROM dblink('l', format('SELECT restore_point, restore_point_lsn, freeze_xid FROM ha_backup_freeze(%L)', label))
        AS t(restore_point text, restore_point_lsn pg_lsn, freeze_xid xid8);
    IF write THEN
        -- a write of crawl data now waits for the freeze to end
        PERFORM dblink_send_query('w', 'SELECT crawl_start(ARRAY[''http://freeze.test/during''])');
        PERFORM pg_sleep(0.5);
        waited := dblink_is_busy('w') = 1;
    END IF;
    IF snapshot = 'during' THEN
        PERFORM * FROM dblink('f', 'SELECT pg_current_xact_id()') AS t(x xid8);
        PERFORM dblink_exec('f', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
        PERFORM * FROM dblink('f', 'SELECT 1') AS t(x int);
    END IF;
    PERFORM dblink_exec('l', 'COMMIT');
    IF write THEN
        PERFORM * FROM dblink_get_result('w') AS t(x bigint);
        PERFORM * FROM dblink_get_result('w') AS t(x bigint);  -- the end of its results
    END IF;
    IF snapshot = 'after' THEN
        PERFORM * FROM dblink('f', 'SELECT pg_current_xact_id()') AS t(x xid8);
        PERFORM dblink_exec('f', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
        PERFORM * FROM dblink('f', 'SELECT 1') AS t(x int);
    END IF;
    INSERT INTO pg_temp.rounds VALUES (label, fr.restore_point, fr.restore_point_lsn, fr.freeze_xid, waited);
    BEGIN
        SELECT t.id INTO id FROM dblink('f', format(
            'SELECT ha_backup_record(''alpha'', %L, %L, %L, now() - interval ''1 minute'', now(), ''0/1000000'', %L, '
            '''000000010000000000000001'', ''000000010000000000000002'', 1000, 1000, 100, 100, true, ''status: ok'', %L, %L, %L)',
            label, type, prior, fr.restore_point_lsn, fr.restore_point_lsn, fr.freeze_xid, kept)) AS t(id bigint);
        -- the blobs' list and summary, in the same transaction as backup run does
        INSERT INTO pg_temp.blob_lists
        SELECT label, t.* FROM dblink('f', 'SELECT sha256, file_path, file_size FROM ha_backup_blob_manifest()')
            AS t(sha256 text, file_path text, file_size bigint);
        PERFORM * FROM dblink('f', format('SELECT * FROM ha_backup_record_blobs(''alpha'', %L, %L)', label,
                                          'crawler_ha/blobs/manifests/alpha/' || label || '.json.enc'))
            AS t(n bigint, z bigint);
        PERFORM dblink_exec('f', 'COMMIT');
    EXCEPTION WHEN OTHERS THEN
        PERFORM dblink_exec('f', 'ROLLBACK', false);
        RAISE;
    END;
    RETURN id;
END
$$;

-- Crawl data committed before the backups (by "w": this transaction's own
-- rows would be invisible to the other sessions).
SELECT is((SELECT count(*) FROM dblink('w', 'SELECT crawl_start(ARRAY[''http://freeze.test/before-' || i || '''])') AS t(id bigint)),
          1::bigint, 'a crawl committed before the freeze') FROM generate_series(1, 2) i;
CREATE TEMP TABLE before_freeze AS SELECT count(*) AS sessions FROM crawl_sessions;
-- Three images of two blobs (the same bytes twice), committed before the
-- freeze: the backup's blobs are the two.
SELECT is((SELECT count(*) FROM dblink('w', format(
              'SELECT image_record(%s, %L, %L, %L, %s, 10, 10, ''png'', ''image/png'')',
              (SELECT max(id) FROM crawl_sessions WHERE seeds[1] LIKE 'http://freeze.test/before-%'),
              'http://freeze.test/img-' || i, repeat(h, 64), repeat(h, 2) || '/' || repeat(h, 2) || '/' || repeat(h, 64) || '.png',
              sz)) AS t(id bigint)), 1::bigint, 'an image recorded before the freeze')
  FROM (VALUES (1, 'd', 100), (2, 'd', 100), (3, 'e', 250)) v(i, h, sz);
SELECT ok(pg_temp.round('20260101-000000F', 'full', NULL, '{20260101-000000F}', write => true) > 0,
          'a full backup recorded from a snapshot taken during its freeze');
SELECT is((SELECT writer_waited FROM pg_temp.rounds WHERE label = '20260101-000000F'), true,
          '... a write of crawl data waited while writes were frozen');
SELECT is((SELECT count(*) FROM crawl_sessions), (SELECT sessions + 1 FROM before_freeze), '... and went through after it');
SELECT results_eq($$SELECT node, stanza, type, prior, restore_point, restore_point_lsn, verify_ok, expired_at,
                           system_identifier, term, size_bytes, repo_delta_bytes
                      FROM ha_backups() WHERE label = '20260101-000000F'$$,
                  $$SELECT (SELECT node_name FROM ha_node), 'alpha', 'full', NULL::text, 'crawler_ha_20260101-000000F',
                           (SELECT rp_lsn FROM pg_temp.rounds WHERE label = '20260101-000000F'), true, NULL::timestamptz,
                           (pg_control_system()).system_identifier, (SELECT term FROM ha_state), 1000::bigint, 100::bigint$$,
                  'ha_backups(): the backup as recorded, with its restore point and this node''s identity');
SELECT is((SELECT (figures -> 'public.crawl_sessions' ->> 'row_count')::bigint FROM ha_backups() WHERE label = '20260101-000000F'),
          (SELECT sessions FROM before_freeze), 'its figures leave out the write that waited for the freeze');
SELECT is((SELECT array_agg(k ORDER BY k) FROM ha_backups() b, jsonb_object_keys(b.figures) k WHERE b.label = '20260101-000000F'),
          (SELECT array_agg(n.nspname || '.' || c.relname ORDER BY n.nspname || '.' || c.relname) FROM unnest(ha_data_tables()) t
             JOIN pg_class c ON c.oid = t JOIN pg_namespace n ON n.oid = c.relnamespace),
          'figures for every data table, by schema-qualified name');
SET LOCAL TimeZone = 'UTC';  -- the checks show times in UTC
SELECT is((SELECT figures -> 'public.crawl_sessions' FROM ha_backups() WHERE label = '20260101-000000F'),
          (SELECT jsonb_build_object('row_count', count(*), 'id_range', min(id) || '..' || max(id),
                                     'latest_record', (SELECT updated_at::text || ' key ' || id
                                                         FROM crawl_sessions WHERE seeds[1] <> 'http://freeze.test/during'
                                                        ORDER BY updated_at DESC, id DESC LIMIT 1))
             FROM crawl_sessions WHERE seeds[1] <> 'http://freeze.test/during'),
          '... row count, id range and latest record as the consistency checks show them');
RESET TimeZone;
SELECT results_eq($$SELECT reason, detail ->> 'ok', detail ->> 'restore_point', detail -> 'expired'
                      FROM ha_events WHERE kind = 'backup' AND detail ->> 'label' = '20260101-000000F'$$,
                  $$VALUES ('full backup 20260101-000000F of stanza alpha: verified', 'true', 'crawler_ha_20260101-000000F', '[]'::jsonb)$$,
                  '... and a backup event');

SELECT results_eq($$SELECT blob_count, blob_bytes, blob_manifest, blobs_ok FROM ha_backups() WHERE label = '20260101-000000F'$$,
                  $$VALUES (2::bigint, 350::bigint, 'crawler_ha/blobs/manifests/alpha/20260101-000000F.json.enc', NULL::boolean)$$,
                  'the blob summary: two blobs (one referenced twice), their bytes once each, the manifest''s name, no outcome yet');
SELECT results_eq($$SELECT sha256, file_path, file_size FROM pg_temp.blob_lists WHERE label = '20260101-000000F' ORDER BY sha256$$,
                  $$VALUES (repeat('d', 64), 'dd/dd/' || repeat('d', 64) || '.png', 100::bigint),
                           (repeat('e', 64), 'ee/ee/' || repeat('e', 64) || '.png', 250::bigint)$$,
                  'ha_backup_blob_manifest(): each blob once, with its path and size, in sha256 order');
SELECT is((SELECT count(*) FROM dblink('f', $q$SELECT ha_backup_blobs_done('alpha', '20260101-000000F', false, 1, 120, 'blob ' || repeat('e', 64) || ' is not in the store')$q$) AS t(x text)),
          1::bigint, 'ha_backup_blobs_done() records the copy''s outcome');
SELECT results_eq($$SELECT blobs_ok, blobs_copied, blobs_stored_bytes, blobs_detail FROM ha_backups() WHERE label = '20260101-000000F'$$,
                  $$VALUES (false, 1::bigint, 120::bigint, 'blob ' || repeat('e', 64) || ' is not in the store')$$,
                  '... as given');
SELECT throws_ok($$SELECT * FROM dblink('f', 'SELECT ha_backup_blobs_done(''alpha'', ''20260101-000000F'', true, 0, 0, NULL)') AS t(x text)$$,
                 '55000', NULL, '... once: a second outcome -> 55000');
SELECT throws_ok($$SELECT * FROM dblink('f', 'BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT * FROM ha_backup_record_blobs(''alpha'', ''20260101-000000F'', ''crawler_ha/blobs/manifests/alpha/20260101-000000F.json.enc'')') AS t(n bigint, z bigint)$$,
                 '55000', NULL, 'the blob summary of a backup recorded by another transaction -> 55000');
SELECT dblink_exec('f', 'ROLLBACK');
SELECT throws_ok($$SELECT pg_temp.round('20260101-000000F', 'full', NULL, '{20260101-000000F}')$$, '23505',
                 'backup 20260101-000000F of stanza alpha is recorded already', 'the same label again -> 23505');
SELECT throws_ok($$SELECT pg_temp.round('20260101-000000F_20260101-000100I', 'incr', '20260101-000000F',
                                        '{20260101-000000F,20260101-000000F_20260101-000100I}', snapshot => 'before')$$,
                 '55000', NULL, 'a snapshot taken before the freeze -> 55000');
SELECT throws_ok($$SELECT pg_temp.round('20260101-000000F_20260101-000100I', 'incr', '20260101-000000F',
                                        '{20260101-000000F,20260101-000000F_20260101-000100I}', snapshot => 'after')$$,
                 '55000', NULL, 'a snapshot taken after the freeze ended -> 55000');
SELECT ok(pg_temp.round('20260101-000000F_20260101-000100I', 'incr', '20260101-000000F',
                        '{20260101-000000F,20260101-000000F_20260101-000100I}') > 0, 'an incremental backup recorded');
SELECT ok(pg_temp.round('20260102-000000F', 'full', NULL, '{20260102-000000F}') > 0,
          'a full backup whose repository kept only itself');
SELECT results_eq($$SELECT label, expired_at IS NOT NULL FROM ha_backups() ORDER BY id$$,
                  $$VALUES ('20260101-000000F', true), ('20260101-000000F_20260101-000100I', true), ('20260102-000000F', false)$$,
                  '... marks the backups retention removed as expired');
SELECT is((SELECT detail -> 'expired' FROM ha_events WHERE kind = 'backup' AND detail ->> 'label' = '20260102-000000F'),
          '["20260101-000000F", "20260101-000000F_20260101-000100I"]'::jsonb, '... and its event names them');
SELECT ok((SELECT count(*) = 3 AND bool_and(prev IS NULL OR rp_lsn > prev)
             FROM (SELECT rp_lsn, lag(rp_lsn) OVER (ORDER BY label) AS prev FROM pg_temp.rounds) r),
          'each freeze wrote its restore point further on in the WAL');

-- The freeze refuses a standby as well (in "l", whose own transaction
-- makes this node a standby for the moment).
SELECT dblink_exec('l', 'BEGIN');
SELECT dblink_exec('l', 'LOCK TABLE ha_state IN EXCLUSIVE MODE');
SELECT dblink_exec('l', 'UPDATE ha_state SET role = ''standby''');
SELECT throws_ok($$SELECT * FROM dblink('l', 'SELECT * FROM ha_backup_freeze(''20260103-000000F'')') AS t(a text, b pg_lsn, c xid8)$$,
                 '25006', NULL, 'a standby: ha_backup_freeze() -> 25006');
SELECT dblink_exec('l', 'ROLLBACK');

-- What the other sessions committed goes (before this transaction locks
-- ha_state's row below, which they would wait for).
SELECT dblink_exec('l', $$DELETE FROM ha_backups; DELETE FROM ha_events WHERE kind = 'backup';
                          DELETE FROM images WHERE url LIKE 'http://freeze.test/%';
                          DELETE FROM ha_blob_wanted WHERE sha256 IN (repeat('d', 64), repeat('e', 64));
                          DELETE FROM crawl_sessions WHERE seeds[1] LIKE 'http://freeze.test/%';
                          DELETE FROM crawl_hosts WHERE host = 'freeze.test'$$);
SELECT dblink_disconnect(c) FROM unnest(ARRAY['l', 'f', 'w']) c;
SELECT is((SELECT count(*) FROM crawl_sessions WHERE seeds[1] LIKE 'http://freeze.test/%'), 0::bigint, 'their rows are gone');

-- The standby and a fenced node never back up (25006, saying so). The
-- state is changed in this transaction only.
LOCK TABLE ha_state IN EXCLUSIVE MODE;  -- as a demotion does
UPDATE ha_state SET role = 'standby', primary_name = 'the-primary';
SELECT throws_like('SELECT * FROM ha_backup_begin()', 'this node may not make a backup now: %it is a standby; the primary is "the-primary"%',
                   'a standby: ha_backup_begin() refuses, naming the primary');
SELECT throws_ok('SELECT * FROM ha_backup_begin()', '25006', NULL, '... with 25006');
UPDATE ha_state SET role = 'primary', fenced = true;
SELECT throws_ok('SELECT * FROM ha_backup_begin()', '25006', NULL, 'a fenced primary: ha_backup_begin() -> 25006');
SELECT throws_like('SELECT * FROM ha_backup_begin()', '%it is fenced%', '... saying it is fenced');

SELECT * FROM finish();
ROLLBACK;
