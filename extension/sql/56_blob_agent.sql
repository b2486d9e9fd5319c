-- File sync, the agent's side: the functions the node agent (crawler-ha
-- agent, role crawler_ha_agent) calls to attach its store, record what it
-- holds, take what it must fetch, scrub and sweep orphans, and the
-- monitoring views of it. The tables and the trigger that queues wanted
-- blobs are in 55_blobs.sql; docs/file-sync.md describes the protocol.

-- ---------------------------------------------------------------------------
-- For the agent (crawler_ha_agent).

-- The agent's first call: whether these tables describe the store it has
-- (store_id, an identity the agent keeps inside the store). false on the
-- first start and whenever the store is another one (a new disk, a wiped
-- directory): then the new id is recorded, ha_blobs is emptied, the scrub
-- counters start again, and the agent must take an inventory
-- (blob_inventory, then blob_requeue_missing) before it trusts anything.
-- store_id: 1 to 128 letters, digits, '_', '.', ':' or '-' (a UUID fits),
-- starting with a letter or digit; NULL 22004, anything else 22023.
CREATE FUNCTION @extschema@.blob_store_attach(store_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    previous text;
BEGIN
    IF store_id IS NULL THEN
        RAISE EXCEPTION 'store_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF store_id !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$' THEN
        RAISE EXCEPTION 'invalid store_id %', to_json(left(store_id, 80))::text
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A store id has 1 to 128 letters, digits, "_", ".", ":" or "-", starting with a letter or digit.';
    END IF;
    PERFORM @extschema@.ha_blob_begin(false);
    SELECT s.store_id INTO previous FROM @extschema@.ha_blob_store s FOR UPDATE;
    IF previous = blob_store_attach.store_id THEN
        UPDATE @extschema@.ha_blob_store s SET last_attach_at = now();
        RETURN true;
    END IF;
    DELETE FROM @extschema@.ha_blobs;
    -- A copy found corrupt in the old store is simply missing from the new one.
    UPDATE @extschema@.ha_blob_wanted w SET corrupt_at = NULL WHERE w.corrupt_at IS NOT NULL;
    INSERT INTO @extschema@.ha_blob_store AS s (store_id) VALUES (blob_store_attach.store_id)
    ON CONFLICT (singleton) DO UPDATE
       SET store_id = EXCLUDED.store_id, attached_at = now(), last_attach_at = now(), last_scrub_at = NULL,
           scrubbed_blobs = 0, corrupt_found = 0, repaired = 0;
    PERFORM @extschema@.ha_record_event('blob_store',
        CASE WHEN previous IS NULL THEN format('blob store %s attached', blob_store_attach.store_id)
             ELSE format('blob store %s attached in place of %s: inventory needed', blob_store_attach.store_id, previous) END,
        NULL, jsonb_build_object('store_id', blob_store_attach.store_id, 'previous', previous));
    RETURN false;
END
$$;
COMMENT ON FUNCTION @extschema@.blob_store_attach(text) IS
    'crawler_ha: true when ha_blobs describes the agent''s store store_id; false (first start, another or a wiped store) after recording it and emptying ha_blobs: the agent must take an inventory';

-- Blobs the agent found on disk, in batches of at most 10000: held from
-- now on (not yet verified: the scrub takes them first), off the wanted
-- list. last_put_at is now, so an inventory never brings a deletion closer.
-- A blob whose copy here failed verification stays wanted until
-- blob_stored() says a good copy is back. Returns how many were recorded.
CREATE FUNCTION @extschema@.blob_inventory(sha256s text[], sizes bigint[])
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    n integer;
BEGIN
    PERFORM @extschema@.ha_blob_check_batch(sha256s, sizes, true);
    PERFORM @extschema@.ha_blob_begin(true);
    WITH v AS (SELECT DISTINCT ON (u.h) u.h, u.z FROM unnest(sha256s, sizes) AS u(h, z)
                WHERE NOT EXISTS (SELECT 1 FROM @extschema@.ha_blob_wanted w
                                   WHERE w.sha256 = u.h AND w.corrupt_at IS NOT NULL)
                ORDER BY u.h, u.z DESC)
    INSERT INTO @extschema@.ha_blobs AS b (sha256, size, stored_at, last_put_at)
    SELECT v.h, v.z, now(), now() FROM v
    ON CONFLICT (sha256) DO UPDATE SET size = EXCLUDED.size;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM @extschema@.ha_blob_wanted w WHERE w.sha256 = ANY (sha256s) AND w.corrupt_at IS NULL;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.blob_inventory(text[], bigint[]) IS
    'crawler_ha: record blobs found in the store (at most 10000 per call) as held; returns how many';

-- After an inventory: every blob a local images row references and the
-- store lacks goes on the wanted list (one local anti-join, nothing asked of
-- the peer). Also covers rows that arrived while no store was attached.
-- Returns how many were newly queued.
CREATE FUNCTION @extschema@.blob_requeue_missing()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM @extschema@.ha_blob_begin(true);
    INSERT INTO @extschema@.ha_blob_wanted (sha256, file_path, file_size)
    SELECT DISTINCT ON (r.sha256) r.sha256, r.file_path, r.file_size
      FROM @extschema@.image_blobs r
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.ha_blobs b WHERE b.sha256 = r.sha256)
     ORDER BY r.sha256, r.image_id
    ON CONFLICT (sha256) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.blob_requeue_missing() IS
    'crawler_ha: queue every blob local images rows reference and the store lacks; returns how many were newly queued';

-- This node now holds the blob: after a worker's upload (also when the file
-- was already there: that upload is what keeps it from being deleted as an
-- orphan, see blob_orphans) and after a fetch from the peer. Clears
-- unreferenced_since, takes it off the wanted list, and when this node's
-- copy had failed verification records blob_repaired.
CREATE FUNCTION @extschema@.blob_stored(sha256 text, size bigint)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_blob_check_sha256(sha256);
    IF size IS NULL THEN
        RAISE EXCEPTION 'size must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF size < 0 THEN
        RAISE EXCEPTION 'size % is negative', size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.ha_blob_begin(true);
    PERFORM @extschema@.ha_blob_stored(ARRAY[sha256], ARRAY[size]);
END
$$;
COMMENT ON FUNCTION @extschema@.blob_stored(text, bigint) IS
    'crawler_ha: this node''s store now holds the blob (uploaded or fetched): held, last_put_at now, off the wanted list; a repaired corrupt copy is recorded';

CREATE FUNCTION @extschema@.blob_stored_many(sha256s text[], sizes bigint[])
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_blob_check_batch(sha256s, sizes, true);
    PERFORM @extschema@.ha_blob_begin(true);
    RETURN @extschema@.ha_blob_stored(sha256s, sizes);
END
$$;
COMMENT ON FUNCTION @extschema@.blob_stored_many(text[], bigint[]) IS
    'crawler_ha: blob_stored() for at most 10000 blobs at once; returns how many distinct blobs were recorded';

-- Locks up to n due entries of the wanted queue (oldest first, skipping
-- those another transaction holds), removes the stale ones and returns how
-- many were taken and the rows of the live ones, in queue order (ctid:
-- this transaction holds them locked, so the caller changes them by a TID
-- scan). An entry is stale when this node holds the blob already or no row
-- references it any more (deleted before the blob came). Each entry is
-- judged by index probes, in LATERAL subqueries with a LIMIT, which the
-- planner cannot turn into joins: with the entries joined to the tables
-- instead, a plan made from stale statistics (a queue just filled by an
-- inventory) hashed whole tables or judged each entry once per entry in
-- the queue. A PL/pgSQL function called for each entry probed the same
-- indexes at about twice the cost (in catch-ups, 31 us an entry against
-- 14 us). The subquery's OFFSET 0 judges each entry once, not once per
-- aggregate.
CREATE FUNCTION @extschema@.ha_blob_take_due(n integer, OUT taken integer, OUT live_rows tid[])
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    names text[];
    rows_ tid[];
    stale_rows tid[];
BEGIN
    -- both aggregates read the locked rows in the same (queue) order
    SELECT coalesce(array_agg(w.sha256), '{}'), coalesce(array_agg(w.ctid), '{}') INTO names, rows_
      FROM (SELECT w.sha256, w.ctid
              FROM @extschema@.ha_blob_wanted w
             WHERE w.next_try_at <= now()
             ORDER BY w.wanted_since, w.sha256
             LIMIT n
               FOR UPDATE SKIP LOCKED) w;
    taken := cardinality(names);
    SELECT coalesce(array_agg(u.r ORDER BY u.i) FILTER (WHERE u.dead), '{}'),
           coalesce(array_agg(u.r ORDER BY u.i) FILTER (WHERE NOT u.dead), '{}')
      INTO stale_rows, live_rows
      FROM (SELECT x.r, x.i, (held.y IS NOT NULL OR named.y IS NULL) AS dead
              FROM unnest(names, rows_) WITH ORDINALITY AS x(h, r, i)
              LEFT JOIN LATERAL (SELECT true AS y FROM @extschema@.ha_blobs b WHERE b.sha256 = x.h LIMIT 1) held ON true
              LEFT JOIN LATERAL (SELECT true AS y FROM @extschema@.image_blob_find(x.h) LIMIT 1) named ON true
            OFFSET 0) u;
    DELETE FROM @extschema@.ha_blob_wanted w WHERE w.ctid = ANY (stale_rows);
END
$$;
COMMENT ON FUNCTION @extschema@.ha_blob_take_due(integer) IS
    'crawler_ha (internal): lock up to n due wanted entries, drop the stale ones; how many were taken and the live ones'' rows';

-- The blobs to fetch now: due (next_try_at passed), oldest first, at most
-- max_rows (1 to 10000). Entries that are held meanwhile or that no local
-- row references any more leave the list instead of being returned. What is
-- handed out is not handed out again for 60 s, so that an agent asking
-- while its fetches run does not fetch twice; blob_stored() ends the entry,
-- blob_fetch_failed() sets its next try.
-- Each pass takes the oldest due entries, drops the stale ones and hands
-- out the others at once (their next try 60 s ahead, so that the next pass
-- goes past them): every entry is judged once. After a pass that found
-- only stale entries the next takes at least 100, so that thousands of
-- them ahead of the live ones (rows deleted before their blobs came) leave
-- the queue a hundred at a time whatever max_rows is; what such a pass
-- takes beyond max_rows is only unlocked (and judged again next time).
CREATE FUNCTION @extschema@.blob_wanted(max_rows integer)
RETURNS TABLE (sha256 text, file_path text, file_size bigint, wanted_since timestamptz, attempts integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    handed integer := 0;
    asked  integer;
    t      record;
    k      integer;
BEGIN
    PERFORM @extschema@.ha_blob_check_rows(max_rows);
    PERFORM @extschema@.ha_blob_begin(false);
    asked := max_rows;
    FOR pass IN 1 .. 100 LOOP
        SELECT * INTO t FROM @extschema@.ha_blob_take_due(asked);
        -- the oldest live ones, up to what is still to hand out
        k := least(cardinality(t.live_rows), max_rows - handed);
        RETURN QUERY
        WITH out AS (
            UPDATE @extschema@.ha_blob_wanted w SET next_try_at = now() + interval '60 s'
             WHERE w.ctid = ANY (t.live_rows[1:k])
            RETURNING w.sha256, w.file_path, w.file_size, w.wanted_since, w.attempts)
        SELECT o.sha256, o.file_path, o.file_size, o.wanted_since, o.attempts
          FROM out o ORDER BY o.wanted_since, o.sha256;
        handed := handed + k;
        EXIT WHEN handed >= max_rows OR t.taken < asked;
        asked := CASE WHEN k = 0 THEN greatest(max_rows - handed, 100) ELSE max_rows - handed END;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.blob_wanted(integer) IS
    'crawler_ha: up to max_rows blobs to fetch now, oldest first; each is not handed out again for 60 s unless blob_fetch_failed sets an earlier try';

-- A fetch failed: one more attempt counted, the next try after 1 s, 2 s,
-- 4 s ... at most 60 s, the error kept (clipped). Nothing happens for a
-- blob that is not wanted (stored meanwhile). error may be NULL.
CREATE FUNCTION @extschema@.blob_fetch_failed(sha256 text, error text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_blob_check_sha256(sha256);
    PERFORM @extschema@.ha_blob_begin(false);
    UPDATE @extschema@.ha_blob_wanted w
       SET attempts = w.attempts + 1,
           next_try_at = now() + least(interval '60 s', interval '1 s' * power(2, least(w.attempts, 10))),
           last_error = @extschema@.ha_blob_clip(error)
     WHERE w.sha256 = blob_fetch_failed.sha256;
END
$$;
COMMENT ON FUNCTION @extschema@.blob_fetch_failed(text, text) IS
    'crawler_ha: a fetch of the blob failed: attempts + 1, next try after an exponential back-off of at most 60 s, error kept (1000 characters)';

-- The next blobs to verify: the least recently verified first (never
-- verified ones, e.g. from an inventory, before all others). A scrub pass
-- passes the time it began as verified_before: blobs stored since then were
-- hashed as they arrived, and re-hashing them at once (during a crawl or a
-- catch-up) would only take the node's CPU from them.
CREATE FUNCTION @extschema@.blob_scrub_next(max_rows integer, verified_before timestamptz DEFAULT NULL)
RETURNS TABLE (sha256 text, size bigint)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_blob_check_rows(max_rows);
    RETURN QUERY
    SELECT b.sha256, b.size FROM @extschema@.ha_blobs b
     WHERE verified_before IS NULL OR b.verified_at IS NULL OR b.verified_at < verified_before
     ORDER BY b.verified_at NULLS FIRST, b.sha256
     LIMIT max_rows;
END
$$;
COMMENT ON FUNCTION @extschema@.blob_scrub_next(integer, timestamptz) IS
    'crawler_ha: up to max_rows held blobs to verify, least recently verified first; with verified_before, only those never verified or verified before it (a pass does not re-hash what was stored or verified since it began)';

-- The blob's bytes hash to its name: verified now. false when it is not
-- held here (removed meanwhile).
CREATE FUNCTION @extschema@.blob_verified(sha256 text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_blob_check_sha256(sha256);
    PERFORM @extschema@.ha_blob_begin(false);
    UPDATE @extschema@.ha_blobs b SET verified_at = now() WHERE b.sha256 = blob_verified.sha256;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE @extschema@.ha_blob_store s SET scrubbed_blobs = s.scrubbed_blobs + 1, last_scrub_at = now();
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@.blob_verified(text) IS
    'crawler_ha: the scrub verified the blob now; false when it is not held here';

-- The blob's bytes do not hash to its name. It is no longer held; when a
-- local row references it, it is wanted again (from the peer), marked so
-- that blob_stored() records the repair; an HA event blob_corrupt is
-- recorded either way. The agent moves the bad file aside. Returns whether
-- it was queued to be fetched again. detail may be NULL (clipped).
CREATE FUNCTION @extschema@.blob_corrupt(sha256 text, detail text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    img record;
    held boolean;
BEGIN
    PERFORM @extschema@.ha_blob_check_sha256(sha256);
    PERFORM @extschema@.ha_blob_begin(false);
    DELETE FROM @extschema@.ha_blobs b WHERE b.sha256 = blob_corrupt.sha256;
    held := FOUND;
    SELECT f.file_path, f.file_size INTO img FROM @extschema@.image_blob_find(blob_corrupt.sha256) f;
    IF img.file_path IS NOT NULL THEN
        INSERT INTO @extschema@.ha_blob_wanted AS w (sha256, file_path, file_size, corrupt_at)
        VALUES (blob_corrupt.sha256, img.file_path, img.file_size, now())
        ON CONFLICT ON CONSTRAINT ha_blob_wanted_pkey DO UPDATE SET corrupt_at = now(), next_try_at = now();
    END IF;
    UPDATE @extschema@.ha_blob_store s
       SET corrupt_found = s.corrupt_found + 1, scrubbed_blobs = s.scrubbed_blobs + 1, last_scrub_at = now();
    PERFORM @extschema@.ha_record_event('blob_corrupt',
        format('blob %s failed verification%s', blob_corrupt.sha256,
               CASE WHEN img.file_path IS NULL THEN ': no row references it' ELSE ': fetching it again' END),
        NULL, jsonb_build_object('sha256', blob_corrupt.sha256, 'detail', @extschema@.ha_blob_clip(detail),
                                 'held', held, 'requeued', img.file_path IS NOT NULL));
    RETURN img.file_path IS NOT NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.blob_corrupt(text, text) IS
    'crawler_ha: the blob failed verification: no longer held, wanted again when a local row references it (true), event blob_corrupt recorded';

-- Blobs held here that no local images row references, for longer than
-- grace, and not uploaded within grace either, the longest-unreferenced
-- first, at most max_rows. Each call first marks the newly unreferenced
-- (unreferenced_since) and unmarks the referenced again. grace must be at
-- least the longest lease (crawl_lease_max()): a worker uploads a blob and
-- records its row while it holds a lease, so a younger blob may be one whose
-- row is still to come. The peer's agent must also find it unreferenced
-- there (blob_referenced) before it goes, through blob_removed().
CREATE FUNCTION @extschema@.blob_orphans(grace interval, max_rows integer)
RETURNS TABLE (sha256 text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF grace IS NULL THEN
        RAISE EXCEPTION 'grace must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF grace < @extschema@.crawl_lease_max() THEN
        RAISE EXCEPTION 'grace % is shorter than the longest lease (%)', grace, @extschema@.crawl_lease_max()
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A worker records the row of a blob it uploaded while it holds its lease; a shorter grace could delete a blob whose row is still to come.';
    END IF;
    PERFORM @extschema@.ha_blob_check_rows(max_rows);
    PERFORM @extschema@.ha_blob_begin(false);
    UPDATE @extschema@.ha_blobs b SET unreferenced_since = NULL
     WHERE b.unreferenced_since IS NOT NULL
       AND EXISTS (SELECT 1 FROM @extschema@.image_blob_find(b.sha256));
    UPDATE @extschema@.ha_blobs b SET unreferenced_since = now()
     WHERE b.unreferenced_since IS NULL
       AND NOT EXISTS (SELECT 1 FROM @extschema@.image_blobs r WHERE r.sha256 = b.sha256);
    RETURN QUERY
    SELECT b.sha256 FROM @extschema@.ha_blobs b
     WHERE b.unreferenced_since < now() - grace AND b.last_put_at < now() - grace
     ORDER BY b.unreferenced_since, b.sha256
     LIMIT max_rows;
END
$$;
COMMENT ON FUNCTION @extschema@.blob_orphans(interval, integer) IS
    'crawler_ha: up to max_rows held blobs no local row has referenced for longer than grace (at least crawl_lease_max()) nor uploaded within it; marks the newly unreferenced';

-- Which of these blobs a local images row references (the peer's agent asks
-- before it deletes its copy). At most 10000 per call.
CREATE FUNCTION @extschema@.blob_referenced(sha256s text[])
RETURNS SETOF text
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_blob_check_batch(sha256s, NULL, false);
    RETURN QUERY
    SELECT DISTINCT u.h FROM unnest(sha256s) AS u(h)
     WHERE EXISTS (SELECT 1 FROM @extschema@.image_blob_find(u.h))
     ORDER BY 1;
END
$$;
COMMENT ON FUNCTION @extschema@.blob_referenced(text[]) IS
    'crawler_ha: the ones of these sha256s (at most 10000) that a local images row references, as its file or a thumbnail';

-- The agent is about to delete the file of an orphan: drop it from ha_blobs
-- if that is still right, and say whether the file may go (false: keep it).
-- Still right means: held here, marked unreferenced by blob_orphans() and not
-- uploaded since (blob_stored() clears the mark), not uploaded within the
-- longest lease, and no local row references it.
-- The race: an images row naming the blob may be in a transaction not yet
-- committed (image_record, the apply worker, a merge), invisible to the
-- check. So the check runs under a SHARE lock on images, which waits for
-- every transaction that has written images to end and holds off new ones
-- until this one commits; it then sees their rows (READ COMMITTED: a fresh
-- snapshot per statement; 25000 otherwise). A writer held off finds the blob
-- gone when its trigger probes ha_blobs, and queues it as wanted. Writers
-- are held off for at most lock_timeout (100 ms): a longer wait (a merge, an
-- initial copy, a vacuum of images) answers false, keep the file, try later.
-- What SQL cannot see: an upload the agent is serving at that moment; the
-- agent must not delete a file while it serves an upload of the same blob.
CREATE FUNCTION @extschema@.blob_removed(sha256 text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
DECLARE
    b record;
BEGIN
    PERFORM @extschema@.ha_blob_check_sha256(sha256);
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'blob_removed() needs READ COMMITTED'
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = 'It must see rows committed while it waited for their writers.';
    END IF;
    PERFORM @extschema@.ha_blob_begin(false);
    BEGIN
        LOCK TABLE @extschema@.images IN SHARE MODE;
    EXCEPTION WHEN lock_not_available THEN
        RETURN false;
    END;
    SELECT x.unreferenced_since, x.last_put_at INTO b
      FROM @extschema@.ha_blobs x WHERE x.sha256 = blob_removed.sha256 FOR UPDATE;
    IF NOT FOUND OR b.unreferenced_since IS NULL OR b.last_put_at >= now() - @extschema@.crawl_lease_max()
       OR EXISTS (SELECT 1 FROM @extschema@.image_blob_find(blob_removed.sha256)) THEN
        RETURN false;
    END IF;
    DELETE FROM @extschema@.ha_blobs x WHERE x.sha256 = blob_removed.sha256;
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@.blob_removed(text) IS
    'crawler_ha: drop an orphan from ha_blobs if it is still unreferenced here and was not uploaded since: true, delete the file; false, keep it';

-- ---------------------------------------------------------------------------
-- Monitoring.

CREATE FUNCTION @extschema@.ha_file_sync_status()
RETURNS TABLE (blobs_held bigint, bytes_held bigint, blobs_missing bigint, bytes_missing bigint,
               oldest_missing_since timestamptz, oldest_missing_age_s double precision, failing bigint,
               last_scrub_at timestamptz, scrubbed_blobs bigint, corrupt_found bigint, repaired bigint,
               orphans_pending bigint)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.n, h.bytes, m.n, m.bytes, m.oldest, extract(epoch FROM now() - m.oldest)::double precision,
           m.failing, s.last_scrub_at, coalesce(s.scrubbed_blobs, 0), coalesce(s.corrupt_found, 0),
           coalesce(s.repaired, 0), h.orphans
      FROM (SELECT count(*) AS n, coalesce(sum(b.size), 0)::bigint AS bytes,
                   count(*) FILTER (WHERE b.unreferenced_since IS NOT NULL) AS orphans
              FROM @extschema@.ha_blobs b) h,
           (SELECT count(*) AS n, coalesce(sum(w.file_size), 0)::bigint AS bytes, min(w.wanted_since) AS oldest,
                   count(*) FILTER (WHERE w.attempts > 0) AS failing
              FROM @extschema@.ha_blob_wanted w
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.ha_blobs b WHERE b.sha256 = w.sha256)) m
      LEFT JOIN @extschema@.ha_blob_store s ON true
$$;
COMMENT ON FUNCTION @extschema@.ha_file_sync_status() IS
    'crawler_ha: this node''s blob store in one row: held, missing (wanted), the oldest missing, failing fetches, scrub counters, orphans marked';

-- For ha_check_consistency(), here and on the peer: {"attached": the node
-- has a store, "rows": images rows a blob of which (its file or a
-- thumbnail) its store lacks, "blobs": how
-- many distinct blobs that is, "queued": its wanted list}; rows and blobs
-- are NULL without a store (nothing to check against).
CREATE FUNCTION @extschema@.ha_blob_missing_summary()
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    attached boolean := EXISTS (SELECT 1 FROM @extschema@.ha_blob_store);
    nrows bigint;
    nblobs bigint;
BEGIN
    IF attached THEN
        SELECT count(DISTINCT r.image_id), count(DISTINCT r.sha256) INTO nrows, nblobs
          FROM @extschema@.image_blobs r
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.ha_blobs b WHERE b.sha256 = r.sha256);
    END IF;
    RETURN jsonb_build_object('attached', attached, 'rows', nrows, 'blobs', nblobs,
                              'queued', (SELECT count(*) FROM @extschema@.ha_blob_wanted));
END
$$;
COMMENT ON FUNCTION @extschema@.ha_blob_missing_summary() IS
    'crawler_ha (internal): images rows (and distinct blobs) this node''s store lacks, for ha_check_consistency()';

REVOKE ALL ON @extschema@.ha_blob_store, @extschema@.ha_blobs, @extschema@.ha_blob_wanted FROM PUBLIC;
GRANT SELECT ON @extschema@.ha_blob_store, @extschema@.ha_blobs, @extschema@.ha_blob_wanted
    TO crawler_ha_reader, crawler_ha_admin;
