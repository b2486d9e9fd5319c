-- The merge of an old primary's tail (HA part 2): the merge rules of
-- ha_merge_rows() on a writable node, bad input with its SQLSTATE, and wrong
-- callers. The whole flow runs on real nodes in t/112, the reading of a tail
-- from a slot in t/116.
BEGIN;
SELECT * FROM no_plan();

-- A standalone node is writable: merge into it.
SELECT crawl_start(ARRAY['http://m.test/'], '{"delay_ms": 0}') AS sid \gset
SELECT crawl_enqueue(:sid, ARRAY['http://m.test/a.png', 'http://m.test/b.png'], 1, 'image') AS n \gset
CREATE TEMP TABLE other AS
SELECT 'crawl_sessions'::regclass AS tbl, jsonb_agg(to_jsonb(s) || jsonb_build_object('id', 5, 'seeds', ARRAY['http://o.test/'])) AS rows
  FROM crawl_sessions s
UNION ALL
SELECT 'crawl_frontier', jsonb_agg(to_jsonb(f) || jsonb_build_object('state', 'done', 'lease_owner', 'w', 'result', '{"x": 1}'))
  FROM crawl_frontier f WHERE f.url = 'http://m.test/a.png'
UNION ALL
SELECT 'crawl_frontier', jsonb_agg(to_jsonb(f) || jsonb_build_object('id', 5122, 'session_id', 5, 'state', 'leased',
                                                                      'lease_owner', 'w', 'lease_expires_at', now()))
  FROM crawl_frontier f WHERE f.url = 'http://m.test/b.png'
UNION ALL
SELECT 'images', jsonb_build_array(jsonb_build_object('id', 3074, 'url', 'http://m.test/a.png', 'file_path', 'cc/cc/' || repeat('c', 64) || '.png', 'file_size', 7,
       'sha256', repeat('c', 64), 'session_id', :sid, 'created_at', now(), 'updated_at', now()))
UNION ALL
SELECT 'crawl_hosts', jsonb_build_array(jsonb_build_object('host', 'm.test', 'next_fetch_at', '2100-01-01', 'updated_at', now()));

SELECT is(ha_merge_rows('crawl_sessions', rows, '[]', 'old', 1) ->> 'inserted', '1', 'a session only there is inserted')
  FROM other WHERE tbl = 'crawl_sessions'::regclass;
SELECT is(ha_merge_rows('crawl_frontier', rows, '[]', 'old', 1) ->> 'replaced', '1', 'a URL done there replaces queued here')
  FROM other WHERE tbl = 'crawl_frontier'::regclass AND rows::text LIKE '%a.png%';
SELECT is(state, 'done', 'done wins') FROM crawl_frontier WHERE url = 'http://m.test/a.png';
SELECT is(ha_merge_rows('crawl_frontier', rows, '[]', 'old', 1) ->> 'inserted', '1', 'a row of a merged session is inserted')
  FROM other WHERE tbl = 'crawl_frontier'::regclass AND rows::text LIKE '%b.png%';
SELECT is(state || '/' || coalesce(lease_owner, '-'), 'queued/-', 'a lease of the other term arrives void')
  FROM crawl_frontier WHERE id = 5122;
SELECT is(ha_merge_rows('images', rows, '[]', 'old', 1) ->> 'inserted', '1', 'an image only there is inserted')
  FROM other WHERE tbl = 'images'::regclass;
SELECT is(row(images_stored, bytes_stored, pages_queued, images_found, queued, leased, done, failed)::text,
          '(1,7,1,2,2,0,1,0)',
          'counters follow the merged rows: 1 image of 7 bytes; 1 page, 2 images queued; the seed and b.png queued, a.png done')
  FROM crawl_session_totals WHERE session_id = :sid;
SELECT is(row(queued, leased, done)::text, '(1,0,0)', 'the merged session''s counters too: its URL arrived queued')
  FROM crawl_session_totals WHERE session_id = 5;
-- The old primary's own counter rows: the larger retries count wins (the rest is recounted), a new row is inserted.
SELECT is(ha_merge_rows('crawl_session_counts',
                        jsonb_build_array(jsonb_build_object('key', :sid || '/77/3', 'session_id', :sid, 'node_id', 77,
                                                             'slot', 3, 'retries', 4, 'queued', 100, 'updated_at', now())),
                        '[]', 'old', 1) ->> 'inserted', '1', 'a counter row of the old primary is inserted');
SELECT is(row(retries, queued)::text, '(4,2)', '... its retries count; the rows by state stay recounted (2 queued)')
  FROM crawl_session_totals WHERE session_id = :sid;
SELECT is(ha_merge_rows('crawl_session_counts',
                        jsonb_build_array(jsonb_build_object('key', :sid || '/77/3', 'session_id', :sid, 'node_id', 77,
                                                             'slot', 3, 'retries', 2, 'updated_at', now())),
                        '[]', 'old', 1) ->> 'replaced', '1', 'the same row again, with a smaller figure');
SELECT is(retries, 4::bigint, '... keeps the larger') FROM crawl_session_totals WHERE session_id = :sid;
SELECT is(ha_merge_rows('images', jsonb_build_array(to_jsonb(i) || jsonb_build_object('id', 4098, 'sha256', repeat('d', 64))),
                        '[]', 'other', 2) ->> 'conflicts', '1', 'the same URL with other bytes is a conflict')
  FROM images i;
SELECT is(sha256, repeat('c', 64), 'and the row here stays') FROM images;
SELECT is(count(*), 1::bigint, 'the conflict is an event with the losing row')
  FROM ha_events WHERE kind = 'conflict' AND detail -> 'other' ->> 'sha256' = repeat('d', 64);
SELECT is(ha_merge_rows('crawl_hosts', rows, '[]', 'old', 1) ->> 'replaced', '1', 'the later politeness time wins')
  FROM other WHERE tbl = 'crawl_hosts'::regclass;
SELECT is(next_fetch_at, '2100-01-01'::timestamptz, 'next_fetch_at moved forward') FROM crawl_hosts WHERE host = 'm.test';
SELECT is(ha_merge_rows(o.tbl, o.rows, '[]', 'old', 1) - 'table' - 'from_node' - 'from_term' - 'rows' - 'kept' - 'conflicts',
          '{"inserted": 0, "replaced": 0, "deleted_here": 0}'::jsonb, 'merging again changes nothing: ' || o.tbl)
  FROM other o;
SELECT ok(count(*) >= 5, 'every merge call is an event') FROM ha_events WHERE kind = 'merge';

-- A key sent twice in one call: merged as if its rows came one after the
-- other (the first as a row missing here, the next ones against it).
SELECT is(ha_merge_rows('crawl_sessions',
                        jsonb_build_array(s || jsonb_build_object('id', 9, 'status', 'running'),
                                          s || jsonb_build_object('id', 9, 'status', 'stopped',
                                                                  'seeds', ARRAY['http://twice.test/'])),
                        '[]', 'old', 1) - 'table' - 'from_node' - 'from_term',
          '{"rows": 2, "inserted": 1, "replaced": 1, "kept": 0, "conflicts": 1, "deleted_here": 0}'::jsonb,
          'a session sent twice: inserted from the first row, stopped by the second, whose seeds are a conflict')
  FROM (SELECT to_jsonb(c) AS s FROM crawl_sessions c WHERE c.id = :sid) x;
SELECT is(status || ' ' || seeds[1], 'stopped http://m.test/', '... the first row''s seeds stay, the stop holds')
  FROM crawl_sessions WHERE id = 9;
SELECT is(ha_merge_rows('crawl_frontier',
                        jsonb_build_array(f || jsonb_build_object('id', 7170, 'url', 'http://m.test/twice.png', 'state', 'queued'),
                                          f || jsonb_build_object('id', 7170, 'url', 'http://m.test/twice.png', 'state', 'done')),
                        '[]', 'old', 1) - 'table' - 'from_node' - 'from_term',
          '{"rows": 2, "inserted": 1, "replaced": 1, "kept": 0, "conflicts": 0, "deleted_here": 0}'::jsonb,
          'a URL sent twice, queued then done: inserted, then moved on')
  FROM (SELECT to_jsonb(f) AS f FROM crawl_frontier f WHERE f.url = 'http://m.test/a.png') x;
SELECT is(state, 'done', '... done') FROM crawl_frontier WHERE id = 7170;
SELECT is(ha_merge_rows('images',
                        jsonb_build_array(i || jsonb_build_object('id', 5122, 'url', 'http://m.test/twice.png'),
                                          i || jsonb_build_object('id', 6146, 'url', 'http://m.test/twice.png',
                                                                  'sha256', repeat('e', 64),
                                                                  'file_path', 'ee/ee/' || repeat('e', 64) || '.png')),
                        '[]', 'old', 1) - 'table' - 'from_node' - 'from_term',
          '{"rows": 2, "inserted": 1, "replaced": 0, "kept": 1, "conflicts": 1, "deleted_here": 0}'::jsonb,
          'an image URL sent twice with other bytes: the first is inserted, the second a conflict')
  FROM (SELECT to_jsonb(i) AS i FROM images i WHERE i.url = 'http://m.test/a.png') x;
SELECT is(id, 5122::bigint, '... the first row stays') FROM images WHERE url = 'http://m.test/twice.png';
SELECT is(ha_merge_rows('crawl_hosts',
                        '[{"host": "twice.test", "next_fetch_at": "2100-01-01", "updated_at": "2000-01-01"},
                          {"host": "twice.test", "next_fetch_at": "2200-01-01", "updated_at": "2000-01-01"}]',
                        '[]', 'old', 1) - 'table' - 'from_node' - 'from_term',
          '{"rows": 2, "inserted": 1, "replaced": 0, "kept": 1, "conflicts": 0, "deleted_here": 0}'::jsonb,
          'a host sent twice: inserted once');
SELECT is(next_fetch_at, '2200-01-01'::timestamptz, '... with the later time of its two rows')
  FROM crawl_hosts WHERE host = 'twice.test';
-- Many rows at once (the same row 50,000 times): one statement per rule,
-- not one per row: nothing changes, every row is kept.
SELECT is(ha_merge_rows('images', (SELECT jsonb_agg(to_jsonb(i)) FROM images i, generate_series(1, 50000)
                                    WHERE i.url = 'http://m.test/a.png'), NULL, 'old', 1)
              - 'table' - 'from_node' - 'from_term',
          '{"rows": 50000, "inserted": 0, "replaced": 0, "kept": 50000, "conflicts": 0, "deleted_here": 0}'::jsonb,
          '50,000 rows of an image already here: all kept (deleted_keys NULL is none)');

-- Bad input.
SELECT throws_ok(q, c, NULL, q || ' -> ' || c)
  FROM (VALUES
    ('SELECT ha_merge_rows(NULL, ''[]'')', '22004'),
    ('SELECT ha_merge_rows(''images'', NULL)', '22004'),
    ('SELECT ha_merge_rows(''pg_class'', ''[]'')', '22023'),
    ('SELECT ha_merge_rows(''images'', ''{}'')', '22023'),
    ('SELECT ha_merge_rows(''images'', ''[1]'')', '22023'),
    ('SELECT ha_merge_rows(''images'', ''[{}, null]'')', '22023'),
    ('SELECT ha_merge_rows(''images'', ''[[{}]]'')', '22023'),
    ('SELECT ha_merge_rows(''crawl_hosts'', ''[{}, "x"]'')', '22023'),
    ('SELECT ha_merge_rows(''crawl_frontier'', ''[{"id": "x"}]'')', '22P02'),
    ('SELECT ha_merge_rows(''crawl_sessions'', ''[{"id": 1, "seeds": "http://x.test/"}]'')', '22P02'),
    ('SELECT ha_merge_rows(''crawl_sessions'', ''[{"seeds": ["http://x.test/"]}]'')', '23502'),
    ('SELECT ha_merge_rows(''crawl_hosts'', ''[{"next_fetch_at": "2100-01-01"}]'')', '23502'),
    ('SELECT ha_merge_rows(''crawl_session_counts'', ''[{"key": "x", "session_id": 9, "slot": 1}]'')', '23502'),
    ('SELECT ha_merge_rows(''images'', ''[]'', ''"x"'')', '22023'),
    ('SELECT ha_merge_rows(''images'', ''[]'', ''[]'', repeat(''n'', 102400))', '22001'),
    ('SELECT ha_merge_rows(''images'', jsonb_build_array(jsonb_build_object(''url'', ''http://m.test/z'', ''sha256'', repeat(''c'', 64), ''file_path'', ''cc/cc/'' || repeat(''c'', 64) || ''.png'', ''file_size'', 1, ''filename'', ''x''''; DROP TABLE images; --'')))', '23502'),
    ('SELECT ha_merge_rows(''images'', ''[{"id": "9223372036854775808"}]'')', '22003'),
    ('SELECT * FROM ha_tail_summary(NULL, ''0/0'')', '22004'),
    ('SELECT * FROM ha_tail_summary(''no_such_slot'', ''0/0'')', '42704'),
    ('SELECT * FROM ha_tail_changes(NULL, ''0/0'')', '22004'),
    ('SELECT * FROM ha_tail_changes(''no_such_slot'', ''0/0'')', '42704'),
    ('SELECT ha_merge_tail(''x'', ''0/0'', 0)', '22023'),
    ('SELECT ha_merge_tail(''x'', ''0/0'', NULL)', '22023')
  ) AS cases(q, c);
SELECT is(count(*), 1::bigint, 'hostile strings are data, not SQL') FROM pg_class WHERE relname = 'images';

-- The records a rejoining node sends to ha_merge_receive(): each built by
-- the names and in the order of the receiver's columns (ha_merge_columns()
-- there), whatever the order of the sender's.
SELECT is(ARRAY(SELECT jsonb_object_keys(ha_merge_columns()) ORDER BY 1),
          ARRAY['crawl_frontier', 'crawl_hosts', 'crawl_session_counts', 'crawl_sessions', 'images'],
          'ha_merge_columns() lists every data table');
SELECT is(ARRAY(SELECT e ->> 'name' FROM jsonb_array_elements(ha_merge_columns() -> 'crawl_hosts') e),
          ARRAY(SELECT attname::text FROM pg_attribute
                 WHERE attrelid = 'crawl_hosts'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum),
          '... each with its columns in their order');
SELECT ARRAY(SELECT e ->> 'name' FROM jsonb_array_elements(ha_merge_columns() -> 'crawl_hosts') e) AS host_cols \gset
-- A receiver whose columns come in another order, with one more (nullable)
-- column and without one this node has (robots_txt).
SELECT is(row(b.select_list, b.columns)::text,
          row('t.updated_at, t.robots_fetched_at, t.backoff_until, t.crawl_delay, NULL, t.next_fetch_at, t.host',
              ARRAY['updated_at', 'robots_fetched_at', 'backoff_until', 'crawl_delay', 'note', 'next_fetch_at', 'host'])::text,
          'records are built in the receiver''s order: its column missing here is NULL, a column only here is not sent')
  FROM ha_merge_record_list('crawl_hosts',
         '[{"name": "updated_at", "not_null": true}, {"name": "robots_fetched_at"}, {"name": "backoff_until"},
           {"name": "crawl_delay"}, {"name": "note", "type": "text", "not_null": false},
           {"name": "next_fetch_at", "not_null": true}, {"name": "host", "not_null": true}]') b;
SELECT throws_ok($$SELECT ha_merge_record_list('crawl_hosts', '[{"name": "host", "not_null": true},
                                                  {"name": "must", "type": "text", "not_null": true}]')$$,
                 '42703', 'the new primary''s public.crawl_hosts has NOT NULL columns that this node''s lacks: must (text)',
                 'a NOT NULL column of the receiver missing here: 42703, naming it');
SELECT throws_ok(format('SELECT ha_merge_record_list(%L, %L)', t, c), '22023', NULL,
                 'the receiver''s columns ' || coalesce(c, 'NULL') || ': 22023')
  FROM (VALUES ('crawl_hosts', NULL), ('crawl_hosts', '{}'), ('crawl_hosts', '[]'), ('crawl_hosts', '[1]'),
               ('crawl_hosts', '[{"name": 5}]'), ('crawl_hosts', '[{"type": "text"}]')) v(t, c);
SELECT throws_ok('SELECT ha_merge_record_list(NULL, ''[]'')', '22004', NULL, 'ha_merge_record_list(NULL): 22004');

-- Receiving them: rows in this node's order, checked against the columns
-- they were built for.
SELECT is(ha_merge_receive('crawl_hosts', ARRAY[('rec.test', '2100-01-01', '5 s', NULL, 'robots', NULL, now())::crawl_hosts]::text,
                           :'host_cols', '[]', 'old', 1) - 'table' - 'from_node' - 'from_term',
          '{"rows": 1, "inserted": 1, "replaced": 0, "kept": 0, "conflicts": 0, "deleted_here": 0, "attempts": 1,
            "sync_waits_cancelled": 0}'::jsonb,
          'ha_merge_receive() merges records');
SELECT is(row(next_fetch_at, crawl_delay, robots_txt)::text, row('2100-01-01'::timestamptz, '5 s'::interval, 'robots')::text,
          '... each value in its column') FROM crawl_hosts WHERE host = 'rec.test';
SELECT throws_ok(format('SELECT ha_merge_receive(%L, %L, %L)', 'crawl_hosts',
                        ARRAY[('rec2.test', '2100-01-01', NULL, NULL, NULL, NULL, now())::crawl_hosts]::text,
                        ARRAY['next_fetch_at', 'host', 'crawl_delay', 'backoff_until', 'robots_txt', 'robots_fetched_at',
                              'updated_at']),
                 '42804', 'the rows of public.crawl_hosts were built for other columns than those here',
                 'records built for another column order: 42804, before anything is read');
SELECT is(count(*), 0::bigint, '... and nothing merged') FROM crawl_hosts WHERE host = 'rec2.test';
SELECT throws_ok(format('SELECT ha_merge_receive(%L, %L, %L, %L, %L)', t, r, c, coalesce(d, '[]'), n), e, NULL,
                 format('ha_merge_receive(%s, %s, %s, %s, %s) -> %s', t, left(r, 60), left(c, 30), d, left(n, 10), e))
  FROM (VALUES
    (NULL, '{}', '{}', NULL, NULL, '22004'),
    ('crawl_hosts', NULL, :'host_cols', NULL, NULL, '22004'),
    ('crawl_hosts', '{}', NULL, NULL, NULL, '22004'),
    ('pg_class', '{}', '{}', NULL, NULL, '22023'),
    ('crawl_hosts', '{}', '{}', NULL, NULL, '42804'),
    ('crawl_hosts', '{}', '{host,NULL}', NULL, NULL, '42804'),
    ('crawl_hosts', '{NULL}', :'host_cols', NULL, NULL, '22023'),
    ('crawl_hosts', '{{"(a,2100-01-01,,,,,2000-01-01)"}}', :'host_cols', NULL, NULL, '22023'),
    ('crawl_hosts', '[{"host": "a"}]', :'host_cols', NULL, NULL, '22P02'),
    ('crawl_hosts', '{"(a,b)"}', :'host_cols', NULL, NULL, '22007'),
    ('crawl_hosts', '{"(a,2100-01-01,,,,,2000-01-01,x)"}', :'host_cols', NULL, NULL, '22P02'),
    ('crawl_hosts', '{"(,2100-01-01,,,,,2000-01-01)"}', :'host_cols', NULL, NULL, '23502'),
    ('crawl_hosts', '{}', :'host_cols', '"x"', NULL, '22023'),
    ('crawl_hosts', '{}', :'host_cols', NULL, repeat('n', 102400), '22001')
  ) AS cases(t, r, c, d, n, e);
SELECT throws_ok(format('SELECT ha_merge_receive(%L, %L, %L)', 'crawl_sessions',
                        '{"(9223372036854775808' || repeat(',', count(*)::integer - 1) || ')"}',
                        array_agg(e ->> 'name')), '22003', NULL, 'a number out of range: 22003')
  FROM jsonb_array_elements(ha_merge_columns() -> 'crawl_sessions') e;
-- Megabytes that are not records: the error says so in a few hundred
-- characters, not by quoting them all.
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || length(SQLERRM);
END
$f$;
SELECT ok(split_part(e, ' ', 1) = '22P02' AND split_part(e, ' ', 2)::integer < 400,
          'a malformed chunk of 8 MB: 22P02 with a short message (' || e || ')')
  FROM pg_temp.error_of(format('SELECT ha_merge_receive(%L, %L, %L)', 'crawl_hosts',
                               '{"(' || repeat('x', 8000000) || '"}', :'host_cols')) e;

-- Wrong callers: only crawler_ha_admin merges; the internals are superuser-only.
CREATE ROLE tap_mw LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE tap_ma LOGIN IN ROLE crawler_ha_admin;
SET ROLE tap_mw;
SELECT throws_ok(q, '42501', NULL, 'writer: ' || q || ' is refused')
  FROM unnest(ARRAY['SELECT ha_merge_rows(''images'', ''[]'')', 'SELECT * FROM ha_tail_summary(''s'', ''0/0'')',
                    'SELECT * FROM ha_tail_changes(''s'', ''0/0'')',
                    'SELECT ha_merge_tail(NULL, NULL)', 'SELECT ha_merge_columns()',
                    'SELECT ha_merge_receive(''crawl_hosts'', ''{}'', ''{}'')']) q;
RESET ROLE;
SET ROLE tap_ma;
SELECT lives_ok('SELECT ha_merge_rows(''images'', ''[]'')', 'admin: ha_merge_rows() is allowed');
SELECT lives_ok('SELECT ha_merge_columns()', 'admin: ha_merge_columns() is allowed (a rejoining node asks it)');
SELECT lives_ok(format('SELECT ha_merge_receive(%L, %L, %L)', 'crawl_hosts', '{}', :'host_cols'),
                'admin: ha_merge_receive() is allowed');
SELECT throws_ok('SELECT ha_merge_tail(NULL, NULL)', '42501', NULL, 'admin: ha_merge_tail() is the worker''s');
SELECT throws_ok(q, '42501', NULL, 'admin: ' || q || ' is internal')
  FROM unnest(ARRAY['SELECT ha_merge_records(''crawl_hosts'', ''{}'')',
                    'SELECT * FROM ha_merge_record_list(''crawl_hosts'', ''[]'')']) q;
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
