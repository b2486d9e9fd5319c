-- Rejoin with merge (HA part 2): an old primary that holds rows the new
-- primary lacks (written after the split point: the last change the new
-- primary received from it) sends them to the new primary before it follows
-- it. See docs/ha.md, "Rejoin with merge".
--
-- The old node finds the rows from the slot its old standby used (every
-- change after the split point is still there: peeking consumes nothing),
-- or, without that slot, by a key comparison with the new primary. It sends
-- the rows as they are now (it stopped writing when it stepped down), in
-- chunks, to ha_merge_rows() on the new primary, which applies the merge
-- rules table by table. Once every chunk is confirmed, the old node drops the
-- slot, empties its data tables and copies the new primary afresh.

-- Every change that transactions committed after the split point made to
-- the tables of the extension's publication, from the old standby's slot:
-- the tail, one row per change (I, U, D, T), with its table and its key
-- (a row's primary key is its first column), as pgoutput's messages gave
-- them. The slot's own plugin, pgoutput, would write every column of every
-- change; a temporary copy of the slot (pg_copy_logical_replication_slot:
-- the same position, nothing of the real slot changes) is read with the
-- extension's output plugin instead, which writes only these (see
-- ha_tail_keys_plugin.c), and dropped. The split point is compared with the
-- end of each commit record, which is how the subscriber's replication
-- origin counts them.
-- Creating the copy needs a free replication slot, and a transaction that
-- has not written yet (logical decoding's rule): the merge reads its tail
-- first.
CREATE FUNCTION @extschema@.ha_tail_changes(slot name, split pg_lsn)
RETURNS TABLE (xid xid, op "char", rel oid, key text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- one backend reads one tail at a time; a temporary slot is this backend's
    copy_name constant name := 'crawler_ha_tail_' || pg_backend_pid();
    rels text;
    actions text;
    allowed text := current_setting('output_plugin_libraries', true);
BEGIN
    IF slot IS NULL OR split IS NULL THEN
        RAISE EXCEPTION 'slot and split must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- what pgoutput would follow for the publication (FOR TABLE, without
    -- row filters or column lists, as ha_setup() makes it)
    SELECT concat(CASE WHEN p.pubinsert THEN 'I' END, CASE WHEN p.pubupdate THEN 'U' END,
                  CASE WHEN p.pubdelete THEN 'D' END, CASE WHEN p.pubtruncate THEN 'T' END),
           (SELECT coalesce(string_agg(format('%I.%I', t.schemaname, t.tablename)::regclass::oid::text, ','), '')
              FROM pg_publication_tables t WHERE t.pubname = p.pubname)
      INTO actions, rels
      FROM pg_publication p WHERE p.pubname = 'crawler_ha_pub';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'publication "crawler_ha_pub" does not exist' USING ERRCODE = 'undefined_object';
    END IF;
    -- a copy an interrupted reading of this backend left behind
    IF EXISTS (SELECT 1 FROM pg_replication_slots s
                WHERE s.slot_name = copy_name AND s.temporary AND s.active_pid = pg_backend_pid()) THEN
        PERFORM pg_drop_replication_slot(copy_name);
    END IF;
    BEGIN
        -- PostgreSQL 15.19 and later load as an output plugin only a library
        -- that output_plugin_libraries names: it keeps REPLICATION users from
        -- naming any library. It is the superuser's to set (and older minor
        -- versions have no such setting); this function is the superuser's
        -- and names its own library only, for its copy and its reading.
        IF allowed IS NOT NULL THEN
            PERFORM set_config('output_plugin_libraries', 'crawler_ha', true);
        END IF;
        PERFORM pg_copy_logical_replication_slot(slot, copy_name, true, 'crawler_ha');
        -- lines "op oid[ key]" (ha_tail_keys_plugin.c): the key is all after the second space
        RETURN QUERY
        SELECT c.xid, left(c.data, 1)::"char", nullif(split_part(c.data, ' ', 2), '')::oid,
               CASE WHEN strpos(substr(c.data, 3), ' ') > 0 THEN substr(c.data, 3 + strpos(substr(c.data, 3), ' ')) END
          FROM pg_logical_slot_peek_changes(copy_name, NULL, NULL, 'relations', rels, 'after_lsn', split::text,
                                            'actions', actions) c;
        PERFORM pg_drop_replication_slot(copy_name);
        IF allowed IS NOT NULL THEN
            PERFORM set_config('output_plugin_libraries', allowed, true);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        -- (the error undid the setting with the block)
        -- the copy holds back WAL and catalog rows as long as it exists
        IF EXISTS (SELECT 1 FROM pg_replication_slots s
                    WHERE s.slot_name = copy_name AND s.temporary AND s.active_pid = pg_backend_pid()) THEN
            PERFORM pg_drop_replication_slot(copy_name);
        END IF;
        RAISE;
    END;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_tail_changes(name, pg_lsn) IS
    'crawler_ha (internal): every change (xid, type, table, key) to a published table by the transactions committed after the split point, read from a temporary copy of a slot';

-- The tail in one reading of the slot: how many published changes
-- (inserts, updates, deletes, truncates) transactions committed after the
-- split point made, and the keys of the data rows they changed, per table
-- ({"schema.table": [keys in order]}). Decoding the slot is most of the
-- cost of reading a tail, so the rejoin's count and the merge's keys come
-- from the same pass.
CREATE FUNCTION @extschema@.ha_tail_summary(slot name, split pg_lsn, OUT changes bigint, OUT keys jsonb)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One scan of the changes, per table: counted, and the keys made
    -- distinct and sorted by their aggregate (one sort) as JSON text, read
    -- into jsonb once. A DISTINCT, then jsonb_agg and jsonb_object_agg, took
    -- twice as long at 200,000 changes (two sorts, and every key built
    -- into jsonb twice).
    SELECT coalesce(sum(g.n), 0)::bigint,
           coalesce((json_object_agg(g.rel::regclass::text, g.keys) FILTER (WHERE g.keys IS NOT NULL))::jsonb, '{}')
      INTO changes, keys
      FROM (SELECT c.rel, count(*) AS n,
                   json_agg(DISTINCT c.key ORDER BY c.key)
                       FILTER (WHERE c.op <> 'T' AND c.key IS NOT NULL
                                 AND c.rel = ANY (@extschema@.ha_data_tables()::oid[])) AS keys
              FROM @extschema@.ha_tail_changes(slot, split) c
             GROUP BY c.rel) g;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_tail_summary(name, pg_lsn) IS
    'crawler_ha (internal): the count of the changes committed after the split point and the keys of the data rows they changed, per table, read from a slot without consuming it';

-- The per-table sums of ha_merge_tail(): one chunk's answer from the new
-- primary (ha_merge_receive()'s JSON text) added to table tbl's.
CREATE FUNCTION @extschema@.ha_merge_add_answer(total jsonb, tbl regclass, answer text)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT total || jsonb_build_object(tbl::text,
        (SELECT jsonb_object_agg(s.key, s.value::bigint + coalesce((answer::jsonb ->> s.key)::bigint, 0))
           FROM jsonb_each_text(total -> tbl::text) s));
$$;
COMMENT ON FUNCTION @extschema@.ha_merge_add_answer(jsonb, regclass, text) IS
    'crawler_ha (internal): adds one ha_merge_receive() answer to a table''s sums in ha_merge_tail()';
REVOKE ALL ON FUNCTION @extschema@.ha_merge_add_answer(jsonb, regclass, text) FROM PUBLIC;

-- On the old primary: merge the tail into the peer (the new primary).
-- slot NULL: no slot records the tail; compare keys with the peer instead
-- (rows only here or different here). Returns per-table counts, and with a
-- slot the tail's changes (none: nothing was sent).
-- chunk_rows: the rows of one ha_merge_receive() call, one transaction on
-- the peer. Each call also pays a recount of the touched sessions' counters
-- from all their rows: at 2,000 rows those were a third of a chunk's time in
-- a session of 100,000 rows; at 10,000 a chunk of images is about 5 MB of
-- JSON.
-- The chunks go over one connection (ha_peer_send: kept to the end of the
-- transaction), each as a parameter of the call, not inside its text. While
-- the new primary merges one chunk, the next one is read here; it is sent
-- only once the previous answer is in, so the new primary merges the chunks
-- in order, parents before children.
CREATE FUNCTION @extschema@.ha_merge_tail(slot name, split pg_lsn, chunk_rows integer DEFAULT 10000,
                                           max_wait_ms integer DEFAULT 30000)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 3 SET bytea_output = 'hex'
AS $$
DECLARE
    keys jsonb;
    changes bigint;       -- the tail's changes (a slot says; NULL for a key comparison)
    tbl regclass;
    key_col name;
    key_type text;
    chunk text[];
    present text;
    gone jsonb;
    me record;
    zero constant jsonb := jsonb_build_object('rows', 0, 'inserted', 0, 'replaced', 0, 'kept', 0,
                                              'conflicts', 0, 'deleted_here', 0);
    total jsonb := '{}';  -- per table: the sums of its chunks' answers
    waiting regclass;     -- the table of the chunk the peer is merging, if any
    merged bigint := 0;
    receive_call constant text := format('SELECT %I.ha_merge_receive($1::regclass, $2::jsonb, $3::jsonb, $4, '
                                         '$5::bigint, $6::integer)::text', '@extschema@');
BEGIN
    IF chunk_rows IS NULL OR chunk_rows < 1 OR chunk_rows > 100000 THEN
        RAISE EXCEPTION 'chunk_rows must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    ELSIF max_wait_ms IS NULL OR max_wait_ms < 0 OR max_wait_ms > 3540000 THEN
        RAISE EXCEPTION 'max_wait_ms must be between 0 and 3540000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT n.node_name, s.term INTO me FROM @extschema@.ha_node n, @extschema@.ha_state s;
    IF slot IS NOT NULL THEN
        SELECT t.changes, t.keys INTO changes, keys FROM @extschema@.ha_tail_summary(slot, split) t;
    ELSE
        keys := '{}';
        FOREACH tbl IN ARRAY @extschema@.ha_data_tables() LOOP
            keys := keys || jsonb_build_object(tbl::text,
                (SELECT coalesce(jsonb_agg(d.key ORDER BY d.key), '[]')
                   FROM @extschema@.ha_diff(tbl, recheck => '0') d
                  WHERE d.kind IN ('missing_on_peer', 'changed')));
        END LOOP;
    END IF;

    -- parents before children: a merged frontier row finds its session
    FOREACH tbl IN ARRAY @extschema@.ha_data_tables() LOOP
        total := total || jsonb_build_object(tbl::text, zero);
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) INTO key_col, key_type
          FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = tbl AND i.indisprimary;
        FOR chunk IN
            SELECT array_agg(e.k ORDER BY e.n)
              FROM jsonb_array_elements_text(coalesce(keys -> tbl::text, '[]')) WITH ORDINALITY e(k, n)
             GROUP BY (e.n - 1) / chunk_rows ORDER BY min(e.n)
        LOOP
            -- JSON text straight from the rows (json_agg: no jsonb built here)
            EXECUTE format('SELECT coalesce(json_agg(t), ''[]'')::text FROM %s t WHERE t.%I = ANY ($1::%s[])',
                           tbl, key_col, key_type)
               USING chunk INTO present;
            -- keys the tail deleted here: reported, not applied (see ha_merge_rows)
            -- (compared as the key's type, so that the primary key's index serves)
            EXECUTE format('SELECT coalesce(jsonb_agg(k), ''[]'') FROM unnest($1) k
                             WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE t.%I = k::%s)', tbl, key_col, key_type)
               USING chunk INTO gone;
            IF waiting IS NOT NULL THEN
                total := @extschema@.ha_merge_add_answer(total, waiting, @extschema@.ha_peer_receive());
            END IF;
            -- ha_merge_receive() bounds its lock waits (max_wait_ms), so the
            -- whole call is bounded too; a failure keeps everything here and
            -- the rejoin tries again
            PERFORM @extschema@.ha_peer_send(receive_call,
                ARRAY[tbl::text, present, gone::text, me.node_name, me.term::text, max_wait_ms::text],
                max_wait_ms + 60000);
            waiting := tbl;
        END LOOP;
    END LOOP;
    IF waiting IS NOT NULL THEN
        total := @extschema@.ha_merge_add_answer(total, waiting, @extschema@.ha_peer_receive());
    END IF;
    SELECT coalesce(sum((t.value ->> 'inserted')::bigint + (t.value ->> 'replaced')::bigint), 0)
      INTO merged FROM jsonb_each(total) t;
    RETURN jsonb_build_object('method', CASE WHEN slot IS NULL THEN 'key comparison' ELSE 'slot' END,
                              'slot', slot, 'split_lsn', split, 'changes', changes, 'merged', merged,
                              'tables', total);
END
$$;
COMMENT ON FUNCTION @extschema@.ha_merge_tail(name, pg_lsn, integer, integer) IS
    'crawler_ha (internal): on an old primary, sends every row it changed after the split point to ha_merge_rows() on the new primary';

-- The progress a frontier state stands for; a lease from another term is void.
-- A SQL-standard body without SET, like the write API's rules: the planner
-- inlines it where the merge compares rows.
CREATE FUNCTION @extschema@.ha_merge_rank(state text, lease_valid boolean)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE state WHEN 'done' THEN 3 WHEN 'failed' THEN 2
                  WHEN 'leased' THEN CASE WHEN lease_valid THEN 1 ELSE 0 END ELSE 0 END;
COMMENT ON FUNCTION @extschema@.ha_merge_rank(text, boolean) IS
    'crawler_ha (internal): done > failed > leased (here) > queued, for merging frontier rows';

-- Incoming rows that break the write API's rule for their table: refused is
-- [{"rec": the row as a record of the table, in JSON, "rule": the rule it
-- breaks}, ...]. Each is recorded as a conflict event (it is not merged);
-- returns how many.
CREATE FUNCTION @extschema@.ha_merge_refuse_invalid(tbl text, key text, refused jsonb, from_node text,
                                                    from_term bigint)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(@extschema@.ha_record_event('conflict',
               format('%s %s (%s) from %s (term %s) breaks the write API''s rule on %s; not merged',
                      tbl, c -> 'rec' ->> 'id', left(c -> 'rec' ->> 'url', 200), from_node, from_term, c ->> 'rule'),
               NULL,
               jsonb_build_object('table', tbl, 'key', c -> 'rec' -> key, 'from_node', from_node,
                                  'from_term', from_term, 'rule', c ->> 'rule', 'other', c -> 'rec')))::integer
      FROM jsonb_array_elements(refused) c
$$;
COMMENT ON FUNCTION @extschema@.ha_merge_refuse_invalid(text, text, jsonb, text, bigint) IS
    'crawler_ha (internal): records a conflict for each merged row that breaks the write API''s rule; returns how many';
REVOKE ALL ON FUNCTION @extschema@.ha_merge_refuse_invalid(text, text, jsonb, text, bigint) FROM PUBLIC;

-- On the new primary: merge rows an old primary wrote after the split.
-- The rules (docs/ha.md):
--   a row missing here is inserted as it is (ids never collide across nodes);
--   images: same URL and same sha256 is the same image (thumbnails only
--     there join those here); a different sha256 is
--     a conflict: the row here (the newer term) stays, the other is recorded;
--   crawl_frontier: the URL's further progress wins (done > failed > queued;
--     the old term's lease is void, so a leased row arrives queued); done here
--     and failed there (or the reverse) is a conflict, recorded, done wins;
--   crawl_sessions: a stop on either side holds; different seeds or settings
--     are a conflict (this row stays);
--   crawl_session_counts: the old primary's rows keep the larger retries
--     count; every touched session's other counters are then recounted from
--     the rows (the difference goes to this node's slot 0);
--   crawl_hosts: the later politeness times and the newer robots.txt win;
--   a row the old primary deleted is kept here and reported.
-- A row the write API could not have written is not merged (a conflict). A
-- key sent twice in one call is merged as if its rows came one after the
-- other: the first as a row missing here, the next ones against it.
-- Returns {table, from_node, from_term, rows, inserted, replaced, kept,
-- conflicts, deleted_here}: inserted + replaced + kept is the rows merged,
-- conflicts counts the conflict events.
-- Every call is recorded as a 'merge' event listing the keys it inserted or
-- replaced; every conflict is its own 'conflict' event with both rows.
-- Idempotent: merging the same rows again changes nothing.
--
-- Set-based: the rows are read from JSON once, into an array of the table's
-- records, and each rule is one statement over that array. A tail is mostly
-- rows the new primary lacks: they are inserted at once, and only the rows
-- that were not (a row here under the same key) are compared with the rows
-- here, locked first in key order. For the frontier and the images, the
-- rows here are found by one index probe per incoming row (a LATERAL
-- subquery with OFFSET 0, which the planner cannot turn into a join): those
-- tables grow during a merge faster than their statistics, and a join
-- planned on the statistics of a near-empty table compared every incoming
-- row with every row here (50,000 x 2,000 comparisons a chunk).
CREATE FUNCTION @extschema@.ha_merge_rows(tbl regclass, rows jsonb, deleted_keys jsonb DEFAULT '[]',
                                          from_node text DEFAULT NULL, from_term bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inserted jsonb := '[]';  -- the keys this call inserted
    replaced jsonb := '[]';  -- and those whose row here it changed
    kept bigint := 0;
    conflicts bigint := 0;
    sessions bigint[] := '{}';  -- whose counters are recounted
    refused jsonb;  -- the rows the write API could not have written, with the rule each breaks
    -- the incoming rows as records of the table (in_), and those of them
    -- that are compared with the rows here (rest_): all but the ones inserted
    in_s @extschema@.crawl_sessions[];
    rest_s @extschema@.crawl_sessions[];
    in_f @extschema@.crawl_frontier[];
    rest_f @extschema@.crawl_frontier[];
    in_i @extschema@.images[];
    rest_i @extschema@.images[];
    summary jsonb;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    -- In sync mode the synchronous standby is the very node that is merging
    -- and waiting for this answer: its commit must not wait for it. (Local to
    -- the transaction, not to the function, so that it holds at the commit.)
    PERFORM set_config('synchronous_commit', 'local', true);
    IF tbl IS NULL OR rows IS NULL THEN
        RAISE EXCEPTION 'tbl and rows must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.ha_require_data_table(tbl);
    IF jsonb_typeof(rows) <> 'array' OR jsonb_typeof(coalesce(deleted_keys, '[]')) <> 'array' THEN
        RAISE EXCEPTION 'rows and deleted_keys must be JSON arrays' USING ERRCODE = 'invalid_parameter_value';
    ELSIF jsonb_path_exists(rows, 'strict $[*] ? (@.type() != "object")') THEN
        RAISE EXCEPTION 'every row must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    ELSIF length(from_node) > 64 THEN
        RAISE EXCEPTION 'from_node is too long' USING ERRCODE = 'string_data_right_truncation';
    END IF;
    from_node := coalesce(from_node, 'unknown');

    IF tbl = '@extschema@.crawl_sessions'::regclass THEN
        -- The first row of each id (in key order) and the others, which,
        -- like the rows whose id is here, are compared with the row here.
        SELECT coalesce(array_agg(x.r ORDER BY (x.r).id) FILTER (WHERE x.first), '{}'),
               coalesce(array_agg(x.r ORDER BY x.n) FILTER (WHERE NOT x.first), '{}')
          INTO in_s, rest_s
          FROM (SELECT y.r, y.n, row_number() OVER (PARTITION BY (y.r).id ORDER BY y.n) = 1 AS first
                  FROM (SELECT row_number() OVER () AS n, r
                          FROM jsonb_populate_recordset(NULL::@extschema@.crawl_sessions, rows) r) y) x;
        -- the rows here, locked in key order: what is decided below holds until the commit
        PERFORM 1 FROM @extschema@.crawl_sessions c WHERE c.id = ANY (ARRAY(SELECT r.id FROM unnest(in_s) r))
          ORDER BY c.id FOR UPDATE OF c;
        WITH ins AS (
            INSERT INTO @extschema@.crawl_sessions
            SELECT r.* FROM unnest(in_s) r
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.crawl_sessions c WHERE c.id = r.id)
            RETURNING id)
        SELECT coalesce(jsonb_agg(ins.id ORDER BY ins.id), '[]'),
               ARRAY(SELECT r FROM unnest(in_s) r WHERE r.id NOT IN (SELECT ins.id FROM ins)) || rest_s
          INTO inserted, rest_s
          FROM ins;
        SELECT coalesce(array_agg(DISTINCT c.id), '{}'),
               conflicts + count(@extschema@.ha_record_event('conflict',
                   format('crawl_sessions %s differs on %s (term %s): seeds or settings; the row here stays',
                          r.id, from_node, from_term), NULL,
                   jsonb_build_object('table', 'crawl_sessions', 'key', r.id, 'from_node', from_node,
                                      'from_term', from_term, 'kept', to_jsonb(c), 'other', to_jsonb(r))))
                   FILTER (WHERE c.seeds IS DISTINCT FROM r.seeds OR c.settings IS DISTINCT FROM r.settings)
          INTO sessions, conflicts
          FROM unnest(rest_s) r JOIN @extschema@.crawl_sessions c ON c.id = r.id;
        -- a stop on either side holds
        WITH stop AS (
            SELECT DISTINCT ON (r.id) r.id, r.finished_at FROM unnest(rest_s) r
             WHERE r.status = 'stopped' ORDER BY r.id),
        up AS (
            UPDATE @extschema@.crawl_sessions c
               SET status = 'stopped', finished_at = coalesce(c.finished_at, stop.finished_at, now()), updated_at = now()
              FROM stop
             WHERE c.id = stop.id AND c.status <> 'stopped'
            RETURNING c.id)
        SELECT coalesce(jsonb_agg(up.id ORDER BY up.id), '[]') INTO replaced FROM up;
        kept := jsonb_array_length(rows) - jsonb_array_length(inserted) - jsonb_array_length(replaced);

    ELSIF tbl = '@extschema@.crawl_session_counts'::regclass THEN
        -- The old primary's own rows: what it counted in its term. Every
        -- counter that the rows can tell is recounted below, so that an
        -- image or a URL the merge kept from this side is not counted twice;
        -- only the retries and a re-crawl's images changed, unchanged and
        -- fresh, which no row records, keep the larger figure.
        -- Rows of a session that is not here are kept (not merged). Rows for
        -- one counter row are one upsert with their largest figures: the
        -- first is inserted (or replaces the row here), the others replace.
        WITH r AS (
            SELECT x.n, x.sent_key, x.k, x.session_id, x.node_id, x.slot,
                   min(x.n) OVER (PARTITION BY x.k) AS first_n, max(x.retries) OVER (PARTITION BY x.k) AS most,
                   max(x.images_changed) OVER (PARTITION BY x.k) AS most_changed,
                   max(x.images_unchanged) OVER (PARTITION BY x.k) AS most_unchanged,
                   max(x.images_fresh) OVER (PARTITION BY x.k) AS most_fresh
              FROM (SELECT row_number() OVER () AS n, c.key AS sent_key,
                           c.session_id || '/' || c.node_id || '/' || c.slot AS k,
                           c.session_id, c.node_id, c.slot, coalesce(c.retries, 0) AS retries,
                           coalesce(c.images_changed, 0) AS images_changed,
                           coalesce(c.images_unchanged, 0) AS images_unchanged,
                           coalesce(c.images_fresh, 0) AS images_fresh
                      FROM jsonb_populate_recordset(NULL::@extschema@.crawl_session_counts, rows) c) x
             WHERE EXISTS (SELECT 1 FROM @extschema@.crawl_sessions s WHERE s.id = x.session_id)),
        up AS (
            INSERT INTO @extschema@.crawl_session_counts AS c
                   (key, session_id, node_id, slot, retries, images_changed, images_unchanged, images_fresh)
            SELECT r.k, r.session_id, r.node_id, r.slot, r.most, r.most_changed, r.most_unchanged, r.most_fresh
              FROM r WHERE r.n = r.first_n
             ORDER BY r.k
            ON CONFLICT (key) DO UPDATE
               SET retries = greatest(c.retries, EXCLUDED.retries),
                   images_changed = greatest(c.images_changed, EXCLUDED.images_changed),
                   images_unchanged = greatest(c.images_unchanged, EXCLUDED.images_unchanged),
                   images_fresh = greatest(c.images_fresh, EXCLUDED.images_fresh), updated_at = now()
            RETURNING c.key, (c.xmax = 0) AS fresh)
        SELECT coalesce(jsonb_agg(to_jsonb(r.sent_key) ORDER BY r.n) FILTER (WHERE up.fresh AND r.n = r.first_n), '[]'),
               coalesce(jsonb_agg(to_jsonb(r.sent_key) ORDER BY r.n) FILTER (WHERE NOT (up.fresh AND r.n = r.first_n)), '[]'),
               coalesce(array_agg(DISTINCT r.session_id), '{}')
          INTO inserted, replaced, sessions
          FROM r JOIN up ON up.key = r.k;
        kept := jsonb_array_length(rows) - jsonb_array_length(inserted) - jsonb_array_length(replaced);

    ELSIF tbl = '@extschema@.crawl_hosts'::regclass THEN
        -- One upsert in key order (the rows here locked as it goes). The
        -- rows of one host are taken together, as merging them one after
        -- the other would: the latest politeness times, the newest
        -- robots.txt. A row here that would not change is kept.
        WITH r AS (
            SELECT r.host, max(r.next_fetch_at) AS next_fetch_at, max(r.backoff_until) AS backoff_until,
                   max(r.robots_fetched_at) AS robots_fetched_at,
                   (array_agg(r.crawl_delay ORDER BY r.robots_fetched_at DESC NULLS LAST, r.n))[1] AS crawl_delay,
                   (array_agg(r.robots_txt ORDER BY r.robots_fetched_at DESC NULLS LAST, r.n))[1] AS robots_txt,
                   (array_agg(r.updated_at ORDER BY r.n))[1] AS updated_at
              FROM (SELECT row_number() OVER () AS n, r.*
                      FROM jsonb_populate_recordset(NULL::@extschema@.crawl_hosts, rows) r) r
             GROUP BY r.host),
        up AS (
            INSERT INTO @extschema@.crawl_hosts AS h
                   (host, next_fetch_at, crawl_delay, backoff_until, robots_txt, robots_fetched_at, updated_at)
            SELECT r.host, r.next_fetch_at, r.crawl_delay, r.backoff_until, r.robots_txt, r.robots_fetched_at,
                   r.updated_at
              FROM r ORDER BY r.host
            ON CONFLICT (host) DO UPDATE
               SET next_fetch_at = greatest(h.next_fetch_at, EXCLUDED.next_fetch_at),
                   backoff_until = greatest(h.backoff_until, EXCLUDED.backoff_until),
                   crawl_delay = CASE WHEN EXCLUDED.robots_fetched_at > coalesce(h.robots_fetched_at, '-infinity')
                                      THEN EXCLUDED.crawl_delay ELSE h.crawl_delay END,
                   robots_txt = CASE WHEN EXCLUDED.robots_fetched_at > coalesce(h.robots_fetched_at, '-infinity')
                                     THEN EXCLUDED.robots_txt ELSE h.robots_txt END,
                   robots_fetched_at = greatest(h.robots_fetched_at, EXCLUDED.robots_fetched_at),
                   updated_at = now()
             WHERE EXCLUDED.next_fetch_at > h.next_fetch_at
                OR EXCLUDED.backoff_until > coalesce(h.backoff_until, '-infinity')
                OR EXCLUDED.robots_fetched_at > coalesce(h.robots_fetched_at, '-infinity')
            RETURNING h.host, (h.xmax = 0) AS fresh)
        SELECT coalesce(jsonb_agg(up.host ORDER BY up.host) FILTER (WHERE up.fresh), '[]'),
               coalesce(jsonb_agg(up.host ORDER BY up.host) FILTER (WHERE NOT up.fresh), '[]')
          INTO inserted, replaced FROM up;
        kept := jsonb_array_length(rows) - jsonb_array_length(inserted) - jsonb_array_length(replaced);

    ELSIF tbl = '@extschema@.crawl_frontier'::regclass THEN
        -- A row the write API could not have written (a javascript: URL, a
        -- host that is not the URL's) is not merged: a conflict, recorded.
        -- Each row's rule is evaluated once (OFFSET 0: not copied into each
        -- use of it).
        SELECT coalesce(array_agg(x.r ORDER BY x.n) FILTER (WHERE x.rule IS NULL), '{}'),
               coalesce(jsonb_agg(jsonb_build_object('rec', to_jsonb(x.r), 'rule', x.rule) ORDER BY x.n)
                        FILTER (WHERE x.rule IS NOT NULL), '[]')
          INTO in_f, refused
          FROM (SELECT row_number() OVER () AS n, r,
                       @extschema@.crawl_item_problem(r.url, r.kind, r.depth, r.host, r.found_on, r.lease_owner) AS rule
                  FROM jsonb_populate_recordset(NULL::@extschema@.crawl_frontier, rows) r
                OFFSET 0) x;
        conflicts := conflicts + @extschema@.ha_merge_refuse_invalid('crawl_frontier', 'id', refused, from_node, from_term);
        SELECT conflicts + count(@extschema@.ha_record_event('conflict',
                   format('crawl_frontier %s (%s) from %s belongs to session %s, which is not here; not merged',
                          r.id, left(r.url, 200), from_node, r.session_id), NULL,
                   jsonb_build_object('table', 'crawl_frontier', 'key', r.id, 'from_node', from_node,
                                      'from_term', from_term, 'other', to_jsonb(r))))
          INTO conflicts
          FROM unnest(in_f) r
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.crawl_sessions c WHERE c.id = r.session_id);

        -- Only there (no row here under its id, nor its session's URL under
        -- another id: the two unique keys, which ON CONFLICT checks): inserted.
        WITH ins AS (
            INSERT INTO @extschema@.crawl_frontier AS f
                   (id, session_id, url, kind, depth, state, host, found_on, lease_owner, leased_at,
                    lease_expires_at, attempts, last_error, next_fetch_at, result, created_at, updated_at)
            SELECT r.id, r.session_id, r.url, r.kind, r.depth,
                   -- a lease of the other term is void
                   CASE WHEN r.state = 'leased' THEN 'queued' ELSE r.state END, r.host, r.found_on,
                   CASE WHEN r.state = 'leased' THEN NULL ELSE r.lease_owner END,
                   r.leased_at, NULL, r.attempts, r.last_error, r.next_fetch_at, r.result, r.created_at, r.updated_at
              FROM unnest(in_f) r
             WHERE EXISTS (SELECT 1 FROM @extschema@.crawl_sessions c WHERE c.id = r.session_id)
            ON CONFLICT DO NOTHING
            RETURNING f.id, f.session_id, f.url, f.state)
        -- A row inserted as sent has nothing here to be compared with but
        -- itself; the others (a row here under its id or URL, a key sent
        -- twice, a session not here) are compared below.
        SELECT coalesce(jsonb_agg(ins.id), '[]'), coalesce(array_agg(DISTINCT ins.session_id), '{}'),
               ARRAY(SELECT r FROM unnest(in_f) r
                      WHERE NOT EXISTS (SELECT 1 FROM ins i
                                         WHERE i.id = r.id AND i.session_id = r.session_id AND i.url = r.url
                                           AND i.state = CASE WHEN r.state = 'leased' THEN 'queued' ELSE r.state END))
          INTO inserted, sessions, rest_f
          FROM ins;

        IF cardinality(rest_f) > 0 THEN
            -- the rows here under the same id, or the same URL of the session
            -- under another id, locked in key order
            PERFORM 1 FROM @extschema@.crawl_frontier f
              WHERE f.id = ANY (ARRAY(
                        SELECT h.id FROM unnest(rest_f) r,
                               LATERAL (SELECT x.id FROM @extschema@.crawl_frontier x WHERE x.id = r.id
                                        UNION ALL
                                        SELECT x.id FROM @extschema@.crawl_frontier x
                                         WHERE x.session_id = r.session_id AND x.url = r.url
                                        OFFSET 0) h))
              ORDER BY f.id FOR UPDATE OF f;
            -- done on one side, failed on the other: a conflict
            SELECT conflicts + count(@extschema@.ha_record_event('conflict',
                       format('%s was %s here and %s on %s (term %s); done wins', left(r.url, 200), (h.f).state,
                              r.state, from_node, from_term), NULL,
                       jsonb_build_object('table', 'crawl_frontier', 'key', (h.f).id, 'from_node', from_node,
                                          'from_term', from_term,
                                          'kept', CASE WHEN (h.f).state = 'done' THEN to_jsonb(h.f) ELSE to_jsonb(r) END,
                                          'other', CASE WHEN (h.f).state = 'done' THEN to_jsonb(r) ELSE to_jsonb(h.f) END)))
              INTO conflicts
              FROM unnest(rest_f) r,
                   LATERAL (SELECT x AS f FROM @extschema@.crawl_frontier x WHERE x.id = r.id
                            UNION ALL
                            SELECT x FROM @extschema@.crawl_frontier x
                             WHERE x.session_id = r.session_id AND x.url = r.url AND x.id <> r.id
                            OFFSET 0) h
             WHERE r.state IN ('done', 'failed') AND (h.f).state IN ('done', 'failed') AND r.state <> (h.f).state;

            -- the URL's further progress wins
            WITH m AS MATERIALIZED (
                -- the same id, else the same URL of the session
                SELECT DISTINCT ON (h.id) r.*, h.id AS cur_id
                  FROM unnest(rest_f) r,
                       LATERAL (SELECT coalesce((SELECT x.id FROM @extschema@.crawl_frontier x WHERE x.id = r.id),
                                                (SELECT x.id FROM @extschema@.crawl_frontier x
                                                  WHERE x.session_id = r.session_id AND x.url = r.url)) AS id
                                OFFSET 0) h
                 WHERE h.id IS NOT NULL
                 ORDER BY h.id, @extschema@.ha_merge_rank(r.state, false) DESC),
            up AS (
                UPDATE @extschema@.crawl_frontier f
                   SET state = m.state, result = m.result, last_error = m.last_error,
                       attempts = greatest(f.attempts, m.attempts), lease_expires_at = NULL,
                       lease_owner = coalesce(m.lease_owner, f.lease_owner), leased_at = m.leased_at,
                       updated_at = clock_timestamp()
                  FROM m
                 WHERE f.id = m.cur_id
                   AND @extschema@.ha_merge_rank(m.state, false) > @extschema@.ha_merge_rank(f.state, true)
                RETURNING f.id, f.session_id)
            SELECT coalesce(jsonb_agg(up.id), '[]'), sessions || coalesce(array_agg(DISTINCT up.session_id), '{}')
              INTO replaced, sessions FROM up;
        END IF;
        kept := cardinality(in_f) - jsonb_array_length(inserted) - jsonb_array_length(replaced);

    ELSE  -- images: one row per URL
        -- A row image_record() could not have written (a file_path outside
        -- the store, control characters) is not merged: a conflict, recorded.
        SELECT coalesce(array_agg(x.r ORDER BY x.n) FILTER (WHERE x.rule IS NULL), '{}'),
               coalesce(jsonb_agg(jsonb_build_object('rec', to_jsonb(x.r), 'rule', x.rule) ORDER BY x.n)
                        FILTER (WHERE x.rule IS NOT NULL), '[]')
          INTO in_i, refused
          FROM (SELECT row_number() OVER () AS n, r,
                       coalesce(@extschema@.image_problem(r.url, r.sha256, r.file_path, r.file_size, r.width, r.height,
                                                          r.format, r.content_type, r.found_on, r.http_status,
                                                          r.filename),
                                CASE WHEN @extschema@.image_thumbnails_problem(r.thumbnails) IS NOT NULL
                                     THEN 'thumbnails' END) AS rule
                  FROM jsonb_populate_recordset(NULL::@extschema@.images, rows) r
                OFFSET 0) x;
        conflicts := conflicts + @extschema@.ha_merge_refuse_invalid('images', 'url', refused, from_node, from_term);
        -- only there (no row here with its URL, nor its id): inserted
        WITH ins AS (
            INSERT INTO @extschema@.images AS i
            SELECT r.* FROM unnest(in_i) r
            ON CONFLICT DO NOTHING
            RETURNING i.id, i.session_id, i.url, i.sha256)
        -- a row inserted as sent is the one row here with its URL: no conflict
        SELECT coalesce(jsonb_agg(ins.id), '[]'),
               coalesce(array_agg(DISTINCT ins.session_id) FILTER (WHERE ins.session_id IS NOT NULL), '{}'),
               ARRAY(SELECT r FROM unnest(in_i) r
                      WHERE NOT EXISTS (SELECT 1 FROM ins i WHERE i.url = r.url AND i.sha256 = r.sha256))
          INTO inserted, sessions, rest_i
          FROM ins;
        -- same URL, other bytes: the row here (the newer term) stays
        SELECT conflicts + count(@extschema@.ha_record_event('conflict',
                   format('%s has other content on %s (term %s): sha256 %s there, %s here; the row here stays',
                          left(r.url, 200), from_node, from_term, r.sha256, (h.i).sha256), NULL,
                   jsonb_build_object('table', 'images', 'key', r.url, 'from_node', from_node,
                                      'from_term', from_term, 'kept', to_jsonb(h.i), 'other', to_jsonb(r))))
          INTO conflicts
          FROM unnest(rest_i) r,
               LATERAL (SELECT x AS i FROM @extschema@.images x WHERE x.url = r.url OFFSET 0) h
         WHERE (h.i).sha256 <> r.sha256;
        -- same URL, same bytes: the thumbnails only there join those here
        -- (a name here keeps its blob), within the rule's 8
        WITH up AS (
            UPDATE @extschema@.images i SET thumbnails = r.thumbnails || coalesce(i.thumbnails, '{}')
              FROM unnest(rest_i) r
             WHERE i.url = r.url AND i.sha256 = r.sha256 AND r.thumbnails IS NOT NULL
               AND EXISTS (SELECT 1 FROM jsonb_object_keys(r.thumbnails) k WHERE NOT coalesce(i.thumbnails, '{}') ? k)
               AND (SELECT count(*) FROM jsonb_object_keys(r.thumbnails || coalesce(i.thumbnails, '{}'))) <= 8
            RETURNING i.id)
        SELECT coalesce(jsonb_agg(up.id), '[]') INTO replaced FROM up;
        kept := cardinality(in_i) - jsonb_array_length(inserted) - jsonb_array_length(replaced);
    END IF;

    -- Counters follow the merged rows: what this merge's writes counted is
    -- written first, then the difference to a recount from the rows goes to
    -- this node's slot 0 (no backend's): the rows by state exactly, the
    -- events never downwards (they are statistics that other writes may
    -- already have moved on).
    IF cardinality(sessions) > 0 THEN
        PERFORM @extschema@.crawl_counts_flush();
        INSERT INTO @extschema@.crawl_session_counts AS c
               (key, session_id, node_id, slot, pages_queued, pages_fetched, images_found, images_stored,
                bytes_stored, errors, queued, leased, done, failed)
        SELECT x.id || '/' || me.node_id || '/0', x.id, me.node_id, 0,
               greatest(x.pages_queued - t.pages_queued, 0), greatest(x.pages_fetched - t.pages_fetched, 0),
               greatest(x.images_found - t.images_found, 0), greatest(x.images_stored - t.images_stored, 0),
               greatest(x.bytes_stored - t.bytes_stored, 0), greatest(x.errors - t.errors, 0),
               x.queued - t.queued, x.leased - t.leased, x.done - t.done, x.failed - t.failed
          FROM (SELECT u.id, f.pages_queued, f.images_found, f.pages_fetched, f.errors, f.queued, f.leased, f.done,
                       f.failed, i.images_stored, i.bytes_stored
                  FROM (SELECT DISTINCT unnest(sessions) AS id) u,
                       LATERAL (SELECT count(*) FILTER (WHERE @extschema@.crawl_counts_as_page(f.kind)) AS pages_queued,
                                       count(*) FILTER (WHERE f.kind = 'image') AS images_found,
                                       count(*) FILTER (WHERE @extschema@.crawl_counts_as_page(f.kind)
                                                          AND f.state = 'done') AS pages_fetched,
                                       count(*) FILTER (WHERE f.state = 'failed') AS errors,
                                       count(*) FILTER (WHERE f.state = 'queued') AS queued,
                                       count(*) FILTER (WHERE f.state = 'leased') AS leased,
                                       count(*) FILTER (WHERE f.state = 'done') AS done,
                                       count(*) FILTER (WHERE f.state = 'failed') AS failed
                                  FROM @extschema@.crawl_frontier f WHERE f.session_id = u.id) f,
                       LATERAL (SELECT count(*) AS images_stored, coalesce(sum(i.file_size), 0) AS bytes_stored
                                  FROM @extschema@.images i WHERE i.session_id = u.id) i
                 WHERE EXISTS (SELECT 1 FROM @extschema@.crawl_sessions s WHERE s.id = u.id)) x
          JOIN @extschema@.crawl_session_totals t ON t.session_id = x.id
         CROSS JOIN @extschema@.ha_node me
        ON CONFLICT (key) DO UPDATE
           SET pages_queued = c.pages_queued + EXCLUDED.pages_queued,
               pages_fetched = c.pages_fetched + EXCLUDED.pages_fetched,
               images_found = c.images_found + EXCLUDED.images_found,
               images_stored = c.images_stored + EXCLUDED.images_stored,
               bytes_stored = c.bytes_stored + EXCLUDED.bytes_stored,
               errors = c.errors + EXCLUDED.errors,
               queued = c.queued + EXCLUDED.queued, leased = c.leased + EXCLUDED.leased,
               done = c.done + EXCLUDED.done, failed = c.failed + EXCLUDED.failed,
               updated_at = now();
        -- merged queued work reopens a finished session
        UPDATE @extschema@.crawl_sessions c SET status = 'running', finished_at = NULL, updated_at = now()
         WHERE c.id = ANY (sessions) AND c.status = 'finished'
           AND EXISTS (SELECT 1 FROM @extschema@.crawl_frontier f WHERE f.session_id = c.id AND f.state IN ('queued', 'leased'));
    END IF;

    summary := jsonb_build_object('table', tbl::text, 'from_node', from_node, 'from_term', from_term,
                                  'rows', jsonb_array_length(rows),
                                  'inserted', jsonb_array_length(inserted), 'replaced', jsonb_array_length(replaced),
                                  'kept', kept, 'conflicts', conflicts,
                                  'deleted_here', jsonb_array_length(coalesce(deleted_keys, '[]')));
    PERFORM @extschema@.ha_record_event('merge',
        format('%s rows of %s from %s (term %s): %s inserted, %s replaced, %s kept, %s conflicts%s',
               jsonb_array_length(rows), tbl, from_node, from_term, jsonb_array_length(inserted),
               jsonb_array_length(replaced), kept, conflicts,
               CASE WHEN jsonb_array_length(coalesce(deleted_keys, '[]')) > 0
                    THEN format('; %s rows it deleted are kept here', jsonb_array_length(deleted_keys)) ELSE '' END),
        NULL, summary || jsonb_build_object('inserted_keys', inserted, 'replaced_keys', replaced,
                                            'deleted_there', coalesce(deleted_keys, '[]')));
    RETURN summary;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_merge_rows(regclass, jsonb, jsonb, text, bigint) IS
    'crawler_ha: on the primary, merges rows an old primary wrote after the split point, by the documented rules; records a merge event and one conflict event per conflict; idempotent';

REVOKE ALL ON FUNCTION @extschema@.ha_merge_rows(regclass, jsonb, jsonb, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.ha_merge_rows(regclass, jsonb, jsonb, text, bigint) TO crawler_ha_admin;
