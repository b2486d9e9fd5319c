-- The frontier: enqueue with scope/depth/budget, claim with leases, complete,
-- fail with retries, renew, release, expired leases.
-- Earlier files left running sessions; stop them so claims here are predictable.
\set SHOW_CONTEXT never
SELECT count(crawl_stop(id)) AS stopped FROM crawl_sessions WHERE status = 'running';
SELECT crawl_start(ARRAY['http://site.test/'],
       '{"max_depth": 2, "max_pages": 5, "delay_ms": 0, "per_host": 100, "max_attempts": 2}') AS s \gset

-- New URLs only; out of scope and too deep are skipped, not errors.
SELECT crawl_enqueue(:s, ARRAY['http://site.test/a', 'http://site.test/b', 'http://site.test/a',
                               'http://www.site.test/c', 'http://other.test/x'], 1, 'page', 'http://site.test/');
SELECT crawl_enqueue(:s, ARRAY['http://site.test/a', 'http://site.test/d'], 1, 'page');
SELECT crawl_enqueue(:s, ARRAY['http://site.test/deep'], 3, 'page');
-- The page budget (max_pages 5) is used up: nothing more is queued.
SELECT crawl_enqueue(:s, ARRAY['http://site.test/e', 'http://site.test/f', 'http://site.test/g'], 2, 'page');
-- Images: other hosts only with images_any_host; one level below max depth is fine.
SELECT crawl_enqueue(:s, ARRAY['http://site.test/i.png', 'http://cdn.test/j.png'], 3, 'image', 'http://site.test/a');
SELECT url, kind, depth, host, found_on FROM crawl_frontier WHERE session_id = :s ORDER BY id;
SELECT pages_queued, images_found FROM crawl_session_totals WHERE session_id = :s;

-- A redirect may go where a link may: the same rule (crawl_scope_ok).
SELECT u, k, crawl_redirect_allowed(:s, u, k) AS allowed
  FROM (VALUES ('http://site.test/moved', 'page'), ('https://www.site.test:8443/x', 'page'),
               ('http://other.test/x', 'page'), ('http://notsite.test/x', 'page'),
               ('http://cdn.test/j.png', 'image'), ('HTTP://SITE.TEST/Upper', 'page')) v(u, k);
-- The rule itself, under other settings: images from anywhere only when allowed.
SELECT crawl_scope_ok('{"images_any_host": true, "allowed_domains": ["a.test"]}', 'cdn.test', 'image') AS any_host_image,
       crawl_scope_ok('{"images_any_host": true, "allowed_domains": ["a.test"]}', 'cdn.test', 'page') AS any_host_page,
       crawl_scope_ok('{"images_any_host": false, "allowed_domains": ["a.test"]}', 'img.a.test:8080', 'image') AS subdomain_port,
       crawl_scope_ok('{"images_any_host": false, "allowed_domains": []}', 'a.test', 'page') AS no_domains;
-- The depth rule: pages to max_depth, images one level further, sitemaps
-- one level less (the pages they list are a level below them).
SELECT d, crawl_depth_within(2, d, 'page') AS page, crawl_depth_within(2, d, 'image') AS image,
       crawl_depth_within(2, d, 'sitemap') AS sitemap
  FROM generate_series(0, 4) d;
-- Bad input: its SQLSTATE, nothing else.
\set VERBOSITY sqlstate
SELECT crawl_redirect_allowed(NULL, 'http://site.test/', 'page');
SELECT crawl_redirect_allowed(:s, NULL, 'page');
SELECT crawl_redirect_allowed(:s, 'http://site.test/', NULL);
SELECT crawl_redirect_allowed(:s, 'http://site.test/', 'video');
SELECT crawl_redirect_allowed(:s, 'javascript:alert(1)', 'page');
SELECT crawl_redirect_allowed(:s, 'http://site.test/' || repeat('x', 100000), 'page');
SELECT crawl_redirect_allowed(-5, 'http://site.test/', 'page');
\set VERBOSITY default

-- Bad enqueues change nothing.
SELECT crawl_enqueue(NULL, ARRAY['http://site.test/z'], 1, 'page');
SELECT crawl_enqueue(:s, NULL, 1, 'page');
SELECT crawl_enqueue(:s, ARRAY['http://site.test/z'], NULL, 'page');
SELECT crawl_enqueue(:s, ARRAY['http://site.test/z'], -1, 'page');
SELECT crawl_enqueue(:s, ARRAY['http://site.test/z'], 2147483647, 'page');
SELECT crawl_enqueue(:s, ARRAY['http://site.test/z'], 1, 'video');
SELECT crawl_enqueue(:s, ARRAY['http://site.test/z'], 1, NULL);
SELECT crawl_enqueue(:s, ARRAY['http://site.test/z', 'javascript:alert(1)'], 1, 'image');
SELECT crawl_enqueue(:s, ARRAY['http://site.test/z', NULL], 1, 'image');
SELECT crawl_enqueue(:s, ARRAY['http://site.test/z'], 1, 'image', 'not a url');
SELECT crawl_enqueue(-5, ARRAY['http://site.test/z'], 1, 'page');
SELECT count(*) AS frontier_rows FROM crawl_frontier WHERE session_id = :s;

-- Claims: shallow first, leased to the caller, attempts counted.
SELECT url, depth, attempts, lease_expires_at > leased_at AS has_expiry
  FROM crawl_claim('w1', 3, '1 minute') ORDER BY depth, url;
SELECT lease_owner, count(*) FROM crawl_frontier WHERE session_id = :s AND state = 'leased' GROUP BY 1;
SELECT item_id AS other FROM crawl_claim('w2', 1) \gset
SELECT id AS mine FROM crawl_frontier WHERE session_id = :s AND lease_owner = 'w1' ORDER BY id LIMIT 1 \gset

-- Only the lease holder completes; a repeat is harmless; counters move once.
SELECT crawl_complete(:mine, 'w2');
SELECT crawl_complete(:mine, 'w1', '{"http_status": 200, "bytes": 512}');
SELECT crawl_complete(:mine, 'w1', '{"http_status": 200, "bytes": 512}');
SELECT pages_fetched FROM crawl_session_totals WHERE session_id = :s;
SELECT crawl_complete(:mine, 'w1', NULL);
SELECT crawl_complete(:mine, 'w1', '[]');
SELECT crawl_complete(NULL, 'w1');
SELECT crawl_complete(-1, 'w1');
SELECT crawl_complete(:mine, NULL);
SELECT crawl_complete(:mine, 'w 1');
SELECT crawl_complete(:mine, repeat('w', 300));

-- Failures: retried until max_attempts (2), then failed; errors counted.
SELECT crawl_fail(:other, 'w2', 'HTTP 503', '0 seconds');
SELECT crawl_fail(:other, 'w2', 'HTTP 503', '0 seconds');  -- a retry of the same call
SELECT item_id = :other AS same_item, attempts FROM crawl_claim('w2', 1);
SELECT crawl_fail(:other, 'w2', 'HTTP 503 again', '0 seconds');
SELECT state, attempts, last_error FROM crawl_frontier WHERE id = :other;
SELECT errors, retries FROM crawl_session_totals WHERE session_id = :s;
SELECT crawl_fail(:other, 'w2', NULL);
SELECT crawl_fail(:other, 'w2', repeat('x', 5000));
SELECT crawl_fail(:other, 'w2', 'x', '-1 second');
SELECT crawl_fail(:other, 'w1', 'not mine');

-- Renew and release touch only the caller's own leases.
SELECT crawl_renew('w1', ARRAY(SELECT id FROM crawl_frontier WHERE session_id = :s), '2 minutes');
SELECT crawl_renew('nobody', ARRAY(SELECT id FROM crawl_frontier WHERE session_id = :s));
SELECT crawl_renew('w1', NULL);
SELECT crawl_renew('w1', ARRAY[1]::bigint[], '0 seconds');
SELECT crawl_renew('w1', ARRAY[1]::bigint[], '100 years');
SELECT crawl_release('w1', ARRAY(SELECT id FROM crawl_frontier WHERE session_id = :s));
SELECT state, count(*), sum(attempts) FROM crawl_frontier WHERE session_id = :s GROUP BY 1 ORDER BY 1;

-- Claim argument checks.
SELECT * FROM crawl_claim(NULL);
SELECT * FROM crawl_claim('w1', 0);
SELECT * FROM crawl_claim('w1', -5);
SELECT * FROM crawl_claim('w1', 2147483647);
SELECT * FROM crawl_claim('w1', 1, NULL);
SELECT * FROM crawl_claim('w1', 1, '-1 minute');
SELECT * FROM crawl_claim(E'w1\n');

-- An expired lease comes back to the queue on the next claim.
SELECT count(*) AS leased FROM crawl_claim('crashed', 100, '1 second');
SELECT pg_sleep(1.2);
SELECT count(*) AS reclaimed, count(DISTINCT session_id) AS sessions FROM crawl_claim('w3', 100, '1 minute');
SELECT count(*) FILTER (WHERE lease_owner = 'crashed') AS still_crashed FROM crawl_frontier WHERE state = 'leased';

-- A stopped session hands out nothing and takes nothing.
SELECT crawl_release('w3', ARRAY(SELECT id FROM crawl_frontier WHERE lease_owner = 'w3'));
SELECT crawl_stop(:s);
SELECT count(*) AS claimed_after_stop FROM crawl_claim('w4', 100) WHERE session_id = :s;
SELECT crawl_enqueue(:s, ARRAY['http://site.test/late'], 1, 'page');

-- Politeness: with a delay, one claim per host per delay.
SELECT crawl_start(ARRAY['http://slow.test/1'], '{"delay_ms": 60000, "per_host": 10}') AS p \gset
SELECT crawl_enqueue(:p, ARRAY['http://slow.test/2', 'http://slow.test/3'], 1, 'page');
SELECT count(*) AS first_claim FROM crawl_claim('w5', 10) WHERE session_id = :p;
SELECT count(*) AS second_claim FROM crawl_claim('w5', 10) WHERE session_id = :p;
SELECT next_fetch_at > now() + interval '50 seconds' AS host_waits FROM crawl_hosts WHERE host = 'slow.test';

-- Host state: robots.txt, Crawl-delay and back-off are shared through the database.
SELECT crawl_host_set('slow.test', '2 seconds', E'User-agent: *\nDisallow: /private', now() + interval '1 minute');
SELECT crawl_delay, robots_txt IS NOT NULL AS has_robots, backoff_until > now() AS backing_off
  FROM crawl_hosts WHERE host = 'slow.test';
SELECT crawl_host_set(NULL);
SELECT crawl_host_set('Bad Host');
SELECT crawl_host_set('slow.test', '-1 second');
SELECT crawl_host_set('slow.test', NULL, repeat('x', 600000));
SELECT crawl_host_set('slow.test', NULL, NULL, now() + interval '30 days');

-- crawl_enqueue_many: crawl_enqueue for many (url, kind, depth, found_on) of
-- one session, in array order: the same scope, depth and budget rules.
SELECT crawl_start(ARRAY['http://many.test/'],
       '{"max_depth": 2, "max_pages": 4, "delay_ms": 0, "per_host": 100}') AS m \gset
SELECT crawl_enqueue_many(:m,
       ARRAY['http://many.test/a', 'http://many.test/i.png', 'http://other.test/x', 'http://many.test/a',
             'http://many.test/deep', 'http://many.test/j.png', 'http://cdn.test/k.png', 'http://many.test/b',
             'http://many.test/c', 'http://many.test/d'],
       ARRAY['page', 'image', 'page', 'image', 'page', 'image', 'image', 'page', 'page', 'page'],
       ARRAY[1, 1, 1, 1, 3, 3, 2, 2, 2, 2],
       ARRAY['http://many.test/', NULL, 'http://many.test/', 'http://many.test/x', 'http://many.test/',
             'http://many.test/b', 'http://many.test/b', 'http://many.test/a', 'http://many.test/a',
             'http://many.test/a']) AS queued;
SELECT url, kind, depth, found_on FROM crawl_frontier WHERE session_id = :m ORDER BY id;
SELECT pages_queued, images_found FROM crawl_session_totals WHERE session_id = :m;
-- Again: nothing new. Empty arrays: nothing.
SELECT crawl_enqueue_many(:m, ARRAY['http://many.test/a'], ARRAY['page'], ARRAY[1], ARRAY[NULL]::text[]);
SELECT crawl_enqueue_many(:m, '{}', '{}', '{}', '{}');
-- Bad calls change nothing.
SELECT crawl_enqueue_many(NULL, ARRAY['http://many.test/z'], ARRAY['page'], ARRAY[1], ARRAY[NULL]::text[]);
SELECT crawl_enqueue_many(:m, NULL, ARRAY['page'], ARRAY[1], ARRAY[NULL]::text[]);
SELECT crawl_enqueue_many(:m, ARRAY['http://many.test/z'], ARRAY['page'], ARRAY[1], NULL);
SELECT crawl_enqueue_many(:m, ARRAY['http://many.test/z'], ARRAY['page', 'page'], ARRAY[1], ARRAY[NULL]::text[]);
SELECT crawl_enqueue_many(:m, ARRAY['http://many.test/z'], ARRAY['video'], ARRAY[1], ARRAY[NULL]::text[]);
SELECT crawl_enqueue_many(:m, ARRAY['http://many.test/z'], ARRAY[NULL]::text[], ARRAY[1], ARRAY[NULL]::text[]);
SELECT crawl_enqueue_many(:m, ARRAY['http://many.test/z'], ARRAY['page'], ARRAY[NULL]::integer[], ARRAY[NULL]::text[]);
SELECT crawl_enqueue_many(:m, ARRAY['http://many.test/z'], ARRAY['page'], ARRAY[-1], ARRAY[NULL]::text[]);
SELECT crawl_enqueue_many(:m, ARRAY['http://many.test/z', 'javascript:alert(1)'], ARRAY['page', 'page'],
                          ARRAY[1, 1], ARRAY[NULL, NULL]::text[]);
SELECT crawl_enqueue_many(:m, ARRAY['http://many.test/z'], ARRAY['page'], ARRAY[1], ARRAY['not a url']);
SELECT crawl_enqueue_many(-5, ARRAY['http://many.test/z'], ARRAY['page'], ARRAY[1], ARRAY[NULL]::text[]);
SELECT count(*) AS frontier_rows FROM crawl_frontier WHERE session_id = :m;
-- A claim leaves the caller's settings as they were; a stopped session takes nothing.
BEGIN;
SELECT count(*) > 0 AS claimed FROM crawl_claim('w6', 2) WHERE session_id = :m;
SHOW enable_sort;
ROLLBACK;
SELECT crawl_stop(:m);
SELECT crawl_enqueue_many(:m, ARRAY['http://many.test/late'], ARRAY['page'], ARRAY[1], ARRAY[NULL]::text[]);

-- Claim order: shallowest first, an image as if it were one level deeper, so
-- the pages a page links to are handed out before its images.
SELECT crawl_start(ARRAY['http://order.test/'], '{"delay_ms": 0, "per_host": 100}') AS o \gset
SELECT crawl_enqueue_many(:o,
       ARRAY['http://order.test/i1.png', 'http://order.test/p1', 'http://order.test/i2.png', 'http://order.test/p2'],
       ARRAY['image', 'page', 'image', 'page'], ARRAY[1, 1, 2, 2], ARRAY[NULL, NULL, NULL, NULL]::text[]) AS queued;
SELECT url, kind, depth FROM crawl_claim('w7', 100) WHERE session_id = :o;
SELECT crawl_stop(:o);

-- URL patterns: links (not seeds) pass the accept patterns of their kind,
-- when there are any, and none of its reject patterns; so do redirects.
SELECT crawl_start(ARRAY['http://pat.test/start'],
       '{"delay_ms": 0, "accept_pages": ["/gallery/", "/album/"], "reject_pages": ["\\.pdf$"],
         "reject_images": ["thumb", "\\.gif$"]}') AS pat \gset
SELECT url FROM crawl_frontier WHERE session_id = :pat ORDER BY url;
SELECT crawl_enqueue(:pat, ARRAY['http://pat.test/gallery/1', 'http://pat.test/album/2', 'http://pat.test/about',
                                 'http://pat.test/gallery/x.pdf'], 1, 'page', 'http://pat.test/start') AS pages_queued;
SELECT crawl_enqueue_many(:pat, ARRAY['http://pat.test/a.png', 'http://pat.test/thumb/a.png', 'http://pat.test/b.gif',
                                      'http://pat.test/gallery/3', 'http://pat.test/contact'],
                          ARRAY['image', 'image', 'image', 'page', 'page'], ARRAY[1, 1, 1, 1, 1],
                          ARRAY[NULL, NULL, NULL, NULL, NULL]::text[]) AS many_queued;
SELECT url, kind FROM crawl_frontier WHERE session_id = :pat ORDER BY url;
SELECT crawl_redirect_allowed(:pat, 'http://pat.test/gallery/9', 'page') AS gallery,
       crawl_redirect_allowed(:pat, 'http://pat.test/about', 'page') AS about,
       crawl_redirect_allowed(:pat, 'http://pat.test/thumb/9.png', 'image') AS thumb;
SELECT crawl_stop(:pat);
-- Bad patterns are said when the crawl starts.
SELECT crawl_start(ARRAY['http://pat.test/'], '{"accept_pages": ["(unclosed"]}');
SELECT crawl_start(ARRAY['http://pat.test/'], '{"reject_images": "\\.gif$"}');
SELECT crawl_start(ARRAY['http://pat.test/'], '{"reject_images": [""]}');
SELECT crawl_start(ARRAY['http://pat.test/'], '{"reject_images": [42]}');
SELECT crawl_start(ARRAY['http://pat.test/'], jsonb_build_object('accept_images', jsonb_build_array(repeat('a', 501))));
SELECT crawl_start(ARRAY['http://pat.test/'], jsonb_build_object('accept_images', (SELECT jsonb_agg('x' || i) FROM generate_series(1, 51) i)));

-- Scope site: the seeds' registrable domains by the Public Suffix List; a
-- host without one (an IP address, localhost) stays itself.
SELECT crawl_start(ARRAY['http://www.shop.example.co.uk/', 'https://blog.example.com:8443/a',
                         'http://127.0.0.1:8080/', 'http://localhost/'],
       '{"scope": "site", "delay_ms": 0}') AS site \gset
SELECT jsonb_array_elements_text(settings -> 'allowed_domains') AS site_domains
  FROM crawl_sessions WHERE id = :site ORDER BY 1;
SELECT crawl_enqueue(:site, ARRAY['http://img.example.co.uk/1', 'http://other.co.uk/2', 'http://cdn.example.com/3',
                                  'http://example.com.evil.test/4', 'http://127.0.0.1:9/5'], 1, 'page') AS site_queued;
SELECT url FROM crawl_frontier WHERE session_id = :site AND depth = 1 ORDER BY url;
SELECT crawl_stop(:site);
SELECT crawl_registrable_domain('WWW.Example.CO.UK:80') AS uk, crawl_registrable_domain('a.b.github.io') AS gh,
       crawl_registrable_domain('co.uk') AS suffix, crawl_registrable_domain('10.0.0.1') AS ip,
       crawl_registrable_domain('[::1]:80') AS ip6, crawl_registrable_domain('localhost') AS one_label,
       crawl_registrable_domain('') AS empty, crawl_registrable_domain(repeat('a.', 200) || 'com') AS too_long,
       crawl_registrable_domain(E'a\u00e9.example.com') AS not_ascii, crawl_registrable_domain(NULL) AS null_host;
SELECT crawl_public_suffix('co.uk') AS co_uk, crawl_public_suffix('COM') AS com, crawl_public_suffix('github.io') AS gh,
       crawl_public_suffix('example.com') AS site, crawl_public_suffix('localhost') AS localhost,
       crawl_public_suffix('example.test') AS unknown_tld, crawl_public_suffix('127.0.0.1') AS ip;
-- Bad scopes: a clear error; a public suffix is no domain to crawl.
SELECT crawl_start(ARRAY['http://example.test/'], '{"scope": "world"}');
SELECT crawl_start(ARRAY['http://example.test/'], '{"scope": null}');
SELECT crawl_start(ARRAY['http://example.test/'], '{"scope": "site", "allowed_domains": ["example.test"]}');
SELECT crawl_start(ARRAY['http://example.co.uk/'], '{"allowed_domains": ["co.uk"]}');
SELECT crawl_start(ARRAY['http://example.com/'], '{"allowed_domains": ["example.com", "COM"]}');
SELECT crawl_start(ARRAY['http://x.github.io/'], '{"allowed_domains": ["github.io:443"]}');

-- A random wait: each host's next fetch comes 0.5 to 1.5 times delay_ms
-- later, never sooner than its Crawl-delay.
SELECT crawl_start(ARRAY(SELECT 'http://r' || i || '.rand.test/' FROM generate_series(1, 40) i),
       '{"delay_ms": 100000, "random_wait": true, "allowed_domains": ["rand.test"]}') AS rw \gset
SELECT crawl_host_set('r1.rand.test', '200 seconds');
SELECT count(*) AS random_claimed FROM crawl_claim('w-rand', 100) WHERE session_id = :rw;
SELECT count(*) FILTER (WHERE w BETWEEN 49 AND 150 AND host <> 'r1.rand.test') AS within_half_and_one_and_a_half,
       count(DISTINCT round(w)) > 10 AS spread_out,
       bool_and(w > 195) FILTER (WHERE host = 'r1.rand.test') AS crawl_delay_kept
  FROM (SELECT host, extract(epoch FROM next_fetch_at - now()) AS w
          FROM crawl_hosts WHERE host LIKE '%.rand.test') h;
SELECT crawl_stop(:rw);
SELECT crawl_start(ARRAY['http://example.test/'], '{"random_wait": 1}');

-- Sitemaps: a kind of their own, in the pages' scope, passing whatever URL
-- patterns (they choose pages and images, not the listings of them), above
-- max_depth only, and counted as pages: queued and fetched, and against
-- max_pages, so endless sitemaps are bounded as endless pages are.
SELECT crawl_start(ARRAY['http://sm.test/'],
       '{"max_depth": 2, "max_pages": 4, "delay_ms": 0, "per_host": 100, "accept_pages": ["/keep/"]}') AS sm \gset
SELECT crawl_enqueue(:sm, ARRAY['http://sm.test/sitemap.xml', 'http://sm.test/sitemap.xml', 'http://other.test/sitemap.xml'],
                     0, 'sitemap', 'http://sm.test/robots.txt') AS robots_sitemaps;
SELECT crawl_enqueue(:sm, ARRAY['http://sm.test/deep.xml'], 2, 'sitemap') AS too_deep;
SELECT crawl_enqueue_many(:sm, ARRAY['http://sm.test/s2.xml.gz', 'http://sm.test/keep/1', 'http://sm.test/drop/1',
                                     'http://sm.test/keep/1.png', 'http://sm.test/keep/2', 'http://sm.test/s3.xml'],
                          ARRAY['sitemap', 'page', 'page', 'image', 'page', 'sitemap'], ARRAY[0, 1, 1, 2, 1, 0],
                          ARRAY['http://sm.test/sitemap.xml', 'http://sm.test/sitemap.xml', 'http://sm.test/sitemap.xml',
                                'http://sm.test/keep/1', 'http://sm.test/sitemap.xml', 'http://sm.test/sitemap.xml']) AS listed;
SELECT url, kind, depth, found_on FROM crawl_frontier WHERE session_id = :sm ORDER BY id;
SELECT pages_queued, images_found FROM crawl_session_totals WHERE session_id = :sm;
SELECT crawl_redirect_allowed(:sm, 'http://sm.test/moved-sitemap.xml', 'sitemap') AS sitemap_redirect,
       crawl_redirect_allowed(:sm, 'http://other.test/sitemap.xml', 'sitemap') AS elsewhere;
SELECT url, kind, crawl_complete(item_id, 'w-sm', '{"status": 200}') AS done
  FROM crawl_claim('w-sm', 100) WHERE session_id = :sm AND kind = 'sitemap' ORDER BY url;
SELECT pages_fetched FROM crawl_session_totals WHERE session_id = :sm;
-- The setting: on by default, a boolean, handed to workers typed.
SELECT sitemaps FROM crawl_session_settings(:sm);
SELECT crawl_settings('{"sitemaps": false}', ARRAY['http://sm.test/']) -> 'sitemaps' AS off;
SELECT crawl_start(ARRAY['http://sm.test/'], '{"sitemaps": "no"}');
SELECT crawl_start(ARRAY['http://sm.test/'], '{"sitemaps": null}');
SELECT crawl_stop(:sm);

-- A session's URL patterns, as a worker is told of them: with any for a
-- kind, its links are not fetched before their leases.
SELECT page_patterns, image_patterns FROM crawl_session_settings(:pat);
SELECT page_patterns, image_patterns FROM crawl_session_settings(:sm);
SELECT crawl_start(ARRAY['http://pat2.test/'], '{"accept_images": ["\\.png$"]}') AS pat2 \gset
SELECT page_patterns, image_patterns FROM crawl_session_settings(:pat2);
SELECT crawl_start(ARRAY['http://pat3.test/'], '{}') AS pat3 \gset
SELECT page_patterns, image_patterns FROM crawl_session_settings(:pat3);

-- When a host waiting out its politeness delay may be claimed again: the
-- earliest such host with queued items of a running session; NULL when
-- none waits (a worker short of work then backs off as before).
SELECT count(crawl_stop(id)) AS stopped FROM crawl_sessions WHERE status = 'running';
SELECT crawl_next_claim_in() IS NULL AS nothing_waits;
SELECT crawl_start(ARRAY['http://due.test/a', 'http://due.test/b', 'http://due.test/c'],
       '{"delay_ms": 30000, "per_host": 5}') AS due \gset
SELECT crawl_next_claim_in() IS NULL AS due_at_once_is_no_wait;
SELECT count(*) AS claimed_one FROM crawl_claim('w-due', 5) WHERE session_id = :due;
SELECT crawl_next_claim_in() BETWEEN '29 seconds' AND '30 seconds' AS due_after_the_delay;
SELECT crawl_start(ARRAY['http://due2.test/a', 'http://due2.test/b'], '{"delay_ms": 5000}') AS due2 \gset
SELECT count(*) AS claimed_one FROM crawl_claim('w-due', 5) WHERE session_id = :due2;
SELECT crawl_next_claim_in() BETWEEN '4 seconds' AND '5 seconds' AS the_earliest_host;
-- a host with nothing queued waits for nothing
UPDATE crawl_frontier SET state = 'done' WHERE session_id = :due2;
SELECT crawl_next_claim_in() BETWEEN '29 seconds' AND '30 seconds' AS due2_has_no_work;
SELECT crawl_stop(:due);
SELECT crawl_next_claim_in() IS NULL AS a_stopped_session_waits_for_nothing;
