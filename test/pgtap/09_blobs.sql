-- File sync: the node agent's blob_* functions, crawl_blob_target() for
-- workers, ha_file_sync_status(), and the trigger on images. Signatures,
-- who may call what, NULLs, hostile and huge arguments, and the rules
-- (trigger, requeue, orphan grace, corrupt then repaired).
BEGIN;
SELECT * FROM no_plan();

CREATE TEMP TABLE fn (name text, args text[], returns text, agent boolean, writer boolean, reader boolean);
INSERT INTO fn VALUES
    ('blob_store_attach', '{text}', 'boolean', true, false, false),
    ('blob_inventory', '{text[],bigint[]}', 'integer', true, false, false),
    ('blob_requeue_missing', '{}', 'bigint', true, false, false),
    ('blob_stored', '{text,bigint}', 'void', true, false, false),
    ('blob_stored_many', '{text[],bigint[]}', 'integer', true, false, false),
    ('blob_wanted', '{integer}', 'setof record', true, false, false),
    ('blob_fetch_failed', '{text,text}', 'void', true, false, false),
    ('blob_scrub_next', '{integer,"timestamp with time zone"}', 'setof record', true, false, false),
    ('blob_verified', '{text}', 'boolean', true, false, false),
    ('blob_corrupt', '{text,text}', 'boolean', true, false, false),
    ('blob_orphans', '{interval,integer}', 'setof text', true, false, false),
    ('blob_referenced', '{text[]}', 'setof text', true, false, false),
    ('blob_removed', '{text}', 'boolean', true, false, false),
    ('ha_file_sync_status', '{}', 'setof record', true, false, true),
    ('crawl_blob_target', '{}', 'setof record', false, true, false),
    ('ha_status', '{}', 'setof record', true, true, true),
    ('ha_health', '{}', 'setof record', true, true, true),
    ('ha_endpoint_check', '{text,text}', 'setof record', true, true, true),
    -- the agent's alert sender (77_alerts.sql; tested in 13_alerts.sql)
    ('ha_alert_evaluate', '{double precision}', 'setof record', true, false, false),
    ('ha_alert_notified', '{text,jsonb,text}', 'boolean', true, false, false),
    ('ha_alerts', '{}', 'setof record', true, false, true);
GRANT SELECT ON fn TO PUBLIC;

-- Signatures, SECURITY DEFINER, a pinned search_path, a comment.
SELECT has_function('public', name, args, name || '(' || array_to_string(args, ', ') || ') exists') FROM fn;
SELECT function_returns('public', name, args, returns) FROM fn;
SELECT is_definer('public', name, args, name || ' is SECURITY DEFINER') FROM fn;
SELECT ok((SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_proc
            WHERE oid = format('public.%s(%s)', name, array_to_string(args, ','))::regprocedure),
          name || ' has a fixed search_path') FROM fn;
SELECT isnt(obj_description(format('public.%s(%s)', name, array_to_string(args, ','))::regprocedure, 'pg_proc'),
            NULL, name || ' has a COMMENT') FROM fn;
SELECT is(pg_get_function_result(format('public.%s', f)::regprocedure), r, f || ' returns ' || r)
  FROM (VALUES
    ('crawl_blob_target()', 'TABLE(agent_url text, replication_mode text, sync_timeout_ms integer)'),
    ('blob_wanted(integer)', 'TABLE(sha256 text, file_path text, file_size bigint, wanted_since timestamp with time zone, attempts integer)'),
    ('blob_scrub_next(integer,timestamptz)', 'TABLE(sha256 text, size bigint)'),
    ('blob_orphans(interval,integer)', 'TABLE(sha256 text)'),
    ('ha_file_sync_status()', 'TABLE(blobs_held bigint, bytes_held bigint, blobs_missing bigint, bytes_missing bigint, '
                              'oldest_missing_since timestamp with time zone, oldest_missing_age_s double precision, '
                              'failing bigint, last_scrub_at timestamp with time zone, scrubbed_blobs bigint, '
                              'corrupt_found bigint, repaired bigint, orphans_pending bigint)')
  ) AS x(f, r);
SELECT is((SELECT (p.proargnames)[array_length(p.proargnames, 1)] FROM pg_proc p
            WHERE p.oid = format('public.%s()', f)::regprocedure), 'agent_url', f || '() has agent_url as its last column')
  FROM unnest(ARRAY['ha_status', 'ha_ping']) f;
SELECT is((SELECT array_length(p.proargnames, 1) FROM pg_proc p WHERE p.oid = 'public.ha_status()'::regprocedure),
          20, 'ha_status() keeps its 19 columns and appends one');

-- Privileges.
SELECT function_privs_are('public', name, args, 'crawler_ha_agent', CASE WHEN agent THEN ARRAY['EXECUTE'] ELSE '{}' END) FROM fn;
SELECT function_privs_are('public', name, args, 'crawler_ha_writer', CASE WHEN writer THEN ARRAY['EXECUTE'] ELSE '{}' END) FROM fn;
SELECT function_privs_are('public', name, args, 'crawler_ha_reader', CASE WHEN reader THEN ARRAY['EXECUTE'] ELSE '{}' END) FROM fn;
SELECT function_privs_are('public', name, args, 'public', '{}') FROM fn;
SELECT is(ARRAY(SELECT DISTINCT p.proname::text
                  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
                  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crawler_ha'
                 WHERE has_function_privilege('crawler_ha_agent', p.oid, 'EXECUTE') ORDER BY 1),
          ARRAY(SELECT name FROM fn WHERE agent ORDER BY 1),
          'crawler_ha_agent may execute exactly the blob_* functions, ha_status, ha_health, ha_endpoint_check, ha_file_sync_status and the alert sender''s');
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
                  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crawler_ha'
                 WHERE c.relkind IN ('r', 'S', 'v')
                   AND has_table_privilege('crawler_ha_agent', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                 ORDER BY 1),
          '{}'::text[], 'crawler_ha_agent has no privilege on any table or sequence');
SELECT table_privs_are('public', t, 'public', '{}', 'PUBLIC has no privilege on ' || t)
  FROM unnest(ARRAY['ha_blobs', 'ha_blob_wanted', 'ha_blob_store']) t;
SELECT table_privs_are('public', t, 'crawler_ha_writer', '{}', 'the writer has no privilege on ' || t)
  FROM unnest(ARRAY['ha_blobs', 'ha_blob_wanted', 'ha_blob_store']) t;
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'crawler_ha_agent'), false, 'crawler_ha_agent is NOLOGIN');
SELECT ok(NOT (t::regclass = ANY (ha_data_tables())), t || ' is not replicated')
  FROM unnest(ARRAY['ha_blobs', 'ha_blob_wanted', 'ha_blob_store']) t;

-- Each role, for real.
CREATE ROLE tap_agent LOGIN IN ROLE crawler_ha_agent;
CREATE ROLE tap_bw LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE tap_br LOGIN IN ROLE crawler_ha_reader;
SELECT crawl_start(ARRAY['http://blobs.test/'], '{"delay_ms": 0}') AS s \gset

SET ROLE tap_agent;
SELECT is(blob_store_attach('tap-store-1'), false, 'agent: the first attach is false (take an inventory)');
SELECT is(blob_store_attach('tap-store-1'), true, 'agent: the same store again is true');
SELECT lives_ok(q, 'agent: ' || q)
  FROM unnest(ARRAY[
    'SELECT blob_inventory(ARRAY[repeat(''1'', 64)], ARRAY[1]::bigint[])',
    'SELECT blob_requeue_missing()',
    'SELECT blob_stored(repeat(''2'', 64), 2)',
    'SELECT blob_stored_many(ARRAY[repeat(''3'', 64)], ARRAY[3]::bigint[])',
    'SELECT * FROM blob_wanted(10)',
    'SELECT blob_fetch_failed(repeat(''4'', 64), ''x'')',
    'SELECT * FROM blob_scrub_next(10)',
    'SELECT * FROM blob_scrub_next(10, now())',
    'SELECT * FROM blob_scrub_next(10, ''-infinity'')',
    'SELECT blob_verified(repeat(''2'', 64))',
    'SELECT blob_corrupt(repeat(''3'', 64), ''bad'')',
    'SELECT * FROM blob_orphans(''1 day'', 10)',
    'SELECT * FROM blob_referenced(ARRAY[repeat(''2'', 64)])',
    'SELECT blob_removed(repeat(''2'', 64))',
    'SELECT * FROM ha_status()',
    'SELECT * FROM ha_health()',
    'SELECT * FROM ha_endpoint_check(''health'')',
    'SELECT * FROM ha_file_sync_status()']) q;
SELECT throws_ok(q, '42501', NULL, 'agent: ' || q || ' is refused')
  FROM unnest(ARRAY[
    'SELECT * FROM ha_blobs', 'SELECT * FROM ha_blob_wanted', 'SELECT * FROM ha_blob_store',
    'SELECT * FROM images', 'SELECT * FROM ha_node', 'SELECT * FROM ha_events',
    'DELETE FROM ha_blobs', 'INSERT INTO ha_blob_wanted (sha256, file_path, file_size) VALUES (''x'', ''y'', 1)',
    'SELECT * FROM crawl_blob_target()', 'SELECT * FROM ha_ping()', 'SELECT crawl_start(ARRAY[''http://x.test/''])',
    'SELECT image_delete(1)', 'SELECT * FROM ha_sync()', 'SELECT ha_record_event(''alert'', ''x'')',
    'SELECT ha_blob_stored(ARRAY[repeat(''5'', 64)], ARRAY[5]::bigint[])', 'SELECT ha_blob_begin(false)',
    'SELECT ha_blob_missing_summary()']) q;
RESET ROLE;

SET ROLE tap_bw;
SELECT throws_ok(q, '42501', NULL, 'writer: ' || q || ' is refused')
  FROM unnest(ARRAY[
    'SELECT blob_store_attach(''x'')', 'SELECT blob_stored(repeat(''2'', 64), 2)',
    'SELECT blob_removed(repeat(''2'', 64))', 'SELECT * FROM blob_orphans(''1 day'', 10)',
    'SELECT * FROM blob_wanted(1)', 'SELECT * FROM ha_file_sync_status()', 'SELECT * FROM ha_blobs']) q;
-- No agent configured on this node: the worker is told, with a hint (55000).
SELECT throws_ok('SELECT * FROM crawl_blob_target()', '55000', NULL, 'writer: crawl_blob_target() without an agent -> 55000')
 WHERE current_setting('crawler_ha.agent_url') = '';
RESET ROLE;

SET ROLE tap_br;
SELECT throws_ok(q, '42501', NULL, 'reader: ' || q || ' is refused')
  FROM unnest(ARRAY[
    'SELECT blob_store_attach(''x'')', 'SELECT blob_inventory(ARRAY[repeat(''1'', 64)], ARRAY[1]::bigint[])',
    'SELECT * FROM blob_referenced(ARRAY[repeat(''2'', 64)])', 'SELECT * FROM crawl_blob_target()']) q;
SELECT lives_ok('SELECT * FROM ha_file_sync_status()', 'reader: ha_file_sync_status() is allowed');
SELECT lives_ok('SELECT count(*) FROM ha_blobs', 'reader: may read ha_blobs');
RESET ROLE;

-- The write fence comes first in crawl_blob_target(): a node that does not
-- accept writes answers 25006 whatever its agent.
LOCK TABLE ha_state IN EXCLUSIVE MODE;  -- as a demotion does
UPDATE ha_state SET role = 'standby', term = greatest(term, 1);
SELECT throws_ok('SELECT * FROM crawl_blob_target()', '25006', NULL, 'crawl_blob_target() on a standby -> 25006');
UPDATE ha_state SET role = 'primary';

-- Bad arguments.
SELECT throws_ok(q, c, NULL, left(q, 100) || ' -> ' || c)
  FROM (VALUES
    ('SELECT blob_store_attach(NULL)', '22004'),
    ('SELECT blob_store_attach('''')', '22023'),
    ('SELECT blob_store_attach(''x''''; DROP TABLE images; --'')', '22023'),
    ('SELECT blob_store_attach(repeat(''s'', 102400))', '22023'),
    ('SELECT blob_store_attach(repeat(''s'', 129))', '22023'),
    ('SELECT blob_store_attach(E''a\nb'')', '22023'),
    ('SELECT blob_inventory(NULL, ARRAY[1]::bigint[])', '22004'),
    ('SELECT blob_inventory(ARRAY[repeat(''1'', 64)], NULL)', '22004'),
    ('SELECT blob_inventory(ARRAY[NULL]::text[], ARRAY[1]::bigint[])', '22004'),
    ('SELECT blob_inventory(ARRAY[repeat(''1'', 64)], ARRAY[NULL]::bigint[])', '22004'),
    ('SELECT blob_inventory(ARRAY[repeat(''1'', 64)], ARRAY[-1]::bigint[])', '22023'),
    ('SELECT blob_inventory(ARRAY[repeat(''1'', 64)], ARRAY[1, 2]::bigint[])', '22023'),
    ('SELECT blob_inventory(ARRAY[[repeat(''1'', 64)]], ARRAY[[1]]::bigint[])', '22023'),
    ('SELECT blob_inventory(ARRAY[repeat(''A'', 64)], ARRAY[1]::bigint[])', '22023'),
    ('SELECT blob_inventory(ARRAY[''x''''; DROP TABLE images; --''], ARRAY[1]::bigint[])', '22023'),
    ('SELECT blob_inventory(ARRAY[repeat(''a'', 102400)], ARRAY[1]::bigint[])', '22023'),
    -- lists whose elements joined by commas look like well-formed ones
    ('SELECT blob_inventory(ARRAY[repeat(''1'', 64) || '','' || repeat(''2'', 64)], ARRAY[1]::bigint[])', '22023'),
    ('SELECT blob_inventory(ARRAY[repeat(''1'', 63), repeat(''2'', 65)], ARRAY[1, 1]::bigint[])', '22023'),
    ('SELECT blob_inventory(ARRAY[repeat(''1'', 64), ''''], ARRAY[1, 1]::bigint[])', '22023'),
    ('SELECT blob_stored_many(ARRAY[repeat(''1'', 64), repeat(''2'', 64) || E''\n''], ARRAY[1, 1]::bigint[])', '22023'),
    ('SELECT blob_stored_many(ARRAY[repeat(''1'', 64), repeat(''2'', 63) || ''G''], ARRAY[1, 1]::bigint[])', '22023'),
    ('SELECT blob_inventory(array_fill(repeat(''1'', 64), ARRAY[10001]), array_fill(1::bigint, ARRAY[10001]))', '22023'),
    ('SELECT blob_stored(NULL, 1)', '22004'),
    ('SELECT blob_stored(repeat(''1'', 64), NULL)', '22004'),
    ('SELECT blob_stored(repeat(''1'', 64), -1)', '22023'),
    ('SELECT blob_stored(repeat(''1'', 63), 1)', '22023'),
    ('SELECT blob_stored(repeat(''1'', 64) || E''\n'', 1)', '22023'),
    ('SELECT blob_stored(''../../etc/passwd'', 1)', '22023'),
    ('SELECT blob_stored_many(NULL, NULL)', '22004'),
    ('SELECT blob_stored_many(ARRAY[repeat(''1'', 64)], ARRAY[]::bigint[])', '22023'),
    ('SELECT blob_stored_many(array_fill(repeat(''1'', 64), ARRAY[20000]), array_fill(1::bigint, ARRAY[20000]))', '22023'),
    ('SELECT * FROM blob_wanted(NULL)', '22004'),
    ('SELECT * FROM blob_wanted(0)', '22023'),
    ('SELECT * FROM blob_wanted(10001)', '22023'),
    ('SELECT * FROM blob_wanted(-2147483648)', '22023'),
    ('SELECT blob_fetch_failed(NULL, ''x'')', '22004'),
    ('SELECT blob_fetch_failed(''1; DROP TABLE images'', ''x'')', '22023'),
    ('SELECT * FROM blob_scrub_next(NULL)', '22004'),
    ('SELECT * FROM blob_scrub_next(0)', '22023'),
    ('SELECT blob_verified(NULL)', '22004'),
    ('SELECT blob_verified(repeat(''g'', 64))', '22023'),
    ('SELECT blob_corrupt(NULL, ''x'')', '22004'),
    ('SELECT blob_corrupt(repeat(''z'', 102400), ''x'')', '22023'),
    ('SELECT * FROM blob_orphans(NULL, 10)', '22004'),
    ('SELECT * FROM blob_orphans(''23:59:59'', 10)', '22023'),
    ('SELECT * FROM blob_orphans(''-1 day'', 10)', '22023'),
    ('SELECT * FROM blob_orphans(''1 day'', NULL)', '22004'),
    ('SELECT * FROM blob_orphans(''1 day'', 0)', '22023'),
    ('SELECT * FROM blob_referenced(NULL)', '22004'),
    ('SELECT * FROM blob_referenced(ARRAY[NULL]::text[])', '22004'),
    ('SELECT * FROM blob_referenced(ARRAY[''x'''') OR true --''])', '22023'),
    ('SELECT * FROM blob_referenced(array_fill(repeat(''1'', 64), ARRAY[10001]))', '22023'),
    ('SELECT blob_removed(NULL)', '22004'),
    ('SELECT blob_removed(repeat(''1'', 65))', '22023')
  ) AS cases(q, c);
SELECT is(blob_referenced, NULL, 'blob_referenced of an empty array is empty')
  FROM (SELECT (SELECT array_agg(h) FROM blob_referenced('{}') h) AS blob_referenced) x;
SELECT is(blob_inventory('{}', '{}'), 0, 'an empty inventory records nothing');

-- A batch of 10000 is accepted, duplicates counted once.
SELECT is(blob_inventory(ARRAY(SELECT lpad(to_hex(i), 64, '0') FROM generate_series(1, 10000) i),
                         array_fill(1::bigint, ARRAY[10000])), 10000, 'an inventory of 10000 blobs');
SELECT is(blob_stored_many(ARRAY(SELECT 'c' || lpad(to_hex(i % 5000), 63, '0') FROM generate_series(1, 10000) i),
                           array_fill(9::bigint, ARRAY[10000])), 5000, 'blob_stored_many counts each blob once');
SELECT is((SELECT count(*) FROM blob_referenced(ARRAY(SELECT lpad(to_hex(i), 64, '0') FROM generate_series(1, 10000) i))),
          0::bigint, 'blob_referenced of 10000 unreferenced blobs is empty');

-- Hostile free text is clipped and loses its control characters.
SELECT image_record(:s, 'http://blobs.test/h.png', repeat('d', 64), 'dd/dd/' || repeat('d', 64) || '.png',
                    4, 1, 1, 'png', 'image/png') AS img \gset
SELECT lives_ok(format('SELECT blob_fetch_failed(repeat(''d'', 64), %L)', repeat(E'x\n', 51200)), '100 kB error accepted');
SELECT is((SELECT length(last_error) FROM ha_blob_wanted WHERE sha256 = repeat('d', 64)), 1000, 'the error is clipped to 1000 characters');
SELECT is((SELECT strpos(last_error, E'\n') FROM ha_blob_wanted WHERE sha256 = repeat('d', 64)), 0, 'without control characters');
SELECT lives_ok(format('SELECT blob_corrupt(repeat(''d'', 64), %L)', repeat(E'y\r', 51200)), '100 kB corrupt detail accepted');
SELECT is((SELECT length(detail ->> 'detail') FROM ha_events WHERE kind = 'blob_corrupt' ORDER BY id DESC LIMIT 1),
          1000, 'the corrupt detail is clipped in the event');

-- The trigger fires for inserts, for sha256 updates, and as the apply
-- worker does (session_replication_role = replica: ENABLE ALWAYS).
DELETE FROM ha_blob_wanted;
SELECT image_record(:s, 'http://blobs.test/t1.png', repeat('7', 64), '77/77/' || repeat('7', 64) || '.png',
                    7, 1, 1, 'png', 'image/png') AS t1 \gset
SELECT is((SELECT array_agg(file_path) FROM ha_blob_wanted), ARRAY['77/77/' || repeat('7', 64) || '.png'], 'an insert queues its missing blob');
UPDATE images SET width = 2 WHERE id = :t1;
SELECT is((SELECT count(*) FROM ha_blob_wanted), 1::bigint, 'an update that keeps the sha256 queues nothing');
SELECT blob_stored(repeat('7', 64), 7);
UPDATE images SET sha256 = repeat('8', 64), file_path = '88/88/' || repeat('8', 64) || '.png' WHERE id = :t1;
SELECT is((SELECT array_agg(sha256) FROM ha_blob_wanted), ARRAY[repeat('8', 64)], 'a new sha256 queues the new blob');
SET LOCAL session_replication_role = replica;
INSERT INTO images (url, file_path, file_size, sha256) VALUES ('http://blobs.test/r.png', '66/66/' || repeat('6', 64) || '.png', 6, repeat('6', 64));
RESET session_replication_role;
SELECT ok(EXISTS (SELECT 1 FROM ha_blob_wanted WHERE sha256 = repeat('6', 64)), 'a row applied as a replica queues its blob');
SELECT image_record(:s, 'http://blobs.test/t2.png', repeat('7', 64), '77/77/' || repeat('7', 64) || '.png',
                    7, 1, 1, 'png', 'image/png') IS NOT NULL AS recorded \gset
SELECT ok(NOT EXISTS (SELECT 1 FROM ha_blob_wanted WHERE sha256 = repeat('7', 64)), 'a held blob is not queued');

-- The requeue: every referenced blob the store lacks, once.
DELETE FROM ha_blob_wanted;
SELECT is(blob_requeue_missing(), 3::bigint, 'requeue: the three referenced blobs the store lacks (d, 8, 6)');
SELECT is(blob_requeue_missing(), 0::bigint, 'requeue again: nothing new');

-- Orphans: marked on first sight, returned only after the grace, from both
-- unreferenced_since and last_put_at; a referenced or re-uploaded blob is kept.
SELECT is((SELECT count(*) FROM blob_orphans('1 day', 10000)), 0::bigint, 'nothing is an orphan before the grace');
SELECT ok((SELECT unreferenced_since IS NOT NULL FROM ha_blobs WHERE sha256 = lpad('1', 64, '0')), 'unreferenced blobs are marked');
SELECT ok((SELECT unreferenced_since IS NULL FROM ha_blobs WHERE sha256 = repeat('7', 64)), 'referenced blobs are not');
UPDATE ha_blobs SET unreferenced_since = now() - interval '2 days' WHERE sha256 = lpad('1', 64, '0');
SELECT is((SELECT count(*) FROM blob_orphans('1 day', 10000)), 0::bigint, 'uploaded within the grace: not an orphan');
UPDATE ha_blobs SET last_put_at = now() - interval '2 days' WHERE sha256 = lpad('1', 64, '0');
SELECT is(ARRAY(SELECT * FROM blob_orphans('1 day', 10)), ARRAY[lpad('1', 64, '0')], 'unreferenced and not uploaded for a day: an orphan');
SELECT is(ARRAY(SELECT * FROM blob_orphans('3 days', 10)), '{}'::text[], 'not with a longer grace');
UPDATE ha_blobs SET unreferenced_since = now() - interval '2 days', last_put_at = now() - interval '2 days' WHERE sha256 = repeat('7', 64);
SELECT is(ARRAY(SELECT * FROM blob_orphans('1 day', 10)), ARRAY[lpad('1', 64, '0')], 'a referenced blob is unmarked, never an orphan');
SELECT is(blob_removed(repeat('7', 64)), false, 'blob_removed refuses a referenced blob');
SELECT is(blob_removed(lpad('2', 64, '0')), false, 'blob_removed refuses a blob blob_orphans did not return');
SELECT blob_stored(lpad('1', 64, '0'), 1);
SELECT is(blob_removed(lpad('1', 64, '0')), false, 'blob_removed refuses a blob uploaded again since');
UPDATE ha_blobs SET unreferenced_since = now() - interval '2 days', last_put_at = now() - interval '2 days' WHERE sha256 = lpad('1', 64, '0');
SELECT is(blob_removed(lpad('1', 64, '0')), true, 'blob_removed drops an orphan');
SELECT ok(NOT EXISTS (SELECT 1 FROM ha_blobs WHERE sha256 = lpad('1', 64, '0')), '... from ha_blobs');
SELECT is(blob_removed(lpad('1', 64, '0')), false, '... once');

-- Corrupt, then repaired: both events, both counters.
SELECT blob_store_attach('tap-store-2');
SELECT blob_stored(repeat('7', 64), 7);
SELECT is(blob_corrupt(repeat('7', 64), 'mismatch'), true, 'a corrupt referenced blob is wanted again');
SELECT ok(NOT EXISTS (SELECT 1 FROM ha_blobs WHERE sha256 = repeat('7', 64)), '... and no longer held');
SELECT is(blob_corrupt(lpad('ab', 64, '0'), NULL), false, 'a corrupt unreferenced blob is not fetched again');
SELECT blob_stored(repeat('7', 64), 7);
SELECT is(ARRAY(SELECT kind FROM ha_events WHERE kind IN ('blob_corrupt', 'blob_repaired') AND detail ->> 'sha256' = repeat('7', 64) ORDER BY id),
          ARRAY['blob_corrupt', 'blob_repaired'], 'corrupt, then repaired, as events');
SELECT is((SELECT ARRAY[scrubbed_blobs, corrupt_found, repaired] FROM ha_file_sync_status()), ARRAY[2, 2, 1]::bigint[],
          'the scrub counters');
SELECT is((SELECT blobs_held FROM ha_file_sync_status()), 1::bigint, 'the new store holds what was stored since');

-- A read-only transaction (a standby's default) is refused with the way
-- out; last, since a transaction does not become read-write again.
SET LOCAL transaction_read_only = on;
SELECT throws_ok('SELECT blob_verified(repeat(''7'', 64))', '25006',
                 'the blob bookkeeping needs a read-write transaction', 'read-only: refused with 25006');
SELECT lives_ok('SELECT * FROM blob_scrub_next(1)', 'read-only: the readers still answer');
SELECT lives_ok('SELECT * FROM blob_referenced(ARRAY[repeat(''7'', 64)])', '... blob_referenced too');

SELECT * FROM finish();
ROLLBACK;
