-- crawl_lease_early(worker, session, urls, lease): a worker's early fetches
-- leased right behind their enqueue. Leases only queued URLs of the session,
-- only on hosts with no delay, only under per_host; returns with a NULL
-- item_id the URLs that will never be leased to the caller. Callers, NULLs,
-- huge and hostile input. Everything rolls back.
BEGIN;
SELECT * FROM no_plan();

SELECT matches(obj_description('public.crawl_lease_early(text,bigint,text[],interval)'::regprocedure, 'pg_proc'),
               '^crawler_ha: ', 'crawl_lease_early has a COMMENT');

-- A session without delay, per_host 3: six links queued on one host.
SELECT crawl_start(ARRAY['http://early.test/'], '{"delay_ms": 0, "per_host": 3, "robots": false}') AS sid \gset
SELECT is(crawl_enqueue(:sid, ARRAY['http://early.test/a', 'http://early.test/b', 'http://early.test/c',
                                     'http://early.test/d', 'http://early.test/e'], 1, 'page', 'http://early.test/'),
          5, 'five links queued');

SET LOCAL ROLE crawler_ha_writer;
-- The seed and two links: three leases, per_host's limit.
SELECT is((SELECT array_agg(url ORDER BY url) FROM crawl_lease_early('w1', :sid,
              ARRAY['http://early.test/', 'http://early.test/a', 'http://early.test/b'])),
          ARRAY['http://early.test/', 'http://early.test/a', 'http://early.test/b'],
          'the writer leases queued URLs it fetches early');
SELECT is((SELECT count(*)::int FROM crawl_frontier WHERE session_id = :sid AND state = 'leased' AND lease_owner = 'w1'),
          3, '... leased to it, attempts counted as for a claim');
-- per_host is full: c stays queued, and is not reported as gone.
SELECT is((SELECT count(*)::int FROM crawl_lease_early('w1', :sid, ARRAY['http://early.test/c'])), 0,
          'per_host full: nothing leased, and the URL is not gone (a claim may lease it later)');
SELECT is((SELECT state FROM crawl_frontier WHERE session_id = :sid AND url = 'http://early.test/c'), 'queued',
          '... it stays queued');
-- Another worker's lease, a URL never queued, a duplicate in the call: gone.
SELECT is((SELECT array_agg(url ORDER BY url) FROM crawl_lease_early('w2', :sid,
              ARRAY['http://early.test/a', 'http://elsewhere.test/x', 'http://elsewhere.test/x'])
            WHERE item_id IS NULL),
          ARRAY['http://early.test/a', 'http://elsewhere.test/x'],
          'URLs leased to another worker or not in the frontier come back with a NULL item_id, once each');
SELECT is((SELECT lease_owner FROM crawl_frontier WHERE session_id = :sid AND url = 'http://early.test/a'), 'w1',
          '... and the other worker''s lease is untouched');
SELECT is((SELECT count(*)::int FROM crawl_lease_early('w1', :sid, '{}')), 0, 'no URLs: nothing');
RESET ROLE;

-- A session with a politeness delay: nothing is leased early.
SELECT crawl_start(ARRAY['http://slow.test/'], '{"delay_ms": 500, "robots": false}') AS slow \gset
SET LOCAL ROLE crawler_ha_writer;
SELECT is((SELECT count(*)::int FROM crawl_lease_early('w1', :slow, ARRAY['http://slow.test/']) WHERE item_id IS NOT NULL),
          0, 'a session with delay_ms > 0 leases nothing early');
RESET ROLE;
-- A host whose robots.txt sets a Crawl-delay: nothing either.
SELECT crawl_start(ARRAY['http://polite.test/'], '{"delay_ms": 0, "robots": true}') AS polite \gset
SELECT lives_ok($$SELECT crawl_host_set('polite.test', '2 seconds', 'User-agent: *' || chr(10) || 'Crawl-delay: 2')$$,
                'polite.test has a Crawl-delay of 2 s');
SET LOCAL ROLE crawler_ha_writer;
SELECT is((SELECT count(*)::int FROM crawl_lease_early('w1', :polite, ARRAY['http://polite.test/']) WHERE item_id IS NOT NULL),
          0, 'a host with a Crawl-delay leases nothing early');
RESET ROLE;
-- A stopped session: nothing, and nothing reported.
SELECT ok(crawl_stop(:sid), 'the first session is stopped');
SELECT is((SELECT count(*)::int FROM crawl_lease_early('w1', :sid, ARRAY['http://early.test/c'])), 0,
          'a stopped session leases nothing');

-- Bad input: documented SQLSTATEs.
SELECT throws_ok('SELECT * FROM crawl_lease_early(NULL, 1, ARRAY[''x''])', '22004', NULL, 'NULL worker');
SELECT throws_ok('SELECT * FROM crawl_lease_early('''', 1, ARRAY[''x''])', '22023', NULL, 'empty worker');
SELECT throws_ok('SELECT * FROM crawl_lease_early(''w'', NULL, ARRAY[''x''])', '22004', NULL, 'NULL session');
SELECT throws_ok('SELECT * FROM crawl_lease_early(''w'', 1, NULL)', '22004', NULL, 'NULL urls');
SELECT throws_ok('SELECT * FROM crawl_lease_early(''w'', 1, ARRAY[NULL::text])', '22004', NULL, 'a NULL URL');
SELECT throws_ok('SELECT * FROM crawl_lease_early(''w'', -5, ARRAY[''x''])', 'P0002', NULL, 'a session that does not exist');
SELECT throws_ok(format('SELECT * FROM crawl_lease_early(''w'', %s, array_fill(''x''::text, ARRAY[10001]))', :sid),
                 '22023', NULL, 'more than 10,000 URLs');
SELECT throws_ok(format('SELECT * FROM crawl_lease_early(''w'', %s, ARRAY[''x''], ''0 s'')', :sid),
                 '22023', NULL, 'a lease under a second');
SELECT throws_ok(format('SELECT * FROM crawl_lease_early(''w'', %s, ARRAY[''x''], NULL)', :sid),
                 '22004', NULL, 'a NULL lease');
SELECT throws_ok(format('SELECT * FROM crawl_lease_early(repeat(''w'', 100000), %s, ARRAY[''x''])', :sid),
                 '22001', NULL, 'a worker name of 100,000 characters');
-- Hostile URLs are compared, never executed or parsed as SQL.
SELECT lives_ok(format('SELECT * FROM crawl_lease_early(%L, %s, %L::text[])', 'w', :slow,
                       ARRAY['x''); DROP TABLE images; --', E'\u00e9\u2028', repeat('a', 5000)]),
                'hostile and huge URLs are only compared');
SELECT is((SELECT count(*)::int FROM crawl_lease_early('w', :slow, ARRAY['x''); DROP TABLE images; --', repeat('a', 5000)])
            WHERE item_id IS NULL), 2, '... and come back as never to be leased');
SELECT ok(to_regclass('public.images') IS NOT NULL, '... images is still there');

-- Wrong callers: the reader and PUBLIC cannot lease.
SET LOCAL ROLE crawler_ha_reader;
SELECT throws_ok(format('SELECT * FROM crawl_lease_early(''w'', %s, ARRAY[''x''])', :sid), '42501', NULL,
                 'the reader cannot lease');
RESET ROLE;
CREATE ROLE lease_early_nobody;
SET LOCAL ROLE lease_early_nobody;
SELECT throws_ok(format('SELECT * FROM crawl_lease_early(''w'', %s, ARRAY[''x''])', :sid), '42501', NULL,
                 'a role without the writer''s grant cannot lease');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
