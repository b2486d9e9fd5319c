-- What this node is: its number, its name, and the id generators that the
-- number partitions. Nothing here is replicated.

CREATE FUNCTION @extschema@.crawler_ha_library_version()
RETURNS text
LANGUAGE c STRICT
AS 'MODULE_PATHNAME', 'crawler_ha_library_version';
COMMENT ON FUNCTION @extschema@.crawler_ha_library_version() IS
    'crawler_ha: the version of the loaded C library';

-- Catch a stale library now rather than at failover time.
DO $check$
BEGIN
    IF @extschema@.crawler_ha_library_version() <> '@CRAWLER_HA_VERSION@' THEN
        RAISE EXCEPTION 'crawler_ha library version % does not match the SQL script version @CRAWLER_HA_VERSION@',
            @extschema@.crawler_ha_library_version()
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Install the matching crawler_ha build and restart the server.';
    END IF;
END
$check$;

CREATE TABLE @extschema@.ha_node (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    node_id    integer NOT NULL CHECK (node_id BETWEEN 1 AND 1023),
    node_name  text NOT NULL CHECK (node_name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE @extschema@.ha_node IS
    'crawler_ha: this node''s number and name (per node, never replicated)';

INSERT INTO @extschema@.ha_node (node_id, node_name)
SELECT s.id,
       COALESCE(NULLIF(pg_catalog.current_setting('crawler_ha.node_name', true), ''), 'node' || s.id)
FROM (SELECT COALESCE(NULLIF(pg_catalog.current_setting('crawler_ha.node_id', true), ''), '1')::integer AS id) s;

-- For functions whose writes are this node's own bookkeeping (tables that
-- are never replicated: ha_node, ha_events, ha_sync_log, the sequences):
-- their commit need not wait for a synchronous standby, and in
-- replication_mode = sync with the standby gone it would wait until the
-- standby is back, which is often the very moment the check, alert or
-- clean-up is for. Local to the transaction (not to the calling function,
-- so that it holds at the commit), and only while the transaction has
-- written nothing yet: a caller's own writes of crawl data earlier in the
-- same transaction keep waiting for the standby. Returns whether it set it.
CREATE FUNCTION @extschema@.ha_commit_locally()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL
       OR pg_catalog.current_setting('synchronous_commit') IN ('off', 'local') THEN
        RETURN false;
    END IF;
    PERFORM pg_catalog.set_config('synchronous_commit', 'local', true);
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_commit_locally() IS
    'crawler_ha (internal): the transaction, which has written nothing yet and will write only per-node tables, commits without waiting for a synchronous standby';

CREATE FUNCTION @extschema@.ha_set_node_id(node_id integer, node_name text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    seq regclass;
    last bigint;
BEGIN
    IF node_id IS NULL THEN
        RAISE EXCEPTION 'node_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF node_id NOT BETWEEN 1 AND 1023 THEN
        RAISE EXCEPTION 'node_id % is out of range', node_id
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A node id is between 1 and 1023.';
    END IF;
    IF node_name IS NOT NULL AND node_name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid node name'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A node name has 1 to 63 letters, digits, "_", "." or "-".';
    END IF;
    -- The peer's number would make both nodes hand out the same ids.
    IF node_id = (SELECT s.peer_node_id FROM @extschema@.ha_state s) THEN
        RAISE EXCEPTION 'node_id % is the peer''s', node_id
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Every node needs its own number (docs/ids.md).';
    END IF;
    PERFORM @extschema@.ha_commit_locally();  -- per node: nothing here is replicated
    UPDATE @extschema@.ha_node n
       SET node_id = ha_set_node_id.node_id,
           node_name = COALESCE(ha_set_node_id.node_name, n.node_name);
    -- Continue each sequence past everything it produced, in the new residue class.
    FOR seq IN SELECT i.seq FROM @extschema@.ha_id_sequences() i LOOP
        EXECUTE pg_catalog.format('SELECT last_value FROM %s', seq) INTO last;
        EXECUTE pg_catalog.format('ALTER SEQUENCE %s RESTART WITH %s', seq,
                                  @extschema@.ha_id_after(last, ha_set_node_id.node_id));
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_set_node_id(integer, text) IS
    'crawler_ha: renumber this node (1-1023); ids it hands out from now on are congruent to the new number modulo 1024';

-- The write fence, ha_assert_writable(), which every write function calls
-- first in its own transaction, is defined with the term it checks in
-- 50_ha.sql.
