-- Thumbnails: who may record and read them, the internal functions nobody
-- may call, hostile and NULL values, and the blob functions counting a
-- thumbnail as referenced. Everything rolls back.
BEGIN;
SELECT * FROM no_plan();

CREATE ROLE tap_th_writer LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE tap_th_reader LOGIN IN ROLE crawler_ha_reader;
CREATE ROLE tap_th_agent LOGIN IN ROLE crawler_ha_agent;
CREATE ROLE tap_th_stranger LOGIN;
SELECT crawl_start(ARRAY['http://thtap.test/'], '{"thumbnails": {"small": 50}}') AS s \gset
CREATE TEMP TABLE th (j jsonb);
INSERT INTO th SELECT jsonb_build_object('small', jsonb_build_object(
    'sha256', repeat('c', 64), 'file_path', 'cc/cc/' || repeat('c', 64) || '.jpg', 'width', 50, 'height', 40, 'bytes', 99));
GRANT SELECT ON th TO PUBLIC;

-- The functions: image_record is SECURITY DEFINER with a pinned search_path;
-- the rules are not definers; none is executable by PUBLIC.
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = 'image_record(bigint, text, text, text, bigint, integer, integer, text, text, text, integer, text, bigint, text, text, text, jsonb, text)'::regprocedure),
          true, 'image_record is SECURITY DEFINER');
SELECT is((SELECT count(*) FROM pg_proc
            WHERE proname IN ('crawl_thumbnail_sizes', 'image_thumbnails_problem', 'image_thumbnail_sha256s',
                              'image_blob_find', 'crawl_thumbnail_name_ok', 'crawl_blob_address_ok')
              AND prosecdef), 0::bigint, 'the thumbnail rules are not SECURITY DEFINER');
SELECT is((SELECT count(*) FROM pg_proc
            WHERE proname IN ('crawl_thumbnail_sizes', 'image_thumbnails_problem', 'image_thumbnail_sha256s')
              AND NOT ('search_path=pg_catalog, pg_temp' = ANY (coalesce(proconfig, '{}')))), 0::bigint,
          'the PL/pgSQL and SQL thumbnail functions pin their search_path');
-- image_blob_find() instead has a body parsed when the extension was
-- created, so that no caller's search_path changes what it names and the
-- planner can inline it into its callers' plans (a SET clause would stop that).
SELECT ok((SELECT prosqlbody IS NOT NULL AND proconfig IS NULL AND provolatile = 's' AND NOT proisstrict
             FROM pg_proc WHERE oid = 'image_blob_find(text)'::regprocedure),
          'image_blob_find has a body parsed at creation and no SET clause');
CREATE FUNCTION pg_temp.plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q;
END
$$;
SET LOCAL search_path = pg_temp, public, pg_catalog;
SELECT unalike((SELECT string_agg(l, ' ') FROM pg_temp.plan('SELECT * FROM image_blob_find(''' || repeat('c', 64) || ''')') l),
               '%Function Scan on image_blob_find%', 'image_blob_find is inlined into the query that calls it');
RESET search_path;
SELECT ok(NOT has_function_privilege('tap_th_stranger', f, 'EXECUTE'), 'PUBLIC may not execute ' || f)
  FROM unnest(ARRAY['crawl_thumbnail_sizes(jsonb)', 'image_thumbnails_problem(jsonb)', 'image_thumbnail_sha256s(jsonb)',
                    'image_blob_find(text)', 'crawl_blob_address_ok(text, text)', 'crawl_thumbnail_name_ok(text)']) f;
SELECT ok(NOT has_function_privilege(r, 'image_blob_find(text)', 'EXECUTE'), r || ' may not call image_blob_find')
  FROM unnest(ARRAY['tap_th_writer', 'tap_th_reader', 'tap_th_agent']) r;
SELECT ok(NOT has_table_privilege(r, 'image_blobs', 'SELECT'), r || ' may not read the view image_blobs')
  FROM unnest(ARRAY['tap_th_writer', 'tap_th_reader', 'tap_th_agent', 'tap_th_stranger']) r;
SELECT has_column('images', 'thumbnails', 'images has the column thumbnails');
SELECT col_type_is('images', 'thumbnails', 'jsonb', '... a jsonb');
SELECT has_index('images', 'images_thumbnail_sha256s_idx', 'the thumbnails'' sha256s are indexed');

-- A writer records thumbnails through the write API, never directly.
SET ROLE tap_th_writer;
SELECT lives_ok(format('SELECT public.image_record(%s, ''http://thtap.test/a.jpg'', repeat(''d'', 64), ''dd/dd/'' || repeat(''d'', 64) || ''.jpg'', 500, 100, 80, ''jpeg'', ''image/jpeg'', thumbnails => (SELECT j FROM th))', :s),
                'writer: image_record with thumbnails');
SELECT throws_ok('UPDATE public.images SET thumbnails = ''{}''', '42501', NULL, 'writer: no direct UPDATE of thumbnails');
SELECT is((SELECT thumbnails -> 'small' ->> 'sha256' FROM public.images WHERE url = 'http://thtap.test/a.jpg'),
          repeat('c', 64), 'writer: reads the thumbnails it recorded');
RESET ROLE;
SET ROLE tap_th_reader;
SELECT throws_ok(format('SELECT public.image_record(%s, ''http://thtap.test/b.jpg'', repeat(''d'', 64), ''dd/dd/'' || repeat(''d'', 64) || ''.jpg'', 500, 100, 80, ''jpeg'', ''image/jpeg'', thumbnails => (SELECT j FROM th))', :s),
                 '42501', NULL, 'reader: may not record');
SELECT isnt((SELECT thumbnails FROM public.images WHERE url = 'http://thtap.test/a.jpg'), NULL, 'reader: reads thumbnails');
RESET ROLE;

-- NULLs and hostile values: 22023 for a bad value, never another error.
SELECT is(image_thumbnails_problem(NULL), NULL, 'NULL thumbnails: none asked, valid');
SELECT throws_ok(format('SELECT image_record(%s, ''http://thtap.test/h.jpg'', repeat(''d'', 64), ''dd/dd/'' || repeat(''d'', 64) || ''.jpg'', 500, 100, 80, ''jpeg'', ''image/jpeg'', thumbnails => %L)', :s, bad),
                 '22023', NULL, 'hostile thumbnails refused: ' || left(bad, 60))
  FROM unnest(ARRAY[
      '{"small": {"sha256": "' || repeat('c', 64) || '", "file_path": "cc/cc/' || repeat('c', 64) || '.jpg/../../../etc/passwd", "width": 1, "height": 1, "bytes": 1}}',
      '{"small": {"sha256": "' || repeat('c', 64) || '''; DROP TABLE images; --", "file_path": "x", "width": 1, "height": 1, "bytes": 1}}',
      '{"small": null}', '{"small": {"sha256": null, "file_path": null, "width": null, "height": null, "bytes": null}}',
      '{"small": {"sha256": "' || repeat('c', 64) || '", "file_path": "cc/cc/' || repeat('c', 64) || '.jpg", "width": 1e308, "height": 1, "bytes": 1}}',
      '{"small": {"sha256": "' || repeat('c', 64) || '", "file_path": "cc/cc/' || repeat('c', 64) || '.jpg", "width": -1, "height": 1, "bytes": 1}}',
      '{"small": {"sha256": "' || repeat('c', 64) || '", "file_path": "cc/cc/' || repeat('c', 64) || '.jpg", "width": true, "height": 1, "bytes": 1}}',
      '{"' || repeat('a', 10000) || '": {}}', '[{"small": 1}]', '123']) bad
 WHERE bad IS NOT NULL;
SELECT throws_ok(format('SELECT crawl_start(ARRAY[''http://thtap.test/''], %L)', bad), '22023', NULL,
                 'hostile setting refused: ' || left(bad, 60))
  FROM unnest(ARRAY['{"thumbnails": {"small": null}}', '{"thumbnails": {"small": 9999999999999999999999}}',
                    '{"thumbnails": {"small": -50}}', '{"thumbnails": {"sm all": 50}}', '{"thumbnails": "small=50"}',
                    '{"thumbnails": {"' || repeat('a', 5000) || '": 50}}']) bad;
SELECT is(image_thumbnail_sha256s(j), '{}'::text[], 'image_thumbnail_sha256s: nothing of what is not a thumbnail')
  FROM unnest(ARRAY['null'::jsonb, '[]', '"x"', '{"a": 1}', '{"a": []}']) j;
SELECT is(image_thumbnail_sha256s(NULL), '{}'::text[], 'image_thumbnail_sha256s(NULL): none');

-- The blob functions count a thumbnail as referenced, for the agent.
SELECT blob_store_attach('tap-th-store');
SET ROLE tap_th_agent;
SELECT is(ARRAY(SELECT public.blob_referenced(ARRAY[repeat('c', 64), repeat('d', 64), repeat('e', 64)])),
          ARRAY[repeat('c', 64), repeat('d', 64)], 'agent: blob_referenced counts a thumbnail');
SELECT is((SELECT count(*) FROM public.blob_wanted(100) w WHERE w.sha256 = repeat('c', 64)), 0::bigint,
          'agent: nothing was queued before the store was attached');
RESET ROLE;
SELECT is(blob_requeue_missing() >= 2, true, 'the requeue finds the thumbnail and the file');
SET ROLE tap_th_agent;
SELECT is((SELECT file_path FROM public.blob_wanted(100) w WHERE w.sha256 = repeat('c', 64)),
          'cc/cc/' || repeat('c', 64) || '.jpg', 'agent: the thumbnail is wanted under its own path');
RESET ROLE;

-- Without statistics on images (a table not analyzed yet: a new node, a
-- restored one), a blob is still found through the sha256 indexes, never
-- by walking images in id order until a row matches, which reads every row
-- for a blob no row names (the stale check of the wanted queue asks for
-- those). Planned that way from 4,000 rows on.
SELECT count(image_record(:s, 'http://thtap.test/plan/' || g || '.png', h,
                          substr(h, 1, 2) || '/' || substr(h, 3, 2) || '/' || h || '.png', 100, 10, 10, 'png', 'image/png'))
  FROM (SELECT g, encode(sha256(g::text::bytea), 'hex') h FROM generate_series(1, 4000) g) r;
ANALYZE images;
DELETE FROM pg_statistic WHERE starelid = 'images'::regclass;
SELECT unalike((SELECT string_agg(l, ' ') FROM pg_temp.plan('SELECT * FROM public.image_blob_find(''' || repeat('f', 64) || ''')') l),
               '%images_pkey%', 'without statistics, image_blob_find does not walk images_pkey');
SELECT alike((SELECT string_agg(l, ' ') FROM pg_temp.plan('SELECT * FROM public.image_blob_find(''' || repeat('f', 64) || ''')') l),
             '%images_sha256_idx%images_thumbnail_sha256s_idx%',
             'without statistics, image_blob_find probes images_sha256_idx, then images_thumbnail_sha256s_idx');

SELECT * FROM finish();
ROLLBACK;
