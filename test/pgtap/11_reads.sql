-- crawl_list() and image_list(): the reads behind the node agent's HTTP
-- application API. Their signatures and who may call them (they run as the
-- caller), empty tables, keyset pagination (no row lost or repeated, for
-- every page size), each filter alone and combined, NULL for every argument,
-- huge and hostile values with their SQLSTATEs, and wrong callers.
BEGIN;
SELECT * FROM no_plan();

-- Signatures, SECURITY INVOKER, STABLE, a pinned search_path, a comment.
SELECT has_function('public', 'crawl_list', ARRAY['integer', 'bigint'], 'crawl_list(integer, bigint) exists');
SELECT has_function('public', 'image_list',
                    ARRAY['bigint', 'text', 'text', 'bigint', 'integer', 'integer', 'timestamp with time zone',
                          'timestamp with time zone', 'bigint', 'integer'],
                    'image_list(bigint, text, text, bigint, integer, integer, timestamptz, timestamptz, bigint, integer) exists');
SELECT is(pg_get_function_arguments('public.crawl_list(integer,bigint)'::regprocedure),
          'max_rows integer DEFAULT 100, before bigint DEFAULT NULL::bigint', 'crawl_list: its arguments');
SELECT is(pg_get_function_result('public.crawl_list(integer,bigint)'::regprocedure),
          'TABLE(session_id bigint, status text, seed_count integer, first_seed text, started_at timestamp with time zone, '
          'finished_at timestamp with time zone, pages_fetched bigint, images_found bigint, images_stored bigint, '
          'bytes_stored bigint, errors bigint, retries bigint)', 'crawl_list: its result');
SELECT is(pg_get_function_arguments('public.image_list(bigint,text,text,bigint,integer,integer,timestamptz,timestamptz,bigint,integer)'::regprocedure),
          'session bigint DEFAULT NULL::bigint, host text DEFAULT NULL::text, format text DEFAULT NULL::text, '
          'min_bytes bigint DEFAULT NULL::bigint, min_width integer DEFAULT NULL::integer, '
          'min_height integer DEFAULT NULL::integer, created_from timestamp with time zone DEFAULT NULL::timestamp with time zone, '
          'created_before timestamp with time zone DEFAULT NULL::timestamp with time zone, '
          'after_id bigint DEFAULT NULL::bigint, max_rows integer DEFAULT 100', 'image_list: its arguments');
SELECT is(pg_get_function_result('public.image_list(bigint,text,text,bigint,integer,integer,timestamptz,timestamptz,bigint,integer)'::regprocedure),
          'SETOF images', 'image_list: returns SETOF images');
CREATE TEMP TABLE fn (sig regprocedure, name text);
GRANT SELECT ON fn TO PUBLIC;
INSERT INTO fn VALUES
    ('public.crawl_list(integer,bigint)', 'crawl_list'),
    ('public.image_list(bigint,text,text,bigint,integer,integer,timestamptz,timestamptz,bigint,integer)', 'image_list');
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = sig), false, name || ' is SECURITY INVOKER') FROM fn;
SELECT is((SELECT provolatile FROM pg_proc WHERE oid = sig), 's', name || ' is STABLE') FROM fn;
SELECT ok((SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_proc WHERE oid = sig),
          name || ' has a fixed search_path') FROM fn;
SELECT ok((SELECT 'plan_cache_mode=force_custom_plan' = ANY (proconfig) FROM pg_proc WHERE oid = sig),
          name || ' is planned for each call''s arguments') FROM fn;
SELECT matches(obj_description(sig, 'pg_proc'), '^crawler_ha: ', name || ' has a COMMENT') FROM fn;

-- Privileges: the reader, the writer and the admin; nobody else.
SELECT ok(has_function_privilege(r, sig, 'EXECUTE'), r || ' may execute ' || name)
  FROM fn, unnest(ARRAY['crawler_ha_reader', 'crawler_ha_writer', 'crawler_ha_admin']) r;
SELECT ok(NOT has_function_privilege(r, sig, 'EXECUTE'), r || ' may not execute ' || name)
  FROM fn, unnest(ARRAY['crawler_ha_agent', 'public']) r;
SELECT function_privs_are('public', name, ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t),
                          'public', '{}', 'PUBLIC may not execute ' || name)
  FROM fn JOIN pg_proc p ON p.oid = fn.sig;
-- image_list applies the host rule as its caller: the same roles may
-- execute crawl_url_host_of() (pure), still nobody else.
SELECT ok(has_function_privilege(r, 'public.crawl_url_host_of(text)', 'EXECUTE'),
          r || ' may execute crawl_url_host_of (image_list''s host rule, run as the caller)')
  FROM unnest(ARRAY['crawler_ha_reader', 'crawler_ha_writer', 'crawler_ha_admin']) r;
SELECT ok(NOT has_function_privilege(r, 'public.crawl_url_host_of(text)', 'EXECUTE'),
          r || ' may not execute crawl_url_host_of')
  FROM unnest(ARRAY['crawler_ha_agent', 'public']) r;
SELECT is((SELECT provolatile FROM pg_proc WHERE oid = 'public.crawl_url_host_of(text)'::regprocedure), 'i',
          'crawl_url_host_of is IMMUTABLE (it reads nothing)');

-- A session's images are paged by the (session_id, id) index, without a sort.
SELECT is((SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indexrelid = 'public.images_session_id_idx'::regclass),
          'CREATE INDEX images_session_id_idx ON public.images USING btree (session_id, id)',
          'images_session_id_idx is on (session_id, id)');

-- The ids of a list, in the order it returned them; the SQLSTATE and message
-- of a statement's error, or NULL.
CREATE FUNCTION pg_temp.ids(q text) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    r bigint[];
BEGIN
    EXECUTE format('SELECT ARRAY(SELECT l.id FROM %s WITH ORDINALITY l ORDER BY l.ordinality)', q) INTO r;
    RETURN r;
END
$$;
CREATE FUNCTION pg_temp.sids(q text) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    r bigint[];
BEGIN
    EXECUTE format('SELECT ARRAY(SELECT l.session_id FROM %s WITH ORDINALITY l ORDER BY l.ordinality)', q) INTO r;
    RETURN r;
END
$$;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- Every page of image_list(<filters>) of `page` rows, after_id from the
-- last id of the one before, until an empty page: the ids in the order met.
-- A page longer than asked, an id not above the previous one, or more
-- pages than rows stops the walk with an error.
CREATE FUNCTION pg_temp.walk_images(page integer, filters text) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    all_ids bigint[] := '{}';
    got bigint[];
    last bigint;
BEGIN
    FOR n IN 1..1000 LOOP
        got := pg_temp.ids(format('public.image_list(%s after_id => %s, max_rows => %s)',
                                  filters, coalesce(last::text, 'NULL'), page));
        IF cardinality(got) = 0 THEN
            RETURN all_ids;
        ELSIF cardinality(got) > page THEN
            RAISE EXCEPTION 'a page of % rows for max_rows %', cardinality(got), page;
        ELSIF got[1] <= last THEN
            RAISE EXCEPTION 'page starts at % after %', got[1], last;
        END IF;
        all_ids := all_ids || got;
        last := got[cardinality(got)];
    END LOOP;
    RAISE EXCEPTION 'more than 1000 pages';
END
$$;
CREATE FUNCTION pg_temp.walk_sessions(page integer) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    all_ids bigint[] := '{}';
    got bigint[];
    last bigint;
BEGIN
    FOR n IN 1..1000 LOOP
        got := pg_temp.sids(format('public.crawl_list(%s, %s)', page, coalesce(last::text, 'NULL')));
        IF cardinality(got) = 0 THEN
            RETURN all_ids;
        ELSIF cardinality(got) > page THEN
            RAISE EXCEPTION 'a page of % rows for max_rows %', cardinality(got), page;
        ELSIF got[1] >= last THEN
            RAISE EXCEPTION 'page starts at % after %', got[1], last;
        END IF;
        all_ids := all_ids || got;
        last := got[cardinality(got)];
    END LOOP;
    RAISE EXCEPTION 'more than 1000 pages';
END
$$;

-- Empty tables (this transaction's view; everything is rolled back).
DELETE FROM public.crawl_frontier;
DELETE FROM public.images;
DELETE FROM public.crawl_sessions;
SELECT is(pg_temp.sids('public.crawl_list()'), '{}'::bigint[], 'no sessions: crawl_list() returns no row');
SELECT is(pg_temp.sids('public.crawl_list(1000, 5)'), '{}'::bigint[], 'no sessions: crawl_list(1000, 5) returns no row');
SELECT is(pg_temp.ids('public.image_list()'), '{}'::bigint[], 'no images: image_list() returns no row');
SELECT is(pg_temp.ids('public.image_list(1, ''a.test'', ''png'', 0, 0, 0, ''-infinity'', ''infinity'', 0, 1000)'),
          '{}'::bigint[], 'no images: image_list() with every filter returns no row');
SELECT is(pg_temp.walk_images(3, ''), '{}'::bigint[], 'no images: the first page is empty');

-- Sessions, written directly (the owner may) so the ids are known.
INSERT INTO public.crawl_sessions (id, status, seeds, settings, started_at, finished_at)
VALUES (11, 'finished', ARRAY['http://one.test/', 'http://two.test/'], '{}', '2024-01-01 00:00+00',
        '2024-01-01 01:00+00'),
       (22, 'stopped', '[3:4]={http://lb.test/a,http://lb.test/b}', '{}', '2024-01-02 00:00+00',
        '2024-01-02 02:00+00'),
       (33, 'running', ARRAY['http://three.test/'], '{}', '2024-01-03 00:00+00', NULL),
       (44, 'running', '{}', '{}', '2024-01-04 00:00+00', NULL),
       (55, 'running', ARRAY['http://five.test/'], '{}', '2024-01-05 00:00+00', NULL);
-- Session 11's counters in two rows (two backends of node 1): crawl_list sums them.
INSERT INTO public.crawl_session_counts (key, session_id, node_id, slot, pages_fetched, images_found, images_stored,
                                         bytes_stored, errors, retries)
VALUES ('11/1/3', 11, 1, 3, 2, 4, 1, 100, 0, 2), ('11/1/4', 11, 1, 4, 3, 0, 2, 200, 1, 0);

-- Images: hosts in various spellings (case, port, user info, no path, a
-- trailing dot, a URL that is no http(s) URL), a format stored in upper case,
-- missing sizes, one a day from 2024-01-01.
INSERT INTO public.images (id, url, session_id, format, file_size, width, height, sha256, file_path, created_at)
SELECT id, url, sid, fmt, sz, w, h, repeat('a', 64), 'x', timestamptz '2024-01-01 00:00+00' + (id - 101) * interval '1 day'
  FROM (VALUES (101, 'http://a.test/1.png', 11, 'png', 100, 640, 480),
               (102, 'http://A.TEST/2.jpg', 11, 'jpeg', 2000, 1920, 1080),
               (103, 'http://b.test:8080/3.png', 22, 'png', 50, 16, 16),
               (104, 'https://user:pw@a.test/4.gif', 22, 'gif', 0, NULL, NULL),
               (105, 'http://a.test:8080/5.webp', 33, 'webp', 5000, 800, 600),
               (106, 'HTTPS://a.test?x=1', 11, 'PNG', 700, 1000, 1000),
               (107, 'http://c.test/7.svg', NULL, NULL, 10, NULL, NULL),
               (108, 'http://a.test/8.png', 33, 'png', 100, 640, 480),
               (109, 'ftp://a.test/9.png', 11, 'png', 100, 10, 10),
               (110, 'http://b.test/10.jpeg', 55, 'jpeg', 3000, 2000, 2000),
               (111, 'http://xn--bcher-kva.test/11.png', 55, 'png', 1, 1, 1),
               (112, 'http://a.test./12.png', 11, 'png', 100, 100, 50)) AS x(id, url, sid, fmt, sz, w, h);

-- crawl_list: newest first, every column.
SELECT is(pg_temp.sids('public.crawl_list()'), ARRAY[55, 44, 33, 22, 11]::bigint[], 'crawl_list(): newest first');
SELECT is((SELECT row(l.session_id, l.status, l.seed_count, l.first_seed, l.started_at, l.finished_at, l.pages_fetched,
                      l.images_found, l.images_stored, l.bytes_stored, l.errors, l.retries)::text
             FROM public.crawl_list() l WHERE l.session_id = 11),
          (SELECT row(s.id, s.status, 2, 'http://one.test/'::text, s.started_at, s.finished_at, 5::bigint, 4::bigint,
                      3::bigint, 300::bigint, 1::bigint, 2::bigint)::text
             FROM public.crawl_sessions s WHERE s.id = 11),
          'crawl_list(): session 11: status, seed count, first seed, times and counters');
SELECT is((SELECT row(l.seed_count, l.first_seed)::text FROM public.crawl_list() l WHERE l.session_id = 22),
          '(2,http://lb.test/a)', 'the first seed of an array that does not start at 1');
SELECT is((SELECT row(l.seed_count, l.first_seed, l.finished_at)::text FROM public.crawl_list() l WHERE l.session_id = 44),
          '(0,,)', 'no seeds: 0 and NULL; running: no finished_at');
SELECT is(pg_temp.sids('public.crawl_list(2)'), ARRAY[55, 44]::bigint[], 'crawl_list(2): the newest two');
SELECT is(pg_temp.sids('public.crawl_list(2, 44)'), ARRAY[33, 22]::bigint[], 'crawl_list(2, 44): the next two');
SELECT is(pg_temp.sids('public.crawl_list(2, 22)'), ARRAY[11]::bigint[], 'crawl_list(2, 22): the last one');
SELECT is(pg_temp.sids('public.crawl_list(2, 11)'), '{}'::bigint[], 'crawl_list(2, 11): nothing after the last');
SELECT is(pg_temp.sids('public.crawl_list(before => 40)'), ARRAY[33, 22, 11]::bigint[],
          'crawl_list(before => 40): a before that is no session id');
SELECT is(pg_temp.sids('public.crawl_list(100, NULL)'), ARRAY[55, 44, 33, 22, 11]::bigint[], 'before NULL: from the newest');
SELECT is(pg_temp.sids('public.crawl_list(1000, 9223372036854775807)'), ARRAY[55, 44, 33, 22, 11]::bigint[],
          'before 2^63-1: every session');
SELECT is(pg_temp.sids('public.crawl_list(1000, 0)'), '{}'::bigint[], 'before 0: none');
SELECT is(pg_temp.walk_sessions(n), ARRAY[55, 44, 33, 22, 11]::bigint[],
          format('crawl_list pages of %s: every session once, in order', n))
  FROM generate_series(1, 6) n;

-- image_list: all of a row, in id order.
SELECT is(pg_temp.ids('public.image_list()'), ARRAY[101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112]::bigint[],
          'image_list(): every image, by id');
SELECT is((SELECT array_agg(row(l.*)::text ORDER BY l.id) FROM public.image_list() l),
          (SELECT array_agg(row(i.*)::text ORDER BY i.id) FROM public.images i),
          'image_list(): the rows are the images rows, every column');
SELECT is(pg_temp.ids('public.image_list(max_rows => 3)'), ARRAY[101, 102, 103]::bigint[], 'max_rows 3: the first three');
SELECT is(pg_temp.ids('public.image_list(after_id => 103, max_rows => 2)'), ARRAY[104, 105]::bigint[],
          'after_id 103, max_rows 2: the next two');
SELECT is(pg_temp.ids('public.image_list(after_id => 112)'), '{}'::bigint[], 'after the last id: nothing');
SELECT is(pg_temp.ids('public.image_list(after_id => 0)'), pg_temp.ids('public.image_list()'), 'after_id 0: everything');

-- Pagination, every page size, alone and with filters: no row lost or repeated.
SELECT is(pg_temp.walk_images(n, f), pg_temp.ids(format('public.image_list(%s max_rows => 1000)', f)),
          format('pages of %s with %s: the same rows as one page', n, coalesce(nullif(f, ''), 'no filter')))
  FROM generate_series(1, 13) n,
       unnest(ARRAY['', 'session => 11,', 'host => ''a.test'',', 'format => ''png'', min_width => 16,']) f;
SELECT is(pg_temp.walk_images(5, ''), ARRAY[101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112]::bigint[],
          'pages of 5: every image once, in id order');
SELECT is(pg_temp.walk_images(2, 'session => 11,'), ARRAY[101, 102, 106, 109, 112]::bigint[],
          'pages of 2 of session 11: its images once, in id order');

-- Each filter alone.
CREATE TEMP TABLE cases (q text, want bigint[], why text);
GRANT SELECT ON cases TO PUBLIC;
INSERT INTO cases VALUES
    ('session => 11', '{101,102,106,109,112}', 'session 11'),
    ('session => 22', '{103,104}', 'session 22'),
    ('session => 44', '{}', 'a session without images'),
    ('session => 999', '{}', 'a session that does not exist'),
    ('session => 0', '{}', 'session 0'),
    ('session => -1', '{}', 'a negative session: no such session, no row'),
    ('host => ''a.test''', '{101,102,104,106,108}', 'host a.test (any case in the URL, user info, no path)'),
    ('host => ''A.Test''', '{101,102,104,106,108}', 'host A.Test: case-insensitive'),
    ('host => ''a.test:8080''', '{105}', 'host with a port: that port only'),
    ('host => ''b.test''', '{110}', 'host b.test: not b.test:8080'),
    ('host => ''b.test:8080''', '{103}', 'host b.test:8080'),
    ('host => ''a.test.''', '{112}', 'host a.test. (a trailing dot is another host)'),
    ('host => ''xn--bcher-kva.test''', '{111}', 'a punycode host'),
    ('host => ''test''', '{}', 'host test: no suffix match'),
    ('host => ''a''', '{}', 'host a: no prefix match'),
    ('host => ''''', '{}', 'an empty host matches nothing'),
    ('host => ''http://a.test/''', '{}', 'a URL is no host'),
    ('format => ''png''', '{101,103,106,108,109,111,112}', 'format png (PNG stored too)'),
    ('format => ''PNG''', '{101,103,106,108,109,111,112}', 'format PNG: case-insensitive'),
    ('format => ''jpeg''', '{102,110}', 'format jpeg'),
    ('format => ''jpg''', '{}', 'format jpg: none'),
    ('format => ''''', '{}', 'an empty format matches nothing'),
    ('min_bytes => 1000', '{102,105,110}', 'min_bytes 1000'),
    ('min_bytes => 100', '{101,102,105,106,108,109,110,112}', 'min_bytes 100: at least, not more than'),
    ('min_bytes => 0', '{101,102,103,104,105,106,107,108,109,110,111,112}', 'min_bytes 0: every image'),
    ('min_width => 1000', '{102,106,110}', 'min_width 1000: at least'),
    ('min_width => 0', '{101,102,103,105,106,108,109,110,111,112}', 'min_width 0: images without a width do not pass'),
    ('min_height => 1000', '{102,106,110}', 'min_height 1000'),
    ('min_height => 481', '{102,105,106,110}', 'min_height 481'),
    ('created_from => ''2024-01-05 00:00+00''', '{105,106,107,108,109,110,111,112}', 'created_from: inclusive'),
    ('created_from => ''2024-01-04 23:59:59.999999+00''', '{105,106,107,108,109,110,111,112}', 'created_from just before a row'),
    ('created_before => ''2024-01-05 00:00+00''', '{101,102,103,104}', 'created_before: exclusive'),
    ('created_before => ''2024-01-05 00:00:00.000001+00''', '{101,102,103,104,105}', 'created_before just after a row'),
    ('created_from => ''-infinity'', created_before => ''infinity''', '{101,102,103,104,105,106,107,108,109,110,111,112}',
     'created between -infinity and infinity: every image'),
    ('after_id => 110', '{111,112}', 'after_id 110'),
    ('after_id => 110, max_rows => 1', '{111}', 'after_id 110, max_rows 1');
-- Combined.
INSERT INTO cases VALUES
    ('session => 11, format => ''png''', '{101,106,109,112}', 'session 11 and png'),
    ('session => 11, format => ''png'', min_width => 500', '{101,106}', 'session 11, png, at least 500 wide'),
    ('host => ''a.test'', format => ''png''', '{101,106,108}', 'host a.test and png'),
    ('host => ''a.test'', after_id => 102', '{104,106,108}', 'host a.test after 102'),
    ('host => ''a.test'', after_id => 102, max_rows => 2', '{104,106}', 'host a.test after 102, two rows'),
    ('session => 22, host => ''a.test''', '{104}', 'session 22 on host a.test'),
    ('session => 33, host => ''b.test''', '{}', 'session 33 on host b.test: none'),
    ('min_bytes => 100, created_before => ''2024-01-09 00:00+00''', '{101,102,105,106,108}', 'min_bytes and created_before'),
    ('min_width => 600, min_height => 500', '{102,105,106,110}', 'min_width and min_height'),
    ('created_from => ''2024-01-03 00:00+00'', created_before => ''2024-01-06 00:00+00''', '{103,104,105}',
     'a created range'),
    ('created_from => ''2024-01-05 00:00+00'', created_before => ''2024-01-05 00:00+00''', '{}',
     'created_from = created_before: an empty range, no row'),
    ('created_from => ''2024-01-09 00:00+00'', created_before => ''2024-01-02 00:00+00''', '{}',
     'created_from after created_before: no row, no error'),
    ('session => 11, host => ''A.TEST'', format => ''Png'', min_bytes => 100, min_width => 600, min_height => 400, '
     'created_from => ''2024-01-01 00:00+00'', created_before => ''2024-01-07 00:00+00'', after_id => 100, max_rows => 1000',
     '{101,106}', 'every filter at once'),
    ('session => 11, host => ''A.TEST'', format => ''Png'', min_bytes => 100, min_width => 600, min_height => 400, '
     'created_from => ''2024-01-01 00:00+00'', created_before => ''2024-01-07 00:00+00'', after_id => 101, max_rows => 1',
     '{106}', 'every filter at once, the second page of one row'),
    ('11, ''a.test'', ''png'', 1, 1, 1, ''2024-01-01 00:00+00'', ''2024-01-12 00:00+00'', 0, 10', '{101,106}',
     'every argument by position'),
    -- NULL for every argument but max_rows: no filter applied.
    ('NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1000',
     '{101,102,103,104,105,106,107,108,109,110,111,112}', 'NULL for every filter: every image'),
    ('session => NULL, host => NULL, format => NULL, min_bytes => NULL, min_width => NULL, min_height => NULL, '
     'created_from => NULL, created_before => NULL, after_id => NULL',
     '{101,102,103,104,105,106,107,108,109,110,111,112}', 'every filter NULL by name: every image');
SELECT is(pg_temp.ids(format('public.image_list(%s)', q)), want, 'image_list: ' || why) FROM cases;

-- Huge values.
SELECT is(pg_temp.ids('public.image_list(after_id => 9223372036854775807)'), '{}'::bigint[], 'after_id 2^63-1: nothing');
SELECT is(pg_temp.ids('public.image_list(session => 9223372036854775807)'), '{}'::bigint[], 'session 2^63-1: nothing');
SELECT is(pg_temp.ids('public.image_list(min_bytes => 9223372036854775807)'), '{}'::bigint[], 'min_bytes 2^63-1: nothing');
SELECT is(pg_temp.ids('public.image_list(min_width => 2147483647)'), '{}'::bigint[], 'min_width 2^31-1: nothing');
SELECT is(pg_temp.ids('public.image_list(min_height => 2147483647)'), '{}'::bigint[], 'min_height 2^31-1: nothing');
SELECT is(pg_temp.ids('public.image_list(max_rows => 1000)'), pg_temp.ids('public.image_list()'), 'max_rows 1000 is allowed');
SELECT is(pg_temp.sids('public.crawl_list(1000)'), ARRAY[55, 44, 33, 22, 11]::bigint[], 'crawl_list(1000) is allowed');
SELECT is(pg_temp.ids(format('public.image_list(host => %L)', repeat('a', 259))), '{}'::bigint[],
          'a host of 259 bytes is allowed (and matches nothing here)');
SELECT is(pg_temp.ids(format('public.image_list(format => %L)', repeat('p', 32))), '{}'::bigint[],
          'a format of 32 bytes is allowed');

-- Bad arguments and their SQLSTATEs.
SELECT throws_ok(q, s, m, q || ' -> ' || s)
  FROM (VALUES
    ('SELECT * FROM public.crawl_list(NULL)', '22004', 'max_rows must not be NULL'),
    ('SELECT * FROM public.crawl_list(NULL, 5)', '22004', 'max_rows must not be NULL'),
    ('SELECT * FROM public.crawl_list(0)', '22023', 'max_rows 0 is out of range'),
    ('SELECT * FROM public.crawl_list(-1)', '22023', 'max_rows -1 is out of range'),
    ('SELECT * FROM public.crawl_list(1001)', '22023', 'max_rows 1001 is out of range'),
    ('SELECT * FROM public.crawl_list(2147483647)', '22023', 'max_rows 2147483647 is out of range'),
    ('SELECT * FROM public.crawl_list(-2147483648)', '22023', 'max_rows -2147483648 is out of range'),
    ('SELECT * FROM public.crawl_list(10, -1)', '22023', 'before -1 is out of range'),
    ('SELECT * FROM public.crawl_list(10, -9223372036854775808)', '22023', 'before -9223372036854775808 is out of range'),
    ('SELECT * FROM public.image_list(max_rows => NULL)', '22004', 'max_rows must not be NULL'),
    ('SELECT * FROM public.image_list(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)', '22004',
     'max_rows must not be NULL'),
    ('SELECT * FROM public.image_list(max_rows => 0)', '22023', 'max_rows 0 is out of range'),
    ('SELECT * FROM public.image_list(max_rows => 1001)', '22023', 'max_rows 1001 is out of range'),
    ('SELECT * FROM public.image_list(max_rows => -5)', '22023', 'max_rows -5 is out of range'),
    ('SELECT * FROM public.image_list(after_id => -1)', '22023', 'after_id -1 is out of range'),
    ('SELECT * FROM public.image_list(after_id => -9223372036854775808)', '22023', 'after_id -9223372036854775808 is out of range'),
    ('SELECT * FROM public.image_list(min_bytes => -1)', '22023', 'min_bytes, min_width and min_height must not be negative'),
    ('SELECT * FROM public.image_list(min_width => -1)', '22023', 'min_bytes, min_width and min_height must not be negative'),
    ('SELECT * FROM public.image_list(min_height => -2147483648)', '22023',
     'min_bytes, min_width and min_height must not be negative'),
    ('SELECT * FROM public.image_list(host => repeat(''a'', 260))', '22023', 'host is too long'),
    ('SELECT * FROM public.image_list(host => repeat(''é'', 130))', '22023', 'host is too long'),
    ('SELECT * FROM public.image_list(host => repeat(''x'', 10485760))', '22023', 'host is too long'),
    ('SELECT * FROM public.image_list(format => repeat(''p'', 33))', '22023', 'format is too long'),
    ('SELECT * FROM public.image_list(format => repeat(''é'', 17))', '22023', 'format is too long'),
    ('SELECT * FROM public.image_list(format => repeat(''x'', 10485760))', '22023', 'format is too long'),
    ('SELECT * FROM public.image_list(11, repeat(''x'', 10485760), ''png'', 0, 0, 0, NULL, NULL, 0, 10)', '22023',
     'host is too long')
  ) AS x(q, s, m);
SELECT is(pg_temp.err('SELECT * FROM public.image_list(host => repeat(''x'', 10485760))'),
          '22023: host is too long', 'a 10 MB host is not repeated in the message');
SELECT is(pg_temp.err('SELECT * FROM public.image_list(format => repeat(''x'', 10485760))'),
          '22023: format is too long', 'a 10 MB format is not repeated in the message');

-- Hostile strings are values compared by equality: they match nothing and
-- change nothing (no LIKE, no pattern, no dynamic SQL).
SELECT is(pg_temp.ids(format('public.image_list(host => %L)', h)), '{}'::bigint[], format('host %s matches nothing', to_json(h)))
  FROM unnest(ARRAY['''; DROP TABLE public.images; --', 'a.test'' OR ''1''=''1', '%', '_', '%.test', 'a.tes_', 'a%',
                    '.*', 'a\.test', '[a-z]+\.test', '*', 'ä.test', 'A.TEST ', ' a.test', E'a.test\n', E'a.test\t',
                    'a.test/', 'a.test:', 'a.test:80', '日本.test', '🙂', '\', '\\', '''',
                    'a.test%', 'http://a.test', 'user:pw@a.test']) h;
SELECT is(pg_temp.ids(format('public.image_list(format => %L)', f)), '{}'::bigint[], format('format %s matches nothing', to_json(f)))
  FROM unnest(ARRAY['''; DROP --', '%', '_', 'pn_', 'p%', '%png%', '.*', 'png ', ' png', E'png\n', 'pñg', '🙂', '\', '''']) f;
SELECT is((SELECT count(*) FROM public.images), 12::bigint, 'the images are all still there');

-- The caller's search_path changes nothing: every object is qualified.
CREATE SCHEMA tap_rd_hostile;
CREATE TABLE tap_rd_hostile.images (LIKE public.images);
CREATE TABLE tap_rd_hostile.crawl_sessions (LIKE public.crawl_sessions);
CREATE FUNCTION tap_rd_hostile.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT 'a.test' $$;
CREATE FUNCTION tap_rd_hostile.cardinality(anyarray) RETURNS integer LANGUAGE sql AS $$ SELECT 42 $$;
GRANT USAGE ON SCHEMA tap_rd_hostile TO PUBLIC;
SET search_path = tap_rd_hostile, pg_catalog, public;
SELECT is(pg_temp.ids('public.image_list(host => ''c.test'')'), ARRAY[107]::bigint[], 'a hostile search_path: host c.test');
SELECT is(pg_temp.ids('public.image_list(format => ''webp'')'), ARRAY[105]::bigint[], 'a hostile search_path: format webp');
SELECT is((SELECT array_agg(seed_count ORDER BY session_id) FROM public.crawl_list()), ARRAY[2, 2, 1, 0, 1],
          'a hostile search_path: crawl_list counts the seeds');
RESET search_path;

-- Each role that may call them, for real; the host rule works for each.
CREATE ROLE tap_rd_reader LOGIN IN ROLE crawler_ha_reader;
CREATE ROLE tap_rd_writer LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE tap_rd_admin LOGIN IN ROLE crawler_ha_admin;
CREATE ROLE tap_rd_agent LOGIN IN ROLE crawler_ha_agent;
CREATE ROLE tap_rd_nobody LOGIN;
SET ROLE tap_rd_reader;
SELECT is(pg_temp.sids('public.crawl_list(2, 44)'), ARRAY[33, 22]::bigint[], 'a reader: crawl_list');
SELECT is(pg_temp.ids('public.image_list(host => ''A.test'', format => ''png'')'), ARRAY[101, 106, 108]::bigint[],
          'a reader: image_list with host and format');
SELECT is(pg_temp.walk_images(2, 'host => ''a.test'','), ARRAY[101, 102, 104, 106, 108]::bigint[],
          'a reader: pages of image_list by host');
SELECT is(pg_temp.ids('public.image_list(session => 55)'), ARRAY[110, 111]::bigint[], 'a reader: image_list by session');
RESET ROLE;
SET ROLE tap_rd_writer;
SELECT is(pg_temp.sids('public.crawl_list()'), ARRAY[55, 44, 33, 22, 11]::bigint[], 'a writer: crawl_list');
SELECT is(pg_temp.ids('public.image_list(host => ''b.test'')'), ARRAY[110]::bigint[], 'a writer: image_list by host');
RESET ROLE;
SET ROLE tap_rd_admin;
SELECT is(pg_temp.sids('public.crawl_list(1)'), ARRAY[55]::bigint[], 'an admin: crawl_list');
SELECT is(pg_temp.ids('public.image_list(host => ''a.test:8080'')'), ARRAY[105]::bigint[], 'an admin: image_list by host');
RESET ROLE;
SET ROLE tap_rd_agent;
SELECT throws_ok(q, '42501', NULL, 'the agent role: ' || q || ' is refused')
  FROM unnest(ARRAY['SELECT * FROM public.crawl_list()', 'SELECT * FROM public.image_list()']) q;
RESET ROLE;
SET ROLE tap_rd_nobody;
SELECT throws_ok(q, '42501', NULL, 'a role without the grant: ' || q || ' is refused')
  FROM unnest(ARRAY['SELECT * FROM public.crawl_list()', 'SELECT * FROM public.crawl_list(10, 5)',
                    'SELECT * FROM public.image_list()', 'SELECT * FROM public.image_list(host => ''a.test'')',
                    'SELECT * FROM public.image_list(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)',
                    'SELECT public.crawl_url_host_of(''http://a.test/'')']) q;
RESET ROLE;
-- A role allowed to run them but not to read the tables gets the table's
-- 42501: the functions run as their caller and lend no privilege.
CREATE ROLE tap_rd_noread LOGIN;
GRANT EXECUTE ON FUNCTION public.crawl_list(integer, bigint),
    public.image_list(bigint, text, text, bigint, integer, integer, timestamptz, timestamptz, bigint, integer)
   TO tap_rd_noread;
GRANT USAGE ON SCHEMA public TO tap_rd_noread;
SET ROLE tap_rd_noread;
SELECT throws_ok('SELECT * FROM public.crawl_list()', '42501', 'permission denied for table crawl_sessions',
                 'execute without SELECT: crawl_list reads nothing');
SELECT throws_ok('SELECT * FROM public.image_list()', '42501', 'permission denied for table images',
                 'execute without SELECT: image_list reads nothing');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
