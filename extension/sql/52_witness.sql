-- High availability, part 2: the witness and self-fencing.
--
-- The witness is a PostgreSQL server with this extension in the role
-- 'witness': no crawl data, no publication, no subscription. It is passive:
-- every data node's HA worker reports to it each health_check_interval
-- (ha_witness_report), and a standby that lost its primary asks it for a new
-- term (ha_witness_grant). It grants a term at most once (ha_terms' primary
-- key), durably, and only once the primary it knows has been silent long
-- enough to have fenced itself. Nothing here is part of the publication.

-- Why a primary is fenced: NULL for a switchover's fence (part 1),
-- 'isolation' when it reached neither its standby nor the witness.
ALTER TABLE @extschema@.ha_state ADD COLUMN fence_reason text;
COMMENT ON COLUMN @extschema@.ha_state.fence_reason IS
    'why this node is fenced: NULL for a switchover, ''isolation'' for a self-fence (reached neither the standby nor the witness for fence_timeout)';

-- On the witness: what each data node last reported. last_heard is written
-- with synchronous_commit off (a heartbeat); readers take it as at least the
-- witness's own start, so a crash that lost heartbeats never makes a node look
-- silent for longer than it was.
CREATE TABLE @extschema@.ha_witness_nodes (
    node_id            integer PRIMARY KEY CHECK (node_id BETWEEN 1 AND 1023),
    node_name          text NOT NULL,
    role               text NOT NULL,
    term               bigint NOT NULL,
    fenced             boolean NOT NULL DEFAULT false,
    lsn                pg_lsn,
    sees_peer          boolean,
    fence_timeout_ms   integer NOT NULL,
    interval_ms        integer NOT NULL,
    promotion_delay_ms integer NOT NULL,
    last_heard         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    reports            bigint NOT NULL DEFAULT 0,
    last_refusal_at    timestamptz
);
COMMENT ON TABLE @extschema@.ha_witness_nodes IS
    'crawler_ha: on a witness, the last report of each data node (per node, never replicated)';
REVOKE ALL ON @extschema@.ha_witness_nodes FROM PUBLIC;
GRANT SELECT ON @extschema@.ha_witness_nodes TO crawler_ha_reader, crawler_ha_admin;

-- Raises 22023 when a witness is configured and fence_timeout is not below
-- the promotion delay (interval x threshold): an isolated primary must be
-- read-only before its standby can promote.
CREATE FUNCTION @extschema@.ha_check_fence_order()
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'ha_check_fence_order';
COMMENT ON FUNCTION @extschema@.ha_check_fence_order() IS
    'crawler_ha: raises 22023 when a witness is configured and fence_timeout >= health_check_interval x failure_threshold (internal; used by ha_setup)';

-- ha_setup('witness') lands here.
CREATE FUNCTION @extschema@.ha_setup_witness()
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st   record;
    rows bigint;
BEGIN
    -- a fresh node is a primary of term 0: it stops writing (the fence's lock)
    LOCK TABLE @extschema@.ha_state IN EXCLUSIVE MODE;
    SELECT * INTO st FROM @extschema@.ha_state FOR UPDATE;
    IF st.role = 'witness' THEN
        RETURN 'witness';
    END IF;
    IF st.term >= 1 THEN
        RAISE EXCEPTION 'node % is the % of term %: a data node cannot become the witness', st.primary_name, st.role, st.term
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A witness is a server of its own, set up with ha_setup(''witness'') before anything else.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = 'crawler_ha_sub') THEN
        RAISE EXCEPTION 'this node subscribes to a primary: it cannot be the witness'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    rows := @extschema@.ha_data_rows();
    IF rows > 0 THEN
        RAISE EXCEPTION 'this node holds % rows of crawl data: a witness holds none', rows
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- it publishes nothing
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = 'crawler_ha_pub') THEN
        DROP PUBLICATION crawler_ha_pub;
    END IF;
    UPDATE @extschema@.ha_state
       SET role = 'witness', primary_name = NULL, primary_node_id = NULL, peer_node_id = NULL,
           fenced = false, fence_reason = NULL, needs_rejoin = false;
    PERFORM @extschema@.ha_record_event('setup', 'set up as witness');
    PERFORM @extschema@.ha_wake_worker();
    -- its own tables take the reports: never read-only
    PERFORM @extschema@.ha_alter_system('default_transaction_read_only', NULL);
    RETURN 'witness';
END
$$;
COMMENT ON FUNCTION @extschema@.ha_setup_witness() IS
    'crawler_ha: makes this empty node the witness (internal; called by ha_setup(''witness''))';

CREATE FUNCTION @extschema@.ha_witness_require()
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st record;
BEGIN
    SELECT s.role, s.term INTO st FROM @extschema@.ha_state s;
    IF st.role IS DISTINCT FROM 'witness' THEN
        RAISE EXCEPTION 'node % is not a witness (it is a %)',
            (SELECT node_name FROM @extschema@.ha_node), st.role
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Point crawler_ha.witness_conninfo at a node set up with ha_setup(''witness'').';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_witness_require() IS
    'crawler_ha: raises 55000 unless this node is a witness (internal)';

-- Checks shared by the two witness calls.
CREATE FUNCTION @extschema@.ha_witness_check_node(node_id integer, node_name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF node_id IS NULL OR node_name IS NULL THEN
        RAISE EXCEPTION 'node_id and node_name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF node_id NOT BETWEEN 1 AND 1023 THEN
        RAISE EXCEPTION 'node_id % is out of range', node_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF node_id = (SELECT n.node_id FROM @extschema@.ha_node n) THEN
        RAISE EXCEPTION 'node_id % is the witness''s own', node_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF node_name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid node name' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Letters, digits, ".", "_" and "-", 1 to 63 of them.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_witness_check_node(integer, text) IS
    'crawler_ha: validates a node id and name sent to the witness (internal)';

-- A data node's heartbeat. Returns the witness's term and the primary it
-- knows, so a data node also learns a newer term through the witness. The
-- caller sets synchronous_commit = off: a lost heartbeat only makes the
-- witness more careful (see ha_witness_nodes).
CREATE FUNCTION @extschema@.ha_witness_report(node_id integer, node_name text, role text, term bigint,
                                              fenced boolean, lsn pg_lsn, sees_peer boolean,
                                              fence_timeout_ms integer, interval_ms integer,
                                              promotion_delay_ms integer)
RETURNS TABLE (witness_term bigint, primary_name text, primary_node_id integer, witness_name text, seen text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    st record;
    r  text := ha_witness_report.role;
    t  bigint := ha_witness_report.term;
BEGIN
    PERFORM @extschema@.ha_witness_check_node(node_id, node_name);
    IF r IS NULL OR r NOT IN ('primary', 'standby') THEN
        RAISE EXCEPTION 'role must be primary or standby' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF t IS NULL OR t < 0 THEN
        RAISE EXCEPTION 'term must be a number >= 0' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF fence_timeout_ms IS NULL OR interval_ms IS NULL OR promotion_delay_ms IS NULL
       OR fence_timeout_ms < 0 OR interval_ms < 0 OR promotion_delay_ms < 0 THEN
        RAISE EXCEPTION 'fence_timeout_ms, interval_ms and promotion_delay_ms must be numbers >= 0'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.ha_witness_require();
    INSERT INTO @extschema@.ha_witness_nodes AS w
           (node_id, node_name, role, term, fenced, lsn, sees_peer, fence_timeout_ms, interval_ms,
            promotion_delay_ms, last_heard, reports)
    VALUES (node_id, node_name, r, t, COALESCE(fenced, false), lsn, sees_peer, fence_timeout_ms,
            interval_ms, promotion_delay_ms, pg_catalog.clock_timestamp(), 1)
    ON CONFLICT ON CONSTRAINT ha_witness_nodes_pkey DO UPDATE
       SET node_name = EXCLUDED.node_name, role = EXCLUDED.role, term = EXCLUDED.term,
           fenced = EXCLUDED.fenced, lsn = EXCLUDED.lsn, sees_peer = EXCLUDED.sees_peer,
           fence_timeout_ms = EXCLUDED.fence_timeout_ms, interval_ms = EXCLUDED.interval_ms,
           promotion_delay_ms = EXCLUDED.promotion_delay_ms, last_heard = EXCLUDED.last_heard,
           reports = w.reports + 1;

    SELECT s.term, s.primary_name, s.primary_node_id INTO st FROM @extschema@.ha_state s;
    -- A primary of a term the witness has not seen (a witness added later, a
    -- switchover): adopt it, serialised with the grants by the row lock.
    IF r = 'primary' AND t > st.term THEN
        SELECT s.term, s.primary_name, s.primary_node_id INTO st FROM @extschema@.ha_state s FOR UPDATE;
        IF t > st.term THEN
            UPDATE @extschema@.ha_state SET term = t, primary_name = node_name, primary_node_id = node_id;
            INSERT INTO @extschema@.ha_terms (term, primary_name, primary_node_id, reason)
            VALUES (t, node_name, node_id, 'reported by its primary') ON CONFLICT (term) DO NOTHING;
            PERFORM @extschema@.ha_record_event('term',
                pg_catalog.format('adopted term %s from its primary %s', t, node_name));
            st.term := t;
            st.primary_name := node_name;
            st.primary_node_id := node_id;
        END IF;
    END IF;
    -- what it hears of every data node, for the reporter's ha_status()
    RETURN QUERY SELECT st.term, st.primary_name, st.primary_node_id,
        (SELECT n.node_name FROM @extschema@.ha_node n),
        (SELECT pg_catalog.string_agg(pg_catalog.format('%s: %s term %s%s, heard %s ms ago', w.node_name, w.role,
                                                        w.term, CASE WHEN w.fenced THEN ' fenced' ELSE '' END,
                                                        round(EXTRACT(epoch FROM pg_catalog.clock_timestamp()
                                                              - GREATEST(w.last_heard, pg_catalog.pg_postmaster_start_time())) * 1000)),
                                      '; ' ORDER BY w.node_id)
           FROM @extschema@.ha_witness_nodes w);
END
$$;
COMMENT ON FUNCTION @extschema@.ha_witness_report(integer, text, text, bigint, boolean, pg_lsn, boolean, integer, integer, integer) IS
    'crawler_ha: on the witness, a data node''s heartbeat; returns the witness''s term and the primary it knows';

-- A standby that lost its primary asks for the next term. Granted at most
-- once (ha_terms' primary key), durably, and only when the candidate knows
-- the witness's term and the primary of that term has been silent — to the
-- witness and to the candidate — for longer than its fence_timeout plus one
-- health_check_interval and 500 ms: by then it has fenced itself.
CREATE FUNCTION @extschema@.ha_witness_grant(candidate_id integer, candidate_name text, known_term bigint,
                                             peer_silence_ms bigint, request_reason text DEFAULT NULL)
RETURNS TABLE (granted boolean, term bigint, primary_name text, primary_node_id integer, reason text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    st      record;
    n       record;
    why     text;
    silence double precision;
    need    double precision;
    own_fence bigint := (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'crawler_ha.fence_timeout');
    own_ivl   bigint := (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'crawler_ha.health_check_interval');
    started timestamptz := pg_catalog.pg_postmaster_start_time();
BEGIN
    PERFORM @extschema@.ha_witness_check_node(candidate_id, candidate_name);
    IF known_term IS NULL OR known_term < 1 OR peer_silence_ms IS NULL OR peer_silence_ms < 0 THEN
        RAISE EXCEPTION 'known_term must be >= 1 and peer_silence_ms >= 0' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.length(request_reason) > 1000 THEN
        RAISE EXCEPTION 'request_reason is too long' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.ha_witness_require();
    -- a grant is durable whatever the caller's setting
    PERFORM pg_catalog.set_config('synchronous_commit', 'on', true);
    -- one grant at a time; reports that adopt a term wait too
    SELECT s.term, s.primary_name, s.primary_node_id INTO st FROM @extschema@.ha_state s FOR UPDATE;

    IF st.primary_node_id = candidate_id AND known_term <= st.term THEN
        -- granted before (the candidate died before it promoted): the same term again
        RETURN QUERY SELECT true, st.term, st.primary_name, st.primary_node_id,
                            'term ' || st.term || ' is already the candidate''s';
        RETURN;
    END IF;
    IF known_term < st.term THEN
        why := pg_catalog.format('stale: the witness knows term %s (primary %s), the candidate only %s',
                                 st.term, COALESCE(st.primary_name, 'unknown'), known_term);
    ELSIF known_term > st.term THEN
        why := pg_catalog.format('the witness has never heard of term %s from its primary (it knows term %s)',
                                 known_term, st.term);
    ELSE
        -- every node the witness knows as a primary, the primary of the term first
        FOR n IN
            SELECT w.node_name AS name, w.last_heard, w.fence_timeout_ms, w.interval_ms
              FROM @extschema@.ha_witness_nodes w
             WHERE w.node_id <> candidate_id AND (w.node_id = st.primary_node_id OR w.role = 'primary')
            UNION ALL
            -- a primary that never reported since the witness's tables were made
            SELECT COALESCE(st.primary_name, 'unknown'), started, own_fence::integer, own_ivl::integer
             WHERE st.primary_node_id IS NOT NULL AND st.primary_node_id <> candidate_id
               AND NOT EXISTS (SELECT 1 FROM @extschema@.ha_witness_nodes w WHERE w.node_id = st.primary_node_id)
        LOOP
            silence := EXTRACT(epoch FROM pg_catalog.clock_timestamp() - GREATEST(n.last_heard, started)) * 1000;
            need := n.fence_timeout_ms + n.interval_ms + 500;
            IF silence <= need THEN
                why := pg_catalog.format('the primary %s reported to the witness %s ms ago (a grant needs %s ms of silence)',
                                         n.name, round(silence), need);
            ELSIF peer_silence_ms <= need THEN
                why := pg_catalog.format('the candidate heard from the primary %s %s ms ago (a grant needs %s ms of silence)',
                                         n.name, peer_silence_ms, need);
            END IF;
            EXIT WHEN why IS NOT NULL;
        END LOOP;
    END IF;

    IF why IS NOT NULL THEN
        -- recorded once per 30 s and candidate, logged always
        UPDATE @extschema@.ha_witness_nodes w SET last_refusal_at = pg_catalog.clock_timestamp()
         WHERE w.node_id = candidate_id
           AND (w.last_refusal_at IS NULL OR w.last_refusal_at < pg_catalog.clock_timestamp() - interval '30 s');
        IF FOUND OR NOT EXISTS (SELECT 1 FROM @extschema@.ha_witness_nodes w WHERE w.node_id = candidate_id) THEN
            PERFORM @extschema@.ha_record_event('grant_refused',
                pg_catalog.format('term %s refused to %s: %s', st.term + 1, candidate_name, why), NULL,
                pg_catalog.jsonb_build_object('candidate', candidate_name, 'known_term', known_term,
                                              'peer_silence_ms', peer_silence_ms));
        END IF;
        RAISE LOG 'crawler_ha witness: term % refused to %: %', st.term + 1, candidate_name, why;
        RETURN QUERY SELECT false, st.term, st.primary_name, st.primary_node_id, why;
        RETURN;
    END IF;

    -- the primary key makes this the only grant of the term
    INSERT INTO @extschema@.ha_terms (term, primary_name, primary_node_id, reason)
    VALUES (st.term + 1, candidate_name, candidate_id,
            'granted by the witness: ' || COALESCE(ha_witness_grant.request_reason, 'failover'));
    UPDATE @extschema@.ha_state
       SET term = st.term + 1, primary_name = candidate_name, primary_node_id = candidate_id;
    PERFORM @extschema@.ha_record_event('grant',
        pg_catalog.format('term %s granted to %s (the primary %s of term %s is silent)', st.term + 1,
                          candidate_name, COALESCE(st.primary_name, 'unknown'), st.term), NULL,
        pg_catalog.jsonb_build_object('candidate', candidate_name, 'peer_silence_ms', peer_silence_ms,
                                      'reason', ha_witness_grant.request_reason));
    RETURN QUERY SELECT true, st.term + 1, candidate_name, candidate_id,
                        'granted'::text;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_witness_grant(integer, text, bigint, bigint, text) IS
    'crawler_ha: on the witness, grants the next term to a standby whose primary is silent long enough to have fenced itself; each term at most once, durably';

-- What the witness hears, for ha_status() on the witness and for operators.
CREATE FUNCTION @extschema@.ha_witness_seen()
RETURNS TABLE (node_id integer, node_name text, role text, term bigint, fenced boolean,
               last_heard timestamptz, silent_ms double precision, reports bigint)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT w.node_id, w.node_name, w.role, w.term, w.fenced,
           GREATEST(w.last_heard, pg_catalog.pg_postmaster_start_time()),
           EXTRACT(epoch FROM pg_catalog.clock_timestamp()
                   - GREATEST(w.last_heard, pg_catalog.pg_postmaster_start_time())) * 1000,
           w.reports
      FROM @extschema@.ha_witness_nodes w
     ORDER BY w.node_id;
$$;
COMMENT ON FUNCTION @extschema@.ha_witness_seen() IS
    'crawler_ha: on a witness, each data node it hears from: role, term, when last heard (at least the witness''s own start)';

REVOKE ALL ON FUNCTION @extschema@.ha_check_fence_order(), @extschema@.ha_setup_witness(),
    @extschema@.ha_witness_require(), @extschema@.ha_witness_check_node(integer, text),
    @extschema@.ha_witness_report(integer, text, text, bigint, boolean, pg_lsn, boolean, integer, integer, integer),
    @extschema@.ha_witness_grant(integer, text, bigint, bigint, text),
    @extschema@.ha_witness_seen()
    FROM PUBLIC;
-- the data nodes call these with their peer role (crawler_ha_admin or a superuser)
GRANT EXECUTE ON FUNCTION
    @extschema@.ha_witness_report(integer, text, text, bigint, boolean, pg_lsn, boolean, integer, integer, integer),
    @extschema@.ha_witness_grant(integer, text, bigint, bigint, text)
    TO crawler_ha_admin;
GRANT EXECUTE ON FUNCTION @extschema@.ha_witness_seen() TO crawler_ha_reader, crawler_ha_admin;
