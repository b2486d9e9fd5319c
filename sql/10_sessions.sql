-- Sessions: start with defaults and options, refuse bad options, stop, status.
\set SHOW_CONTEXT never
SELECT crawl_start(ARRAY['http://example.test/', 'https://Images.Example.test:8443/gallery?p=1']) AS s1 \gset
SELECT :s1 % 1024 AS node_part;
SELECT status, seeds, settings, finished_at IS NULL AS open FROM crawl_sessions WHERE id = :s1;
SELECT url, kind, depth, state, host FROM crawl_frontier WHERE session_id = :s1 ORDER BY url;
SELECT status, pages_fetched, images_found, queued, leased, done, failed, success_rate FROM crawl_status(:s1);

SELECT crawl_start(ARRAY['http://example.test/a'],
                   '{"max_depth": 1, "max_pages": 2, "delay_ms": 0, "per_host": 8,
                     "allowed_domains": ["Example.test"], "images_any_host": true,
                     "user_agent": "test-bot/1.0 (+contact)"}') AS s2 \gset
SELECT settings->'allowed_domains' AS domains, settings->>'max_pages' AS max_pages,
       settings->>'user_agent' AS ua FROM crawl_sessions WHERE id = :s2;

-- Quotes and SQL fragments are just characters of a URL.
SELECT crawl_start(ARRAY['http://example.test/?q='';DROP%20TABLE%20images;--&x="1"']) AS s3 \gset
SELECT seeds FROM crawl_sessions WHERE id = :s3;
SELECT to_regclass('images') IS NOT NULL AS images_still_there;

-- Bad seeds and options: a clear error, nothing created.
SELECT count(*) AS sessions_before FROM crawl_sessions;
SELECT crawl_start(NULL);
SELECT crawl_start(ARRAY[]::text[]);
SELECT crawl_start(ARRAY['ftp://example.test/']);
SELECT crawl_start(ARRAY['http://']);
SELECT crawl_start(ARRAY['http://exa mple.test/']);
SELECT crawl_start(ARRAY['http://example.test/'' OR 1=1; DROP TABLE images; --']);
SELECT crawl_start(ARRAY['http://example.test/' || repeat('a', 3000)]);
SELECT crawl_start(ARRAY[NULL]::text[]);
SELECT crawl_start(ARRAY['http://example.test/'], NULL);
SELECT crawl_start(ARRAY['http://example.test/'], '[1,2]');
SELECT crawl_start(ARRAY['http://example.test/'], '{"max_dept": 3}');
SELECT crawl_start(ARRAY['http://example.test/'], '{"max_depth": -1}');
SELECT crawl_start(ARRAY['http://example.test/'], '{"max_pages": 1e30}');
SELECT crawl_start(ARRAY['http://example.test/'], '{"max_pages": "10"}');
SELECT crawl_start(ARRAY['http://example.test/'], '{"delay_ms": 0.5}');
SELECT crawl_start(ARRAY['http://example.test/'], '{"allowed_domains": ["bad domain"]}');
SELECT crawl_start(ARRAY['http://example.test/'], '{"user_agent": ""}');
SELECT crawl_start(ARRAY['http://example.test/'], '{"robots": "yes"}');
SELECT count(*) AS sessions_after FROM crawl_sessions;

-- Stop: once true, then false; unknown sessions are an error.
SELECT crawl_stop(:s2), crawl_stop(:s2);
SELECT status, finished_at IS NOT NULL AS closed FROM crawl_sessions WHERE id = :s2;
SELECT crawl_stop(NULL);
SELECT crawl_stop(-1);
SELECT crawl_stop(9223372036854775807);
SELECT * FROM crawl_status(NULL);
SELECT * FROM crawl_status(42);
