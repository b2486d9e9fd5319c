-- Wrong callers: a login role in crawler_ha_writer cannot change any table
-- directly, only through the write API; a reader cannot write at all; a role
-- with no grant can do nothing.
BEGIN;
SELECT * FROM no_plan();

CREATE ROLE tap_crawler LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE tap_reader LOGIN IN ROLE crawler_ha_reader;
CREATE ROLE tap_stranger LOGIN;
SELECT crawl_start(ARRAY['http://priv.test/'], '{"delay_ms": 0}') AS s \gset

CREATE TEMP TABLE stmt (sql text);
GRANT SELECT ON stmt TO PUBLIC;
INSERT INTO stmt VALUES
    ('INSERT INTO public.images (url, file_path, file_size, sha256) VALUES (''http://x.test/a'', ''p'', 1, repeat(''a'', 64))'),
    ('UPDATE public.images SET width = 1'),
    ('DELETE FROM public.images'),
    ('TRUNCATE public.images'),
    ('INSERT INTO public.crawl_sessions (seeds, settings) VALUES (''{}'', ''{}'')'),
    ('UPDATE public.crawl_sessions SET status = ''stopped'''),
    ('DELETE FROM public.crawl_sessions'),
    ('TRUNCATE public.crawl_sessions CASCADE'),
    ('INSERT INTO public.crawl_frontier (session_id, url, kind, depth, host) VALUES (1, ''http://x.test/'', ''page'', 0, ''x.test'')'),
    ('UPDATE public.crawl_frontier SET state = ''done'''),
    ('DELETE FROM public.crawl_frontier'),
    ('TRUNCATE public.crawl_frontier'),
    ('INSERT INTO public.crawl_hosts (host) VALUES (''x.test'')'),
    ('UPDATE public.crawl_hosts SET next_fetch_at = now()'),
    ('DELETE FROM public.crawl_hosts'),
    ('TRUNCATE public.crawl_hosts'),
    ('UPDATE public.ha_node SET node_id = 2'),
    ('SELECT nextval(''public.images_id_seq'')'),
    ('SELECT setval(''public.crawl_frontier_id_seq'', 1)');

SET ROLE tap_crawler;
SELECT throws_ok(sql, '42501', NULL, 'writer: ' || left(sql, 60) || ' is refused') FROM stmt;
SELECT lives_ok(format('SELECT public.crawl_enqueue(%s, ARRAY[''http://priv.test/ok''], 1, ''page'')', :s),
                'writer: the write API works');
SELECT lives_ok(format('SELECT public.crawl_enqueue_many(%s, ARRAY[''http://priv.test/ok2''], ARRAY[''page''], ARRAY[1], ARRAY[NULL]::text[])', :s),
                'writer: crawl_enqueue_many works');
SELECT throws_ok('SELECT public.crawl_url_host(''http://x.test/'')', '42501', NULL, 'writer: internal helpers are not callable');
SELECT throws_ok('SELECT public.ha_set_node_id(5)', '42501', NULL, 'writer: ha_set_node_id is for the admin');
RESET ROLE;

SET ROLE tap_reader;
SELECT throws_ok(sql, '42501', NULL, 'reader: ' || left(sql, 60) || ' is refused') FROM stmt;
SELECT throws_ok('SELECT public.crawl_start(ARRAY[''http://x.test/''])', '42501', NULL, 'reader: cannot start a crawl');
SELECT throws_ok('SELECT * FROM public.crawl_claim(''w'')', '42501', NULL, 'reader: cannot claim');
SELECT throws_ok('SELECT public.crawl_enqueue_many(1, ''{}'', ''{}'', ''{}'', ''{}'')', '42501', NULL, 'reader: cannot queue links');
SELECT throws_ok('SELECT public.crawl_redirect_allowed(1, ''http://x.test/'', ''page'')', '42501', NULL, 'reader: cannot ask the crawl''s scope (a worker''s call)');
SELECT lives_ok(format('SELECT * FROM public.crawl_status(%s)', :s), 'reader: may read a crawl''s status');
RESET ROLE;

SET ROLE tap_stranger;
SELECT throws_ok(sql, '42501', NULL, 'no grant: ' || left(sql, 60) || ' is refused') FROM stmt;
SELECT throws_ok('SELECT count(*) FROM public.images', '42501', NULL, 'no grant: cannot read images');
SELECT throws_ok('SELECT public.image_record(1, ''http://x.test/a.png'', repeat(''a'', 64), ''p'', 1, 1, 1, ''png'', ''image/png'')',
                 '42501', NULL, 'no grant: cannot record images');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
