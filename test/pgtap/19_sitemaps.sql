-- The frontier kind sitemap and the session setting sitemaps: queued,
-- leased, completed and failed as pages are, counted as pages, held to the
-- pages' scope and to max_depth - 1, free of the URL patterns. NULLs,
-- hostile strings, wrong callers. Everything rolls back.
BEGIN;
SELECT * FROM no_plan();

SELECT matches(obj_description('public.crawl_counts_as_page(text)'::regprocedure, 'pg_proc'),
               '^crawler_ha \(internal\): ', 'crawl_counts_as_page has a COMMENT');
SELECT ok(crawl_kind_ok('sitemap') AND crawl_kind_ok('page') AND crawl_kind_ok('image'), 'three kinds');
SELECT ok(NOT crawl_kind_ok('Sitemap') AND NOT crawl_kind_ok('sitemap ') AND NOT crawl_kind_ok(''),
          'kinds are spelt exactly');
SELECT is(crawl_kind_ok(NULL), NULL, 'a NULL kind is no kind');
SELECT ok(crawl_counts_as_page('sitemap') AND crawl_counts_as_page('page') AND NOT crawl_counts_as_page('image'),
          'a sitemap counts as a page, an image does not');
SELECT ok(crawl_patterns_ok('{"accept_pages": ["/gallery/"], "reject_pages": ["sitemap"]}', 'http://a.test/sitemap.xml', 'sitemap'),
          'the URL patterns never refuse a sitemap');
SELECT ok(NOT crawl_patterns_ok('{"accept_pages": ["/gallery/"]}', 'http://a.test/sitemap.xml', 'page'),
          '... while they refuse a page of the same URL');
SELECT ok(NOT crawl_scope_ok('{"images_any_host": true, "allowed_domains": ["a.test"]}', 'b.test', 'sitemap'),
          'a sitemap is in the pages'' scope, whatever images_any_host');
SELECT is(crawl_item_problem('http://a.test/s.xml', 'sitemap', 0, 'a.test', NULL, NULL), NULL,
          'a sitemap row is a row the write API could write (merges take it)');
SELECT is(crawl_item_problem('http://a.test/s.xml', 'sitemaps', 0, 'a.test', NULL, NULL), 'kind',
          '... another kind is not');

-- The setting.
SELECT is(crawl_settings('{}', ARRAY['http://a.test/']) -> 'sitemaps', 'true'::jsonb, 'sitemaps is on by default');
SELECT is(crawl_settings('{"sitemaps": false}', ARRAY['http://a.test/']) -> 'sitemaps', 'false'::jsonb, '... and can be off');
SELECT throws_ok($$SELECT crawl_settings('{"sitemaps": "false"}', ARRAY['http://a.test/'])$$, '22023', NULL,
                 'a string is not a boolean');
SELECT throws_ok($$SELECT crawl_settings('{"sitemaps": null}', ARRAY['http://a.test/'])$$, '22023', NULL,
                 'nor is a JSON null');
SELECT throws_ok($$SELECT crawl_settings('{"sitemap": true}', ARRAY['http://a.test/'])$$, '22023', NULL,
                 'a misspelt key is refused, not ignored');

SELECT crawl_start(ARRAY['http://sm.test/'], '{"delay_ms": 0, "per_host": 100, "max_depth": 1, "max_pages": 3}') AS sid \gset
SELECT is((SELECT sitemaps FROM crawl_session_settings(:sid)), true, 'crawl_session_settings() hands it over typed');

SET LOCAL ROLE crawler_ha_writer;
SELECT is(crawl_enqueue(:sid, ARRAY['http://sm.test/sitemap.xml', 'http://elsewhere.test/sitemap.xml'], 0, 'sitemap',
                        'http://sm.test/robots.txt'), 1, 'the writer queues a sitemap; one on another host is skipped');
SELECT is(crawl_enqueue(:sid, ARRAY['http://sm.test/sitemap.xml'], 0, 'sitemap'), 0,
          'a duplicate is refused by the frontier');
SELECT is(crawl_enqueue(:sid, ARRAY['http://sm.test/deep.xml'], 1, 'sitemap'), 0,
          'a sitemap at max_depth is skipped (its pages would be too deep)');
SELECT is(crawl_enqueue_many(:sid, ARRAY['http://sm.test/a', 'http://sm.test/s2.xml', 'http://sm.test/b'],
                             ARRAY['page', 'sitemap', 'page'], ARRAY[1, 0, 1],
                             ARRAY['http://sm.test/sitemap.xml', 'http://sm.test/sitemap.xml', 'http://sm.test/sitemap.xml']),
          1, 'the page budget (max_pages 3) counts sitemaps: one more page, nothing after it');
RESET ROLE;
SELECT is(crawl_pages_queued(:sid), 3::bigint, 'pages_queued: the seed, the sitemap, the page');
SET LOCAL ROLE crawler_ha_writer;
-- Leased, failed with a retry, completed: as a page is.
SELECT is((SELECT count(*)::int FROM crawl_claim('w-sm', 10) WHERE kind = 'sitemap'), 1, 'a sitemap is leased');
SELECT is(crawl_fail((SELECT id FROM crawl_frontier WHERE session_id = :sid AND kind = 'sitemap'), 'w-sm',
                     'not a sitemap: not well-formed XML: x'' OR 1=1; --', '1 second'),
          'queued', 'a failed sitemap is retried like any URL');
SELECT is((SELECT last_error FROM crawl_frontier WHERE session_id = :sid AND kind = 'sitemap'),
          'not a sitemap: not well-formed XML: x'' OR 1=1; --', '... its error kept as text');
RESET ROLE;
UPDATE crawl_frontier SET next_fetch_at = now() - interval '1 minute' WHERE session_id = :sid AND kind = 'sitemap';
SET LOCAL ROLE crawler_ha_writer;
SELECT ok(crawl_complete((SELECT item_id FROM crawl_claim('w-sm', 10) WHERE kind = 'sitemap'), 'w-sm', '{"note": "cut"}'),
          'a sitemap is completed');
RESET ROLE;
SELECT crawl_counts_flush();  -- counters are written at commit; this test never commits
SELECT is((SELECT pages_fetched FROM crawl_session_totals WHERE session_id = :sid), 1::bigint,
          'pages_fetched counts it');
SET LOCAL ROLE crawler_ha_writer;
SELECT ok(crawl_redirect_allowed(:sid, 'http://sm.test/moved.xml', 'sitemap'), 'a sitemap''s redirect on its host is allowed');
SELECT ok(NOT crawl_redirect_allowed(:sid, 'http://elsewhere.test/moved.xml', 'sitemap'), '... off its domains it is not');
-- Hostile strings.
SELECT throws_ok(format('SELECT crawl_enqueue(%s, ARRAY[%L], 0, %L)', :sid, 'http://sm.test/x', 'sitemap''; DROP TABLE images; --'),
                 '22023', NULL, 'a hostile kind is refused');
SELECT throws_ok(format('SELECT crawl_enqueue(%s, ARRAY[%L], 0, NULL)', :sid, 'http://sm.test/x'),
                 '22004', NULL, 'a NULL kind is refused');
SELECT throws_ok(format('SELECT crawl_enqueue(%s, ARRAY[%L], 0, %L)', :sid, 'javascript:alert(1)', 'sitemap'),
                 '22023', NULL, 'a sitemap URL that is no http(s) URL is refused');
SELECT throws_ok(format('SELECT crawl_enqueue(%s, ARRAY[%L], 0, %L)', :sid, 'http://sm.test/' || repeat('x', 3000), 'sitemap'),
                 '22001', NULL, 'a sitemap URL over 2048 characters is refused');
SELECT ok(to_regclass('public.images') IS NOT NULL, 'images is still there');
RESET ROLE;

-- Wrong callers: the reader and a role without grants queue nothing.
SET LOCAL ROLE crawler_ha_reader;
SELECT throws_ok(format('SELECT crawl_enqueue(%s, ARRAY[''http://sm.test/r.xml''], 0, ''sitemap'')', :sid), '42501', NULL,
                 'the reader cannot queue a sitemap');
SELECT throws_ok('SELECT crawl_counts_as_page(''sitemap'')', '42501', NULL, 'nor call the internal rule');
RESET ROLE;
CREATE ROLE sitemaps_nobody;
SET LOCAL ROLE sitemaps_nobody;
SELECT throws_ok(format('SELECT crawl_enqueue(%s, ARRAY[''http://sm.test/r.xml''], 0, ''sitemap'')', :sid), '42501', NULL,
                 'a role without the writer''s grant cannot queue a sitemap');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
