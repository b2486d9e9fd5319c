-- Sessions: start, stop, status. Write functions check the fence first.

-- A running session with nothing queued or leased is finished. Called by
-- crawl_status and by a claim that finds nothing to hand out.
CREATE FUNCTION @extschema@.crawl_finish_if_idle(session bigint)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE @extschema@.crawl_sessions s
       SET status = 'finished', finished_at = now(), updated_at = now()
     WHERE s.id = session AND s.status = 'running'
       AND NOT EXISTS (SELECT 1 FROM @extschema@.crawl_frontier f
                        WHERE f.session_id = session AND f.state IN ('queued', 'leased'))
    RETURNING true
$$;
COMMENT ON FUNCTION @extschema@.crawl_finish_if_idle(bigint) IS
    'crawler_ha (internal): mark a running session finished when its queue is empty';

CREATE FUNCTION @extschema@.crawl_start(seeds text[], options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    settings jsonb;
    session bigint;
    seed text;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    IF seeds IS NULL THEN
        RAISE EXCEPTION 'seeds must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.crawl_check_list(seeds, 'seeds');
    IF cardinality(seeds) = 0 OR cardinality(seeds) > 10000 THEN
        RAISE EXCEPTION 'a crawl needs between 1 and 10000 seeds, got %', cardinality(seeds)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH seed IN ARRAY seeds LOOP
        PERFORM @extschema@.crawl_url_host(seed, 'seed');
    END LOOP;
    settings := @extschema@.crawl_settings(options, seeds);

    INSERT INTO @extschema@.crawl_sessions (seeds, settings)
    VALUES (seeds, settings)
    RETURNING id INTO session;
    PERFORM @extschema@.crawl_enqueue(session, seeds, 0, 'page', NULL);
    RETURN session;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_start(text[], jsonb) IS
    'crawler_ha: start a crawl of the seed URLs with the given options (see docs/api.md); returns the session id';

CREATE FUNCTION @extschema@.crawl_stop(session bigint)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    IF session IS NULL THEN
        RAISE EXCEPTION 'session must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.crawl_sessions s WHERE s.id = session) THEN
        RAISE EXCEPTION 'crawl session % does not exist', session USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE @extschema@.crawl_sessions s
       SET status = 'stopped', finished_at = now(), updated_at = now()
     WHERE s.id = session AND s.status = 'running';
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_stop(bigint) IS
    'crawler_ha: stop a running crawl; its queued URLs are no longer handed out. False when it was not running';

CREATE FUNCTION @extschema@.crawl_status(session bigint)
RETURNS TABLE (session_id bigint, status text, started_at timestamptz, finished_at timestamptz,
               pages_fetched bigint, images_found bigint, images_stored bigint, bytes_stored bigint,
               errors bigint, retries bigint, queued bigint, leased bigint, done bigint, failed bigint,
               success_rate numeric)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF session IS NULL THEN
        RAISE EXCEPTION 'session must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.crawl_sessions s WHERE s.id = session) THEN
        RAISE EXCEPTION 'crawl session % does not exist', session USING ERRCODE = 'no_data_found';
    END IF;
    -- Finishing is a write; a read-only node reports what it has.
    IF NOT pg_catalog.current_setting('transaction_read_only')::boolean THEN
        BEGIN
            PERFORM @extschema@.ha_assert_writable();
            PERFORM @extschema@.crawl_finish_if_idle(session);
        EXCEPTION WHEN read_only_sql_transaction THEN
            NULL;
        END;
    END IF;
    RETURN QUERY
    SELECT s.id, s.status, s.started_at, s.finished_at, s.pages_fetched, s.images_found,
           s.images_stored, s.bytes_stored, s.errors, s.retries,
           count(*) FILTER (WHERE f.state = 'queued'),
           count(*) FILTER (WHERE f.state = 'leased'),
           count(*) FILTER (WHERE f.state = 'done'),
           count(*) FILTER (WHERE f.state = 'failed'),
           round((s.pages_fetched + s.images_stored)::numeric
                 / NULLIF(s.pages_fetched + s.images_stored + s.errors, 0), 4)
      FROM @extschema@.crawl_sessions s
      LEFT JOIN @extschema@.crawl_frontier f ON f.session_id = s.id
     WHERE s.id = session
     GROUP BY s.id;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_status(bigint) IS
    'crawler_ha: a crawl''s counters, queue by state and success rate ((pages fetched + images stored) / (those + errors))';

-- What a worker needs of a session's settings, typed, with crawl_settings()'s
-- defaults already in (every session has them all): a worker reads them
-- here, not from crawl_sessions' JSON.  NULL: every running session.
CREATE FUNCTION @extschema@.crawl_session_settings(session bigint)
RETURNS TABLE (session_id bigint, status text, user_agent text, robots boolean,
               max_page_bytes bigint, max_image_bytes bigint, max_pixels bigint,
               min_width integer, min_height integer, max_attempts integer,
               images_any_host boolean, allowed_domains text[])
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.id, s.status, s.settings ->> 'user_agent', (s.settings ->> 'robots')::boolean,
           (s.settings ->> 'max_page_bytes')::bigint, (s.settings ->> 'max_image_bytes')::bigint,
           (s.settings ->> 'max_pixels')::bigint, (s.settings ->> 'min_width')::integer,
           (s.settings ->> 'min_height')::integer, (s.settings ->> 'max_attempts')::integer,
           (s.settings ->> 'images_any_host')::boolean,
           ARRAY(SELECT pg_catalog.jsonb_array_elements_text(s.settings -> 'allowed_domains'))
      FROM @extschema@.crawl_sessions s
     WHERE s.id = session OR (session IS NULL AND s.status = 'running')
$$;
COMMENT ON FUNCTION @extschema@.crawl_session_settings(bigint) IS
    'crawler_ha: a session''s settings as a worker applies them (NULL: every running session)';
