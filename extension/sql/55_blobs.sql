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
-- of its own to pay for. Half of each page is left free: every entry
-- handed out is updated (next_try_at, no index on it), and with room on its
-- page that update is HOT, with no new entry in either index. With full
-- pages (a queue filled by one requeue) 30 of 1,024 hand-outs were HOT on
-- a scratch node, with half free all of them.
CREATE TABLE @extschema@.ha_blob_wanted (
    sha256       text PRIMARY KEY,
    file_path    text NOT NULL,
    file_size    bigint NOT NULL,
    wanted_since timestamptz NOT NULL DEFAULT pg_catalog.now(),
    attempts     integer NOT NULL DEFAULT 0,
    next_try_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_error   text,
    corrupt_at   timestamptz
) WITH (fillfactor = 50);
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
    joined text;
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
    -- One match over the whole list (about a tenth of one per element):
    -- with its length, it holds exactly when every element is 64 hex
    -- digits (an element with a comma would make the text longer). Only a
    -- list that fails it is searched for its first bad element.
    joined := array_to_string(sha256s, ',');
    IF octet_length(joined) <> 65 * cardinality(sha256s) - 1 OR joined !~ '^([0-9a-f]{64},)*[0-9a-f]{64}$' THEN
        SELECT min(u.i) INTO bad FROM unnest(sha256s) WITH ORDINALITY AS u(h, i) WHERE u.h !~ '^[0-9a-f]{64}$';
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'invalid sha256s[%] %', bad, to_json(left(sha256s[bad], 80))::text
                USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A sha256 is 64 lower-case hex digits.';
        END IF;
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
