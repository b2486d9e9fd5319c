-- Rejoin with merge (HA part 2): an old primary that holds rows the new
-- primary lacks (written after the split point: the last change the new
-- primary received from it) sends them to the new primary before it follows
-- it. See docs/ha.md, "Rejoin with merge".
--
-- The old node finds the rows from the slot its old standby used (every
-- change after the split point is still there: peeking consumes nothing),
-- or, without that slot, by a key comparison with the new primary. It sends
-- the rows as they are now (it stopped writing when it stepped down), in
-- chunks of records, to ha_merge_receive() on the new primary, which applies
-- the merge rules table by table (66_merge_rules.sql). Once every chunk is confirmed, the old node drops the
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

-- On the old primary: how to build the records of table tbl for the new
-- primary, whose columns (ha_merge_columns() there: [{"name", "type",
-- "not_null"}, ...] in its order) are peer_columns. A record is read by
-- position, so each is built as ROW(...) of the columns here with those
-- names, in that order, whatever the order here; a column there that is not
-- here is NULL, as the JSON this transport replaced left it, unless it is
-- NOT NULL there: then no row could be merged, and 42703 says which column
-- before anything is sent. A column here that is not there is not sent.
-- Values travel as text and are read with the types there. Returns the
-- select list over a row t and the names it was built for, which
-- ha_merge_receive() checks. Only names of columns here reach the SQL text,
-- quoted.
CREATE FUNCTION @extschema@.ha_merge_record_list(tbl regclass, peer_columns jsonb,
                                                 OUT select_list text, OUT columns text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
BEGIN
    PERFORM @extschema@.ha_require_data_table(tbl);
    -- (CASE: the elements are looked at only in an array)
    IF (CASE WHEN jsonb_typeof(peer_columns) = 'array'
             THEN jsonb_array_length(peer_columns) = 0
                  OR EXISTS (SELECT 1 FROM jsonb_array_elements(peer_columns) e
                              WHERE jsonb_typeof(e -> 'name') IS DISTINCT FROM 'string')
             ELSE true END) THEN
        RAISE EXCEPTION 'the new primary gave no columns for %', tbl
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Both nodes must run the same version of crawler_ha.';
    END IF;
    SELECT string_agg(CASE WHEN a.attname IS NOT NULL THEN format('t.%I', a.attname) ELSE 'NULL' END, ', '
                      ORDER BY p.n),
           array_agg(p.e ->> 'name' ORDER BY p.n),
           string_agg(format('%I (%s)', p.e ->> 'name', p.e ->> 'type'), ', ' ORDER BY p.n)
               FILTER (WHERE a.attname IS NULL AND p.e -> 'not_null' = 'true')
      INTO select_list, columns, missing
      FROM jsonb_array_elements(peer_columns) WITH ORDINALITY p(e, n)
      LEFT JOIN pg_attribute a
        ON a.attrelid = tbl AND a.attname = (p.e ->> 'name') AND a.attnum > 0 AND NOT a.attisdropped;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'the new primary''s % has NOT NULL columns that this node''s lacks: %', tbl, missing
            USING ERRCODE = 'undefined_column',
                  HINT = 'Both nodes must run the same version of crawler_ha; update this node''s extension and rejoin again.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_merge_record_list(regclass, jsonb) IS
    'crawler_ha (internal): the select list that builds a table''s rows as records in the new primary''s column order, and those columns; 42703 when a NOT NULL column there is missing here';
REVOKE ALL ON FUNCTION @extschema@.ha_merge_record_list(regclass, jsonb) FROM PUBLIC;

-- On the old primary: merge the tail into the peer (the new primary).
-- slot NULL: no slot records the tail; compare keys with the peer instead
-- (rows only here or different here). Returns per-table counts, and with a
-- slot the tail's changes (none: nothing was sent).
-- chunk_rows: the rows of one ha_merge_receive() call, one transaction on
-- the peer. Each call also pays a recount of the touched sessions' counters
-- from all their rows: at 2,000 rows those were a third of a chunk's time in
-- a session of 100,000 rows; at 10,000 a chunk of images is about 5 MB.
-- The chunks go over one connection (ha_peer_send: kept to the end of the
-- transaction), each as a parameter of the call, not inside its text. A
-- chunk is an array of the table's records as text, each record built in
-- the peer's column order, which the peer gives once per merge
-- (ha_merge_columns(), ha_merge_record_list()): reading records there costs
-- about a third of reading the same rows from JSON, and a record, unlike
-- JSON, is positional. While the new primary merges one chunk, the next one
-- is read here; it is sent only once the previous answer is in, so the new
-- primary merges the chunks in order, parents before children.
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
    peer_columns jsonb;   -- the peer's columns of each data table (ha_merge_columns())
    select_list text;     -- how this table's records are built for the peer
    col_names text[];     -- and the peer's columns they are built for
    present text;
    gone jsonb;
    me record;
    zero constant jsonb := jsonb_build_object('rows', 0, 'inserted', 0, 'replaced', 0, 'kept', 0,
                                              'conflicts', 0, 'deleted_here', 0);
    total jsonb := '{}';  -- per table: the sums of its chunks' answers
    waiting regclass;     -- the table of the chunk the peer is merging, if any
    merged bigint := 0;
    receive_call constant text := format('SELECT %I.ha_merge_receive($1::regclass, $2::text, $3::text[], '
                                         '$4::jsonb, $5, $6::bigint, $7::integer)::text', '@extschema@');
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

    IF EXISTS (SELECT 1 FROM jsonb_each(keys) k WHERE jsonb_array_length(k.value) > 0) THEN
        PERFORM @extschema@.ha_peer_send(format('SELECT %I.ha_merge_columns()::text', '@extschema@'));
        peer_columns := @extschema@.ha_peer_receive()::jsonb;
    END IF;

    -- parents before children: a merged frontier row finds its session
    FOREACH tbl IN ARRAY @extschema@.ha_data_tables() LOOP
        total := total || jsonb_build_object(tbl::text, zero);
        select_list := NULL;
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) INTO key_col, key_type
          FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = tbl AND i.indisprimary;
        FOR chunk IN
            SELECT array_agg(e.k ORDER BY e.n)
              FROM jsonb_array_elements_text(coalesce(keys -> tbl::text, '[]')) WITH ORDINALITY e(k, n)
             GROUP BY (e.n - 1) / chunk_rows ORDER BY min(e.n)
        LOOP
            IF select_list IS NULL THEN
                SELECT b.select_list, b.columns INTO select_list, col_names
                  FROM @extschema@.ha_merge_record_list(tbl,
                           peer_columns -> (SELECT c.relname::text FROM pg_class c WHERE c.oid = tbl)) b;
            END IF;
            EXECUTE format('SELECT coalesce(array_agg(ROW(%s)), ''{}'')::text FROM %s t WHERE t.%I = ANY ($1::%s[])',
                           select_list, tbl, key_col, key_type)
               USING chunk INTO present;
            -- keys the tail deleted here: reported, not applied (see ha_merge_records)
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
                ARRAY[tbl::text, present, col_names::text, gone::text, me.node_name, me.term::text,
                      max_wait_ms::text],
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
    'crawler_ha (internal): on an old primary, sends every row it changed after the split point to ha_merge_receive() on the new primary';
