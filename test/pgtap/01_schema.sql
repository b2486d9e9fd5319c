-- Every table, column type, index, function signature and privilege of the
-- extension's data model and write API, as installed in schema public.
BEGIN;
SELECT * FROM no_plan();

SELECT tables_are('public', ARRAY['crawl_sessions', 'crawl_session_counts', 'crawl_hosts', 'crawl_frontier', 'images', 'ha_node']
    || ARRAY(SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relkind = 'r' AND relname ~ '^ha_' AND relname <> 'ha_node'),
    'the extension''s tables (data and per-node)');

-- Column types, table by table.
SELECT col_type_is('public', t, c, ty, format('%s.%s is %s', t, c, ty))
  FROM (VALUES
    ('crawl_sessions', 'id', 'bigint'), ('crawl_sessions', 'status', 'text'),
    ('crawl_sessions', 'seeds', 'text[]'), ('crawl_sessions', 'settings', 'jsonb'),
    ('crawl_sessions', 'started_at', 'timestamp with time zone'),
    ('crawl_sessions', 'finished_at', 'timestamp with time zone'),
    ('crawl_sessions', 'updated_at', 'timestamp with time zone'),
    ('crawl_session_counts', 'key', 'text'), ('crawl_session_counts', 'session_id', 'bigint'),
    ('crawl_session_counts', 'node_id', 'integer'), ('crawl_session_counts', 'slot', 'integer'),
    ('crawl_session_counts', 'pages_queued', 'bigint'), ('crawl_session_counts', 'pages_fetched', 'bigint'),
    ('crawl_session_counts', 'images_found', 'bigint'), ('crawl_session_counts', 'images_stored', 'bigint'),
    ('crawl_session_counts', 'bytes_stored', 'bigint'), ('crawl_session_counts', 'errors', 'bigint'),
    ('crawl_session_counts', 'retries', 'bigint'), ('crawl_session_counts', 'queued', 'bigint'),
    ('crawl_session_counts', 'leased', 'bigint'), ('crawl_session_counts', 'done', 'bigint'),
    ('crawl_session_counts', 'failed', 'bigint'),
    ('crawl_session_counts', 'updated_at', 'timestamp with time zone'),
    ('crawl_hosts', 'host', 'text'), ('crawl_hosts', 'next_fetch_at', 'timestamp with time zone'),
    ('crawl_hosts', 'crawl_delay', 'interval'), ('crawl_hosts', 'backoff_until', 'timestamp with time zone'),
    ('crawl_hosts', 'robots_txt', 'text'), ('crawl_hosts', 'robots_fetched_at', 'timestamp with time zone'),
    ('crawl_frontier', 'id', 'bigint'), ('crawl_frontier', 'session_id', 'bigint'),
    ('crawl_frontier', 'url', 'text'), ('crawl_frontier', 'kind', 'text'), ('crawl_frontier', 'depth', 'integer'),
    ('crawl_frontier', 'state', 'text'), ('crawl_frontier', 'host', 'text'), ('crawl_frontier', 'found_on', 'text'),
    ('crawl_frontier', 'lease_owner', 'text'), ('crawl_frontier', 'leased_at', 'timestamp with time zone'),
    ('crawl_frontier', 'lease_expires_at', 'timestamp with time zone'), ('crawl_frontier', 'attempts', 'integer'),
    ('crawl_frontier', 'last_error', 'text'), ('crawl_frontier', 'next_fetch_at', 'timestamp with time zone'),
    ('crawl_frontier', 'result', 'jsonb'),
    ('images', 'id', 'bigint'), ('images', 'url', 'text'), ('images', 'filename', 'text'),
    ('images', 'file_path', 'text'), ('images', 'file_size', 'bigint'), ('images', 'width', 'integer'),
    ('images', 'height', 'integer'), ('images', 'format', 'text'), ('images', 'sha256', 'text'),
    ('images', 'content_type', 'text'), ('images', 'found_on', 'text'), ('images', 'session_id', 'bigint'),
    ('images', 'http_status', 'integer'), ('images', 'created_at', 'timestamp with time zone'),
    ('images', 'updated_at', 'timestamp with time zone'),
    ('ha_node', 'node_id', 'integer'), ('ha_node', 'node_name', 'text')
  ) AS x(t, c, ty);

SELECT col_is_pk('public', t, c, t || ' has a primary key')
  FROM (VALUES ('crawl_sessions', 'id'), ('crawl_hosts', 'host'), ('crawl_frontier', 'id'), ('images', 'id')) x(t, c);
SELECT col_is_unique('public', 'images', ARRAY['url'], 'a URL is stored once');
SELECT col_is_unique('public', 'crawl_frontier', ARRAY['session_id', 'url'], 'a URL is queued once per session');
SELECT fk_ok('public', 'crawl_frontier', 'session_id', 'public', 'crawl_sessions', 'id');
SELECT col_isnt_fk('public', 'images', 'session_id',
                   'images.session_id has no foreign key (image_record checks the session; see 30_data.sql)');
SELECT has_index('public', t, i, i)
  FROM (VALUES ('crawl_frontier', 'crawl_frontier_queued_idx'), ('crawl_frontier', 'crawl_frontier_lease_expiry_idx'),
               ('crawl_frontier', 'crawl_frontier_leased_host_idx'), ('crawl_frontier', 'crawl_frontier_open_idx'),
               ('images', 'images_sha256_idx'), ('images', 'images_session_id_idx'),
               ('crawl_hosts', 'crawl_hosts_next_fetch_at_idx')) x(t, i);
SELECT col_default_is('public', t, 'id', format('nextval(''%s_id_seq''::regclass)', t),
                      t || '.id comes from the node-partitioned sequence')
  FROM unnest(ARRAY['crawl_sessions', 'crawl_frontier', 'images']) t;
SELECT is((SELECT seqincrement FROM pg_sequence WHERE seqrelid = ('public.' || s)::regclass), 1024::bigint,
          s || ' steps by 1024')
  FROM unnest(ARRAY['crawl_sessions_id_seq', 'crawl_frontier_id_seq', 'images_id_seq']) s;

-- The write API: signatures, return types, SECURITY DEFINER, fixed search_path, comments.
CREATE TEMP TABLE api (name text, args text[], returns text, writer boolean, reader boolean);
INSERT INTO api VALUES
    ('crawl_start', '{text[],jsonb}', 'bigint', true, false),
    ('crawl_stop', '{bigint}', 'boolean', true, false),
    ('crawl_status', '{bigint}', 'setof record', true, true),
    ('crawl_session_settings', '{bigint}', 'setof record', true, false),
    ('crawl_redirect_allowed', '{bigint,text,text}', 'boolean', true, false),
    ('crawl_enqueue', '{bigint,text[],integer,text,text}', 'integer', true, false),
    ('crawl_enqueue_many', '{bigint,text[],text[],integer[],text[]}', 'integer', true, false),
    ('crawl_claim', '{text,integer,interval}', 'setof record', true, false),
    ('crawl_lease_early', '{text,bigint,text[],interval}', 'setof record', true, false),
    ('crawl_renew', '{text,bigint[],interval}', 'integer', true, false),
    ('crawl_release', '{text,bigint[]}', 'integer', true, false),
    ('crawl_complete', '{bigint,text,jsonb}', 'boolean', true, false),
    ('crawl_fail', '{bigint,text,text,interval}', 'text', true, false),
    ('crawl_host_set', '{text,interval,text,"timestamp with time zone"}', 'void', true, false),
    ('image_record', '{bigint,text,text,text,bigint,integer,integer,text,text,text,integer,text,bigint,text,text,text,jsonb,text}', 'bigint', true, false),
    ('image_unchanged', '{bigint,text,boolean,bigint,text}', 'bigint', true, false),
    ('image_get', '{bigint}', 'setof images', true, true),
    ('image_delete', '{bigint}', 'boolean', true, false);
GRANT SELECT ON api TO PUBLIC;

SELECT has_function('public', name, args, name || '(' || array_to_string(args, ', ') || ') exists') FROM api;
SELECT function_returns('public', name, args, returns) FROM api;
SELECT is_definer('public', name, args, name || ' is SECURITY DEFINER') FROM api;
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = format('public.%s(%s)', name, array_to_string(args, ','))::regprocedure),
          ARRAY['search_path=pg_catalog, pg_temp'], name || ' has a fixed search_path') FROM api;
SELECT isnt(obj_description(format('public.%s(%s)', name, array_to_string(args, ','))::regprocedure, 'pg_proc'),
            NULL, name || ' has a COMMENT') FROM api;

-- Privileges: PUBLIC nothing, writer the API, reader the read functions.
SELECT function_privs_are('public', name, args, 'crawler_ha_writer',
                          CASE WHEN writer THEN ARRAY['EXECUTE'] ELSE '{}' END) FROM api;
SELECT function_privs_are('public', name, args, 'crawler_ha_reader',
                          CASE WHEN reader THEN ARRAY['EXECUTE'] ELSE '{}' END) FROM api;
SELECT function_privs_are('public', name, args, 'public', '{}') FROM api;
SELECT is(count(*), 0::bigint, 'PUBLIC may execute no function of the extension')
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crawler_ha'
 WHERE has_function_privilege('public', p.oid, 'EXECUTE');
SELECT table_privs_are('public', t, r, ARRAY['SELECT'], r || ' may only SELECT ' || t)
  FROM unnest(ARRAY['crawl_sessions', 'crawl_session_counts', 'crawl_session_totals', 'crawl_hosts', 'crawl_frontier', 'images']) t,
       unnest(ARRAY['crawler_ha_writer', 'crawler_ha_reader']) r;
SELECT table_privs_are('public', t, 'public', '{}', 'PUBLIC has no privilege on ' || t)
  FROM unnest(ARRAY['crawl_sessions', 'crawl_session_counts', 'crawl_hosts', 'crawl_frontier', 'images', 'ha_node']) t;
SELECT sequence_privs_are('public', s, 'crawler_ha_writer', '{}', 'the writer cannot use ' || s)
  FROM unnest(ARRAY['crawl_sessions_id_seq', 'crawl_frontier_id_seq', 'images_id_seq']) s;
SELECT hasnt_role(r) FROM (SELECT 'crawler_ha_nonexistent'::name r) x;
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = r), false, r || ' is NOLOGIN')
  FROM unnest(ARRAY['crawler_ha_writer', 'crawler_ha_reader', 'crawler_ha_admin']) r;

-- One list of the replicated tables, and what is derived from it.
SELECT is(ha_data_tables()::text[], ARRAY['crawl_sessions', 'crawl_session_counts', 'crawl_hosts', 'crawl_frontier', 'images'],
          'ha_data_tables(): the data tables, parents before children');
SELECT is(ha_data_table_list(), 'public.crawl_sessions, public.crawl_session_counts, public.crawl_hosts, public.crawl_frontier, public.images',
          'ha_data_table_list(): the same, qualified, for CREATE PUBLICATION and TRUNCATE');
SELECT is(ARRAY(SELECT tbl::text || ' ' || seq::text FROM ha_id_sequences()),
          ARRAY['crawl_sessions crawl_sessions_id_seq', 'crawl_frontier crawl_frontier_id_seq', 'images images_id_seq'],
          'ha_id_sequences(): each data table with an id, and the sequence its id column owns');
SELECT is(ARRAY[ha_id_after(0, 3), ha_id_after(1027, 3), ha_id_after(5000, 1), ha_id_after(-5, 7), ha_id_after(NULL, 1)],
          ARRAY[1027, 2051, 5121, 1031, NULL]::bigint[],
          'ha_id_after(): the first id of the node''s residue class above the given one');
SELECT is((SELECT count(*) FROM ha_id_sequences() i JOIN pg_sequence s ON s.seqrelid = i.seq
            WHERE s.seqincrement = 1024 AND s.seqstart = (SELECT node_id FROM ha_node)), 3::bigint,
          'every id sequence steps by 1024 from this node''s number');

-- A session's settings as a worker reads them: typed, the defaults in.
SELECT crawl_start(ARRAY['http://settings.test/a'], '{"max_attempts": 5}') AS settings_sid \gset
SELECT is((SELECT format('%s %s %s %s %s %s %s', user_agent, robots, max_page_bytes, max_attempts, images_any_host,
                         allowed_domains, status)
             FROM crawl_session_settings(:settings_sid)),
          'crawler_ha/1.0 t 10485760 5 f {settings.test} running',
          'crawl_session_settings(): the session''s settings, typed, with the defaults');
SELECT is((SELECT format('%s %s %s', delay_ms, per_host, max_depth) FROM crawl_session_settings(:settings_sid)),
          '1000 2 5', 'crawl_session_settings(): politeness and depth, the defaults in');
SELECT ok((SELECT bool_and(status = 'running') AND count(*) >= 1 FROM crawl_session_settings(NULL)),
          'crawl_session_settings(NULL): every running session');

SELECT * FROM finish();
ROLLBACK;
