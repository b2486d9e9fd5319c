-- File sync: what this node's blob store holds and what its rows need, for
-- the node agent (crawler-ha agent), which keeps the content-addressed store
-- (ab/cd/<sha256>.<ext>) and fetches missing blobs from the peer's agent.
-- Every decision the agent makes is one of these functions; docs/file-sync.md
-- describes the protocol.
--
-- Everything here is per node, never replicated (not in ha_data_tables(),
-- not in the publication): each node's tables describe its own store. The
-- agent's functions therefore write on a read-only standby too, through a
-- session opened with options='-c default_transaction_read_only=off
-- -c synchronous_commit=local', and commit without waiting for a
-- synchronous standby (ha_commit_locally()).

-- The store these tables describe. One row once an agent has attached.
-- When the agent finds another store (a new disk, a wiped directory) it can
-- no longer know where it stopped: blob_store_attach() says so and the
-- agent takes an inventory. The scrub's counters describe this store too.
CREATE TABLE @extschema@.ha_blob_store (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    store_id       text NOT NULL CHECK (store_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    attached_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_attach_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_scrub_at  timestamptz,
    scrubbed_blobs bigint NOT NULL DEFAULT 0,
    corrupt_found  bigint NOT NULL DEFAULT 0,
    repaired       bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE @extschema@.ha_blob_store IS
    'crawler_ha: the identity of the blob store that ha_blobs describes, and its scrub counters (per node, never replicated)';

-- The blobs this node's store holds.
CREATE TABLE @extschema@.ha_blobs (
    sha256             text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size               bigint NOT NULL CHECK (size >= 0),
    stored_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_put_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    verified_at        timestamptz,
    unreferenced_since timestamptz
);
-- The scrub walks the least recently verified first; the orphan sweep
-- re-examines only those it marked.
CREATE INDEX ha_blobs_verified_idx ON @extschema@.ha_blobs (verified_at NULLS FIRST, sha256);
CREATE INDEX ha_blobs_unreferenced_idx ON @extschema@.ha_blobs (unreferenced_since)
    WHERE unreferenced_since IS NOT NULL;
COMMENT ON TABLE @extschema@.ha_blobs IS
    'crawler_ha: the blobs this node''s store holds (per node, never replicated)';

-- Blobs this node's images rows reference and its store lacks. Rows come
-- only from images rows (whose CHECK already holds the sha256) and from
-- validated arguments, so the insert the trigger below makes has no check
-- of its own to pay for.
CREATE TABLE @extschema@.ha_blob_wanted (
    sha256       text PRIMARY KEY,
    file_path    text NOT NULL,
    file_size    bigint NOT NULL,
    wanted_since timestamptz NOT NULL DEFAULT pg_catalog.now(),
    attempts     integer NOT NULL DEFAULT 0,
    next_try_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_error   text,
    corrupt_at   timestamptz
);
CREATE INDEX ha_blob_wanted_since_idx ON @extschema@.ha_blob_wanted (wanted_since, sha256);
COMMENT ON TABLE @extschema@.ha_blob_wanted IS
    'crawler_ha: blobs this node''s images rows reference but its store lacks, with the fetch attempts (per node, never replicated)';
COMMENT ON COLUMN @extschema@.ha_blob_wanted.corrupt_at IS
    'when this node''s copy failed verification (blob_corrupt); storing it again records blob_repaired';

-- Queue the blobs of a new or changed images row (its file and its
-- thumbnails') when this node's store lacks them. Fires in every path a row arrives by: the write API, the
-- logical-replication apply worker and its initial table copy, a merge and
-- a repair (ENABLE ALWAYS, since those run with session_replication_role =
-- replica). This is how a standby never skips a row: ids are partitioned by
-- node, so id order is not arrival order and no "last id seen" could work.
-- Cost on the common path of the primary (the worker uploaded the blob
-- before it records the row): one index probe. It takes no lock of its own:
-- a per-row lock would fill the lock table in a transaction of many rows
-- (a merge, a repair, the initial copy); blob_removed() locks instead.
-- Without an attached store (no agent on this node) nothing is queued:
-- blob_requeue_missing() after the agent's first inventory finds those rows.
-- In C (ha_blob.c): it must insert in the apply worker's read-only
-- transaction on a standby, and it runs once per row of the hot path.
CREATE FUNCTION @extschema@.ha_blob_want_image()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_blob_want_image';
COMMENT ON FUNCTION @extschema@.ha_blob_want_image() IS
    'crawler_ha (internal): trigger on images: queues in ha_blob_wanted the blobs (file, thumbnails) this node''s store lacks';
CREATE TRIGGER images_blob_wanted AFTER INSERT OR UPDATE OF sha256, thumbnails ON @extschema@.images
    FOR EACH ROW EXECUTE FUNCTION @extschema@.ha_blob_want_image();
ALTER TABLE @extschema@.images ENABLE ALWAYS TRIGGER images_blob_wanted;

-- ---------------------------------------------------------------------------
-- Argument checks, shared by the functions below.

-- One sha256: 22004 for NULL, 22023 unless 64 lower-case hex digits.
CREATE FUNCTION @extschema@.ha_blob_check_sha256(value text, name text DEFAULT 'sha256')
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', name USING ERRCODE = 'null_value_not_allowed';
    ELSIF value !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'invalid % %', name, to_json(left(value, 80))::text
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A sha256 is 64 lower-case hex digits.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_blob_check_sha256(text, text) IS
    'crawler_ha (internal): raises 22004 for a NULL and 22023 for anything but 64 lower-case hex digits';

-- A batch: sha256s (and sizes, unless NULL is passed for them and
-- with_sizes is false) of one dimension, at most 10000, the same length, no
-- NULL element (22004), every sha256 well formed and every size >= 0 (22023).
CREATE FUNCTION @extschema@.ha_blob_check_batch(sha256s text[], sizes bigint[], with_sizes boolean)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad bigint;
BEGIN
    IF sha256s IS NULL THEN
        RAISE EXCEPTION 'sha256s must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF with_sizes AND sizes IS NULL THEN
        RAISE EXCEPTION 'sizes must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.crawl_check_list(sha256s, 'sha256s');
    IF cardinality(sha256s) > 10000 THEN
        RAISE EXCEPTION 'too many sha256s in one call: %', cardinality(sha256s)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'At most 10000 per call.';
    END IF;
    IF with_sizes THEN
        PERFORM @extschema@.crawl_check_list(sizes, 'sizes');
        IF cardinality(sizes) <> cardinality(sha256s) THEN
            RAISE EXCEPTION 'sha256s and sizes have different lengths (% and %)', cardinality(sha256s), cardinality(sizes)
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'One size per sha256, in the same order.';
        END IF;
        SELECT min(u.i) INTO bad FROM unnest(sizes) WITH ORDINALITY AS u(z, i) WHERE u.z IS NULL;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'sizes[%] must not be NULL', bad USING ERRCODE = 'null_value_not_allowed';
        END IF;
        SELECT min(u.i) INTO bad FROM unnest(sizes) WITH ORDINALITY AS u(z, i) WHERE u.z < 0;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'sizes[%] is negative', bad USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    SELECT min(u.i) INTO bad FROM unnest(sha256s) WITH ORDINALITY AS u(h, i) WHERE u.h IS NULL;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'sha256s[%] must not be NULL', bad USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT min(u.i) INTO bad FROM unnest(sha256s) WITH ORDINALITY AS u(h, i) WHERE u.h !~ '^[0-9a-f]{64}$';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'invalid sha256s[%] %', bad, to_json(left(sha256s[bad], 80))::text
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A sha256 is 64 lower-case hex digits.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_blob_check_batch(text[], bigint[], boolean) IS
    'crawler_ha (internal): validate a batch of sha256s (and sizes) of the blob_* functions';

-- max_rows of the listing functions: 1 to 10000.
CREATE FUNCTION @extschema@.ha_blob_check_rows(max_rows integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF max_rows IS NULL THEN
        RAISE EXCEPTION 'max_rows must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF max_rows < 1 OR max_rows > 10000 THEN
        RAISE EXCEPTION 'max_rows % is out of range', max_rows
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'max_rows is between 1 and 10000.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_blob_check_rows(integer) IS
    'crawler_ha (internal): validate max_rows (1 to 10000)';

-- Free text the agent reports (an error, a detail): at most 1000
-- characters, control characters as spaces, so that a hostile peer's reply
-- quoted in an error cannot forge lines in a log or an alert.
CREATE FUNCTION @extschema@.ha_blob_clip(value text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT regexp_replace(left(value, 1000), '[\x01-\x1f\x7f-\x9f]', ' ', 'g') $$;
COMMENT ON FUNCTION @extschema@.ha_blob_clip(text) IS
    'crawler_ha (internal): free text clipped to 1000 characters, control characters replaced by spaces';

-- The start of every blob_* function that writes: a read-write transaction
-- (25006 with the way to get one on a standby), committed locally (the
-- tables are per node), and with need_store an attached store (55000).
CREATE FUNCTION @extschema@.ha_blob_begin(need_store boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_read_only') = 'on' THEN
        RAISE EXCEPTION 'the blob bookkeeping needs a read-write transaction'
            USING ERRCODE = 'read_only_sql_transaction',
                  DETAIL = 'Its tables are per node and never replicated: a standby keeps its own.',
                  HINT = 'Connect with options=''-c default_transaction_read_only=off -c synchronous_commit=local''.';
    END IF;
    PERFORM @extschema@.ha_commit_locally();
    IF need_store AND NOT EXISTS (SELECT 1 FROM @extschema@.ha_blob_store) THEN
        RAISE EXCEPTION 'no blob store is attached to node %', (SELECT n.node_name FROM @extschema@.ha_node n)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'The agent calls blob_store_attach(store_id) first.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_blob_begin(boolean) IS
    'crawler_ha (internal): start of the writing blob_* functions: read-write (25006), local commit, an attached store when asked (55000)';

-- ha_blob_wanted changes as fast as blobs arrive, so its statistics are
-- always behind, and a plan that depends on them can read the whole queue
-- for a list of names: in a catch-up of 6,000 blobs auto_explain showed
-- w.sha256 = ANY (array) planned as sequential scans of 400 pages, 10-90
-- ms a call, where the primary key finds 300 names in about a millisecond.
-- Rows this transaction has locked (the queue's due entries) are changed
-- by their ctid, a TID scan whatever the statistics. A list of other rows
-- (those just stored) is planned for each call's list (plan_cache_mode =
-- force_custom_plan): a generic plan, not knowing the list, compared every
-- queued row with every name.

-- blob_stored() and blob_stored_many(): this node now holds these blobs.
-- A blob that was wanted because this node's copy was corrupt is repaired:
-- counted and recorded as an event.
CREATE FUNCTION @extschema@.ha_blob_stored(sha256s text[], sizes bigint[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    n integer;
    fixed record;
    nfixed integer := 0;
BEGIN
    WITH v AS (SELECT DISTINCT ON (u.h) u.h, u.z FROM unnest(sha256s, sizes) AS u(h, z) ORDER BY u.h, u.z DESC)
    INSERT INTO @extschema@.ha_blobs AS b (sha256, size, stored_at, last_put_at, verified_at)
    SELECT v.h, v.z, now(), now(), now() FROM v
    ON CONFLICT (sha256) DO UPDATE
       SET size = EXCLUDED.size, last_put_at = now(), unreferenced_since = NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    FOR fixed IN
        DELETE FROM @extschema@.ha_blob_wanted w WHERE w.sha256 = ANY (sha256s)
        RETURNING w.sha256, w.corrupt_at
    LOOP
        CONTINUE WHEN fixed.corrupt_at IS NULL;
        nfixed := nfixed + 1;
        PERFORM @extschema@.ha_record_event('blob_repaired',
            format('blob %s is stored again after it failed verification', fixed.sha256), NULL,
            jsonb_build_object('sha256', fixed.sha256, 'corrupt_at', fixed.corrupt_at));
    END LOOP;
    IF nfixed > 0 THEN
        UPDATE @extschema@.ha_blob_store s SET repaired = s.repaired + nfixed;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_blob_stored(text[], bigint[]) IS
    'crawler_ha (internal): record validated blobs as held here, take them off the wanted list, count repairs';

-- ---------------------------------------------------------------------------
-- For workers.

-- Where a worker uploads a blob before it records the row that names it:
-- this node's agent, with the replication mode the agent follows (in sync
-- modes it stores the blob on the peer too before it answers). The write
-- fence first, so a worker still connected to a node that is no longer the
-- primary learns it here (25006), before it uploads anything.
CREATE FUNCTION @extschema@.crawl_blob_target()
RETURNS TABLE (agent_url text, replication_mode text, sync_timeout_ms integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    agent_url := nullif(current_setting('crawler_ha.agent_url', true), '');
    IF agent_url IS NULL THEN
        RAISE EXCEPTION 'node % has no agent', (SELECT n.node_name FROM @extschema@.ha_node n)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'crawler_ha.agent_url is empty.',
                  HINT = 'Run crawler-ha agent on this node and set crawler_ha.agent_url to its URL, or store files in a local directory.';
    END IF;
    replication_mode := current_setting('crawler_ha.replication_mode');
    -- in milliseconds whatever unit the setting was written in
    SELECT s.setting::integer INTO sync_timeout_ms FROM pg_settings s WHERE s.name = 'crawler_ha.sync_timeout';
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_blob_target() IS
    'crawler_ha: the agent a worker uploads blobs to (this node''s crawler_ha.agent_url), the replication mode and the semi_sync timeout in ms; 25006 unless this node accepts writes, 55000 when it has no agent';

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

-- A wanted entry is stale when this node holds the blob already or no row
-- references it any more (deleted before the blob came). Asked for one
-- entry at a time, by index: inside a query over many entries the planner
-- hashes whole tables instead (a scan of every images row per poll).
CREATE FUNCTION @extschema@.ha_blob_stale(sha256 text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM @extschema@.ha_blobs b WHERE b.sha256 = ha_blob_stale.sha256)
        OR NOT EXISTS (SELECT 1 FROM @extschema@.image_blob_find(ha_blob_stale.sha256));
END
$$;
COMMENT ON FUNCTION @extschema@.ha_blob_stale(text) IS
    'crawler_ha (internal): whether a wanted blob is held already or referenced by no row';

-- Locks up to n due entries of the wanted queue (oldest first, skipping
-- those another transaction holds), removes the stale ones and returns how
-- many were taken and the rows of the live ones, in queue order (ctid:
-- this transaction holds them locked, so the caller changes them by a TID
-- scan). Each entry is judged by primary key: with the entries joined in
-- one query instead, a plan made from stale statistics (a queue just
-- filled by an inventory) judged each entry once per entry in the queue.
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
      FROM (SELECT x.r, x.i, @extschema@.ha_blob_stale(x.h) AS dead
              FROM unnest(names, rows_) WITH ORDINALITY AS x(h, r, i)
            OFFSET 0) u;  -- judged once per entry, not once per aggregate
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
