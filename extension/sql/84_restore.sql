-- Restores (docs/backup.md, "Restore"): the proof that a backup can be
-- restored, and what turns a cluster restored from a backup into the
-- primary of a new pair. pgBackRest restores the files; `crawler-ha
-- restore` and `crawler-ha backup test-restore` drive it; the rules are here.

-- The outcome of a restore test of one of this node's backups: restored
-- into a scratch cluster, started, its three consistency figures compared
-- with those recorded, a sample of its blobs read back from the repository
-- and hashed. ok and detail are what the test found; the newest test of a
-- backup replaces an earlier one on its row; each is also a 'restore' HA
-- event (so a failed test is seen where every other event is). 22004 for a
-- NULL, 22023 for a malformed stanza or label or a detail that is not a
-- JSON object, P0002 when this node recorded no such backup. SECURITY
-- DEFINER: ha_backups is written only through these functions.
CREATE FUNCTION @extschema@.ha_backup_restore_tested(stanza text, label text, ok boolean, detail jsonb)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b record;
BEGIN
    IF stanza IS NULL OR label IS NULL OR ok IS NULL OR detail IS NULL THEN
        RAISE EXCEPTION 'stanza, label, ok and detail must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF stanza !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid stanza name' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A stanza name has 1 to 63 letters, digits, "_", "." or "-".';
    ELSIF NOT @extschema@.ha_backup_label_ok(label) THEN
        RAISE EXCEPTION 'invalid backup label' USING ERRCODE = 'invalid_parameter_value';
    ELSIF jsonb_typeof(detail) <> 'object' THEN
        RAISE EXCEPTION 'detail must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    ELSIF octet_length(detail::text) > 100000 THEN
        RAISE EXCEPTION 'detail is over 100000 bytes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO b FROM @extschema@.ha_backups h
     WHERE h.stanza = ha_backup_restore_tested.stanza AND h.label = ha_backup_restore_tested.label
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'this node recorded no backup % of stanza %', label, stanza
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM @extschema@.ha_commit_locally();
    UPDATE @extschema@.ha_backups h
       SET restore_tested_at = clock_timestamp(), restore_test_ok = ok, restore_test_detail = detail
     WHERE h.id = b.id;
    RETURN @extschema@.ha_record_event('restore',
        format('restore test of %s backup %s of stanza %s: %s', b.type, label, stanza,
               CASE WHEN ok THEN 'restored, figures and blobs as recorded'
                    ELSE 'FAILED: ' || left(regexp_replace(coalesce(detail ->> 'problem', 'see detail'),
                                                           '[[:cntrl:]]+', ' ', 'g'), 300) END),
        CASE WHEN jsonb_typeof(detail -> 'seconds') = 'number' THEN (detail ->> 'seconds')::double precision * 1000 END,
        detail || jsonb_build_object('test', true, 'ok', ok, 'stanza', stanza, 'label', label));
END
$$;
COMMENT ON FUNCTION @extschema@.ha_backup_restore_tested(text, text, boolean, jsonb) IS
    'crawler_ha: records the outcome of a restore test of one of this node''s backups on its row and as a restore event; returns the event''s id';

-- Run once on a cluster `crawler-ha restore` has just restored and
-- promoted, before it serves anyone: it makes the node the primary of a
-- new term, alone, ready for a new standby to join it with ha_setup().
-- What it removes belongs to the pair that is gone: the subscription to the
-- old peer (detached from its slot, which lived on that peer) and any
-- replication slot a peer of that pair read from. The term goes one past
-- every term this node knew, so that a surviving member of the old pair
-- (an old primary that comes back) is refused as the newer side, never
-- followed. Records the term ('restore') and a 'restore' event naming the
-- backup and the target. Superuser only (no grant): it runs on the
-- restored server before any role of the crawl may connect. 22004 for a
-- NULL stanza or label, 22023 for a malformed one, 55000 on a node still in
-- recovery or a witness.
CREATE FUNCTION @extschema@.ha_restored(stanza text, label text, target text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me      record;
    st      record;
    newterm bigint;
    slot    text;
    dropped text[] := '{}';
    hadsub  boolean := false;
BEGIN
    IF stanza IS NULL OR label IS NULL THEN
        RAISE EXCEPTION 'stanza and label must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF stanza !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid stanza name' USING ERRCODE = 'invalid_parameter_value';
    ELSIF NOT @extschema@.ha_backup_label_ok(label) THEN
        RAISE EXCEPTION 'invalid backup label' USING ERRCODE = 'invalid_parameter_value';
    ELSIF octet_length(coalesce(target, '')) > 200 THEN
        RAISE EXCEPTION 'target is over 200 bytes' USING ERRCODE = 'invalid_parameter_value';
    ELSIF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'the server is still in recovery' USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Wait until it has reached its recovery target and been promoted.';
    END IF;
    SELECT * INTO me FROM @extschema@.ha_node;
    SELECT * INTO st FROM @extschema@.ha_state FOR UPDATE;
    IF st.role = 'witness' THEN
        RAISE EXCEPTION 'this node is a witness: it holds no crawl data to restore'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_subscription WHERE subname = 'crawler_ha_sub') THEN
        hadsub := true;
        ALTER SUBSCRIPTION crawler_ha_sub DISABLE;
        ALTER SUBSCRIPTION crawler_ha_sub SET (slot_name = NONE);
        DROP SUBSCRIPTION crawler_ha_sub;
    END IF;
    FOR slot IN SELECT s.slot_name FROM pg_replication_slots s WHERE s.slot_name LIKE 'crawler\_ha\_%' LOOP
        PERFORM pg_drop_replication_slot(slot);
        dropped := dropped || slot;
    END LOOP;
    newterm := greatest(st.term, coalesce((SELECT max(t.term) FROM @extschema@.ha_terms t), 0)) + 1;
    UPDATE @extschema@.ha_state
       SET role = 'primary', term = newterm, primary_name = me.node_name, primary_node_id = me.node_id,
           fenced = false, needs_rejoin = false, paused = false, split_lsn = NULL;
    INSERT INTO @extschema@.ha_terms (term, primary_name, primary_node_id, reason)
    VALUES (newterm, me.node_name, me.node_id, 'restore');
    PERFORM @extschema@.ha_record_event('restore',
        format('restored from backup %s of stanza %s%s: primary of term %s, alone until a standby joins',
               label, stanza, CASE WHEN target IS NULL OR target = '' THEN '' ELSE ' to ' || target END, newterm),
        NULL,
        jsonb_build_object('test', false, 'stanza', stanza, 'label', label, 'target', target,
                           'previous_role', st.role, 'previous_term', st.term, 'subscription_dropped', hadsub,
                           'slots_dropped', to_jsonb(dropped)));
    RETURN newterm;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_restored(text, text, text) IS
    'crawler_ha: makes a cluster just restored from a backup the primary of a new term, alone (no subscription or slot of the old pair); superuser only; returns the term';
