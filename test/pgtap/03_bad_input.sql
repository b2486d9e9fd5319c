-- Bad input for every parameter of the write API: NULL, empty, 100 kB
-- strings, non-http(s) and malformed URLs, quotes and SQL fragments,
-- negative and huge numbers, someone else's lease. Each gets its documented
-- SQLSTATE (docs/api.md), and none changes anything.
BEGIN;
SELECT * FROM no_plan();

CREATE ROLE tap_bad LOGIN IN ROLE crawler_ha_writer;
SELECT crawl_start(ARRAY['http://bad.test/'], '{"delay_ms": 0, "per_host": 100}') AS s \gset
SELECT crawl_enqueue(:s, ARRAY['http://bad.test/a', 'http://bad.test/b'], 1, 'page') AS queued \gset
SELECT item_id AS mine FROM crawl_claim('owner', 1) \gset
SELECT item_id AS theirs FROM crawl_claim('other', 1) \gset

-- A digest of every data row: compared before and after the bad calls.
CREATE FUNCTION pg_temp.digest() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(t::text, ',' ORDER BY id) FROM public.crawl_sessions t),
        (SELECT string_agg(t::text, ',' ORDER BY id) FROM public.crawl_frontier t),
        (SELECT string_agg(t::text, ',' ORDER BY host) FROM public.crawl_hosts t),
        (SELECT string_agg(t::text, ',' ORDER BY id) FROM public.images t)))
$$;
SELECT pg_temp.digest() AS before \gset

CREATE TEMP TABLE bad (sql text, code text, what text);
GRANT SELECT ON bad TO PUBLIC;
INSERT INTO bad
-- :path is where the store keeps the bytes of sha256 repeat('a', 64): a valid
-- file_path, so that each image_record case is about its one bad argument.
SELECT replace(replace(replace(replace(sql, ':path', $$'aa/aa/' || repeat('a', 64) || '.png'$$), ':s', :'s'),
                       ':mine', :'mine'), ':theirs', :'theirs'), code, what FROM (VALUES
    -- crawl_start
    ('SELECT crawl_start(NULL)', '22004', 'crawl_start: NULL seeds'),
    ('SELECT crawl_start(ARRAY[]::text[])', '22023', 'crawl_start: no seeds'),
    ('SELECT crawl_start(ARRAY[NULL]::text[])', '22004', 'crawl_start: a NULL seed'),
    ('SELECT crawl_start(ARRAY['''']::text[])', '22023', 'crawl_start: an empty seed'),
    ('SELECT crawl_start(ARRAY[''http://x.test/'' || repeat(''a'', 102400)])', '22001', 'crawl_start: a 100 kB seed'),
    ('SELECT crawl_start(ARRAY[''ftp://x.test/''])', '22023', 'crawl_start: ftp seed'),
    ('SELECT crawl_start(ARRAY[''file:///etc/passwd''])', '22023', 'crawl_start: file seed'),
    ('SELECT crawl_start(ARRAY[''javascript:alert(1)''])', '22023', 'crawl_start: javascript seed'),
    ('SELECT crawl_start(ARRAY[''http://''])', '22023', 'crawl_start: no host'),
    ('SELECT crawl_start(ARRAY[''http:///path''])', '22023', 'crawl_start: empty host'),
    ('SELECT crawl_start(ARRAY[''x.test/page''])', '22023', 'crawl_start: relative URL'),
    ('SELECT crawl_start(ARRAY[''http://x.test/ a''])', '22023', 'crawl_start: space in URL'),
    ('SELECT crawl_start(ARRAY[E''http://x.test/\n''])', '22023', 'crawl_start: newline in URL'),
    ('SELECT crawl_start(ARRAY[''http://x.test/é''])', '22023', 'crawl_start: non-ASCII URL'),
    ('SELECT crawl_start(ARRAY[''http://x.test/'''' OR 1=1 --''])', '22023', 'crawl_start: SQL fragment with spaces'),
    ('SELECT crawl_start(array_fill(''http://x.test/''::text, ARRAY[10001]))', '22023', 'crawl_start: too many seeds'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], NULL)', '22004', 'crawl_start: NULL options'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''"text"'')', '22023', 'crawl_start: options not an object'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_depth": -1}'')', '22023', 'crawl_start: negative max_depth'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_pages": 0}'')', '22023', 'crawl_start: zero max_pages'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_pages": 99999999999999999999}'')', '22023', 'crawl_start: huge max_pages'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"delay_ms": -5}'')', '22023', 'crawl_start: negative delay'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"per_host": 0}'')', '22023', 'crawl_start: zero per_host'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_depth": "1; DROP TABLE images"}'')', '22023', 'crawl_start: SQL in an option'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"allowed_domains": "x.test"}'')', '22023', 'crawl_start: allowed_domains not an array'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"allowed_domains": ["x.test''''--"]}'')', '22023', 'crawl_start: quote in a domain'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], jsonb_build_object(''user_agent'', repeat(''u'', 102400)))', '22023', 'crawl_start: 100 kB user agent'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"nonsense": 1}'')', '22023', 'crawl_start: unknown option'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"per_host": 2.5}'')', '22023', 'crawl_start: a fraction for per_host'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_attempts": 1.000001}'')', '22023', 'crawl_start: a fraction for max_attempts'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_depth": 0.5}'')', '22023', 'crawl_start: a fraction for max_depth'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_pages": 1e30}'')', '22023', 'crawl_start: 1e30 max_pages'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_pixels": 9223372036854775808}'')', '22023', 'crawl_start: 2^63 max_pixels'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_image_bytes": 9223372036854775808.0}'')', '22023', 'crawl_start: 2^63 written 2^63.0'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"delay_ms": 1e-400}'')', '22023', 'crawl_start: a tiny fraction for delay_ms'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"min_width": -1}'')', '22023', 'crawl_start: negative min_width'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"min_height": -0.5}'')', '22023', 'crawl_start: negative fraction min_height'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"per_host": "2"}'')', '22023', 'crawl_start: per_host as a string'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_attempts": null}'')', '22023', 'crawl_start: null max_attempts'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_depth": true}'')', '22023', 'crawl_start: boolean max_depth'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"max_page_bytes": [1]}'')', '22023', 'crawl_start: array max_page_bytes'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"robots": null}'')', '22023', 'crawl_start: null robots'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"images_any_host": 1}'')', '22023', 'crawl_start: number for images_any_host'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"user_agent": null}'')', '22023', 'crawl_start: null user_agent'),
    ('SELECT crawl_start(ARRAY[''http://x.test/''], ''{"allowed_domains": null}'')', '22023', 'crawl_start: null allowed_domains'),
    ('SELECT crawl_start(ARRAY[[''http://x.test/'']])', '22023', 'crawl_start: two-dimensional seeds'),
    ('SELECT crawl_start(ARRAY[[''http://x.test/a'', ''http://x.test/b''], [''http://x.test/c'', ''http://x.test/d'']])', '22023', 'crawl_start: a 2x2 array of seeds'),
    -- crawl_stop / crawl_status
    ('SELECT crawl_stop(NULL)', '22004', 'crawl_stop: NULL session'),
    ('SELECT crawl_stop(-1)', 'P0002', 'crawl_stop: negative session'),
    ('SELECT crawl_stop(9223372036854775807)', 'P0002', 'crawl_stop: huge session'),
    ('SELECT * FROM crawl_status(NULL)', '22004', 'crawl_status: NULL session'),
    ('SELECT * FROM crawl_status(-1)', 'P0002', 'crawl_status: unknown session'),
    -- crawl_enqueue
    ('SELECT crawl_enqueue(NULL, ARRAY[''http://bad.test/z''], 1, ''page'')', '22004', 'crawl_enqueue: NULL session'),
    ('SELECT crawl_enqueue(-7, ARRAY[''http://bad.test/z''], 1, ''page'')', 'P0002', 'crawl_enqueue: unknown session'),
    ('SELECT crawl_enqueue(:s, NULL, 1, ''page'')', '22004', 'crawl_enqueue: NULL urls'),
    ('SELECT crawl_enqueue(:s, ARRAY[NULL]::text[], 1, ''page'')', '22004', 'crawl_enqueue: a NULL url'),
    ('SELECT crawl_enqueue(:s, ARRAY[''''], 1, ''page'')', '22023', 'crawl_enqueue: an empty url'),
    ('SELECT crawl_enqueue(:s, ARRAY[''http://bad.test/'' || repeat(''q'', 102400)], 1, ''page'')', '22001', 'crawl_enqueue: a 100 kB url'),
    ('SELECT crawl_enqueue(:s, ARRAY[''http://bad.test/ok'', ''mailto:a@b.test''], 1, ''page'')', '22023', 'crawl_enqueue: one mailto among good URLs'),
    ('SELECT crawl_enqueue(:s, ARRAY[''http://bad.test/ok'', ''data:image/png;base64,AA''], 1, ''image'')', '22023', 'crawl_enqueue: a data: URL'),
    ('SELECT crawl_enqueue(:s, array_fill(''http://bad.test/x''::text, ARRAY[100001]), 1, ''page'')', '22023', 'crawl_enqueue: too many URLs'),
    ('SELECT crawl_enqueue(:s, ARRAY[''http://bad.test/z''], NULL, ''page'')', '22004', 'crawl_enqueue: NULL depth'),
    ('SELECT crawl_enqueue(:s, ARRAY[''http://bad.test/z''], -1, ''page'')', '22023', 'crawl_enqueue: negative depth'),
    ('SELECT crawl_enqueue(:s, ARRAY[''http://bad.test/z''], 2147483647, ''page'')', '22023', 'crawl_enqueue: huge depth'),
    ('SELECT crawl_enqueue(:s, ARRAY[''http://bad.test/z''], 1, NULL)', '22004', 'crawl_enqueue: NULL kind'),
    ('SELECT crawl_enqueue(:s, ARRAY[''http://bad.test/z''], 1, '''')', '22023', 'crawl_enqueue: empty kind'),
    ('SELECT crawl_enqueue(:s, ARRAY[''http://bad.test/z''], 1, ''page''''; DROP TABLE images; --'')', '22023', 'crawl_enqueue: SQL in kind'),
    ('SELECT crawl_enqueue(:s, ARRAY[''http://bad.test/z''], 1, ''page'', ''javascript:void(0)'')', '22023', 'crawl_enqueue: bad found_on'),
    ('SELECT crawl_enqueue(:s, ARRAY[[''http://bad.test/z'']], 1, ''page'')', '22023', 'crawl_enqueue: two-dimensional urls'),
    -- crawl_redirect_allowed
    ('SELECT crawl_redirect_allowed(NULL, ''http://bad.test/z'', ''page'')', '22004', 'crawl_redirect_allowed: NULL session'),
    ('SELECT crawl_redirect_allowed(-7, ''http://bad.test/z'', ''page'')', 'P0002', 'crawl_redirect_allowed: unknown session'),
    ('SELECT crawl_redirect_allowed(:s, NULL, ''page'')', '22004', 'crawl_redirect_allowed: NULL url'),
    ('SELECT crawl_redirect_allowed(:s, '''', ''page'')', '22023', 'crawl_redirect_allowed: empty url'),
    ('SELECT crawl_redirect_allowed(:s, ''http://bad.test/'' || repeat(''q'', 102400), ''page'')', '22001', 'crawl_redirect_allowed: a 100 kB url'),
    ('SELECT crawl_redirect_allowed(:s, ''file:///etc/passwd'', ''page'')', '22023', 'crawl_redirect_allowed: file url'),
    ('SELECT crawl_redirect_allowed(:s, ''http://bad.test/z'', NULL)', '22004', 'crawl_redirect_allowed: NULL kind'),
    ('SELECT crawl_redirect_allowed(:s, ''http://bad.test/z'', ''page''''; DROP TABLE images; --'')', '22023', 'crawl_redirect_allowed: SQL in kind'),
    -- crawl_enqueue_many
    ('SELECT crawl_enqueue_many(NULL, ARRAY[''http://bad.test/z''], ARRAY[''page''], ARRAY[1], ARRAY[NULL]::text[])', '22004', 'crawl_enqueue_many: NULL session'),
    ('SELECT crawl_enqueue_many(-7, ARRAY[''http://bad.test/z''], ARRAY[''page''], ARRAY[1], ARRAY[NULL]::text[])', 'P0002', 'crawl_enqueue_many: unknown session'),
    ('SELECT crawl_enqueue_many(:s, ARRAY[''http://bad.test/z''], NULL, ARRAY[1], ARRAY[NULL]::text[])', '22004', 'crawl_enqueue_many: NULL kinds'),
    ('SELECT crawl_enqueue_many(:s, ARRAY[''http://bad.test/z''], ARRAY[''page''], ARRAY[1, 2], ARRAY[NULL]::text[])', '22023', 'crawl_enqueue_many: arrays of different lengths'),
    ('SELECT crawl_enqueue_many(:s, ARRAY[''http://bad.test/z''], ARRAY[''page''''; DROP TABLE images; --''], ARRAY[1], ARRAY[NULL]::text[])', '22023', 'crawl_enqueue_many: SQL in kind'),
    ('SELECT crawl_enqueue_many(:s, ARRAY[''http://bad.test/z''], ARRAY[''page''], ARRAY[2147483647], ARRAY[NULL]::text[])', '22023', 'crawl_enqueue_many: huge depth'),
    ('SELECT crawl_enqueue_many(:s, ARRAY[''http://bad.test/z'', ''mailto:a@b.test''], ARRAY[''page'', ''page''], ARRAY[1, 1], ARRAY[NULL, NULL]::text[])', '22023', 'crawl_enqueue_many: one mailto among good URLs'),
    ('SELECT crawl_enqueue_many(:s, array_fill(''http://bad.test/x''::text, ARRAY[100001]), array_fill(''page''::text, ARRAY[100001]), array_fill(1, ARRAY[100001]), array_fill(NULL::text, ARRAY[100001]))', '22023', 'crawl_enqueue_many: too many URLs'),
    ('SELECT crawl_enqueue_many(:s, ARRAY[''http://bad.test/z''], ARRAY[''page''], ARRAY[1], ARRAY[''javascript:void(0)''])', '22023', 'crawl_enqueue_many: bad found_on'),
    ('SELECT crawl_enqueue_many(:s, ARRAY[[''http://bad.test/z'']], ARRAY[[''page'']], ARRAY[[1]], ARRAY[[NULL]]::text[])', '22023', 'crawl_enqueue_many: two-dimensional arrays'),
    ('SELECT crawl_enqueue_many(:s, ARRAY[[''http://bad.test/y'', ''http://bad.test/z'']], ARRAY[''page'', ''page''], ARRAY[1, 1], ARRAY[NULL, NULL]::text[])', '22023', 'crawl_enqueue_many: two-dimensional urls, the rest flat'),
    ('SELECT crawl_enqueue_many(:s, ARRAY[''http://bad.test/z''], ARRAY[[''page'']], ARRAY[1], ARRAY[NULL]::text[])', '22023', 'crawl_enqueue_many: two-dimensional kinds'),
    ('SELECT crawl_enqueue_many(:s, ARRAY[''http://bad.test/z''], ARRAY[''page''], ARRAY[[1]], ARRAY[NULL]::text[])', '22023', 'crawl_enqueue_many: two-dimensional depths'),
    ('SELECT crawl_enqueue_many(:s, ARRAY[''http://bad.test/z''], ARRAY[''page''], ARRAY[1], ARRAY[[NULL]]::text[])', '22023', 'crawl_enqueue_many: two-dimensional found_on'),
    -- crawl_claim
    ('SELECT * FROM crawl_claim(NULL)', '22004', 'crawl_claim: NULL worker'),
    ('SELECT * FROM crawl_claim('''')', '22023', 'crawl_claim: empty worker'),
    ('SELECT * FROM crawl_claim(repeat(''w'', 102400))', '22001', 'crawl_claim: 100 kB worker'),
    ('SELECT * FROM crawl_claim(''w''''; DROP TABLE images; --'')', '22023', 'crawl_claim: SQL in worker'),
    ('SELECT * FROM crawl_claim(''w'', NULL)', '22004', 'crawl_claim: NULL max_items'),
    ('SELECT * FROM crawl_claim(''w'', -1)', '22023', 'crawl_claim: negative max_items'),
    ('SELECT * FROM crawl_claim(''w'', 2147483647)', '22023', 'crawl_claim: huge max_items'),
    ('SELECT * FROM crawl_claim(''w'', 1, NULL)', '22004', 'crawl_claim: NULL lease'),
    ('SELECT * FROM crawl_claim(''w'', 1, ''-1 s'')', '22023', 'crawl_claim: negative lease'),
    ('SELECT * FROM crawl_claim(''w'', 1, ''1000 years'')', '22023', 'crawl_claim: huge lease'),
    -- crawl_renew / crawl_release
    ('SELECT crawl_renew(NULL, ARRAY[:mine]::bigint[])', '22004', 'crawl_renew: NULL worker'),
    ('SELECT crawl_renew(''owner'', NULL)', '22004', 'crawl_renew: NULL items'),
    ('SELECT crawl_renew(''owner'', ARRAY[:mine]::bigint[], NULL)', '22004', 'crawl_renew: NULL lease'),
    ('SELECT crawl_renew(''owner'', ARRAY[:mine]::bigint[], ''0 s'')', '22023', 'crawl_renew: zero lease'),
    ('SELECT crawl_release(NULL, ARRAY[:mine]::bigint[])', '22004', 'crawl_release: NULL worker'),
    ('SELECT crawl_release(''owner'', NULL)', '22004', 'crawl_release: NULL items'),
    ('SELECT crawl_release(repeat(''w'', 102400), ARRAY[:mine]::bigint[])', '22001', 'crawl_release: 100 kB worker'),
    ('SELECT crawl_renew(''owner'', ARRAY[[:mine]]::bigint[])', '22023', 'crawl_renew: two-dimensional items'),
    ('SELECT crawl_release(''owner'', ARRAY[[:mine]]::bigint[])', '22023', 'crawl_release: two-dimensional items'),
    -- crawl_complete
    ('SELECT crawl_complete(NULL, ''owner'')', '22004', 'crawl_complete: NULL item'),
    ('SELECT crawl_complete(-1, ''owner'')', 'P0002', 'crawl_complete: unknown item'),
    ('SELECT crawl_complete(9223372036854775807, ''owner'')', 'P0002', 'crawl_complete: huge item'),
    ('SELECT crawl_complete(:mine, NULL)', '22004', 'crawl_complete: NULL worker'),
    ('SELECT crawl_complete(:theirs, ''owner'')', '55000', 'crawl_complete: someone else''s lease'),
    ('SELECT crawl_complete(:mine, ''owner'', NULL)', '22004', 'crawl_complete: NULL result'),
    ('SELECT crawl_complete(:mine, ''owner'', ''[1]'')', '22023', 'crawl_complete: result not an object'),
    ('SELECT crawl_complete(:mine, ''owner'', jsonb_build_object(''x'', repeat(''r'', 102400)))', '54000', 'crawl_complete: 100 kB result'),
    -- crawl_fail
    ('SELECT crawl_fail(NULL, ''owner'', ''e'')', '22004', 'crawl_fail: NULL item'),
    ('SELECT crawl_fail(-1, ''owner'', ''e'')', 'P0002', 'crawl_fail: unknown item'),
    ('SELECT crawl_fail(:mine, NULL, ''e'')', '22004', 'crawl_fail: NULL worker'),
    ('SELECT crawl_fail(:mine, ''owner'', NULL)', '22004', 'crawl_fail: NULL error'),
    ('SELECT crawl_fail(:mine, ''owner'', repeat(''e'', 102400))', '22001', 'crawl_fail: 100 kB error'),
    ('SELECT crawl_fail(:mine, ''owner'', ''e'', ''-1 s'')', '22023', 'crawl_fail: negative retry_after'),
    ('SELECT crawl_fail(:mine, ''owner'', ''e'', ''100 years'')', '22023', 'crawl_fail: huge retry_after'),
    ('SELECT crawl_fail(:theirs, ''owner'', ''e'')', '55000', 'crawl_fail: someone else''s lease'),
    -- crawl_host_set
    ('SELECT crawl_host_set(NULL)', '22004', 'crawl_host_set: NULL host'),
    ('SELECT crawl_host_set('''')', '22023', 'crawl_host_set: empty host'),
    ('SELECT crawl_host_set(repeat(''h'', 102400))', '22023', 'crawl_host_set: 100 kB host'),
    ('SELECT crawl_host_set(''x.test''''; DROP TABLE images; --'')', '22023', 'crawl_host_set: SQL in host'),
    ('SELECT crawl_host_set(''x.test'', ''-1 s'')', '22023', 'crawl_host_set: negative delay'),
    ('SELECT crawl_host_set(''x.test'', ''100 years'')', '22023', 'crawl_host_set: huge delay'),
    ('SELECT crawl_host_set(''x.test'', NULL, repeat(''r'', 600000))', '22001', 'crawl_host_set: huge robots.txt'),
    ('SELECT crawl_host_set(''x.test'', NULL, NULL, ''infinity'')', '22023', 'crawl_host_set: endless back-off'),
    -- image_record
    ('SELECT image_record(NULL, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'')', '22004', 'image_record: NULL session'),
    ('SELECT image_record(-3, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'')', 'P0002', 'image_record: unknown session'),
    ('SELECT image_record(:s, NULL, repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'')', '22004', 'image_record: NULL url'),
    ('SELECT image_record(:s, '''', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: empty url'),
    ('SELECT image_record(:s, ''http://bad.test/'' || repeat(''i'', 102400), repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'')', '22001', 'image_record: 100 kB url'),
    ('SELECT image_record(:s, ''gopher://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: non-http url'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', NULL, :path, 1, 1, 1, ''png'', ''image/png'')', '22004', 'image_record: NULL sha256'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', '''', :path, 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: empty sha256'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''A'', 64), :path, 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: upper-case sha256'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 102400), :path, 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: 100 kB sha256'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), NULL, 1, 1, 1, ''png'', ''image/png'')', '22004', 'image_record: NULL file_path'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), '''', 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: empty file_path'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''a/../../b'', 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: path traversal'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), repeat(:path, 102400), 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: 100 kB file_path'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, NULL, 1, 1, ''png'', ''image/png'')', '22004', 'image_record: NULL file_size'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, -1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: negative file_size'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 9223372036854775807, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: huge file_size'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, -1, 1, ''png'', ''image/png'')', '22023', 'image_record: negative width'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 2147483647, ''png'', ''image/png'')', '22023', 'image_record: huge height'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, repeat(''f'', 102400), ''image/png'')', '22001', 'image_record: 100 kB format'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', repeat(''c'', 102400))', '22001', 'image_record: 100 kB content_type'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', ''not a url'')', '22023', 'image_record: bad found_on'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', http_status => -1)', '22023', 'image_record: negative http_status'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', filename => repeat(''n'', 102400))', '22001', 'image_record: 100 kB filename'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', item => :theirs, worker => ''owner'')', '55000', 'image_record: someone else''s lease'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', item => :mine)', '22023', 'image_record: item without worker'),
    -- file_path is the file's place in the content-addressed store, nothing else
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''/etc/shadow'', 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: absolute file_path'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''../x'', 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: file_path ../x'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''aa/aa/../../'' || repeat(''a'', 64) || ''.png'', 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: file_path through ..'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''/aa/aa/'' || repeat(''a'', 64) || ''.png'', 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: store path made absolute'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''aa/aa/'' || repeat(''b'', 64) || ''.png'', 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: file_path of another sha256'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''bb/aa/'' || repeat(''a'', 64) || ''.png'', 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: file_path in the wrong directory'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''aa/aa/'' || repeat(''a'', 64), 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: file_path without an extension'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''aa/aa/'' || repeat(''a'', 64) || ''.PNG'', 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: upper-case extension'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''aa/aa/'' || repeat(''a'', 64) || ''.png/x'', 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: file_path below the file'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''aa/aa/'' || repeat(''a'', 64) || E''.png\n'', 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: newline after the path'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), ''aa/aa/'' || repeat(''a'', 64) || ''.png'' || repeat(''x'', 102400), 1, 1, 1, ''png'', ''image/png'')', '22023', 'image_record: 100 kB extension'),
    -- no control characters in what people read
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, E''png\x1b[2J'', ''image/png'')', '22023', 'image_record: escape sequence in format'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''PNG'', ''image/png'')', '22023', 'image_record: upper-case format'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, '''', ''image/png'')', '22023', 'image_record: empty format'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', E''image/png\r\nX-Evil: 1'')', '22023', 'image_record: CR LF in content_type'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', E''image/png\x7f'')', '22023', 'image_record: DEL in content_type'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', E''image/\u009bpng'')', '22023', 'image_record: C1 control in content_type'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', filename => E''a\tb.png'')', '22023', 'image_record: tab in filename'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', filename => E''\x1b]0;pwned\x07.png'')', '22023', 'image_record: terminal escape in filename'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', filename => E''a\u0085b.png'')', '22023', 'image_record: C1 next-line in filename'),
    -- a re-crawl's validators and confirmations
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', etag => E''"a"\r\nSet-Cookie: x=1'')', '22023', 'image_record: CR LF in etag'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', etag => repeat(''e'', 102400))', '22023', 'image_record: 100 kB etag'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', last_modified => '''')', '22023', 'image_record: empty last_modified'),
    ('SELECT image_record(:s, ''http://bad.test/i.png'', repeat(''a'', 64), :path, 1, 1, 1, ''png'', ''image/png'', last_modified => E''Wed, 21 Oct 2015 \u00e9'')', '22023', 'image_record: non-ASCII last_modified'),
    ('SELECT image_unchanged(NULL, ''http://bad.test/i.png'', true)', '22004', 'image_unchanged: NULL session'),
    ('SELECT image_unchanged(:s, NULL, true)', '22004', 'image_unchanged: NULL url'),
    ('SELECT image_unchanged(:s, ''http://bad.test/i.png'', NULL)', '22004', 'image_unchanged: NULL fetched'),
    ('SELECT image_unchanged(:s, ''http://bad.test/i.png'', true, 1)', '22023', 'image_unchanged: item without worker'),
    ('SELECT image_unchanged(:s, ''http://bad.test/i.png'', true, NULL, ''w'')', '22023', 'image_unchanged: worker without item'),
    ('SELECT image_unchanged(-3, ''http://bad.test/i.png'', true)', 'P0002', 'image_unchanged: unknown session'),
    -- image_get / image_delete
    ('SELECT * FROM image_get(NULL)', '22004', 'image_get: NULL id'),
    ('SELECT image_delete(NULL)', '22004', 'image_delete: NULL id')
) AS cases(sql, code, what);

SET ROLE tap_bad;
SET search_path = public;
SELECT throws_ok(sql, code, NULL, what || ' -> ' || code) FROM bad;
RESET ROLE;

SELECT is(pg_temp.digest(), :'before', 'none of the bad calls changed any row');
SELECT is((SELECT state FROM crawl_frontier WHERE id = :theirs), 'leased', 'the other worker''s lease is intact');
-- Unknown ids for get/delete are not errors: no row, false.
SELECT is((SELECT count(*) FROM image_get(-1)), 0::bigint, 'image_get of an unknown id returns no row');
SELECT is(image_delete(9223372036854775807), false, 'image_delete of an unknown id returns false');

SELECT * FROM finish();
ROLLBACK;
