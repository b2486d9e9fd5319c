-- Bad input that an earlier check let through and a later call tripped on:
-- whole-number options spelled with a decimal point or an exponent (stored
-- as given, they broke every later claim and failure of the session with
-- 22P02), results arriving for a stopped session, rows of an old primary that
-- the write API would have refused, and the file_path rule against what the
-- worker really sends.
BEGIN;
SELECT * FROM no_plan();

CREATE ROLE tap_more LOGIN IN ROLE crawler_ha_writer;

-- 1. Whole numbers in any JSON spelling are the numbers they spell, stored as
-- JSON integers, and every reader of the settings works with them.
SET ROLE tap_more;
SELECT crawl_start(ARRAY['http://num.test/'],
       '{"per_host": 2.0, "delay_ms": 0.0, "max_attempts": 2e0, "max_depth": 20e-1, "max_pages": 1e3,
         "max_page_bytes": 1048576.000, "max_image_bytes": 2.0E6, "max_pixels": 1e12,
         "min_width": -0.0, "min_height": 1.0, "image_expiry_s": 8.64e4}') AS s \gset
RESET ROLE;
SELECT is(settings - 'allowed_domains' - 'user_agent' - 'robots' - 'sitemaps' - 'images_any_host',
          '{"per_host": 2, "delay_ms": 0, "max_attempts": 2, "max_depth": 2, "max_pages": 1000,
            "max_page_bytes": 1048576, "max_image_bytes": 2000000, "max_pixels": 1000000000000,
            "min_width": 0, "min_height": 1, "image_expiry_s": 86400}'::jsonb,
          'whole numbers written 2.0, 2e0, 20e-1, 1e3, -0.0, 8.64e4 are stored as the integers they are')
  FROM crawl_sessions WHERE id = :s;
SELECT is(count(*), 0::bigint, 'no stored option keeps a decimal point or an exponent')
  FROM crawl_sessions, jsonb_each(settings) e
 WHERE id = :s AND jsonb_typeof(e.value) = 'number' AND e.value::text !~ '^-?[0-9]+$';
SET ROLE tap_more;
SELECT is(crawl_enqueue(:s, ARRAY['http://num.test/a', 'http://num.test/b'], 1, 'page'), 2,
          'crawl_enqueue reads max_depth and max_pages');
SELECT is(crawl_enqueue_many(:s, ARRAY['http://num.test/c', 'http://num.test/deep'], ARRAY['page', 'page'],
                             ARRAY[2, 3], ARRAY[NULL, NULL]::text[]), 1,
          'crawl_enqueue_many reads them (depth 3 is over max_depth 2.0)');
SELECT is(count(*), 2::bigint, 'crawl_claim reads per_host 2.0 and delay_ms 0.0: two at once')
  FROM crawl_claim('num-w', 10) WHERE session_id = :s;
SELECT id AS f1 FROM crawl_frontier WHERE session_id = :s AND state = 'leased' ORDER BY id LIMIT 1 \gset
SELECT id AS f2 FROM crawl_frontier WHERE session_id = :s AND state = 'leased' ORDER BY id DESC LIMIT 1 \gset
SELECT is(crawl_fail(:f1, 'num-w', 'HTTP 503', '0 s'), 'queued', 'crawl_fail reads max_attempts 2e0: a retry');
SELECT is(crawl_complete(:f2, 'num-w'), true, 'crawl_complete works');
SELECT is(count(*), 1::bigint, 'the retried item is claimed again') FROM crawl_claim('num-w', 10) WHERE item_id = :f1;
SELECT is(crawl_fail(:f1, 'num-w', 'HTTP 503 again', '0 s'), 'failed', 'its second failure is final (max_attempts 2)');
RESET ROLE;
-- Each integer option alone, spelled with a decimal point or an exponent:
-- stored as an integer, and the session's seed is claimed.
CREATE TEMP TABLE one_option AS
SELECT k, v, crawl_start(ARRAY['http://num-' || k || '.test/'],
                         jsonb_build_object('delay_ms', 0) || jsonb_build_object(k, v::jsonb)) AS sid
  FROM (VALUES ('max_depth', '3.0'), ('max_pages', '10.0'), ('delay_ms', '0.000'), ('per_host', '1.0'),
               ('max_attempts', '5.0'), ('max_page_bytes', '1e6'), ('max_image_bytes', '1.0e7'),
               ('max_pixels', '1E9'), ('min_width', '1.0'), ('min_height', '0e0')) o(k, v);
SELECT is(s.settings -> o.k, to_jsonb(o.v::numeric::bigint), o.k || ' = ' || o.v || ' is stored as an integer')
  FROM one_option o JOIN crawl_sessions s ON s.id = o.sid;
SELECT count(*) AS claimed_all FROM crawl_claim('num-all', 1000) \gset
SELECT is(count(f.*), 1::bigint, o.k || ' = ' || o.v || ': crawl_claim hands out the seed')
  FROM one_option o LEFT JOIN crawl_frontier f ON f.session_id = o.sid AND f.state = 'leased' AND f.lease_owner = 'num-all'
 GROUP BY o.k, o.v;
SELECT is(crawl_fail(f.id, 'num-all', 'e', '0 s'), 'queued', 'max_attempts = 5.0: crawl_fail works')
  FROM crawl_frontier f WHERE f.url = 'http://num-max_attempts.test/';

-- 2. A stopped session records nothing more: a fetch that was under way when
-- the operator stopped it gets 55000 for its result (the worker logs it and
-- drops the item, no retry); repeats of what was recorded before the stop
-- are still answered as before.
SELECT crawl_start(ARRAY['http://stop.test/'], '{"delay_ms": 0, "per_host": 10}') AS st \gset
SELECT crawl_enqueue(:st, ARRAY['http://stop.test/a.png', 'http://stop.test/b.png', 'http://stop.test/c.png',
                                'http://stop.test/d.png'], 1, 'image') AS n \gset
SET ROLE tap_more;
SELECT count(*) AS claimed FROM crawl_claim('stop-w', 10) \gset
SELECT id AS page FROM crawl_frontier WHERE session_id = :st AND kind = 'page' \gset
SELECT id AS img_a FROM crawl_frontier WHERE url = 'http://stop.test/a.png' \gset
SELECT id AS img_b FROM crawl_frontier WHERE url = 'http://stop.test/b.png' \gset
SELECT id AS img_c FROM crawl_frontier WHERE url = 'http://stop.test/c.png' \gset
SELECT id AS img_d FROM crawl_frontier WHERE url = 'http://stop.test/d.png' \gset
SELECT is(crawl_complete(:page, 'stop-w'), true, 'before the stop: the page is completed');
SELECT ok(image_record(:st, 'http://stop.test/a.png', repeat('a', 64), 'aa/aa/' || repeat('a', 64) || '.png', 10, 1, 1,
                       'png', 'image/png', item => :img_a, worker => 'stop-w') > 0, 'before the stop: an image is recorded');
SELECT is(crawl_stop(:st), true, 'the operator stops the session');
RESET ROLE;
CREATE FUNCTION pg_temp.digest(sid bigint) RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(t::text, ',' ORDER BY id) FROM public.crawl_sessions t WHERE t.id = sid),
        (SELECT string_agg(t::text, ',' ORDER BY id) FROM public.crawl_frontier t WHERE t.session_id = sid),
        (SELECT string_agg(t::text, ',' ORDER BY id) FROM public.images t)))
$$;
SELECT pg_temp.digest(:st) AS before_stopped \gset
SET ROLE tap_more;
SELECT throws_ok(format('SELECT crawl_complete(%s, ''stop-w'', ''{"http_status": 200}'')', :img_b), '55000',
                 format('crawl session %s is stopped', :st), 'after the stop: crawl_complete is refused with 55000');
SELECT throws_ok(format('SELECT crawl_fail(%s, ''stop-w'', ''timeout'', ''10 s'')', :img_b), '55000', NULL,
                 'after the stop: crawl_fail with a retry is refused with 55000');
SELECT throws_ok(format('SELECT crawl_fail(%s, ''stop-w'', ''HTTP 404'')', :img_b), '55000', NULL,
                 'after the stop: a final crawl_fail is refused with 55000');
SELECT throws_ok(format($$SELECT image_record(%s, 'http://stop.test/c.png', repeat('c', 64), 'cc/cc/' || repeat('c', 64) || '.png',
                                              10, 1, 1, 'png', 'image/png', item => %s, worker => 'stop-w')$$, :st, :img_c),
                 '55000', NULL, 'after the stop: image_record with its item is refused with 55000');
SELECT throws_ok(format($$SELECT image_record(%s, 'http://stop.test/d.png', repeat('d', 64), 'dd/dd/' || repeat('d', 64) || '.png',
                                              10, 1, 1, 'png', 'image/png')$$, :st),
                 '55000', NULL, 'after the stop: image_record without an item is refused with 55000');
SELECT throws_ok(format($$SELECT image_record(%s, 'http://stop.test/a.png', repeat('e', 64), 'ee/ee/' || repeat('e', 64) || '.png',
                                              10, 1, 1, 'png', 'image/png')$$, :st),
                 '55000', NULL, 'after the stop: new bytes for a recorded image are refused with 55000');
SELECT is(crawl_complete(:page, 'stop-w'), true, 'a repeat of a completion made before the stop still answers true');
SELECT is(image_record(:st, 'http://stop.test/a.png', repeat('a', 64), 'aa/aa/' || repeat('a', 64) || '.png', 10, 1, 1,
                       'png', 'image/png', item => :img_a, worker => 'stop-w'),
          (SELECT id FROM images WHERE url = 'http://stop.test/a.png'),
          'a repeat of an image recorded before the stop still returns its id');
RESET ROLE;
SELECT is(pg_temp.digest(:st), :'before_stopped', 'nothing changed after the stop');
SET ROLE tap_more;
SELECT is(crawl_release('stop-w', ARRAY[:img_b, :img_c, :img_d]::bigint[]), 3,
          'the worker may still give its leases back (a clean stop)');
SELECT is(count(*), 0::bigint, 'and nothing of the stopped session is handed out again')
  FROM crawl_claim('stop-w2', 100) WHERE session_id = :st;
RESET ROLE;

-- 3. The merge of an old primary's rows applies the write API's rules: a row
-- the API would have refused is not merged; it is a conflict event.
SELECT crawl_start(ARRAY['http://mv.test/'], '{"delay_ms": 0, "per_host": 100}') AS mv \gset
CREATE TEMP TABLE bad_rows (n integer, rule text, patch jsonb);
INSERT INTO bad_rows VALUES
    (1, 'url', '{"url": "javascript:alert(1)", "host": "mv.test"}'),
    (2, 'url', '{"url": "file:///etc/passwd", "host": "mv.test"}'),
    (3, 'url', '{"url": "http://mv.test/a b", "host": "mv.test"}'),
    (4, 'host', '{"url": "http://mv.test/h", "host": "other.test"}'),
    (5, 'kind', '{"url": "http://mv.test/k", "host": "mv.test", "kind": "video"}'),
    (6, 'depth', '{"url": "http://mv.test/d", "host": "mv.test", "depth": 5000}'),
    (7, 'found_on', '{"url": "http://mv.test/f", "host": "mv.test", "found_on": "javascript:void(0)"}'),
    (8, 'lease_owner', '{"url": "http://mv.test/o", "host": "mv.test", "state": "done", "lease_owner": "a b"}');
CREATE TEMP TABLE incoming AS
SELECT jsonb_agg(jsonb_build_object('id', 900000 + n * 1024, 'session_id', :mv, 'kind', 'page', 'depth', 1,
                                    'state', 'queued', 'attempts', 0, 'next_fetch_at', now(),
                                    'created_at', now(), 'updated_at', now()) || patch ORDER BY n)
       || jsonb_build_array(jsonb_build_object('id', 990000 + 7, 'session_id', :mv, 'url', 'http://mv.test/good',
                                               'host', 'mv.test', 'kind', 'page', 'depth', 1, 'state', 'queued',
                                               'attempts', 0, 'next_fetch_at', now(), 'created_at', now(),
                                               'updated_at', now())) AS rows
  FROM bad_rows b;
SELECT is(ha_merge_rows('crawl_frontier', rows, '[]', 'old', 1) - 'table' - 'from_node' - 'from_term',
          '{"rows": 9, "inserted": 1, "replaced": 0, "kept": 0, "conflicts": 8, "deleted_here": 0}'::jsonb,
          'frontier: the one valid row is merged, the eight invalid ones are conflicts')
  FROM incoming;
SELECT is(array_agg(url ORDER BY url), ARRAY['http://mv.test/', 'http://mv.test/good'],
          'no invalid row reached the frontier') FROM crawl_frontier WHERE session_id = :mv;
SELECT is(array_agg(detail ->> 'rule' ORDER BY (detail ->> 'key')::bigint),
          ARRAY(SELECT rule FROM bad_rows ORDER BY n), 'each invalid row is a conflict event naming the rule it breaks')
  FROM ha_events WHERE kind = 'conflict' AND detail ->> 'table' = 'crawl_frontier'
   AND (detail -> 'other' ->> 'session_id')::bigint = :mv;
SELECT is(count(*), 0::bigint, 'crawl_claim hands out no javascript: URL')
  FROM crawl_claim('mv-w', 100) WHERE url !~ '^https?://';
-- An existing row is not moved on by an invalid row with its id either.
SELECT id AS good FROM crawl_frontier WHERE url = 'http://mv.test/good' \gset
SELECT is(ha_merge_rows('crawl_frontier',
              jsonb_build_array(jsonb_build_object('id', :good, 'session_id', :mv, 'url', 'javascript:x', 'host', 'mv.test',
                                                   'kind', 'page', 'depth', 1, 'state', 'done', 'attempts', 1,
                                                   'next_fetch_at', now(), 'created_at', now(), 'updated_at', now())),
              '[]', 'old', 1) ->> 'replaced', '0', 'an invalid row does not replace a valid one of the same id');

SELECT is(ha_merge_rows('images', jsonb_agg(jsonb_build_object('id', 800000 + n * 1024, 'url', 'http://mv.test/i' || n || '.png',
                                                               'sha256', repeat('f', 64), 'file_size', 1, 'session_id', :mv,
                                                               'created_at', now(), 'updated_at', now()) || patch),
                        '[]', 'old', 1) - 'table' - 'from_node' - 'from_term',
          '{"rows": 9, "inserted": 1, "replaced": 0, "kept": 0, "conflicts": 8, "deleted_here": 0}'::jsonb,
          'images: the one valid row is merged, the eight invalid ones are conflicts')
  FROM (SELECT row_number() OVER () AS n, patch::jsonb FROM (VALUES
        ('{"file_path": "/etc/shadow"}'), ('{"file_path": "../x"}'),
        ('{"file_path": "ff/ff/' || repeat('e', 64) || '.png"}'),
        ('{"file_path": "ff/ff/' || repeat('f', 64) || '.png", "format": "png\u001b[2J"}'),
        ('{"file_path": "ff/ff/' || repeat('f', 64) || '.png", "content_type": "image/png\r\nX: 1"}'),
        ('{"file_path": "ff/ff/' || repeat('f', 64) || '.png", "filename": "a\u0085.png"}'),
        ('{"file_path": "ff/ff/' || repeat('f', 64) || '.png", "url": "javascript:x"}'),
        ('{"file_path": "ff/ff/' || repeat('f', 64) || '.png", "width": -1}'),
        ('{"file_path": "ff/ff/' || repeat('f', 64) || '.png", "format": "png", "filename": "ok.png"}')) v(patch)) x;
SELECT is(array_agg(file_path), ARRAY['ff/ff/' || repeat('f', 64) || '.png'], 'only the valid image row is there')
  FROM images WHERE session_id = :mv;
SELECT is(count(*), 8::bigint, 'each invalid image row is a conflict event')
  FROM ha_events WHERE kind = 'conflict' AND detail ->> 'table' = 'images' AND detail ? 'rule';

-- 4. The file_path rule accepts what the worker sends: <2 hex>/<2 hex>/<sha256>.<ext>
-- for the extensions and formats of its image table (worker/src/image_info.cpp),
-- and the media types it passes on.
SELECT crawl_start(ARRAY['http://ok.test/'], '{"delay_ms": 0}') AS ok \gset
SET ROLE tap_more;
SELECT ok(image_record(:ok, 'http://ok.test/' || f.format, sha, left(sha, 2) || '/' || substr(sha, 3, 2) || '/' || sha || '.' || f.ext,
                       1234, 10, 10, f.format, f.mime, 'http://ok.test/', 200, 'x%20y.' || f.ext) > 0,
          'the worker''s ' || f.format || ' file is recorded')
  FROM (VALUES ('jpeg', 'jpg', 'image/jpeg'), ('png', 'png', 'image/png'), ('gif', 'gif', 'image/gif'),
               ('webp', 'webp', 'image/webp'), ('bmp', 'bmp', 'image/bmp'), ('svg', 'svg', 'image/svg+xml'),
               ('avif', 'avif', 'image/avif'), ('heic', 'heic', 'image/heic'), ('ico', 'ico', 'image/vnd.microsoft.icon'))
       AS f(format, ext, mime),
       LATERAL (SELECT encode(sha256(convert_to(f.format, 'UTF8')), 'hex') AS sha) h;
SELECT ok(image_record(:ok, 'http://ok.test/plain', repeat('0', 64), '00/00/' || repeat('0', 64) || '.png', 1, NULL, NULL,
                       NULL, NULL) > 0, 'format, content_type, width and height may be unknown');
SELECT ok(image_record(:ok, 'http://ok.test/utf8', repeat('1', 64), '11/11/' || repeat('1', 64) || '.png', 1, 1, 1,
                       'png', 'image/png', filename => 'café ünïcode.png') > 0, 'a file name may be any printable text');
RESET ROLE;

-- 5. The rules are written once: the small ones as SQL-standard bodies in
-- 35_validation.sql (bound to their functions and operators when the
-- extension was created, so they need no fixed search_path, and inlined by
-- the planner), the URL and image rules in C (crawl_validate.c; pgTAP
-- 17_validation_rules.sql checks them against the regular expressions).
SELECT is(count(*) FILTER (WHERE p.prosqlbody IS NULL), 0::bigint,
          'every SQL or PL/pgSQL function of the extension without a fixed search_path has a SQL-standard body')
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
  JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crawler_ha'
 WHERE p.proconfig IS NULL AND l.lanname <> 'c';
SELECT is((SELECT string_agg(p.proname || ':' || l.lanname || ':' || p.provolatile::text, ',' ORDER BY p.proname)
             FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid IN ('public.crawl_url_host_of(text)'::regprocedure, 'public.crawl_text_ok(text)'::regprocedure,
                            'public.image_problem(text, text, text, bigint, integer, integer, text, text, text, integer, text)'::regprocedure)),
          'crawl_text_ok:c:i,crawl_url_host_of:c:i,image_problem:c:i',
          'the URL and image rules are immutable C functions');
CREATE TEMP TABLE urls_here (u text);
CREATE FUNCTION pg_temp.plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q;
END
$$;
SELECT unalike((SELECT string_agg(l, ' ') FROM pg_temp.plan('SELECT public.crawl_worker_ok(u) FROM urls_here') l),
              '%crawl_worker_ok%', 'a rule in SQL (crawl_worker_ok()) is inlined into the statement that uses it');

SELECT * FROM finish();
ROLLBACK;
