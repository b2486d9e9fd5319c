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

-- Wrong callers: only crawler_ha_admin merges; the internals are superuser-only.
CREATE ROLE tap_mw LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE tap_ma LOGIN IN ROLE crawler_ha_admin;
SET ROLE tap_mw;
SELECT throws_ok(q, '42501', NULL, 'writer: ' || q || ' is refused')
  FROM unnest(ARRAY['SELECT ha_merge_rows(''images'', ''[]'')', 'SELECT * FROM ha_tail_summary(''s'', ''0/0'')',
                    'SELECT * FROM ha_tail_changes(''s'', ''0/0'')',
                    'SELECT ha_merge_tail(NULL, NULL)']) q;
RESET ROLE;
SET ROLE tap_ma;
SELECT lives_ok('SELECT ha_merge_rows(''images'', ''[]'')', 'admin: ha_merge_rows() is allowed');
SELECT throws_ok('SELECT ha_merge_tail(NULL, NULL)', '42501', NULL, 'admin: ha_merge_tail() is the worker''s');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
