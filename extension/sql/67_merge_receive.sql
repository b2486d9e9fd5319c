-- On the new primary: receiving an old primary's tail without waiting for
-- ever on locks that only the merge itself can free.
--
-- In sync mode the new primary's writers commit and then wait for the
-- synchronous standby while they still hold their row locks (PostgreSQL
-- releases locks after that wait). The standby they wait for is the very
-- node whose rejoin sends the tail: a merge that waits for those locks waits
-- for itself. So while a merge waits in a lock queue, this node's HA worker
-- cancels those waits for the standby among the sessions ahead of it
-- (ha_release_blocked_merges), and only while no synchronous standby
-- streams. That is PostgreSQL's cancel of a synchronous wait: the
-- transaction is already committed here, its client gets a WARNING instead
-- of an acknowledgement, and the rejoining node copies it with everything
-- else. Should one lock wait still last lock_wait_ms (no worker, say), every
-- commit of this database waiting for the standby is cancelled the same way
-- and the chunk is tried again, until max_wait_ms; then it fails with 55P03
-- naming what held it up, and the rejoin tries again later. See docs/ha.md,
-- "Rejoin with merge".

-- The one rule for cancelling: only while no synchronous standby streams
-- (with one, those waits end by themselves), and only sessions of this
-- database that are waiting for it. Cancels those of pids; returns how many.
CREATE FUNCTION @extschema@.ha_cancel_sync_waits(pids integer[], reason text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    waiting integer[];
BEGIN
    IF current_setting('synchronous_standby_names') = ''
       OR EXISTS (SELECT 1 FROM pg_stat_replication r
                   WHERE r.sync_state IN ('sync', 'quorum') AND r.state = 'streaming') THEN
        RETURN 0;
    END IF;
    -- chosen first, signalled after: in one WHERE clause the planner may
    -- evaluate the cancel before the conditions that choose whom
    SELECT coalesce(array_agg(a.pid ORDER BY a.pid), '{}') INTO waiting
      FROM pg_stat_activity a
     WHERE a.pid = ANY (pids) AND a.wait_event_type = 'IPC' AND a.wait_event = 'SyncRep'
       AND a.datname = current_database() AND a.pid <> pg_backend_pid();
    SELECT coalesce(array_agg(p ORDER BY p), '{}') INTO waiting
      FROM unnest(waiting) p WHERE pg_cancel_backend(p);
    IF cardinality(waiting) > 0 THEN
        RAISE LOG 'crawler_ha: cancelled % commits waiting for a synchronous standby (pids %): %',
                  cardinality(waiting), waiting, reason;
    END IF;
    RETURN cardinality(waiting);
END
$$;
COMMENT ON FUNCTION @extschema@.ha_cancel_sync_waits(integer[], text) IS
    'crawler_ha (internal): cancels the synchronous-replication waits of the given sessions of this database while no synchronous standby streams; returns how many';
REVOKE ALL ON FUNCTION @extschema@.ha_cancel_sync_waits(integer[], text) FROM PUBLIC;

-- Every such wait of this database (a merge's fallback).
CREATE FUNCTION @extschema@.ha_release_sync_waiters(reason text)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.ha_cancel_sync_waits(
        (SELECT coalesce(array_agg(a.pid), '{}') FROM pg_stat_activity a
          WHERE a.wait_event_type = 'IPC' AND a.wait_event = 'SyncRep'), reason);
$$;
COMMENT ON FUNCTION @extschema@.ha_release_sync_waiters(text) IS
    'crawler_ha (internal): cancels the synchronous-replication waits of this database while no synchronous standby streams; returns how many';
REVOKE ALL ON FUNCTION @extschema@.ha_release_sync_waiters(text) FROM PUBLIC;

-- Called by the HA worker of a sync-mode primary several times a second
-- while no synchronous standby streams: the sessions a merge waits for, and
-- those they wait for in turn, that are themselves waiting for the absent
-- standby are cancelled. A merge that waits in the lock queue keeps its
-- place there, so each session ahead of it that commits and then waits for
-- the standby is released in turn, and later writers queue behind the
-- merge. Returns how many were cancelled.
CREATE FUNCTION @extschema@.ha_release_blocked_merges()
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE merging AS (
        SELECT a.pid FROM pg_stat_activity a
         WHERE a.application_name = 'crawler_ha merge' AND a.wait_event_type = 'Lock'
           AND a.datname = current_database()
    ), ahead(pid) AS (
        SELECT unnest(pg_blocking_pids(m.pid)) FROM merging m
        UNION
        SELECT unnest(pg_blocking_pids(h.pid)) FROM ahead h
    )
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM ahead) THEN 0
                ELSE @extschema@.ha_cancel_sync_waits((SELECT array_agg(h.pid) FROM ahead h),
                                                      'they hold up a merge')
           END;
$$;
COMMENT ON FUNCTION @extschema@.ha_release_blocked_merges() IS
    'crawler_ha (internal): cancels the synchronous-replication waits that hold up a merge (directly or through a lock queue) while no synchronous standby streams; called by the HA worker';
REVOKE ALL ON FUNCTION @extschema@.ha_release_blocked_merges() FROM PUBLIC;

-- The columns of the data tables here, in their order, for a rejoining
-- node: {"table": [{"name", "type", "not_null"}, ...], ...}, the tables by
-- name without schema (both nodes hold the extension in the same schema).
-- The node sends each chunk of its tail as an array of the table's records
-- (text that ha_merge_records() reads in one cast, where JSON cost about
-- three times as much to read); a record is positional, so the node builds
-- each one by these names in this order, whatever the order of its own
-- columns (a column added by an upgrade comes last; in a table created
-- anew, where its definition puts it). ha_merge_receive() checks each
-- chunk against the same list. SECURITY DEFINER for ha_data_tables(), which
-- is not the admin's; it takes no argument and reads only the catalogs.
CREATE FUNCTION @extschema@.ha_merge_columns()
RETURNS jsonb
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_object_agg(c.relname,
               (SELECT jsonb_agg(jsonb_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                                                    'not_null', a.attnotnull) ORDER BY a.attnum)
                  FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
      FROM unnest(@extschema@.ha_data_tables()) t(rel) JOIN pg_class c ON c.oid = t.rel
$$;
COMMENT ON FUNCTION @extschema@.ha_merge_columns() IS
    'crawler_ha: the columns of each data table here in their order (name, type, not_null), by which a rejoining node builds the records it sends to ha_merge_receive()';
REVOKE ALL ON FUNCTION @extschema@.ha_merge_columns() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.ha_merge_columns() TO crawler_ha_admin;

-- One chunk of a tail: ha_merge_records() with bounded lock waits. rows is
-- an array of the table's records as text, each built with the columns
-- listed in columns, which must be the table's columns here, in their order
-- (ha_merge_columns()): a record is read by position, so a chunk built for
-- another order would put values into the wrong columns; 42804 says so
-- before anything is read. Returns ha_merge_records()'s summary plus the
-- attempts it took and how many synchronous waits it cancelled. Errors:
-- 22004 for a NULL tbl, rows or columns, 22023 for a table that is not a
-- data table or a bound out of range, 42804 for columns that are not the
-- table's here, 55P03 after max_wait_ms, and ha_merge_records()'s.
CREATE FUNCTION @extschema@.ha_merge_receive(tbl regclass, rows text, columns text[], deleted_keys jsonb DEFAULT '[]',
                                             from_node text DEFAULT NULL, from_term bigint DEFAULT NULL,
                                             max_wait_ms integer DEFAULT 30000, lock_wait_ms integer DEFAULT 5000)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deadline timestamptz;
    attempts integer := 0;
    cancelled integer := 0;
    res jsonb;
    holders text;
    here text[];
BEGIN
    IF tbl IS NULL OR rows IS NULL OR columns IS NULL THEN
        RAISE EXCEPTION 'tbl, rows and columns must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF max_wait_ms IS NULL OR max_wait_ms < 0 OR max_wait_ms > 3600000 THEN
        RAISE EXCEPTION 'max_wait_ms must be between 0 and 3600000' USING ERRCODE = 'invalid_parameter_value';
    ELSIF lock_wait_ms IS NULL OR lock_wait_ms < 10 OR lock_wait_ms > 60000 THEN
        RAISE EXCEPTION 'lock_wait_ms must be between 10 and 60000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.ha_require_data_table(tbl);
    here := ARRAY(SELECT e ->> 'name'
                    FROM jsonb_array_elements(@extschema@.ha_merge_columns()
                                              -> (SELECT c.relname::text FROM pg_class c WHERE c.oid = tbl)) e);
    IF columns IS DISTINCT FROM here THEN
        RAISE EXCEPTION 'the rows of % were built for other columns than those here', tbl
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = format('Built for (%s); here (%s).', left(array_to_string(columns, ', ', 'NULL'), 400),
                                  array_to_string(here, ', ')),
                  HINT = 'Build each record by the names and in the order of ha_merge_columns() on this node.';
    END IF;
    deadline := clock_timestamp() + make_interval(secs => max_wait_ms / 1000.0);
    -- for the rest of this transaction, the merge's own statements included
    PERFORM set_config('lock_timeout', lock_wait_ms::text, true);
    -- how this node's HA worker finds the merge and frees its way
    -- (ha_release_blocked_merges)
    PERFORM set_config('application_name', 'crawler_ha merge', true);
    LOOP
        attempts := attempts + 1;
        BEGIN
            -- (each attempt reads the rows again: an attempt ends only
            -- after a lock wait of lock_wait_ms, much longer than that)
            res := @extschema@.ha_merge_records(tbl, rows, deleted_keys, from_node, from_term);
            IF cancelled > 0 THEN
                PERFORM @extschema@.ha_record_event('sync_wait_cancelled',
                    format('the merge of %s rows of %s from %s waited for rows locked by commits waiting for '
                           'the synchronous standby (the merging node): %s such waits cancelled, those '
                           'commits stay here and the clients got a warning', res ->> 'rows', tbl,
                           coalesce(from_node, 'unknown'), cancelled),
                    NULL, jsonb_build_object('table', tbl::text, 'attempts', attempts, 'cancelled', cancelled));
            END IF;
            RETURN res || jsonb_build_object('attempts', attempts, 'sync_waits_cancelled', cancelled);
        EXCEPTION WHEN lock_not_available THEN
            IF clock_timestamp() >= deadline THEN
                SELECT string_agg(format('pid %s %s/%s %s', a.pid, a.wait_event_type, a.wait_event, a.state),
                                  ', ' ORDER BY a.pid)
                  INTO holders
                  FROM pg_stat_activity a
                 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
                   AND a.backend_xid IS NOT NULL;
                RAISE EXCEPTION 'the merge of a chunk of % could not get its row locks within % ms (% attempts)',
                                tbl, max_wait_ms, attempts
                      USING ERRCODE = 'lock_not_available',
                            DETAIL = 'Transactions in progress: ' || coalesce(holders, 'none') || '.',
                            HINT = 'The rejoin tries again by itself; see docs/ha.md, "Rejoin with merge".';
            END IF;
            cancelled := cancelled + @extschema@.ha_release_sync_waiters(
                format('the merge of a chunk of %s from %s is waiting for its row locks',
                       tbl, coalesce(from_node, 'unknown')));
        END;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_merge_receive(regclass, text, text[], jsonb, text, bigint, integer, integer) IS
    'crawler_ha: on the primary, ha_merge_records() of a chunk of records built by ha_merge_columns() with bounded lock waits; commits stuck waiting for the absent synchronous standby (the merging node) that hold the rows up are cancelled; 55P03 after max_wait_ms';

REVOKE ALL ON FUNCTION @extschema@.ha_merge_receive(regclass, text, text[], jsonb, text, bigint, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.ha_merge_receive(regclass, text, text[], jsonb, text, bigint, integer, integer) TO crawler_ha_admin;
