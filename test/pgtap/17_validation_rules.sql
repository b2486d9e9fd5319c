-- The URL and image rules in C (crawl_validate.c) against the regular
-- expressions they replaced, kept here as the oracle: the same answer for
-- every URL built from hostile pieces, every control character, and every
-- combination of good and bad image columns. Everything rolls back.
BEGIN;
SELECT * FROM no_plan();

CREATE FUNCTION pg_temp.host_re(url text) RETURNS text LANGUAGE sql IMMUTABLE
RETURN CASE WHEN length(url) <= 2048 AND url ~ '^[!-~]+$'
            THEN lower(substring(url,
                     '^[Hh][Tt][Tt][Pp][Ss]?://(?:[^/?#@]*@)?([A-Za-z0-9._~%!$&''()*+,;=\[\]-]+(?::[0-9]{1,5})?)(?:[/?#]|$)'))
       END;
CREATE FUNCTION pg_temp.text_ok_re(value text) RETURNS boolean LANGUAGE sql IMMUTABLE
RETURN value !~ '[\x01-\x1f\x7f-\x9f]';
CREATE FUNCTION pg_temp.problem_re(url text, sha256 text, file_path text, file_size bigint, width integer,
                                   height integer, format text, content_type text, found_on text,
                                   http_status integer, filename text)
RETURNS text LANGUAGE sql IMMUTABLE
RETURN CASE WHEN NOT coalesce(sha256 ~ '^[0-9a-f]{64}$', false) THEN 'sha256'
            WHEN NOT coalesce(file_path ~ '^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{1,16}$'
                              AND left(file_path, 71) = substr(sha256, 1, 2) || '/' || substr(sha256, 3, 2)
                                                        || '/' || sha256 || '.', false) THEN 'file_path'
            WHEN NOT coalesce(file_size BETWEEN 0 AND 1099511627776, false) THEN 'file_size'
            WHEN width NOT BETWEEN 0 AND 1000000 OR height NOT BETWEEN 0 AND 1000000 THEN 'width or height'
            WHEN format !~ '^[a-z0-9][a-z0-9.+-]{0,31}$' THEN 'format'
            WHEN length(content_type) > 255 OR NOT pg_temp.text_ok_re(content_type) THEN 'content_type'
            WHEN length(filename) > 1024 OR NOT pg_temp.text_ok_re(filename) THEN 'filename'
            WHEN http_status NOT BETWEEN 100 AND 599 THEN 'http_status'
            WHEN pg_temp.host_re(url) IS NULL THEN 'url'
            WHEN found_on IS NOT NULL AND pg_temp.host_re(found_on) IS NULL THEN 'found_on'
       END;

-- URLs: every combination of scheme, separator, user part, host, port and what follows.
CREATE TEMP TABLE urls AS
SELECT s1.p || s2.p || s3.p || s4.p || s5.p AS u
  FROM (VALUES ('http'), ('HTTPS'), ('hTtP'), ('ftp'), ('https'), ('httpss'), ('')) s1(p),
       (VALUES ('://'), (':/'), ('://u@'), ('://u:p@'), ('://@'), ('://a/b@'), ('//')) s2(p),
       (VALUES (''), ('a'), ('A.B'), ('[::1]'), ('x_y~z'), ('h@i'), ('é'), ('%41'), ('!$&''()*+,;='), ('a b'), (E'a\tb'), ('a"b')) s3(p),
       (VALUES (''), (':'), (':1'), (':65535'), (':123456'), (':x'), ('::1')) s4(p),
       (VALUES (''), ('/'), ('?'), ('#'), ('/a@b'), (' '), ('\'), ('@'), ('/é'), (E'\x7f')) s5(p)
UNION ALL SELECT NULL UNION ALL SELECT '' UNION ALL SELECT 'http://' || repeat('a', 2041) UNION ALL SELECT 'http://' || repeat('a', 2042);
SELECT cmp_ok((SELECT count(*) FROM urls WHERE pg_temp.host_re(u) IS NOT NULL), '>', 1000::bigint,
              'the URL corpus holds valid URLs too');
SELECT is((SELECT count(*) FROM urls WHERE pg_temp.host_re(u) IS DISTINCT FROM crawl_url_host_of(u)), 0::bigint,
          'crawl_url_host_of(): the same host as the regular expression for each of '
          || (SELECT count(*) FROM urls) || ' URLs');

SELECT is((SELECT count(*) FROM (SELECT chr(c) AS t FROM generate_series(1, 1200) c
                                 UNION ALL SELECT 'ab' || chr(c) || 'cd' FROM generate_series(1, 1200) c
                                 UNION ALL SELECT NULL) x
            WHERE pg_temp.text_ok_re(t) IS DISTINCT FROM crawl_text_ok(t)), 0::bigint,
          'crawl_text_ok(): the same answer for U+0001 to U+04B0, alone and inside text, and NULL');

-- Image rows: each column good, bad in each way, and NULL, against the others.
SELECT is((
  WITH h AS (SELECT encode(sha256('x'::bytea), 'hex') AS s)
  SELECT count(*) FILTER (WHERE pg_temp.problem_re(u, sh, fp, fs, w, hh, fm, ct, fo, st, fn)
                                IS DISTINCT FROM image_problem(u, sh, fp, fs, w, hh, fm, ct, fo, st, fn))
    FROM h,
     LATERAL (VALUES ('http://a/x.png'), (NULL), ('bad')) u(u),
     LATERAL (VALUES (h.s), (upper(h.s)), (NULL)) sh(sh),
     LATERAL (VALUES (left(h.s, 2) || '/' || substr(h.s, 3, 2) || '/' || h.s || '.png'),
                     (left(h.s, 2) || '/' || substr(h.s, 3, 2) || '/' || h.s || '.'),
                     (left(h.s, 2) || '/' || substr(h.s, 3, 2) || '/' || h.s || '.' || repeat('a', 16)),
                     (left(h.s, 2) || '/' || substr(h.s, 3, 2) || '/' || h.s || '.' || repeat('a', 17)),
                     (left(h.s, 2) || '/' || substr(h.s, 3, 2) || '/' || h.s || '.PNG'),
                     ('00/00/' || h.s || '.png'), (NULL), ('../' || h.s)) fp(fp),
     LATERAL (VALUES (1099511627776::bigint), (-1), (NULL)) fs(fs),
     LATERAL (VALUES (1, 1), (NULL, -1), (1000001, NULL), (NULL, NULL)) wh(w, hh),
     LATERAL (VALUES ('a+b-c.d'), ('.png'), (repeat('a', 33)), (NULL)) fm(fm),
     LATERAL (VALUES (repeat('é', 255)), (E'a\x01'), (repeat('é', 256)), (NULL)) ct(ct),
     LATERAL (VALUES (NULL), ('http://b/'), ('x')) fo(fo),
     LATERAL (VALUES (599), (99), (NULL)) st(st),
     LATERAL (VALUES (repeat('y', 1024)), (E'f\x1f'), (NULL)) fn(fn)), 0::bigint,
  'image_problem(): the same first broken column as the regular expressions for every combination');
SELECT ok(image_problem('http://a/x.png', encode(sha256('x'::bytea), 'hex'),
                        left(encode(sha256('x'::bytea), 'hex'), 2) || '/' || substr(encode(sha256('x'::bytea), 'hex'), 3, 2)
                        || '/' || encode(sha256('x'::bytea), 'hex') || '.png', 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL) IS NULL,
          'a row with every optional column NULL has no problem');

SELECT * FROM finish();
ROLLBACK;
