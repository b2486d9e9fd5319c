-- Metrics: every database-side metric the node agent's Prometheus endpoint
-- (/metrics) exposes, in one call, one row per sample. The agent renders the
-- rows as they are (names, types, help texts and labels come from here, so
-- no metric is described twice); docs/api.md ("Metrics") lists them.
--
-- It only reads, in one snapshot (STABLE), and runs as its caller (the
-- reader or the admin, who SELECT every table it reads). Its cost does not
-- grow with the data: every query is index-driven, or stops at a cap above
-- which the figure is an estimate; only crawl_sessions (a row per crawl) is
-- read whole. A crawler records about 1,500 images a second, so nothing here
-- reads a session's frontier items one by one beyond a cap.

-- The URLs that failed for good, newest first: the recent errors by kind.
-- Only failed items have an entry. Every update of a frontier row changes
-- state or lease_expires_at, which other indexes hold, so indexing
-- updated_at here makes no update lose HOT.
CREATE INDEX crawl_frontier_failed_at_idx ON @extschema@.crawl_frontier (updated_at) WHERE state = 'failed';

-- The kind of a failed item's error, by the prefix the worker writes
-- (worker/src/outcome.cpp, crawler.cpp, image_pipeline.cpp,
-- upload_outcome.cpp; libcurl's messages of curl_easy_strerror() in both
-- its older "Couldn't" and newer "Could not" wording). A fixed set of
-- twelve, so that a label made of it stays small; anything else is other.
-- ha_metrics() has the same list: keep them together. It branches on the
-- code of the first character and then tests prefixes: a chain of regular
-- expressions costs five times more per row.
CREATE FUNCTION @extschema@.crawl_error_kind(error text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE pg_catalog.ascii(error)  -- the first character's code
    -- "HTTP 404", "HTTP 500 at URL", "HTTP 429 (Retry-After 1 s)", "HTTP 301 redirect ..."
    WHEN 72 /* H */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'HTTP ')
                  AND pg_catalog.substr(error, 6, 3) COLLATE "C" ~ '^[1-5][0-9][0-9]$'
                  AND (pg_catalog.length(error) = 8 OR pg_catalog.substr(error, 9, 1) = ' ') THEN
                 CASE WHEN pg_catalog.starts_with(pg_catalog.substr(error, 9), ' redirect ') THEN 'redirect'
                      WHEN pg_catalog.substr(error, 6, 1) = '4' THEN 'http_4xx'
                      WHEN pg_catalog.substr(error, 6, 1) = '5' THEN 'http_5xx'
                      ELSE 'other' END
             WHEN pg_catalog.starts_with(error, 'HTTP/3 error') THEN 'connection'
             ELSE 'other' END
    WHEN 84 /* T */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'Timeout was reached') THEN 'timeout'
             WHEN pg_catalog.starts_with(error, 'Transferred a partial file') THEN 'connection'
             WHEN pg_catalog.starts_with(error, 'TLS ') THEN 'tls'
             ELSE 'other' END
    WHEN 67 /* C */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'Couldn''t resolve ')
                  OR pg_catalog.starts_with(error, 'Could not resolve ') THEN 'dns'
             WHEN pg_catalog.starts_with(error, 'Couldn''t connect to server')
                  OR pg_catalog.starts_with(error, 'Could not connect to server') THEN 'connection'
             WHEN pg_catalog.starts_with(error, 'Connection timed out') THEN 'timeout'
             WHEN pg_catalog.starts_with(error, 'Couldn''t use specified SSL cipher')
                  OR pg_catalog.starts_with(error, 'Could not use specified SSL cipher') THEN 'tls'
             ELSE 'other' END
    WHEN 83 /* S */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'SSL ') THEN 'tls'
             WHEN pg_catalog.starts_with(error, 'Server returned nothing')
                  OR pg_catalog.starts_with(error, 'Stream error in the HTTP/2 framing layer') THEN 'connection'
             ELSE 'other' END
    WHEN 70 /* F */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'Failure when receiving data from the peer')
                  OR pg_catalog.starts_with(error, 'Failed sending data to the peer')
                  OR pg_catalog.starts_with(error, 'Failed reading the chunked-encoded stream') THEN 'connection'
             WHEN pg_catalog.starts_with(error, 'Failed to shut down the SSL') THEN 'tls'
             ELSE 'other' END
    WHEN 80 /* P */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'Problem with the SSL CA cert')
                  OR pg_catalog.starts_with(error, 'Problem with the local SSL certificate') THEN 'tls'
             ELSE 'other' END
    WHEN 73 /* I */ THEN CASE WHEN pg_catalog.starts_with(error, 'Issuer check against peer certificate') THEN 'tls' ELSE 'other' END
    WHEN 69 /* E */ THEN CASE WHEN pg_catalog.starts_with(error, 'Error in the HTTP2 framing layer') THEN 'connection' ELSE 'other' END
    WHEN 87 /* W */ THEN CASE WHEN pg_catalog.starts_with(error, 'Weird server reply') THEN 'connection' ELSE 'other' END
    WHEN 81 /* Q */ THEN CASE WHEN pg_catalog.starts_with(error, 'QUIC connection error') THEN 'connection' ELSE 'other' END
    WHEN 112 /* p */ THEN CASE WHEN pg_catalog.starts_with(error, 'proxy handshake error') THEN 'connection' ELSE 'other' END
    WHEN 79 /* O */ THEN CASE WHEN pg_catalog.starts_with(error, 'Operation timed out') THEN 'timeout' ELSE 'other' END
    WHEN 78 /* N */ THEN CASE WHEN pg_catalog.starts_with(error, 'Number of redirects hit') THEN 'redirect' ELSE 'other' END
    WHEN 77 /* M */ THEN CASE WHEN pg_catalog.starts_with(error, 'Maximum file size exceeded') THEN 'too_large' ELSE 'other' END
    WHEN 85 /* U */ THEN CASE WHEN pg_catalog.starts_with(error, 'Unrecognized or bad HTTP Content') THEN 'content' ELSE 'other' END
    -- "disallowed by robots.txt", "redirected to URL: disallowed by robots.txt",
    -- "robots.txt of HOST is unavailable (...)"
    WHEN 100 /* d */ THEN CASE WHEN error = 'disallowed by robots.txt' THEN 'robots' ELSE 'other' END
    WHEN 114 /* r */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'robots.txt of ') THEN 'robots'
             WHEN pg_catalog.starts_with(error, 'redirected to ')
                  AND pg_catalog.right(error, 26) = ': disallowed by robots.txt' THEN 'robots'
             ELSE 'other' END
    -- "too many redirects (...)", "too large: ...", "too large for the agent's store (...)",
    -- "too many pixels: ..."
    WHEN 116 /* t */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'too many redirects') THEN 'redirect'
             WHEN pg_catalog.starts_with(error, 'too large') OR pg_catalog.starts_with(error, 'too many pixels') THEN 'too_large'
             ELSE 'other' END
    WHEN 105 /* i */ THEN CASE WHEN pg_catalog.starts_with(error, 'invalid redirect target') THEN 'redirect' ELSE 'other' END
    -- "not an image: ...", "not a page: ...", "not parsed: ...", "not a sitemap: ...",
    -- "corrupt jpeg image: ..."
    WHEN 110 /* n */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'not an image') OR pg_catalog.starts_with(error, 'not a page')
                  OR pg_catalog.starts_with(error, 'not parsed') OR pg_catalog.starts_with(error, 'not a sitemap')
             THEN 'content'
             ELSE 'other' END
    WHEN 99 /* c */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'corrupt ')
                  AND pg_catalog.left(error, 40) COLLATE "C" ~ '^corrupt [a-z0-9]+ image' THEN 'content'
             WHEN pg_catalog.starts_with(error, 'crawl_blob_target(): ') THEN 'storage'
             ELSE 'other' END
    -- the worker's own store and the upload to the agent
    WHEN 115 /* s */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'store: ') OR pg_catalog.starts_with(error, 'store_full: ') THEN 'storage'
             ELSE 'other' END
    WHEN 117 /* u */ THEN
        CASE WHEN pg_catalog.starts_with(error, 'upload: ') OR pg_catalog.starts_with(error, 'upload refused: ') THEN 'storage'
             ELSE 'other' END
    ELSE 'other'
END;
COMMENT ON FUNCTION @extschema@.crawl_error_kind(text) IS
    'crawler_ha: the kind of a failed item''s error (crawl_frontier.last_error) by the worker''s wording: robots, redirect, http_4xx, http_5xx, timeout, dns, tls, connection, too_large, content, storage or other';

-- The three tables that grow without bound are counted exactly up to a cap
-- (images and ha_blobs 10000 rows, ha_blob_wanted 1000: each of its rows
-- costs a probe of ha_blobs), by a scan that stops there. Above it: the
-- planner's estimate (the row density of the last VACUUM or ANALYZE times
-- the table's current size), sums and shares from a sample of about 100
-- pages (TABLESAMPLE SYSTEM, the same pages each time while the table does
-- not change), and a table of at most 100 pages read whole.
--
-- A session's queued and leased URLs are its counters (crawl_session_totals:
-- the frontier's rows by state, kept as they change), exact and a few rows
-- to read whatever the frontier's size. Its errors are its counter (crawl_fail
-- counts each URL that fails for good); their kinds are those of the last
-- 1000 URLs that failed in the last hour, across sessions.
--
-- The backups' figures are ha_backup_summary()'s (82_backup_metrics.sql,
-- which the alerts read too), by partial indexes: this node's backups kept,
-- its newest success per type, its newest failure and the newest restore
-- test of a kept backup. That function comes
-- after this one in the script (it reads ha_backups, created after this
-- file); PL/pgSQL resolves the call at the first one.
CREATE FUNCTION @extschema@.ha_metrics()
RETURNS TABLE (name text, kind text, help text, labels jsonb, value double precision)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
-- Every query here is cheap; a large estimate must not buy it a compilation.
SET jit = off
AS $$
DECLARE
    exact_rows CONSTANT integer := 10000;
    wanted_exact_rows CONSTANT integer := 1000;
    sample_pages CONSTANT double precision := 100;
    recent_errors CONSTANT integer := 1000;
    -- crawl_error_kind()'s kinds
    kinds CONSTANT text[] := ARRAY['robots', 'redirect', 'http_4xx', 'http_5xx', 'timeout', 'dns', 'tls',
                                   'connection', 'too_large', 'content', 'storage', 'other'];
    block CONSTANT double precision := pg_catalog.current_setting('block_size')::double precision;
    me text;
    status jsonb;
    health jsonb;
    pages double precision;
    pct double precision;
    density double precision;
    n bigint;
    total numeric;
    share numeric;
    failing_n bigint;
    images_rows double precision;
    held_n double precision;
    held_bytes double precision;
    missing_n double precision;
    missing_bytes double precision;
    failing double precision;
    oldest timestamptz;
BEGIN
    SELECT nd.node_name INTO me FROM @extschema@.ha_node nd;

    -- The HA worker's view (shared memory) exists only when the library is
    -- preloaded; without it everything else is still reported.
    BEGIN
        SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s) ORDER BY s.o) INTO status
          FROM @extschema@.ha_status() WITH ORDINALITY AS s(node_name, node_id, is_local, role, term, healthy,
               last_check, latency_ms, consecutive_failures, replication_mode, sync_state, lag_bytes,
               lag_seconds, last_failover, last_failover_ms, fenced, needs_rejoin, paused, detail, agent_url, o);
        SELECT pg_catalog.to_jsonb(h) INTO health FROM @extschema@.ha_health() h;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        status := NULL;
        health := NULL;
    END;

    -- Images.
    SELECT pg_catalog.count(*) INTO n FROM (SELECT 1 FROM @extschema@.images i LIMIT exact_rows + 1) x;
    IF n <= exact_rows THEN
        images_rows := n;
    ELSE
        pages := pg_catalog.pg_relation_size('@extschema@.images'::pg_catalog.regclass) / block;
        SELECT CASE WHEN c.reltuples >= 0 AND c.relpages > 0 THEN c.reltuples / c.relpages END INTO density
          FROM pg_catalog.pg_class c WHERE c.oid = '@extschema@.images'::pg_catalog.regclass;
        pct := least(100, 100 * sample_pages / greatest(pages, 1));
        IF pct < 100 AND density IS NOT NULL THEN
            images_rows := pg_catalog.round(density * pages);
        ELSE
            SELECT pg_catalog.round(pg_catalog.count(*) * 100 / pct) INTO images_rows
              FROM @extschema@.images i TABLESAMPLE SYSTEM (pct) REPEATABLE (0);
        END IF;
    END IF;

    -- File sync: what ha_file_sync_status() says. The blobs held:
    SELECT pg_catalog.count(*), pg_catalog.sum(x.size) INTO n, total
      FROM (SELECT b.size FROM @extschema@.ha_blobs b LIMIT exact_rows + 1) x;
    IF n <= exact_rows THEN
        held_n := n;
        held_bytes := coalesce(total, 0);
    ELSE
        pages := pg_catalog.pg_relation_size('@extschema@.ha_blobs'::pg_catalog.regclass) / block;
        SELECT CASE WHEN c.reltuples >= 0 AND c.relpages > 0 THEN c.reltuples / c.relpages END INTO density
          FROM pg_catalog.pg_class c WHERE c.oid = '@extschema@.ha_blobs'::pg_catalog.regclass;
        pct := least(100, 100 * sample_pages / greatest(pages, 1));
        SELECT pg_catalog.count(*), pg_catalog.avg(b.size) INTO n, total
          FROM @extschema@.ha_blobs b TABLESAMPLE SYSTEM (pct) REPEATABLE (0);
        held_n := CASE WHEN pct < 100 AND density IS NOT NULL THEN pg_catalog.round(density * pages)
                       ELSE pg_catalog.round(n * 100 / pct) END;
        held_bytes := pg_catalog.round(held_n * coalesce(total, 0));
    END IF;
    -- The blobs missing: wanted and not held.
    SELECT pg_catalog.count(*), pg_catalog.sum(x.file_size), pg_catalog.count(*) FILTER (WHERE x.attempts > 0)
      INTO n, total, failing_n
      FROM (SELECT w.file_size, w.attempts FROM @extschema@.ha_blob_wanted w
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.ha_blobs b WHERE b.sha256 = w.sha256)
             LIMIT wanted_exact_rows + 1) x;
    IF n <= wanted_exact_rows THEN
        missing_n := n;
        missing_bytes := coalesce(total, 0);
        failing := failing_n;
    ELSE
        pages := pg_catalog.pg_relation_size('@extschema@.ha_blob_wanted'::pg_catalog.regclass) / block;
        SELECT CASE WHEN c.reltuples >= 0 AND c.relpages > 0 THEN c.reltuples / c.relpages END INTO density
          FROM pg_catalog.pg_class c WHERE c.oid = '@extschema@.ha_blob_wanted'::pg_catalog.regclass;
        pct := least(100, 100 * sample_pages / greatest(pages, 1));
        SELECT pg_catalog.count(*), pg_catalog.avg(w.file_size), pg_catalog.avg((w.attempts > 0)::integer)
          INTO n, total, share
          FROM @extschema@.ha_blob_wanted w TABLESAMPLE SYSTEM (pct) REPEATABLE (0);
        missing_n := CASE WHEN pct < 100 AND density IS NOT NULL THEN pg_catalog.round(density * pages)
                          ELSE pg_catalog.round(n * 100 / pct) END;
        missing_bytes := pg_catalog.round(missing_n * coalesce(total, 0));
        failing := pg_catalog.round(missing_n * coalesce(share, 0));
    END IF;
    -- The longest missing, by the index on wanted_since.
    SELECT w.wanted_since INTO oldest FROM @extschema@.ha_blob_wanted w
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.ha_blobs b WHERE b.sha256 = w.sha256)
     ORDER BY w.wanted_since LIMIT 1;

    RETURN QUERY
    WITH def (name, kind, help) AS (VALUES
        -- HA: this node's view
        ('crawler_ha_up', 'gauge', 'Whether this node''s database answered (1); the agent reports 0 when it does not'),
        ('crawler_ha_node_role', 'gauge', 'The role of each node (this one, its peer, the witness) as this node sees it: 1 for its current role (primary, standby, witness or unknown)'),
        ('crawler_ha_term', 'gauge', 'The term of each node as this node sees it'),
        ('crawler_ha_peer_reachable', 'gauge', 'Whether this node''s HA worker reached its peer at its last check'),
        ('crawler_ha_check_latency_seconds', 'gauge', 'Duration of this node''s last health check of each other node, in seconds'),
        ('crawler_ha_consecutive_failures', 'gauge', 'Health checks of each other node that failed in a row, as this node counts them'),
        ('crawler_ha_failovers_total', 'counter', 'Promotions of this node that were no switchover: automatic failovers, forced ones and ha_promote() (from ha_terms)'),
        ('crawler_ha_switchovers_total', 'counter', 'Promotions of this node by a planned switchover from its peer (from ha_terms)'),
        ('crawler_ha_fenced', 'gauge', 'Whether each node is fenced (refuses writes) as this node sees it'),
        ('crawler_ha_paused', 'gauge', 'Whether this node is in maintenance mode (ha_pause(): no automatic failover or rejoin)'),
        ('crawler_ha_writable', 'gauge', 'Whether this node accepts writes now (ha_health().writable)'),
        ('crawler_ha_replication_mode', 'gauge', 'The configured replication mode (crawler_ha.replication_mode): 1 for the mode in use'),
        ('crawler_ha_replication_lag_bytes', 'gauge', 'On the primary: how far its standby is behind, in bytes of WAL'),
        ('crawler_ha_replication_lag_seconds', 'gauge', 'On the primary: how far its standby is behind, in seconds'),
        ('crawler_ha_consistency_last_check_timestamp_seconds', 'gauge', 'When each data table was last compared with the peer (ha_check_consistency() on this node), as a Unix time'),
        ('crawler_ha_consistency_ok', 'gauge', 'Whether the last comparison of each data table found both nodes identical'),
        ('crawler_ha_consistency_differing_rows', 'gauge', 'Rows of each data table that differed between the nodes at its last comparison'),
        -- File sync
        ('crawler_ha_file_sync_blobs_held', 'gauge', 'Blobs this node''s store holds (exact up to 10000, above that an estimate from table statistics)'),
        ('crawler_ha_file_sync_bytes_held', 'gauge', 'Bytes of the blobs this node''s store holds (exact up to 10000 blobs, above that an estimate from a sample)'),
        ('crawler_ha_file_sync_blobs_missing', 'gauge', 'Blobs this node''s rows reference and its store lacks (exact up to 1000, above that an estimate from table statistics)'),
        ('crawler_ha_file_sync_bytes_missing', 'gauge', 'Bytes of the blobs this node''s store lacks (exact up to 1000 blobs, above that an estimate from a sample)'),
        ('crawler_ha_file_sync_oldest_missing_age_seconds', 'gauge', 'How long the longest-missing blob has been missing, in seconds (0 when none is)'),
        ('crawler_ha_file_sync_failing', 'gauge', 'Missing blobs whose fetch from the peer failed at least once (exact up to 1000 missing, above that an estimate from a sample)'),
        ('crawler_ha_scrub_corrupt_found_total', 'counter', 'Blobs of this node''s store that failed verification (since the store was attached)'),
        ('crawler_ha_scrub_repaired_total', 'counter', 'Blobs that failed verification and were stored again from the peer (since the store was attached)'),
        ('crawler_ha_scrub_last_timestamp_seconds', 'gauge', 'When the scrub last verified a blob of this node''s store, as a Unix time'),
        -- Crawl: only sessions running or ended in the last 24 hours
        ('crawler_ha_crawl_pages_fetched_total', 'counter', 'Pages fetched by each crawl session running or ended in the last 24 hours'),
        ('crawler_ha_crawl_images_found_total', 'counter', 'Image URLs queued by each crawl session running or ended in the last 24 hours'),
        ('crawler_ha_crawl_images_stored_total', 'counter', 'Images stored by each crawl session running or ended in the last 24 hours'),
        ('crawler_ha_crawl_images_changed_total', 'counter', 'Known image URLs whose new bytes were stored again by each crawl session running or ended in the last 24 hours'),
        ('crawler_ha_crawl_images_unchanged_total', 'counter', 'Known image URLs confirmed by a 304 (no body) by each crawl session running or ended in the last 24 hours'),
        ('crawler_ha_crawl_images_fresh_total', 'counter', 'Known image URLs confirmed within image_expiry_s, not fetched, by each crawl session running or ended in the last 24 hours'),
        ('crawler_ha_crawl_bytes_stored_total', 'counter', 'Bytes of the images stored by each crawl session running or ended in the last 24 hours'),
        ('crawler_ha_crawl_retries_total', 'counter', 'Fetches queued again after an error by each crawl session running or ended in the last 24 hours'),
        ('crawler_ha_crawl_errors_total', 'counter', 'URLs that failed for good in each crawl session running or ended in the last 24 hours'),
        ('crawler_ha_crawl_recent_error_ratio', 'gauge', 'Share of each kind of error (crawl_error_kind()) among the last 1000 URLs that failed for good in the last hour, all sessions'),
        ('crawler_ha_crawl_success_ratio', 'gauge', 'Pages fetched and images stored over those plus errors, for each crawl session running or ended in the last 24 hours (as crawl_status())'),
        ('crawler_ha_crawl_queue_length', 'gauge', 'URLs queued in each crawl session running or ended in the last 24 hours'),
        ('crawler_ha_crawl_leased', 'gauge', 'URLs leased to workers in each crawl session running or ended in the last 24 hours'),
        ('crawler_ha_crawl_running', 'gauge', 'Whether each crawl session running or ended in the last 24 hours is running (1) or ended (0)'),
        ('crawler_ha_images_rows', 'gauge', 'Rows in this node''s images table (exact up to 10000, above that an estimate from table statistics)'),
        -- Backups: the ones this node made (ha_backups, per node)
        ('crawler_ha_backup_last_success_timestamp_seconds', 'gauge', 'When the newest verified backup of each type (full, diff, incr) that this node made and its repository still holds ended (pgBackRest''s stop time), as a Unix time'),
        ('crawler_ha_backup_last_size_bytes', 'gauge', 'Bytes the newest verified backup of each type added to the repository (compressed and encrypted: pgBackRest''s repo backup size)'),
        ('crawler_ha_backup_last_failure_timestamp_seconds', 'gauge', 'When a backup on this node last failed (a backup HA event with ok false, or a backup recorded with its verify failed), as a Unix time'),
        ('crawler_ha_backups_kept', 'gauge', 'Backups this node made that its repository still holds (recorded, not expired by retention)'),
        ('crawler_ha_backup_blobs_ok', 'gauge', 'Whether every blob of this node''s newest verified backup is in the repository, verified (1) or not (0); absent until its copy ended'),
        ('crawler_ha_backup_last_restore_test_timestamp_seconds', 'gauge', 'When the newest restore test (crawler-ha backup test-restore) of a backup this node made and its repository still holds ran, as a Unix time; absent until one ran'),
        ('crawler_ha_backup_restore_test_ok', 'gauge', 'Whether that newest restore test passed (1: restored, figures and sampled blobs as recorded) or failed (0); absent until one ran')
    ), st AS MATERIALIZED (
        -- one row per node, this one first where a name repeats
        SELECT DISTINCT ON (s.node_name) s.*
          FROM pg_catalog.jsonb_to_recordset(status) AS s(node_name text, is_local boolean, role text, term bigint,
               latency_ms double precision, consecutive_failures integer, replication_mode text,
               lag_bytes bigint, lag_seconds double precision, fenced boolean, o bigint)
         WHERE s.node_name IS NOT NULL
         ORDER BY s.node_name, s.is_local DESC, s.o
    ), h AS MATERIALIZED (
        SELECT * FROM pg_catalog.jsonb_to_record(health) AS h(writable boolean, paused boolean, peer_healthy boolean)
         WHERE health IS NOT NULL
    ), terms AS MATERIALIZED (
        -- ha_terms is kept for ever (ha_events is pruned by ha_retention(),
        -- and a count of its events would go down)
        SELECT pg_catalog.count(*) FILTER (WHERE t.reason NOT LIKE 'switchover from %') AS failovers,
               pg_catalog.count(*) FILTER (WHERE t.reason LIKE 'switchover from %') AS switchovers
          FROM @extschema@.ha_terms t
         WHERE t.primary_node_id = (SELECT nd.node_id FROM @extschema@.ha_node nd) AND t.reason <> 'setup'
    ), cons AS MATERIALIZED (
        SELECT c.table_name, c.last_check, c.check_ok, c.check_result
          FROM @extschema@.ha_sync_status() c WHERE c.last_check IS NOT NULL
    ), store AS MATERIALIZED (
        SELECT s.last_scrub_at, s.corrupt_found, s.repaired FROM @extschema@.ha_blob_store s
    ), cs AS MATERIALIZED (
        -- the sessions listed, with their counters (a few rows each, however
        -- large the frontier: crawl_session_counts)
        SELECT c.id, c.status, t.pages_fetched, t.images_found, t.images_stored, t.bytes_stored, t.errors,
               t.images_changed, t.images_unchanged, t.images_fresh,
               t.retries, t.queued, t.leased, @extschema@.crawl_success_rate(t) AS success_rate
          FROM @extschema@.crawl_sessions c
          JOIN @extschema@.crawl_session_totals t ON t.session_id = c.id
         WHERE c.status = 'running' OR c.finished_at >= pg_catalog.now() - interval '24 hours'
    ), recent AS MATERIALIZED (
        SELECT @extschema@.crawl_error_kind(r.last_error) AS kind, pg_catalog.count(*) OVER () AS total
          FROM (SELECT f.last_error FROM @extschema@.crawl_frontier f
                 WHERE f.state = 'failed' AND f.updated_at >= pg_catalog.now() - interval '1 hour'
                 ORDER BY f.updated_at DESC LIMIT recent_errors) r
    ), bk AS MATERIALIZED (
        SELECT * FROM @extschema@.ha_backup_summary()
    ), bk_type AS MATERIALIZED (
        SELECT t.type, t.at, t.bytes
          FROM bk, LATERAL (VALUES ('full', bk.full_at, bk.full_bytes), ('diff', bk.diff_at, bk.diff_bytes),
                                   ('incr', bk.incr_at, bk.incr_bytes)) AS t(type, at, bytes)
    ), sample (name, labels, value) AS (
        SELECT 'crawler_ha_up', pg_catalog.jsonb_build_object('node', me), 1::double precision
        UNION ALL SELECT 'crawler_ha_node_role', pg_catalog.jsonb_build_object('node', st.node_name, 'role', coalesce(st.role, 'unknown')), 1 FROM st
        UNION ALL SELECT 'crawler_ha_term', pg_catalog.jsonb_build_object('node', st.node_name), st.term FROM st
        UNION ALL SELECT 'crawler_ha_check_latency_seconds', pg_catalog.jsonb_build_object('node', st.node_name), st.latency_ms / 1000 FROM st
        UNION ALL SELECT 'crawler_ha_consecutive_failures', pg_catalog.jsonb_build_object('node', st.node_name), st.consecutive_failures FROM st
        UNION ALL SELECT 'crawler_ha_fenced', pg_catalog.jsonb_build_object('node', st.node_name), st.fenced::integer FROM st
        UNION ALL SELECT 'crawler_ha_replication_lag_bytes', pg_catalog.jsonb_build_object('node', st.node_name), st.lag_bytes FROM st
        UNION ALL SELECT 'crawler_ha_replication_lag_seconds', pg_catalog.jsonb_build_object('node', st.node_name), st.lag_seconds FROM st
        UNION ALL SELECT 'crawler_ha_replication_mode', pg_catalog.jsonb_build_object('mode', st.replication_mode), 1 FROM st
         WHERE st.is_local AND st.replication_mode IS NOT NULL
        UNION ALL SELECT 'crawler_ha_peer_reachable', '{}', h.peer_healthy::integer FROM h
        UNION ALL SELECT 'crawler_ha_paused', '{}', h.paused::integer FROM h
        UNION ALL SELECT 'crawler_ha_writable', '{}', h.writable::integer FROM h
        UNION ALL SELECT 'crawler_ha_failovers_total', '{}', terms.failovers FROM terms
        UNION ALL SELECT 'crawler_ha_switchovers_total', '{}', terms.switchovers FROM terms
        UNION ALL SELECT 'crawler_ha_consistency_last_check_timestamp_seconds', pg_catalog.jsonb_build_object('table', cons.table_name),
                         extract(epoch FROM cons.last_check) FROM cons
        UNION ALL SELECT 'crawler_ha_consistency_ok', pg_catalog.jsonb_build_object('table', cons.table_name), cons.check_ok::integer FROM cons
        UNION ALL SELECT 'crawler_ha_consistency_differing_rows', pg_catalog.jsonb_build_object('table', cons.table_name),
                         (cons.check_result ->> 'differing')::double precision FROM cons
         WHERE pg_catalog.jsonb_typeof(cons.check_result -> 'differing') = 'number'
        UNION ALL SELECT 'crawler_ha_file_sync_blobs_held', '{}', held_n
        UNION ALL SELECT 'crawler_ha_file_sync_bytes_held', '{}', held_bytes
        UNION ALL SELECT 'crawler_ha_file_sync_blobs_missing', '{}', missing_n
        UNION ALL SELECT 'crawler_ha_file_sync_bytes_missing', '{}', missing_bytes
        UNION ALL SELECT 'crawler_ha_file_sync_oldest_missing_age_seconds', '{}',
                         coalesce(greatest(extract(epoch FROM pg_catalog.now() - oldest), 0), 0)
        UNION ALL SELECT 'crawler_ha_file_sync_failing', '{}', failing
        UNION ALL SELECT 'crawler_ha_scrub_corrupt_found_total', '{}', coalesce((SELECT store.corrupt_found FROM store), 0)
        UNION ALL SELECT 'crawler_ha_scrub_repaired_total', '{}', coalesce((SELECT store.repaired FROM store), 0)
        UNION ALL SELECT 'crawler_ha_scrub_last_timestamp_seconds', '{}', extract(epoch FROM store.last_scrub_at) FROM store
        UNION ALL SELECT 'crawler_ha_crawl_pages_fetched_total', pg_catalog.jsonb_build_object('session', cs.id::text), cs.pages_fetched FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_images_found_total', pg_catalog.jsonb_build_object('session', cs.id::text), cs.images_found FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_images_stored_total', pg_catalog.jsonb_build_object('session', cs.id::text), cs.images_stored FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_images_changed_total', pg_catalog.jsonb_build_object('session', cs.id::text), cs.images_changed FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_images_unchanged_total', pg_catalog.jsonb_build_object('session', cs.id::text), cs.images_unchanged FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_images_fresh_total', pg_catalog.jsonb_build_object('session', cs.id::text), cs.images_fresh FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_bytes_stored_total', pg_catalog.jsonb_build_object('session', cs.id::text), cs.bytes_stored FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_retries_total', pg_catalog.jsonb_build_object('session', cs.id::text), cs.retries FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_errors_total', pg_catalog.jsonb_build_object('session', cs.id::text), cs.errors FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_recent_error_ratio', pg_catalog.jsonb_build_object('kind', k.kind),
                         (SELECT pg_catalog.count(*) FILTER (WHERE recent.kind = k.kind)::double precision / pg_catalog.max(recent.total)
                            FROM recent)
                    FROM pg_catalog.unnest(kinds) AS k(kind)
        UNION ALL SELECT 'crawler_ha_crawl_success_ratio', pg_catalog.jsonb_build_object('session', cs.id::text),
                         cs.success_rate FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_queue_length', pg_catalog.jsonb_build_object('session', cs.id::text), cs.queued FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_leased', pg_catalog.jsonb_build_object('session', cs.id::text), cs.leased FROM cs
        UNION ALL SELECT 'crawler_ha_crawl_running', pg_catalog.jsonb_build_object('session', cs.id::text), (cs.status = 'running')::integer FROM cs
        UNION ALL SELECT 'crawler_ha_images_rows', '{}', images_rows
        UNION ALL SELECT 'crawler_ha_backup_last_success_timestamp_seconds', pg_catalog.jsonb_build_object('type', bk_type.type),
                         extract(epoch FROM bk_type.at) FROM bk_type
        UNION ALL SELECT 'crawler_ha_backup_last_size_bytes', pg_catalog.jsonb_build_object('type', bk_type.type), bk_type.bytes
                    FROM bk_type
        UNION ALL SELECT 'crawler_ha_backup_last_failure_timestamp_seconds', '{}', extract(epoch FROM bk.last_failure) FROM bk
        UNION ALL SELECT 'crawler_ha_backups_kept', '{}', bk.kept FROM bk
        UNION ALL SELECT 'crawler_ha_backup_blobs_ok', '{}', bk.blobs_ok::integer FROM bk
        UNION ALL SELECT 'crawler_ha_backup_last_restore_test_timestamp_seconds', '{}',
                         extract(epoch FROM bk.restore_tested_at) FROM bk
        UNION ALL SELECT 'crawler_ha_backup_restore_test_ok', '{}', bk.restore_test_ok::integer FROM bk
    )
    SELECT def.name, def.kind, def.help, sample.labels, sample.value
      FROM sample JOIN def ON def.name = sample.name
     -- unknown now: left out, never NULL or NaN
     WHERE sample.value IS NOT NULL AND sample.value NOT IN ('NaN', 'Infinity', '-Infinity')
     ORDER BY def.name COLLATE "C", sample.labels::text COLLATE "C";
END
$$;
COMMENT ON FUNCTION @extschema@.ha_metrics() IS
    'crawler_ha: every metric of this node''s database for the agent''s Prometheus endpoint, one row per sample (name, kind gauge or counter, help, labels, value), ordered by name and labels; only reads. See docs/api.md, "Metrics"';
