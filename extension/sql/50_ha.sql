-- High availability, part 1: the per-node HA state (term store, events),
-- the term check of the write fence, and the SQL face of the HA worker.
-- Nothing in this file is part of the publication: each node keeps its own.

-- This node's view of the cluster. One row. The worker mirrors it into shared
-- memory; the write fence reads it in the writer's transaction under a ROW
-- EXCLUSIVE table lock that a demotion's EXCLUSIVE one waits for, so a
-- demotion waits for in-flight writes and every later write sees it.
CREATE TABLE @extschema@.ha_state (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    role            text NOT NULL DEFAULT 'primary' CHECK (role IN ('primary', 'standby', 'witness')),
    term            bigint NOT NULL DEFAULT 0 CHECK (term >= 0),
    primary_name    text,
    primary_node_id integer,
    peer_node_id    integer,
    fenced          boolean NOT NULL DEFAULT false,
    needs_rejoin    boolean NOT NULL DEFAULT false,
    paused          boolean NOT NULL DEFAULT false,
    split_lsn       pg_lsn,
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE @extschema@.ha_state IS
    'crawler_ha: this node''s role, term and fence (per node, never replicated). Term 0 is a standalone node';
COMMENT ON COLUMN @extschema@.ha_state.split_lsn IS
    'on a node promoted by failover: the old primary''s LSN of the last change it had received (the split point)';

INSERT INTO @extschema@.ha_state (primary_name, primary_node_id)
SELECT node_name, node_id FROM @extschema@.ha_node;

-- The term only grows.
CREATE FUNCTION @extschema@.ha_state_fence_held()
RETURNS boolean
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_state_fence_held';
COMMENT ON FUNCTION @extschema@.ha_state_fence_held() IS
    'crawler_ha: whether this transaction holds ha_state in EXCLUSIVE mode, as a change that stops writes must (internal)';

CREATE FUNCTION @extschema@.ha_state_term_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.term < OLD.term THEN
        RAISE EXCEPTION 'the term only grows: % -> % refused', OLD.term, NEW.term
            USING ERRCODE = 'check_violation';
    END IF;
    -- A change that stops this primary's writes must wait for the writes
    -- that passed the fence: they hold ha_state in ROW EXCLUSIVE mode.
    IF OLD.role = 'primary' AND NOT OLD.fenced AND (NEW.role <> 'primary' OR NEW.fenced)
       AND NOT @extschema@.ha_state_fence_held() THEN
        RAISE EXCEPTION 'a change that stops this primary''s writes must first take ha_state in EXCLUSIVE mode'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'LOCK TABLE ha_state IN EXCLUSIVE MODE before the UPDATE: the write fence relies on it.';
    END IF;
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_state_term_guard() IS
    'crawler_ha: refuses any update that would lower this node''s term, or stop its writes without the fence''s lock';
CREATE TRIGGER ha_state_term_guard BEFORE UPDATE ON @extschema@.ha_state
    FOR EACH ROW EXECUTE FUNCTION @extschema@.ha_state_term_guard();

-- Every term this node has known, with its primary. A witness (part 2) grants
-- each term at most once: the primary key is that promise.
CREATE TABLE @extschema@.ha_terms (
    term            bigint PRIMARY KEY CHECK (term > 0),
    primary_name    text NOT NULL,
    primary_node_id integer,
    reason          text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE @extschema@.ha_terms IS
    'crawler_ha: the terms this node has known and who was primary in each (per node)';

CREATE TABLE @extschema@.ha_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    term        bigint NOT NULL,
    node        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('setup', 'detection', 'recovery', 'failover', 'switchover',
                                              'promotion', 'fence', 'unfence', 'demotion', 'rejoin',
                                              'rejoin_refused', 'merge', 'conflict', 'alert', 'pause', 'resume',
                                              'sync_degraded', 'sync_restored', 'consistency', 'repair',
                                              'grant', 'grant_refused', 'term', 'sync_wait_cancelled',
                                              'blob_store', 'blob_corrupt', 'blob_repaired', 'backup',
                                              'restore')),
    reason      text NOT NULL,
    duration_ms double precision,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ha_events_at_idx ON @extschema@.ha_events (at);
COMMENT ON TABLE @extschema@.ha_events IS
    'crawler_ha: history of detections, failovers, switchovers, fencings, rejoins, merges and alerts (per node; each is also sent as NOTIFY crawler_ha_events)';

-- The payload is the event's id and nothing else. NOTIFY needs no privilege
-- and LISTEN none either: anyone who can connect can send a payload on this
-- channel or read it. So it carries nothing a listener may act on, only a
-- reason to read ha_events (SELECT is granted to crawler_ha_reader), where a
-- forged id finds no row or an old one.
CREATE FUNCTION @extschema@.ha_events_notify()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('crawler_ha_events', NEW.id::text);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_events_notify() IS
    'crawler_ha: sends the id of each new HA event as NOTIFY on channel crawler_ha_events; listeners read the row from ha_events';
CREATE TRIGGER ha_events_notify AFTER INSERT ON @extschema@.ha_events
    FOR EACH ROW EXECUTE FUNCTION @extschema@.ha_events_notify();

CREATE FUNCTION @extschema@.ha_record_event(kind text, reason text, duration_ms double precision DEFAULT NULL,
                                            detail jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO @extschema@.ha_events (term, node, kind, reason, duration_ms, detail)
    SELECT s.term, n.node_name, ha_record_event.kind, ha_record_event.reason,
           ha_record_event.duration_ms, COALESCE(ha_record_event.detail, '{}')
    FROM @extschema@.ha_state s, @extschema@.ha_node n
    RETURNING id;
$$;
COMMENT ON FUNCTION @extschema@.ha_record_event(text, text, double precision, jsonb) IS
    'crawler_ha: records an HA event on this node (internal; used by the HA worker and the ha_* functions)';

-- ---------------------------------------------------------------------------
-- C primitives (internal)

CREATE FUNCTION @extschema@.ha_fence_check(term bigint, role text, fenced boolean, primary_name text)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_fence_check';
COMMENT ON FUNCTION @extschema@.ha_fence_check(bigint, text, boolean, text) IS
    'crawler_ha: raises 25006 unless this node, in the given state, may write (internal: the C half of ha_assert_writable)';

CREATE FUNCTION @extschema@.ha_alter_system(name text, value text)
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_alter_system';
COMMENT ON FUNCTION @extschema@.ha_alter_system(text, text) IS
    'crawler_ha: ALTER SYSTEM SET name = value (RESET when value is NULL) and reload (internal; ALTER SYSTEM cannot run in a function)';

CREATE FUNCTION @extschema@.ha_peer_query(query text, timeout_ms integer DEFAULT NULL)
RETURNS text
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_peer_query';
COMMENT ON FUNCTION @extschema@.ha_peer_query(text, integer) IS
    'crawler_ha: runs a query on the peer (crawler_ha.peer_conninfo) without blocking and returns the first value (internal)';

CREATE FUNCTION @extschema@.ha_wake_worker()
RETURNS boolean
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_wake_worker';
COMMENT ON FUNCTION @extschema@.ha_wake_worker() IS
    'crawler_ha: wakes the HA worker so it re-reads ha_state now (internal)';

CREATE FUNCTION @extschema@.ha_request(kind text, arg text DEFAULT NULL, force boolean DEFAULT false)
RETURNS text
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_request';
COMMENT ON FUNCTION @extschema@.ha_request(text, text, boolean) IS
    'crawler_ha: hands promote, switchover or rejoin to the HA worker and waits for its answer (internal)';

-- ---------------------------------------------------------------------------
-- The write fence, with the term check.

-- C (ha_sql.c): ha_state in ROW EXCLUSIVE mode to the end of the caller's
-- transaction, then its row read with the newest snapshot. A change that
-- stops this node's writes takes ha_state in EXCLUSIVE mode first, so it
-- waits for the writes in flight and every later write sees it; no tuple
-- lock, so a write API call logs nothing for the fence.
CREATE FUNCTION @extschema@.ha_assert_writable()
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_assert_writable';
COMMENT ON FUNCTION @extschema@.ha_assert_writable() IS
    'crawler_ha: raises SQLSTATE 25006, naming the primary, unless this node is the unfenced primary of the newest term it knows';

-- What a peer's health check reads: identity, role, term and WAL position.
-- Whether this node's last check of its peer succeeded (NULL
-- without preloading). A primary counts its standby as contact against the
-- self-fence only while the standby also reaches it.
CREATE FUNCTION @extschema@.ha_peer_reachable()
RETURNS boolean
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_peer_reachable';
COMMENT ON FUNCTION @extschema@.ha_peer_reachable() IS
    'crawler_ha: whether the HA worker''s last check of the peer succeeded (internal; read through ha_ping)';

CREATE FUNCTION @extschema@.ha_ping()
RETURNS TABLE (node_id integer, node_name text, role text, term bigint, primary_name text,
               fenced boolean, needs_rejoin boolean, read_only boolean, lsn pg_lsn,
               split_lsn pg_lsn, paused boolean, sees_peer boolean, agent_url text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.node_id, n.node_name, s.role, s.term, s.primary_name, s.fenced, s.needs_rejoin,
           pg_catalog.current_setting('default_transaction_read_only')::boolean,
           pg_catalog.pg_current_wal_lsn(), s.split_lsn, s.paused, @extschema@.ha_peer_reachable(),
           NULLIF(pg_catalog.current_setting('crawler_ha.agent_url', true), '')
    FROM @extschema@.ha_node n, @extschema@.ha_state s;
$$;
COMMENT ON FUNCTION @extschema@.ha_ping() IS
    'crawler_ha: this node''s identity, role, term, WAL position and agent URL (NULL when unset), as read by the peer''s health check';

CREATE FUNCTION @extschema@.ha_status()
RETURNS TABLE (node_name text, node_id integer, is_local boolean, role text, term bigint,
               healthy boolean, last_check timestamptz, latency_ms double precision,
               consecutive_failures integer, replication_mode text, sync_state text,
               lag_bytes bigint, lag_seconds double precision, last_failover timestamptz,
               last_failover_ms double precision, fenced boolean, needs_rejoin boolean,
               paused boolean, detail text, agent_url text)
LANGUAGE c
-- As the owner: it reads ha_node, which crawler_ha_agent may not read
-- directly; it takes no argument, so nothing of the caller's runs.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ha_status';
COMMENT ON FUNCTION @extschema@.ha_status() IS
    'crawler_ha: one row per node (this one, the peer, the witness) as this node sees them now; agent_url is this node''s crawler_ha.agent_url, the peer''s as its last answered health check said, NULL when unset or unknown and for the witness';

CREATE FUNCTION @extschema@.ha_health()
RETURNS TABLE (node_name text, role text, term bigint, writable boolean, healthy boolean,
               fenced boolean, needs_rejoin boolean, paused boolean, peer_healthy boolean,
               lag_bytes bigint, lag_seconds double precision, checked_at timestamptz)
LANGUAGE c
-- As the owner, for the same reason as ha_status().
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ha_health';
COMMENT ON FUNCTION @extschema@.ha_health() IS
    'crawler_ha: this node in one row, for load balancers and monitoring';

-- The rule behind the load balancers' checks the node agent serves (GET
-- /primary, /replica, /read-only, /health): the agent only maps ok to HTTP
-- 200 or 503, so the rule is written here once.
CREATE FUNCTION @extschema@.ha_endpoint_check(endpoint text, max_lag text DEFAULT NULL)
RETURNS TABLE (ok boolean, reason text, lag_bytes bigint)
LANGUAGE c
-- As the owner, for the same reason as ha_status(), and to read the
-- subscription's progress; the arguments are only compared and parsed.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ha_endpoint_check';
COMMENT ON FUNCTION @extschema@.ha_endpoint_check(text, text) IS
    'crawler_ha: whether this node passes a load balancer''s check: endpoint primary or read-write (it takes writes: the write rule), replica (a standby at most max_lag behind, default 16MB, read by pg_size_bytes), read-only (either), health (the server answers); with the reason and the lag in bytes';

-- ---------------------------------------------------------------------------
-- Operations.

CREATE FUNCTION @extschema@.ha_setup(role text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    want   text := ha_setup.role;
    st     record;
    me     record;
    peer   jsonb;
    ptxt   text;
    slot   text;
    rows   bigint;
    tbl    regclass;
    seq    regclass;
    maxid  bigint;
BEGIN
    IF want IS NOT NULL AND want NOT IN ('primary', 'standby', 'witness') THEN
        RAISE EXCEPTION 'role must be primary, standby or witness, not %', want USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the witness (52_witness.sql); with one, the settings must fence before a promotion
    IF want = 'witness' THEN
        RETURN @extschema@.ha_setup_witness();
    END IF;
    PERFORM @extschema@.ha_check_fence_order();
    IF (SELECT s.role FROM @extschema@.ha_state s) = 'witness' THEN
        RAISE EXCEPTION 'this node is the witness: it holds no crawl data'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT * INTO me FROM @extschema@.ha_node;
    -- Read without locking: a set-up standby is read-only, and asking again
    -- must still answer.
    SELECT * INTO st FROM @extschema@.ha_state;
    IF st.role = want AND st.term >= 1 AND
       (want = 'primary' OR EXISTS (SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = 'crawler_ha_sub')) THEN
        RETURN want;
    END IF;
    -- A writable primary set up as a standby stops its writes: the fence's
    -- lock first (see ha_assert_writable()).
    IF want = 'standby' AND st.role = 'primary' AND NOT st.fenced THEN
        LOCK TABLE @extschema@.ha_state IN EXCLUSIVE MODE;
    END IF;
    PERFORM 1 FROM @extschema@.ha_state FOR UPDATE;

    -- The publication exists on every data node, so that a promotion only has
    -- to create the reverse slot before it accepts its first write.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = 'crawler_ha_pub') THEN
        EXECUTE 'CREATE PUBLICATION crawler_ha_pub FOR TABLE ' || @extschema@.ha_data_table_list();
    END IF;

    IF pg_catalog.current_setting('crawler_ha.peer_conninfo') <> '' THEN
        BEGIN
            ptxt := @extschema@.ha_peer_query(
                'SELECT pg_catalog.row_to_json(p)::text FROM ' ||
                pg_catalog.quote_ident('@extschema@') || '.ha_ping() p');
            peer := ptxt::jsonb;
        EXCEPTION WHEN sqlclient_unable_to_establish_sqlconnection THEN
            peer := NULL;
        END;
    END IF;

    IF want IS NULL THEN
        want := CASE WHEN peer IS NOT NULL AND peer->>'role' = 'primary' AND (peer->>'term')::bigint > 0
                          AND NOT (st.role = 'primary' AND st.term > 0)
                     THEN 'standby' ELSE 'primary' END;
    END IF;

    IF want = 'primary' THEN
        IF st.role = 'standby' THEN
            RAISE EXCEPTION 'node % is a standby', me.node_name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Use ha_failover() to make it the primary.';
        END IF;
        IF peer IS NOT NULL AND peer->>'role' = 'primary' AND (peer->>'term')::bigint >= GREATEST(st.term, 1) THEN
            RAISE EXCEPTION 'the peer % is already the primary of term %', peer->>'node_name', peer->>'term'
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Run ha_setup(''standby'') on this node instead.';
        END IF;
        IF st.role = 'primary' AND st.term >= 1 THEN
            RETURN 'primary';
        END IF;
        UPDATE @extschema@.ha_state
           SET role = 'primary', term = GREATEST(term, 1), primary_name = me.node_name,
               primary_node_id = me.node_id, fenced = false, needs_rejoin = false,
               peer_node_id = COALESCE((peer->>'node_id')::integer, peer_node_id);
        INSERT INTO @extschema@.ha_terms (term, primary_name, primary_node_id, reason)
        SELECT s.term, me.node_name, me.node_id, 'setup' FROM @extschema@.ha_state s
        ON CONFLICT (term) DO NOTHING;
        PERFORM @extschema@.ha_record_event('setup', 'set up as primary');
        PERFORM @extschema@.ha_wake_worker();
        -- ALTER SYSTEM is not transactional: last, once nothing else can fail
        PERFORM @extschema@.ha_alter_system('default_transaction_read_only', NULL);
        RETURN 'primary';
    END IF;

    -- standby
    IF peer IS NULL THEN
        RAISE EXCEPTION 'the peer cannot be reached'
            USING ERRCODE = 'sqlclient_unable_to_establish_sqlconnection',
                  HINT = 'Set crawler_ha.peer_conninfo to the primary and run ha_setup(''primary'') there first.';
    END IF;
    IF peer->>'role' <> 'primary' OR (peer->>'term')::bigint < 1 THEN
        RAISE EXCEPTION 'the peer % is not a set-up primary', peer->>'node_name'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run ha_setup(''primary'') on the peer first.';
    END IF;
    IF (peer->>'node_id')::integer = me.node_id THEN
        RAISE EXCEPTION 'the peer has the same node id % as this node', me.node_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give every node its own crawler_ha.node_id.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = 'crawler_ha_sub') THEN
        IF st.role = 'standby' THEN
            RETURN 'standby';
        END IF;
    END IF;
    IF st.role = 'primary' AND st.term >= 1 THEN
        RAISE EXCEPTION 'node % is the primary of term %', me.node_name, st.term
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'An old primary follows the new one through ha_rejoin().';
    END IF;
    rows := @extschema@.ha_data_rows();
    IF rows > 0 THEN
        RAISE EXCEPTION 'node % already holds % rows of crawl data', me.node_name, rows
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A new standby starts empty; it receives a copy of the primary''s data.';
    END IF;

    slot := 'crawler_ha_node_' || me.node_id;
    PERFORM @extschema@.ha_peer_query(pg_catalog.format(
        'SELECT pg_catalog.pg_create_logical_replication_slot(%L, %L) '
        'WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = %L)',
        slot, 'pgoutput', slot));
    -- A new node may reuse the id of a node it replaces: continue each id
    -- sequence past every id of this residue the primary already holds, or
    -- the first writes after a promotion would collide with the copied rows.
    FOR tbl, seq IN SELECT i.tbl, i.seq FROM @extschema@.ha_id_sequences() i LOOP
        maxid := @extschema@.ha_peer_query(pg_catalog.format(
            'SELECT max(id) FROM %s WHERE id %% 1024 = %s', tbl, me.node_id))::bigint;
        IF maxid IS NOT NULL THEN
            EXECUTE pg_catalog.format('ALTER SEQUENCE %s RESTART WITH %s', seq,
                                      @extschema@.ha_id_after(maxid, me.node_id));
        END IF;
    END LOOP;

    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = 'crawler_ha_sub') THEN
        EXECUTE pg_catalog.format(
            'CREATE SUBSCRIPTION crawler_ha_sub CONNECTION %L PUBLICATION crawler_ha_pub '
            'WITH (create_slot = false, slot_name = %L, copy_data = true, disable_on_error = true, '
            'synchronous_commit = local)',
            pg_catalog.current_setting('crawler_ha.peer_conninfo'), slot);
    END IF;
    UPDATE @extschema@.ha_state
       SET role = 'standby', term = GREATEST(term, (peer->>'term')::bigint),
           primary_name = peer->>'node_name', primary_node_id = (peer->>'node_id')::integer,
           peer_node_id = (peer->>'node_id')::integer, fenced = false, needs_rejoin = false;
    INSERT INTO @extschema@.ha_terms (term, primary_name, primary_node_id, reason)
    VALUES ((peer->>'term')::bigint, peer->>'node_name', (peer->>'node_id')::integer, 'setup')
    ON CONFLICT (term) DO NOTHING;
    PERFORM @extschema@.ha_record_event('setup', 'set up as standby of ' || (peer->>'node_name'),
                                        NULL, pg_catalog.jsonb_build_object('slot', slot));
    PERFORM @extschema@.ha_wake_worker();
    PERFORM @extschema@.ha_alter_system('default_transaction_read_only', 'on');
    RETURN 'standby';
END
$$;
COMMENT ON FUNCTION @extschema@.ha_setup(text) IS
    'crawler_ha: makes this node the primary, or the standby of the peer (publication, slot, subscription with initial copy, read-only); idempotent. Without a role: standby when the peer is a set-up primary';

CREATE FUNCTION @extschema@.ha_failover(target text DEFAULT NULL, force boolean DEFAULT false)
RETURNS text
LANGUAGE c
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ha_failover';
COMMENT ON FUNCTION @extschema@.ha_failover(text, boolean) IS
    'crawler_ha: planned switchover with zero loss: fences the primary, waits until the target has its last LSN, promotes the target and reverses replication. Refuses an unhealthy or lagging target unless force. Callable on either node';

CREATE FUNCTION @extschema@.ha_rejoin()
RETURNS text
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.ha_request('rejoin'); $$;
COMMENT ON FUNCTION @extschema@.ha_rejoin() IS
    'crawler_ha: brings this old primary back as standby of the new one; refuses, recording why in ha_events, when it holds rows the new primary lacks';

CREATE FUNCTION @extschema@.ha_promote(reason text DEFAULT 'requested')
RETURNS text
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.ha_request('promote', ha_promote.reason); $$;
COMMENT ON FUNCTION @extschema@.ha_promote(text) IS
    'crawler_ha: promotes this standby now (used by ha_failover on the old primary; prefer ha_failover)';

CREATE FUNCTION @extschema@.ha_pause()
RETURNS text
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.ha_request('pause'); $$;
COMMENT ON FUNCTION @extschema@.ha_pause() IS
    'crawler_ha: maintenance mode: no automatic failover or rejoin on this node until ha_resume()';

CREATE FUNCTION @extschema@.ha_resume()
RETURNS text
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.ha_request('resume'); $$;
COMMENT ON FUNCTION @extschema@.ha_resume() IS
    'crawler_ha: ends maintenance mode: automatic failover and rejoin resume';

-- ---------------------------------------------------------------------------
-- Privileges: state-changing functions for crawler_ha_admin only.

REVOKE ALL ON @extschema@.ha_state, @extschema@.ha_terms, @extschema@.ha_events FROM PUBLIC;
GRANT SELECT ON @extschema@.ha_state, @extschema@.ha_terms, @extschema@.ha_events
    TO crawler_ha_reader, crawler_ha_admin;

REVOKE ALL ON FUNCTION @extschema@.ha_state_term_guard(), @extschema@.ha_events_notify(),
    @extschema@.ha_record_event(text, text, double precision, jsonb),
    @extschema@.ha_fence_check(bigint, text, boolean, text),
    @extschema@.ha_alter_system(text, text), @extschema@.ha_peer_query(text, integer),
    @extschema@.ha_wake_worker(), @extschema@.ha_request(text, text, boolean),
    @extschema@.ha_setup(text), @extschema@.ha_failover(text, boolean), @extschema@.ha_rejoin(),
    @extschema@.ha_promote(text), @extschema@.ha_pause(), @extschema@.ha_resume(),
    @extschema@.ha_status(), @extschema@.ha_health(), @extschema@.ha_ping(), @extschema@.ha_peer_reachable()
    FROM PUBLIC;

GRANT EXECUTE ON FUNCTION @extschema@.ha_setup(text), @extschema@.ha_failover(text, boolean),
    @extschema@.ha_rejoin(), @extschema@.ha_promote(text), @extschema@.ha_pause(), @extschema@.ha_resume()
    TO crawler_ha_admin;
GRANT EXECUTE ON FUNCTION @extschema@.ha_status(), @extschema@.ha_health(), @extschema@.ha_ping()
    TO crawler_ha_reader, crawler_ha_writer, crawler_ha_admin;
