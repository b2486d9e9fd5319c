-- Sessions: start, stop, status. Write functions check the fence first.

-- Counters (crawl_counts.c). The write API adds to them through
-- crawl_count(), the frontier's rows by state through the trigger below;
-- both are written when the transaction commits, to this backend's own row
-- of crawl_session_counts. Within the writing transaction, the totals do not
-- show them yet.
CREATE FUNCTION @extschema@.crawl_count(session bigint, pages_queued bigint DEFAULT 0, pages_fetched bigint DEFAULT 0,
                                        images_found bigint DEFAULT 0, images_stored bigint DEFAULT 0,
                                        bytes_stored bigint DEFAULT 0, errors bigint DEFAULT 0,
                                        retries bigint DEFAULT 0, images_changed bigint DEFAULT 0,
                                        images_unchanged bigint DEFAULT 0, images_fresh bigint DEFAULT 0)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'crawl_count';
COMMENT ON FUNCTION @extschema@.crawl_count(bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint) IS
    'crawler_ha (internal): adds to a session''s counters when this transaction commits';

CREATE FUNCTION @extschema@.crawl_counts_flush()
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'crawl_counts_flush';
COMMENT ON FUNCTION @extschema@.crawl_counts_flush() IS
    'crawler_ha (internal): writes this transaction''s pending counters now';

CREATE FUNCTION @extschema@.crawl_frontier_count()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'crawl_frontier_count';
COMMENT ON FUNCTION @extschema@.crawl_frontier_count() IS
    'crawler_ha (internal): keeps a session''s frontier rows by state counted';
CREATE TRIGGER crawl_frontier_count AFTER INSERT OR DELETE OR UPDATE OF state ON @extschema@.crawl_frontier
    FOR EACH ROW EXECUTE FUNCTION @extschema@.crawl_frontier_count();

-- The pages a session has queued, this transaction's included: what the
-- page budget (max_pages) is spent against. Its callers hold the session's
-- row FOR UPDATE, so no other transaction queues pages meanwhile.
CREATE FUNCTION @extschema@.crawl_pages_queued(session bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.crawl_counts_flush();
    RETURN (SELECT coalesce(sum(c.pages_queued), 0)::bigint FROM @extschema@.crawl_session_counts c
             WHERE c.session_id = session);
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_pages_queued(bigint) IS
    'crawler_ha (internal): the pages a session has queued, this transaction''s included';

-- Every session's totals: the sums of its counters' rows (0 without any).
-- Read one session at a time, it costs its few rows, whatever the size of
-- the frontier or of images.
CREATE VIEW @extschema@.crawl_session_totals AS
SELECT s.id AS session_id,
       coalesce(sum(c.pages_queued), 0)::bigint AS pages_queued,
       coalesce(sum(c.pages_fetched), 0)::bigint AS pages_fetched,
       coalesce(sum(c.images_found), 0)::bigint AS images_found,
       coalesce(sum(c.images_stored), 0)::bigint AS images_stored,
       coalesce(sum(c.bytes_stored), 0)::bigint AS bytes_stored,
       coalesce(sum(c.errors), 0)::bigint AS errors,
       coalesce(sum(c.retries), 0)::bigint AS retries,
       coalesce(sum(c.queued), 0)::bigint AS queued,
       coalesce(sum(c.leased), 0)::bigint AS leased,
       coalesce(sum(c.done), 0)::bigint AS done,
       coalesce(sum(c.failed), 0)::bigint AS failed,
       coalesce(sum(c.images_changed), 0)::bigint AS images_changed,
       coalesce(sum(c.images_unchanged), 0)::bigint AS images_unchanged,
       coalesce(sum(c.images_fresh), 0)::bigint AS images_fresh
  FROM @extschema@.crawl_sessions s
  LEFT JOIN @extschema@.crawl_session_counts c ON c.session_id = s.id
 GROUP BY s.id;
COMMENT ON VIEW @extschema@.crawl_session_totals IS
    'crawler_ha: each session''s counters (pages queued and fetched, images found and stored, bytes, errors, retries), its frontier rows by state, and its known images changed, unchanged or fresh (re-crawls)';

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

-- When the calling transaction commits, the HA worker notifies the channel
-- crawler_ha_work in a transaction of its own (ha_announce.c: a NOTIFY here
-- would hold the cluster-wide notification lock through the wait for a
-- synchronous standby).
CREATE FUNCTION @extschema@.crawl_announce_work()
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'crawl_announce_work';
COMMENT ON FUNCTION @extschema@.crawl_announce_work() IS
    'crawler_ha (internal): after this transaction commits, the HA worker notifies channel crawler_ha_work';

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
    -- Announced after commit to the workers that listen (crawler-worker
    -- run): an idle one claims the seeds at once instead of at its next poll.
    PERFORM @extschema@.crawl_announce_work();
    RETURN session;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_start(text[], jsonb) IS
    'crawler_ha: start a crawl of the seed URLs with the given options (see docs/api.md); returns the session id; after its commit the HA worker notifies channel crawler_ha_work';

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

-- A session's success rate, the one rule crawl_status() and the metrics
-- give: URLs that ended well (pages fetched; images stored, changed or
-- confirmed unchanged) over those and the errors, to 4 places; NULL before
-- anything ended. Fresh images (not fetched) are neither.
CREATE FUNCTION @extschema@.crawl_success_rate(t @extschema@.crawl_session_totals)
RETURNS numeric
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT round((t.pages_fetched + t.images_stored + t.images_changed + t.images_unchanged)::numeric
                 / NULLIF(t.pages_fetched + t.images_stored + t.images_changed + t.images_unchanged + t.errors, 0), 4)
$$;
COMMENT ON FUNCTION @extschema@.crawl_success_rate(@extschema@.crawl_session_totals) IS
    'crawler_ha (internal): (pages fetched + images stored, changed or unchanged) / (those + errors), to 4 places';

CREATE FUNCTION @extschema@.crawl_status(session bigint)
RETURNS TABLE (session_id bigint, status text, started_at timestamptz, finished_at timestamptz,
               pages_fetched bigint, images_found bigint, images_stored bigint, bytes_stored bigint,
               errors bigint, retries bigint, queued bigint, leased bigint, done bigint, failed bigint,
               success_rate numeric, images_changed bigint, images_unchanged bigint, images_fresh bigint)
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
    SELECT s.id, s.status, s.started_at, s.finished_at, t.pages_fetched, t.images_found,
           t.images_stored, t.bytes_stored, t.errors, t.retries, t.queued, t.leased, t.done, t.failed,
           @extschema@.crawl_success_rate(t), t.images_changed, t.images_unchanged, t.images_fresh
      FROM @extschema@.crawl_sessions s
      JOIN @extschema@.crawl_session_totals t ON t.session_id = s.id
     WHERE s.id = session;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_status(bigint) IS
    'crawler_ha: a crawl''s counters, queue by state, success rate ((pages fetched + images stored, changed or unchanged) / (those + errors)) and, for a re-crawl, its known images changed, unchanged (304 or the same bytes) and fresh (not fetched)';

-- What a worker needs of a session's settings, typed, with crawl_settings()'s
-- defaults already in (every session has them all): a worker reads them
-- here, not from crawl_sessions' JSON.  NULL: every running session.
CREATE FUNCTION @extschema@.crawl_session_settings(session bigint)
RETURNS TABLE (session_id bigint, status text, user_agent text, robots boolean,
               max_page_bytes bigint, max_image_bytes bigint, max_pixels bigint,
               min_width integer, min_height integer, max_attempts integer,
               images_any_host boolean, allowed_domains text[],
               delay_ms integer, per_host integer, max_depth integer, revisit boolean, sitemaps boolean,
               thumbnails jsonb, page_patterns boolean, image_patterns boolean)
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
           ARRAY(SELECT pg_catalog.jsonb_array_elements_text(s.settings -> 'allowed_domains')),
           (s.settings ->> 'delay_ms')::integer, (s.settings ->> 'per_host')::integer,
           (s.settings ->> 'max_depth')::integer,
           -- A re-crawl (another session had one of its seeds): its images are
           -- fetched only once leased, never early, since the lease brings
           -- what the images table knows of them (a conditional request, or
           -- no request at all within image_expiry_s).
           EXISTS (SELECT 1 FROM @extschema@.crawl_sessions o WHERE o.id <> s.id AND o.seeds && s.seeds),
           (s.settings ->> 'sitemaps')::boolean,
           -- {"name": box, ...} as crawl_thumbnail_sizes() left it; NULL: none
           nullif(s.settings -> 'thumbnails', '{}'),
           -- Accept or reject patterns for pages, for images: a worker then
           -- fetches no link of that kind before its lease, since only the
           -- frontier applies them (crawl_patterns_ok()), and an early fetch
           -- would ask for a URL the crawl excludes (a logout link).
           @extschema@.crawl_has_patterns(s.settings, 'page'),
           @extschema@.crawl_has_patterns(s.settings, 'image')
      FROM @extschema@.crawl_sessions s
     WHERE s.id = session OR (session IS NULL AND s.status = 'running')
$$;
COMMENT ON FUNCTION @extschema@.crawl_session_settings(bigint) IS
    'crawler_ha: a session''s settings as a worker applies them (NULL: every running session); revisit: another session had one of its seeds; sitemaps: the Sitemap: lines of robots.txt are followed; thumbnails: the named sizes ({"name": box}) or NULL; page_patterns, image_patterns: the session has accept or reject patterns for that kind';
