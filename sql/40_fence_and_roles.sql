-- Least privilege: the writer only calls the write API; nobody writes tables
-- directly; PUBLIC gets nothing. The write fence refuses with 25006.
\set SHOW_CONTEXT never
CREATE ROLE regress_crawler LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE regress_viewer LOGIN IN ROLE crawler_ha_reader;
CREATE ROLE regress_nobody LOGIN;

SET ROLE regress_crawler;
SELECT crawl_start(ARRAY['http://roles.test/'], '{"delay_ms": 0}') AS s \gset
SELECT count(*) > 0 AS can_read FROM crawl_frontier;
INSERT INTO images (url, file_path, file_size, sha256) VALUES ('http://x.test/a', 'p', 1, repeat('a', 64));
UPDATE crawl_frontier SET state = 'done';
DELETE FROM crawl_sessions;
TRUNCATE crawl_hosts;
UPDATE ha_node SET node_id = 2;
SELECT nextval('images_id_seq');
SELECT crawl_url_host('http://x.test/');
SELECT crawl_finish_if_idle(:s);
SELECT ha_set_node_id(3);
RESET ROLE;

SET ROLE regress_viewer;
SELECT count(*) AS sessions_visible FROM crawl_sessions WHERE id = :s;
SELECT status FROM crawl_status(:s);
SELECT crawl_start(ARRAY['http://roles.test/']);
SELECT image_delete(1);
SELECT crawl_next_claim_in();
RESET ROLE;

SET ROLE regress_nobody;
SELECT count(*) FROM images;
SELECT * FROM crawl_claim('w');
SELECT * FROM crawl_status(:s);
RESET ROLE;

-- Functions that write are SECURITY DEFINER with a fixed search_path; a
-- hostile object earlier in the caller's search_path changes nothing.
CREATE SCHEMA hostile;
CREATE FUNCTION hostile.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT 'pwned' $$;
CREATE TABLE hostile.crawl_frontier (id int);
SET search_path = hostile, public;
SELECT crawl_enqueue(:s, ARRAY['http://roles.test/Mixed'], 1, 'page');
SELECT host FROM public.crawl_frontier WHERE url = 'http://roles.test/Mixed';
RESET search_path;
DROP SCHEMA hostile CASCADE;

-- The fence: a server whose default is read-only refuses every write with
-- 25006, even inside BEGIN READ WRITE or after SET in the session. The
-- server's setting is what counts (the HA worker reads it at each reload),
-- never a session's own, which its client can change.
ALTER SYSTEM SET default_transaction_read_only = on;
SELECT pg_reload_conf();
DO $$
BEGIN
    FOR i IN 1..1000 LOOP
        BEGIN
            PERFORM ha_assert_writable();
        EXCEPTION WHEN read_only_sql_transaction THEN
            RETURN;
        END;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RAISE EXCEPTION 'the fence did not see the server turn read-only';
END
$$;
\c
SELECT crawl_start(ARRAY['http://fence.test/']);
BEGIN READ WRITE;
SELECT crawl_enqueue(:s, ARRAY['http://roles.test/x'], 1, 'page');
ROLLBACK;
SET default_transaction_read_only = off;
SELECT image_record(:s, 'http://roles.test/i.png', repeat('ab', 32), 'ab/ab/' || repeat('ab', 32) || '.png', 1, 1, 1, 'png', 'image/png');
SELECT * FROM crawl_claim('w');
-- Reading still works on a read-only node.
SELECT status FROM crawl_status(:s);
ALTER SYSTEM RESET default_transaction_read_only;
SELECT pg_reload_conf();
DO $$
BEGIN
    FOR i IN 1..1000 LOOP
        BEGIN
            PERFORM ha_assert_writable();
            RETURN;
        EXCEPTION WHEN read_only_sql_transaction THEN
            PERFORM pg_sleep(0.01);
        END;
    END LOOP;
    RAISE EXCEPTION 'the fence did not see the server turn writable';
END
$$;
\c
SELECT crawl_enqueue(:s, ARRAY['http://roles.test/after'], 1, 'page');

DROP OWNED BY regress_crawler, regress_viewer, regress_nobody;
DROP ROLE regress_crawler, regress_viewer, regress_nobody;
