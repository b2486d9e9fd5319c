-- Consistency between the data nodes: the original three checks (row counts,
-- latest record, id range) and a range-hash check that names every differing
-- row while moving only hashes over the network; repair of just those rows;
-- a log of both. See docs/consistency.md.
--
-- Rows are hashed by type (hash_record_extended: each column's own extended
-- hash, the same stable functions hash partitioning relies on), so no session
-- setting can change a row's hash.
--
-- Only the replicated data tables (ha_data_tables()) are ever compared or
-- repaired. ha_diff, ha_check_consistency and ha_sync are SECURITY DEFINER:
-- they run as the extension's owner, a superuser. Any other relation could
-- carry its creator's code, which would then run as that superuser (a
-- domain's CHECK, a type's hash, cast or output function, a trigger) or hold
-- rows the caller may not read; so ha_table_key(), which every function here
-- goes through first, refuses it before anything of it is read.

-- What was checked and repaired, per table (per node, never replicated).
CREATE TABLE @extschema@.ha_sync_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    kind       text NOT NULL CHECK (kind IN ('check', 'repair')),
    table_name text NOT NULL,
    ok         boolean NOT NULL,
    result     jsonb NOT NULL
);
CREATE INDEX ha_sync_log_table_kind_at_idx ON @extschema@.ha_sync_log (table_name, kind, at);
COMMENT ON TABLE @extschema@.ha_sync_log IS
    'crawler_ha: results of consistency checks and repairs, per table (per node, never replicated)';

-- Raises 22023 unless tbl is one of the replicated data tables (22004 for
-- NULL). Only the relation's OID is compared: nothing of it is read.
CREATE FUNCTION @extschema@.ha_require_data_table(tbl regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT tbl = ANY (@extschema@.ha_data_tables()) THEN
        -- schema-qualified, so that a temporary table named like a data table shows as such
        RAISE EXCEPTION '% is not a crawler_ha data table',
            coalesce((SELECT format('%I.%I', n.nspname, c.relname)
                        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl),
                     tbl::oid::text)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Consistency checks and repairs compare only the replicated tables: '
                           || array_to_string(@extschema@.ha_data_tables()::text[], ', ') || '.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_require_data_table(regclass) IS
    'crawler_ha (internal): raises 22023 unless the table is one of ha_data_tables()';

-- A table's key and the position it is bucketed by: an integer primary key
-- is its own position; any other single-column key is positioned by its hash
-- (halved so that differences of positions fit in a bigint). row_hash is the
-- expression that hashes a row t. Only for the data tables.
CREATE FUNCTION @extschema@.ha_table_key(tbl regclass, OUT key_col text, OUT pos_expr text, OUT row_hash text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ oid;
BEGIN
    PERFORM @extschema@.ha_require_data_table(tbl);
    SELECT a.attname, a.atttypid INTO key_col, typ
      FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
     WHERE i.indrelid = tbl AND i.indisprimary AND i.indnkeyatts = 1;
    IF key_col IS NULL THEN
        RAISE EXCEPTION 'table % has no single-column primary key', tbl
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Consistency checks compare rows by their primary key.';
    END IF;
    pos_expr := CASE WHEN typ IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
                     THEN format('t.%I::bigint', key_col)
                     ELSE format('(hashtextextended(t.%I::text, 0) / 2)', key_col) END;
    key_col := format('t.%I::text', key_col);
    row_hash := 'hash_record_extended(t, 0)';
END
$$;
COMMENT ON FUNCTION @extschema@.ha_table_key(regclass) IS
    'crawler_ha (internal): a table''s key expression and bucketing position';

-- Summary of a table on this node: [rows, min position, max position,
-- latest updated_at, key of the latest row].
CREATE FUNCTION @extschema@.ha_table_summary(tbl regclass)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET jit = off
AS $$
DECLARE
    k record := @extschema@.ha_table_key(tbl);
    has_updated boolean := EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = tbl AND attname = 'updated_at' AND NOT attisdropped);
    result jsonb;
BEGIN
    EXECUTE format($q$
        SELECT jsonb_build_array((SELECT count(*) FROM %2$s t), b ->> 0, b ->> 1, l[1], l[2])
          FROM @extschema@.ha_table_bounds(%5$L) b
          LEFT JOIN LATERAL (SELECT ARRAY[%3$s, %4$s] FROM %2$s t
                              ORDER BY %3$s DESC NULLS LAST, %4$s DESC LIMIT 1) x(l) ON true$q$,
        k.pos_expr, tbl, CASE WHEN has_updated THEN 't.updated_at::text' ELSE 'NULL::text' END, k.key_col, tbl::text)
    INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_table_summary(regclass) IS
    'crawler_ha (internal): [rows, min key position, max key position, latest updated_at, its key] of a table here';

-- The smallest and largest key position here: [min, max] (through the
-- primary key's index for integer keys).
CREATE FUNCTION @extschema@.ha_table_bounds(tbl regclass)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    k record := @extschema@.ha_table_key(tbl);
    result jsonb;
BEGIN
    EXECUTE format('SELECT jsonb_build_array((SELECT min(%1$s) FROM %2$s t), (SELECT max(%1$s) FROM %2$s t))',
                   k.pos_expr, tbl) INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_table_bounds(regclass) IS
    'crawler_ha (internal): [smallest, largest] key position of a table here';

-- Hashes of buckets of position ranges: ranges is [[lo, hi[, nb]], ...], each
-- cut into nb (default `buckets`) equal buckets; returns [[range, bucket, rows, xor of row
-- hashes], ...] for the non-empty buckets. One indexed range scan per range.
CREATE FUNCTION @extschema@.ha_range_hashes(tbl regclass, ranges jsonb, buckets integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off SET work_mem = '64MB'
-- Listed so that the set_config(..., true) below ends with the function.
SET enable_indexscan = on SET enable_bitmapscan = on
AS $$
DECLARE
    k record := @extschema@.ha_table_key(tbl);
    result jsonb;
BEGIN
    IF buckets IS NULL OR buckets < 1 OR buckets > 65536 THEN
        RAISE EXCEPTION 'buckets must be between 1 and 65536' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(ranges) = 1 THEN
        -- The first round covers the whole table: one plain scan in order,
        -- with the bounds as constants instead of a join with the range list
        -- (measured 0.81 s instead of 0.96 s for 1M rows; the typed row hash
        -- itself is most of what remains, about 0.7 us a row).
        PERFORM set_config('enable_indexscan', 'off', true), set_config('enable_bitmapscan', 'off', true);
        EXECUTE format($q$
            SELECT coalesce(jsonb_agg(jsonb_build_array(0, s.b, s.n, s.h)), '[]')
              FROM (SELECT v.b, count(*) AS n, bit_xor(v.h) AS h
                      FROM (SELECT ((%1$s) - %4$s) / %6$s AS b, %3$s AS h
                              FROM %2$s t WHERE (%1$s) >= %4$s AND (%1$s) < %5$s
                            OFFSET 0) v
                     GROUP BY 1) s$q$,
            k.pos_expr, tbl, k.row_hash, (ranges #>> '{0,0}')::bigint, (ranges #>> '{0,1}')::bigint,
            greatest(1, ceil(((ranges #>> '{0,1}')::numeric - (ranges #>> '{0,0}')::numeric)
                             / coalesce((ranges #>> '{0,2}')::integer, buckets)))::bigint)
        INTO result;
        RETURN result;
    END IF;
    EXECUTE format($q$
        SELECT coalesce(jsonb_agg(jsonb_build_array(s.i, s.b, s.n, s.h)), '[]')
          FROM (SELECT v.i, v.b, count(*) AS n, bit_xor(v.h) AS h
                  FROM (SELECT r.i, ((%1$s) - r.lo) / r.w AS b, %3$s AS h
                          FROM (SELECT (x.o - 1)::integer AS i, (x.e ->> 0)::bigint AS lo, (x.e ->> 1)::bigint AS hi,
                                       greatest(1, ceil(((x.e ->> 1)::numeric - (x.e ->> 0)::numeric)
                                                        / coalesce((x.e ->> 2)::integer, $2)))::bigint AS w
                                  FROM jsonb_array_elements($1) WITH ORDINALITY AS x(e, o)
                                OFFSET 0) r  -- bucket widths once per range, not once per row
                          JOIN %2$s t ON (%1$s) >= r.lo AND (%1$s) < r.hi
                        OFFSET 0) v  -- hash first: group narrow rows, not whole rows
                 GROUP BY 1, 2) s$q$, k.pos_expr, tbl, k.row_hash)
    USING ranges, buckets INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_range_hashes(regclass, jsonb, integer) IS
    'crawler_ha (internal): per-bucket row counts and hashes of key ranges of a table here';

-- The rows of small ranges: {key: row hash}.
CREATE FUNCTION @extschema@.ha_range_rows(tbl regclass, ranges jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    k record := @extschema@.ha_table_key(tbl);
    result jsonb;
BEGIN
    EXECUTE format($q$
        SELECT coalesce(jsonb_object_agg(%3$s, %4$s), '{}')
          FROM (SELECT (x.e ->> 0)::bigint AS lo, (x.e ->> 1)::bigint AS hi FROM jsonb_array_elements($1) x(e)) r
          JOIN %2$s t ON (%1$s) >= r.lo AND (%1$s) < r.hi$q$, k.pos_expr, tbl, k.key_col, k.row_hash)
    USING ranges INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_range_rows(regclass, jsonb) IS
    'crawler_ha (internal): {key: row hash} for the rows of small key ranges of a table here';

-- Asynchronous calls on the peer (consistency_peer.c): send, work here
-- meanwhile, receive, on one connection for the rest of the transaction.
-- params are the query's $1..$n, sent apart from its text (a merge's chunk
-- is megabytes: no quoting, no SQL scanning of it on the peer); the answer
-- is due within timeout_ms (NULL: crawler_ha.response_timeout_ms).
-- Bytes both ways are counted in crawler_ha_diff.bytes by the callers below.
CREATE FUNCTION @extschema@.ha_peer_send(query text, params text[] DEFAULT NULL, timeout_ms integer DEFAULT NULL)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_peer_send';
COMMENT ON FUNCTION @extschema@.ha_peer_send(text, text[], integer) IS
    'crawler_ha (internal): start a query on the peer without waiting for it; params are its $1..$n (text), timeout_ms bounds the wait for its answer';

CREATE FUNCTION @extschema@.ha_peer_receive()
RETURNS text
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_peer_receive';
COMMENT ON FUNCTION @extschema@.ha_peer_receive() IS
    'crawler_ha (internal): wait for the answer to ha_peer_send() and return its first value';

CREATE FUNCTION @extschema@.ha_count_bytes(n bigint)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT NULL::void FROM set_config('crawler_ha_diff.bytes',
        (coalesce(nullif(current_setting('crawler_ha_diff.bytes', true), ''), '0')::bigint + n)::text, false)
$$;
COMMENT ON FUNCTION @extschema@.ha_count_bytes(bigint) IS
    'crawler_ha (internal): add to the bytes exchanged with the peer in this session';

CREATE FUNCTION @extschema@.ha_peer_begin(call text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_peer_send('SELECT ' || call || '::text');
    PERFORM @extschema@.ha_count_bytes(octet_length(call) + 14);
END
$$;
COMMENT ON FUNCTION @extschema@.ha_peer_begin(text) IS
    'crawler_ha (internal): start evaluating an expression on the peer';

CREATE FUNCTION @extschema@.ha_peer_end()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    answer text := @extschema@.ha_peer_receive();
BEGIN
    PERFORM @extschema@.ha_count_bytes(coalesce(octet_length(answer), 0));
    RETURN answer::jsonb;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_peer_end() IS
    'crawler_ha (internal): the peer''s value for ha_peer_begin(), as jsonb';

CREATE FUNCTION @extschema@.ha_peer_call(call text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_peer_begin(call);
    RETURN @extschema@.ha_peer_end();
END
$$;
COMMENT ON FUNCTION @extschema@.ha_peer_call(text) IS
    'crawler_ha (internal): evaluate an expression on the peer, counting the bytes exchanged';

-- The keys whose rows differ between this node and its peer, by bisection
-- over hashed key ranges. Only hashes cross the network, then the hashes of
-- the rows of the few small ranges that still differ. A second look after
-- `recheck` drops differences that were only replication in flight.
-- kind: 'missing_on_peer' (only here), 'missing_here' (only on the peer),
-- 'changed' (both, different content).
CREATE FUNCTION @extschema@.ha_diff(tbl regclass, buckets integer DEFAULT 1024, leaf_rows integer DEFAULT 32,
                                    recheck interval DEFAULT '1 second')
RETURNS TABLE (key text, kind text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    here jsonb;
    there jsonb;
    ranges jsonb;
    next_ranges jsonb;
    leaves jsonb := '[]';
    d record;
    w bigint;
    sub_lo bigint;
    lh jsonb;
    ph jsonb;
    first_pass jsonb;
BEGIN
    PERFORM @extschema@.ha_table_key(tbl);
    IF buckets IS NULL OR buckets < 2 OR buckets > 65536 THEN
        RAISE EXCEPTION 'buckets must be between 2 and 65536' USING ERRCODE = 'invalid_parameter_value';
    ELSIF leaf_rows IS NULL OR leaf_rows < 1 OR leaf_rows > 100000 THEN
        RAISE EXCEPTION 'leaf_rows must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
    ELSIF recheck IS NULL OR recheck < '0' OR recheck > '1 hour' THEN
        RAISE EXCEPTION 'recheck must be between 0 and 1 hour' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('crawler_ha_diff.bytes', '0', false);
    PERFORM @extschema@.ha_peer_begin(format('%s.ha_table_bounds(%L::regclass)', '@extschema@', tbl::text));
    here := @extschema@.ha_table_bounds(tbl);
    there := @extschema@.ha_peer_end();
    IF here ->> 0 IS NULL AND there ->> 0 IS NULL THEN
        RETURN;  -- empty on both nodes
    END IF;
    ranges := jsonb_build_array(jsonb_build_array(
        least((here ->> 0)::bigint, (there ->> 0)::bigint),
        greatest((here ->> 1)::bigint, (there ->> 1)::bigint) + 1));

    -- Keep only the buckets whose (rows, hash) differ; cut them again until
    -- a bucket is small enough to compare row by row.
    WHILE jsonb_array_length(ranges) > 0 LOOP
        next_ranges := '[]';
        -- Both nodes hash at the same time.
        PERFORM @extschema@.ha_peer_begin(format('%s.ha_range_hashes(%L::regclass, %L::jsonb, %s)',
                                                 '@extschema@', tbl::text, ranges::text, buckets));
        lh := @extschema@.ha_range_hashes(tbl, ranges, buckets);
        ph := @extschema@.ha_peer_end();
        FOR d IN
            WITH l AS (SELECT (e ->> 0)::int AS i, (e ->> 1)::int AS b, (e ->> 2)::bigint AS n, (e ->> 3)::bigint AS h
                         FROM jsonb_array_elements(lh) e),
                 p AS (SELECT (e ->> 0)::int AS i, (e ->> 1)::int AS b, (e ->> 2)::bigint AS n, (e ->> 3)::bigint AS h
                         FROM jsonb_array_elements(ph) e)
            SELECT ranges -> coalesce(l.i, p.i) AS rng, coalesce(l.b, p.b) AS b,
                   greatest(coalesce(l.n, 0), coalesce(p.n, 0)) AS n
              FROM l FULL JOIN p ON l.i = p.i AND l.b = p.b
             WHERE l.n IS DISTINCT FROM p.n OR l.h IS DISTINCT FROM p.h
        LOOP
            w := greatest(1, ceil(((d.rng ->> 1)::numeric - (d.rng ->> 0)::numeric)
                                  / coalesce((d.rng ->> 2)::integer, buckets)))::bigint;
            sub_lo := (d.rng ->> 0)::bigint + d.b * w;
            IF d.n <= leaf_rows OR w = 1 THEN
                leaves := leaves || jsonb_build_array(jsonb_build_array(sub_lo, least(sub_lo + w, (d.rng ->> 1)::bigint)));
            ELSE
                -- Cut a differing bucket into just enough buckets to reach leaf
                -- size, but at most 32: a few more rounds cost far fewer bytes
                -- than wide ones, so the bytes per difference grow only with
                -- the logarithm of the table's size.
                next_ranges := next_ranges || jsonb_build_array(jsonb_build_array(
                    sub_lo, least(sub_lo + w, (d.rng ->> 1)::bigint),
                    least(32, buckets, greatest(2, 2 * ceil(d.n::numeric / leaf_rows)::integer))));
            END IF;
        END LOOP;
        ranges := next_ranges;
    END LOOP;
    IF jsonb_array_length(leaves) = 0 THEN
        RETURN;
    END IF;

    first_pass := @extschema@.ha_leaf_diff(tbl, leaves);
    IF first_pass = '{}' OR recheck = '0' THEN
        RETURN QUERY SELECT e.key, e.value #>> '{}' FROM jsonb_each(first_pass) e ORDER BY 1;
        RETURN;
    END IF;
    -- What replication was still carrying has arrived by now.
    PERFORM pg_sleep(extract(epoch FROM recheck));
    RETURN QUERY
        SELECT e.key, e.value #>> '{}'
          FROM jsonb_each(@extschema@.ha_leaf_diff(tbl, leaves)) e
         WHERE first_pass ? e.key
         ORDER BY 1;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_diff(regclass, integer, integer, interval) IS
    'crawler_ha: the keys of the rows of a table that differ between this node and its peer (missing_on_peer, missing_here, changed), found by bisecting range hashes; differences gone after `recheck` were replication in flight';

-- Row-by-row comparison of small ranges: {key: kind}.
CREATE FUNCTION @extschema@.ha_leaf_diff(tbl regclass, leaves jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lr jsonb;
    pr jsonb;
BEGIN
    PERFORM @extschema@.ha_peer_begin(format('%s.ha_range_rows(%L::regclass, %L::jsonb)',
                                             '@extschema@', tbl::text, leaves::text));
    lr := @extschema@.ha_range_rows(tbl, leaves);
    pr := @extschema@.ha_peer_end();
    RETURN (SELECT coalesce(jsonb_object_agg(coalesce(l.key, p.key),
                                             CASE WHEN p.key IS NULL THEN 'missing_on_peer'
                                                  WHEN l.key IS NULL THEN 'missing_here'
                                                  ELSE 'changed' END), '{}')
              FROM jsonb_each_text(lr) l FULL JOIN jsonb_each_text(pr) p ON l.key = p.key
             WHERE l.value IS DISTINCT FROM p.value);
END
$$;
COMMENT ON FUNCTION @extschema@.ha_leaf_diff(regclass, jsonb) IS
    'crawler_ha (internal): compare the rows of small key ranges here and on the peer';

-- The original three checks and the range-hash check, per table. Logged in
-- ha_sync_log and, once per call, as an HA event: so it runs on the primary
-- (a standby is read-only), and those per-node rows commit without waiting
-- for a synchronous standby (ha_commit_locally).
CREATE FUNCTION @extschema@.ha_check_consistency(tables regclass[] DEFAULT NULL)
RETURNS TABLE (check_name text, table_name text, local_value text, peer_value text, ok boolean, detail text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl regclass;
    here jsonb;
    there jsonb;
    diff jsonb;
    n_diff bigint;
    bytes bigint;
    t0 timestamptz;
    all_ok boolean := true;
    summary jsonb := '{}';
    st record;
BEGIN
    IF tables IS NOT NULL AND (cardinality(tables) = 0 OR array_position(tables, NULL) IS NOT NULL) THEN
        RAISE EXCEPTION 'tables must be NULL (all data tables) or a list of tables without NULLs'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Every table is refused or accepted before any is read.
    FOREACH tbl IN ARRAY coalesce(tables, @extschema@.ha_data_tables()) LOOP
        PERFORM @extschema@.ha_require_data_table(tbl);
    END LOOP;
    SELECT s.role, s.primary_name INTO st FROM @extschema@.ha_state s;
    IF st.role IS DISTINCT FROM 'primary' THEN
        RAISE EXCEPTION 'ha_check_consistency() runs on the primary; node % is the %',
            (SELECT n.node_name FROM @extschema@.ha_node n), coalesce(st.role, 'unknown')
            USING ERRCODE = 'read_only_sql_transaction',
                  DETAIL = 'It records each check in this node''s ha_sync_log and ha_events.',
                  HINT = format('Call it on the primary (%s): it compares both nodes. ha_diff() also works here.',
                                coalesce(st.primary_name, 'unknown'));
    ELSIF current_setting('transaction_read_only') = 'on' THEN
        RAISE EXCEPTION 'ha_check_consistency() needs a read-write transaction'
            USING ERRCODE = 'read_only_sql_transaction',
                  DETAIL = 'It records each check in this node''s ha_sync_log and ha_events.',
                  HINT = 'A fenced primary is read-only: call it on the primary of the newest term. ha_diff() also works here.';
    END IF;
    PERFORM @extschema@.ha_commit_locally();
    FOREACH tbl IN ARRAY coalesce(tables, @extschema@.ha_data_tables()) LOOP
        t0 := clock_timestamp();
        PERFORM @extschema@.ha_peer_begin(format('%s.ha_table_summary(%L::regclass)', '@extschema@', tbl::text));
        here := @extschema@.ha_table_summary(tbl);
        there := @extschema@.ha_peer_end();
        table_name := tbl::text;

        check_name := 'row_count';
        local_value := here ->> 0; peer_value := there ->> 0;
        ok := local_value = peer_value; detail := NULL;
        RETURN NEXT;

        check_name := 'latest_record';
        local_value := concat_ws(' key ', here ->> 3, here ->> 4);
        peer_value := concat_ws(' key ', there ->> 3, there ->> 4);
        ok := local_value = peer_value; detail := 'latest updated_at and the key of that row';
        RETURN NEXT;

        check_name := 'id_range';
        local_value := concat_ws('..', here ->> 1, here ->> 2);
        peer_value := concat_ws('..', there ->> 1, there ->> 2);
        ok := local_value = peer_value; detail := 'smallest..largest key position';
        RETURN NEXT;

        SELECT coalesce(jsonb_object_agg(d.kind, d.keys), '{}'), coalesce(sum(d.n), 0)
          INTO diff, n_diff
          FROM (SELECT x.kind, count(*) AS n, jsonb_agg(x.key ORDER BY x.key) FILTER (WHERE x.rn <= 100) AS keys
                  FROM (SELECT f.key, f.kind, row_number() OVER (PARTITION BY f.kind ORDER BY f.key) AS rn
                          FROM @extschema@.ha_diff(tbl) f) x
                 GROUP BY x.kind) d;
        bytes := current_setting('crawler_ha_diff.bytes')::bigint;
        check_name := 'range_hash';
        local_value := here ->> 0; peer_value := there ->> 0;
        ok := n_diff = 0;
        detail := CASE WHEN ok THEN format('identical (%s bytes exchanged)', bytes)
                       ELSE format('%s differing rows (%s bytes exchanged): %s', n_diff, bytes, diff) END;
        RETURN NEXT;

        INSERT INTO @extschema@.ha_sync_log (kind, table_name, ok, result)
        VALUES ('check', tbl::text, n_diff = 0 AND (here ->> 0) = (there ->> 0),
                jsonb_build_object('rows_here', here ->> 0, 'rows_peer', there ->> 0, 'differing', n_diff,
                                   'diff', diff, 'bytes', bytes,
                                   'ms', round(extract(epoch FROM clock_timestamp() - t0) * 1000)));
        all_ok := all_ok AND n_diff = 0;
        summary := summary || jsonb_build_object(tbl::text, n_diff);
    END LOOP;
    -- Rows whose blob their node's store lacks (invariant 9), counted on each
    -- node against its own store; a node without a store (no agent) has
    -- nothing to count against and is not checked. Missing blobs are not a
    -- difference between the nodes' rows: they do not change all_ok.
    IF '@extschema@.images'::regclass = ANY (coalesce(tables, @extschema@.ha_data_tables())) THEN
        PERFORM @extschema@.ha_peer_begin(format('%s.ha_blob_missing_summary()', '@extschema@'));
        here := @extschema@.ha_blob_missing_summary();
        there := @extschema@.ha_peer_end();
        -- A row of its own table name: each data table keeps its four checks.
        check_name := 'blobs_missing';
        table_name := '@extschema@.ha_blobs'::regclass::text;
        local_value := here ->> 'rows'; peer_value := there ->> 'rows';
        ok := coalesce((here ->> 'rows')::bigint, 0) = 0 AND coalesce((there ->> 'rows')::bigint, 0) = 0;
        detail := format('images rows whose blob the node''s store lacks: here %s, on the peer %s',
                         CASE WHEN (here ->> 'attached')::boolean
                              THEN format('%s (%s blobs, %s queued)', here ->> 'rows', here ->> 'blobs', here ->> 'queued')
                              ELSE 'not checked (no blob store attached)' END,
                         CASE WHEN (there ->> 'attached')::boolean
                              THEN format('%s (%s blobs, %s queued)', there ->> 'rows', there ->> 'blobs', there ->> 'queued')
                              ELSE 'not checked (no blob store attached)' END);
        RETURN NEXT;
        summary := summary || jsonb_build_object('blobs_missing', jsonb_build_object('here', here, 'peer', there));
    END IF;
    PERFORM @extschema@.ha_record_event('consistency',
        CASE WHEN all_ok THEN 'consistency check: identical' ELSE 'consistency check: rows differ' END,
        NULL, jsonb_build_object('differing', summary));
END
$$;
COMMENT ON FUNCTION @extschema@.ha_check_consistency(regclass[]) IS
    'crawler_ha: compare this node with its peer (row counts, latest record, key range, range hashes naming every differing row) and, with images, count on each node the rows whose blob its store lacks (blobs_missing); NULL means every data table';

-- Applied on the node being repaired (called there by ha_sync through the
-- peer connection): upsert the given rows, delete the given keys. Triggers
-- and foreign keys are not fired (replica role), as for replicated changes.
CREATE FUNCTION @extschema@.ha_apply_rows(tbl regclass, rows jsonb, delete_keys jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET session_replication_role = 'replica'
AS $$
DECLARE
    k record := @extschema@.ha_table_key(tbl);
    key_name text := (SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                       WHERE i.indrelid = tbl AND i.indisprimary);
    cols text;
    upserted bigint := 0;
    deleted bigint := 0;
BEGIN
    SELECT string_agg(format('%I', attname), ', ' ORDER BY attnum) INTO cols
      FROM pg_attribute WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
    IF jsonb_array_length(coalesce(delete_keys, '[]')) > 0 THEN
        EXECUTE format('DELETE FROM %s t WHERE %s = ANY (ARRAY(SELECT jsonb_array_elements_text($1)))', tbl, k.key_col)
        USING delete_keys;
        GET DIAGNOSTICS deleted = ROW_COUNT;
    END IF;
    IF jsonb_array_length(coalesce(rows, '[]')) > 0 THEN
        EXECUTE format('INSERT INTO %1$s (%2$s) OVERRIDING SYSTEM VALUE SELECT %2$s FROM jsonb_populate_recordset(NULL::%1$s, $1) '
                       'ON CONFLICT (%3$I) DO UPDATE SET (%2$s) = ROW(%4$s)',
                       tbl, cols, key_name,
                       (SELECT string_agg(format('EXCLUDED.%I', attname), ', ' ORDER BY attnum)
                          FROM pg_attribute WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped AND attgenerated = ''))
        USING rows;
        GET DIAGNOSTICS upserted = ROW_COUNT;
    END IF;
    RETURN jsonb_build_object('upserted', upserted, 'deleted', deleted);
END
$$;
COMMENT ON FUNCTION @extschema@.ha_apply_rows(regclass, jsonb, jsonb) IS
    'crawler_ha (internal): upsert rows and delete keys on the node being repaired';

-- Repair the peer from this node, the primary (the authority): incremental
-- sends only the differing rows (insert the missing, update the changed,
-- delete the extra); full sends every row and deletes what this node lacks.
CREATE FUNCTION @extschema@.ha_sync(mode text DEFAULT 'incremental', dry_run boolean DEFAULT false)
RETURNS TABLE (table_name text, inserted bigint, updated bigint, deleted bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC' SET DateStyle = 'ISO, YMD' SET IntervalStyle = 'postgres'
SET extra_float_digits = 3 SET bytea_output = 'hex'
AS $$
DECLARE
    tbl regclass;
    k record;
    diff jsonb;
    chunk jsonb;
    peer_keys jsonb;
    result jsonb;
    t0 timestamptz;
    summary jsonb := '{}';
BEGIN
    IF mode IS NULL OR mode NOT IN ('incremental', 'full') THEN
        RAISE EXCEPTION 'mode must be incremental or full' USING ERRCODE = 'invalid_parameter_value';
    ELSIF dry_run IS NULL THEN
        RAISE EXCEPTION 'dry_run must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF (SELECT s.role FROM @extschema@.ha_state s) <> 'primary' THEN
        RAISE EXCEPTION 'ha_sync runs on the primary, the authority for the data'
            USING ERRCODE = 'read_only_sql_transaction', HINT = 'Call it on the primary; it repairs the standby.';
    END IF;
    -- Here it writes only ha_sync_log and ha_events (the repair itself is
    -- the peer's own transaction).
    PERFORM @extschema@.ha_commit_locally();
    FOREACH tbl IN ARRAY @extschema@.ha_data_tables() LOOP
        t0 := clock_timestamp();
        k := @extschema@.ha_table_key(tbl);
        table_name := tbl::text;
        IF mode = 'incremental' THEN
            SELECT coalesce(jsonb_object_agg(d.key, d.kind), '{}') INTO diff FROM @extschema@.ha_diff(tbl) d;
            SELECT count(*) FILTER (WHERE e.value #>> '{}' = 'missing_on_peer'),
                   count(*) FILTER (WHERE e.value #>> '{}' = 'changed'),
                   count(*) FILTER (WHERE e.value #>> '{}' = 'missing_here')
              INTO inserted, updated, deleted FROM jsonb_each(diff) e;
            IF NOT dry_run AND inserted + updated + deleted > 0 THEN
                EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(t)), ''[]'') FROM %s t
                                 WHERE %s IN (SELECT e.key FROM jsonb_each_text($1) e WHERE e.value <> ''missing_here'')',
                               tbl, k.key_col) USING diff INTO chunk;
                SELECT coalesce(jsonb_agg(e.key), '[]') INTO peer_keys FROM jsonb_each_text(diff) e WHERE e.value = 'missing_here';
                result := @extschema@.ha_peer_apply(tbl, chunk, peer_keys);
            END IF;
        ELSE
            -- Full: every row (upserts), and whatever the peer has that this node lacks.
            EXECUTE format('SELECT count(*) FROM %s', tbl) INTO inserted;
            updated := 0;
            SELECT coalesce(jsonb_agg(d.key), '[]') INTO peer_keys
              FROM @extschema@.ha_diff(tbl, recheck => '0') d WHERE d.kind = 'missing_here';
            deleted := jsonb_array_length(peer_keys);
            IF NOT dry_run THEN
                PERFORM @extschema@.ha_peer_apply(tbl, '[]', peer_keys);
                FOR chunk IN EXECUTE format(
                        'SELECT jsonb_agg(to_jsonb(t)) FROM (SELECT t, row_number() OVER (ORDER BY %1$s) / 5000 AS c FROM %2$s t) x(t, c) GROUP BY c',
                        k.key_col, tbl) LOOP
                    PERFORM @extschema@.ha_peer_apply(tbl, chunk, '[]');
                END LOOP;
            END IF;
        END IF;
        INSERT INTO @extschema@.ha_sync_log (kind, table_name, ok, result)
        VALUES ('repair', tbl::text, true,
                jsonb_build_object('mode', mode, 'dry_run', dry_run, 'insert', inserted, 'update', updated,
                                   'delete', deleted, 'ms', round(extract(epoch FROM clock_timestamp() - t0) * 1000)));
        summary := summary || jsonb_build_object(tbl::text,
            jsonb_build_object('insert', inserted, 'update', updated, 'delete', deleted));
        RETURN NEXT;
    END LOOP;
    PERFORM @extschema@.ha_record_event('repair',
        format('%s repair%s', mode, CASE WHEN dry_run THEN ' (dry run)' ELSE '' END), NULL,
        jsonb_build_object('mode', mode, 'dry_run', dry_run, 'tables', summary));
END
$$;
COMMENT ON FUNCTION @extschema@.ha_sync(text, boolean) IS
    'crawler_ha: repair the standby from this primary: incremental (only differing rows) or full (every row); dry_run only counts';

-- Send rows to the peer in a read-write transaction (the standby's default
-- is read-only for clients; this is the primary repairing it).
CREATE FUNCTION @extschema@.ha_peer_apply(tbl regclass, rows jsonb, delete_keys jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@.ha_peer_query(format(
        'SET transaction_read_only = off; SELECT %s.ha_apply_rows(%L::regclass, %L::jsonb, %L::jsonb)::text',
        '@extschema@', tbl::text, rows::text, delete_keys::text))::jsonb;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_peer_apply(regclass, jsonb, jsonb) IS
    'crawler_ha (internal): apply rows and deletions on the peer';

CREATE FUNCTION @extschema@.ha_sync_status()
RETURNS TABLE (table_name text, last_check timestamptz, check_ok boolean, check_result jsonb,
               last_repair timestamptz, repair_result jsonb)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t::text, c.at, c.ok, c.result, r.at, r.result
      FROM unnest(@extschema@.ha_data_tables()) t
      LEFT JOIN LATERAL (SELECT l.at, l.ok, l.result FROM @extschema@.ha_sync_log l
                          WHERE l.table_name = t::text AND l.kind = 'check' ORDER BY l.at DESC LIMIT 1) c ON true
      LEFT JOIN LATERAL (SELECT l.at, l.result FROM @extschema@.ha_sync_log l
                          WHERE l.table_name = t::text AND l.kind = 'repair' ORDER BY l.at DESC LIMIT 1) r ON true
$$;
COMMENT ON FUNCTION @extschema@.ha_sync_status() IS
    'crawler_ha: the last consistency check and the last repair of each data table, with their results';
