-- Backups with pgBackRest (docs/backup.md): what `crawler-ha backup run`
-- asks the node before it backs up, the brief freeze that fixes the moment
-- the backup's consistency figures describe, and this node's catalog of the
-- backups it made. pgBackRest copies the files and keeps the repository;
-- the rules (who may back up, what a backup must record) are here.
--
-- Each node is a cluster of its own (logical replication), with a stanza of
-- its own, so everything here is per node: ha_backups is not in
-- ha_data_tables(), never published, and lists only this node's backups.
--
-- Who calls what: crawler_ha_admin runs the backup (ha_backup_begin,
-- ha_backup_freeze, ha_backup_record, ha_backup_failed); crawler_ha_reader
-- and the admin list (ha_backups()). No new role: a backup is an operation
-- on the cluster like a switchover or a consistency check, which are the
-- admin's already. Freezing writes for a moment is an operator's act, not
-- a reader's, and the node agent's login role is granted crawler_ha_admin
-- (README, step 6), so its scheduler can call the same functions. Grants
-- are in 90_grants.sql.

-- The backups this node made (per node, never replicated). A row is
-- written once, when the backup has been made and verified;
-- expired_at is set when pgBackRest's retention has removed it.
CREATE TABLE @extschema@.ha_backups (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stanza            text NOT NULL CHECK (stanza ~ '^[A-Za-z0-9_.-]{1,63}$'),
    label             text NOT NULL CHECK (label ~ '^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?$'),
    type              text NOT NULL CHECK (type IN ('full', 'diff', 'incr')),
    prior             text CHECK (prior ~ '^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?$'),
    node              text NOT NULL,
    term              bigint NOT NULL,
    system_identifier bigint NOT NULL,
    started_at        timestamptz NOT NULL,
    stopped_at        timestamptz NOT NULL,
    start_lsn         pg_lsn NOT NULL,
    stop_lsn          pg_lsn NOT NULL,
    wal_start         text NOT NULL CHECK (wal_start ~ '^[0-9A-F]{24}$'),
    wal_stop          text NOT NULL CHECK (wal_stop ~ '^[0-9A-F]{24}$'),
    size_bytes        bigint NOT NULL CHECK (size_bytes >= 0),
    delta_bytes       bigint NOT NULL CHECK (delta_bytes >= 0),
    repo_size_bytes   bigint NOT NULL CHECK (repo_size_bytes >= 0),
    repo_delta_bytes  bigint NOT NULL CHECK (repo_delta_bytes >= 0),
    restore_point     text NOT NULL,
    restore_point_lsn pg_lsn NOT NULL,
    figures           jsonb NOT NULL,
    figures_at        timestamptz NOT NULL,
    verify_ok         boolean NOT NULL,
    verify_detail     text NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    expired_at        timestamptz,
    -- The blobs the backup's images rows reference, in the figures' snapshot
    -- (ha_backup_record_blobs()), and how their copy into the repository
    -- went (ha_backup_blobs_done()). NULL until each step ran: a backup
    -- recorded by an older crawler-ha, or one whose blob copy never ended.
    blob_count        bigint CHECK (blob_count >= 0),
    blob_bytes        bigint CHECK (blob_bytes >= 0),
    blob_manifest     text CHECK (blob_manifest ~ '^crawler_ha/blobs/manifests/[A-Za-z0-9_.-]{1,63}/[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?\.json\.enc$'),
    blobs_ok          boolean,
    blobs_copied      bigint CHECK (blobs_copied >= 0),
    blobs_stored_bytes bigint CHECK (blobs_stored_bytes >= 0),
    blobs_detail      text,
    -- The newest restore test of this backup (84_restore.sql): restored
    -- into a scratch cluster, compared with figures, blobs sampled.
    restore_tested_at   timestamptz,
    restore_test_ok     boolean,
    restore_test_detail jsonb,
    UNIQUE (stanza, label),
    CHECK ((type = 'full') = (prior IS NULL)),
    CHECK (stopped_at >= started_at),
    CHECK (stop_lsn >= start_lsn),
    CHECK (restore_point_lsn >= stop_lsn)
);
COMMENT ON TABLE @extschema@.ha_backups IS
    'crawler_ha: the pgBackRest backups this node made, with the consistency figures of the data at their restore point (per node, never replicated)';
COMMENT ON COLUMN @extschema@.ha_backups.figures IS
    'per data table: row_count, latest_record and id_range, as ha_check_consistency() shows them, true at restore_point';
COMMENT ON COLUMN @extschema@.ha_backups.restore_point IS
    'the named restore point (pg_create_restore_point) after the backup''s end at which figures hold exactly: restore to it (pgbackrest restore --type=name) to compare';
COMMENT ON COLUMN @extschema@.ha_backups.blob_manifest IS
    'the encrypted list of the blobs (sha256, file_path, file_size) the backup''s images rows reference, relative to the repository';
COMMENT ON COLUMN @extschema@.ha_backups.blobs_ok IS
    'true when every blob of the manifest is in the repository, verified; false with blobs_detail naming what is not; NULL until the copy ended';

-- The label rule, once: pgBackRest's labels, a full one and, for a
-- differential or incremental backup, the full one it depends on before
-- the "_".
CREATE FUNCTION @extschema@.ha_backup_label_ok(label text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT label ~ '^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?$' $$;
COMMENT ON FUNCTION @extschema@.ha_backup_label_ok(text) IS
    'crawler_ha (internal): whether a text is a pgBackRest backup label';

-- Raises 25006 unless this node may write now, with a message that says it
-- is about backups: the write rule (ha_fence_check: primary, not fenced, no
-- newer term, not blocked by the witness rule) is the backup rule, so a
-- standby, a fenced node and an old primary never back up, and two nodes
-- never both believe they are the one that should.
CREATE FUNCTION @extschema@.ha_backup_require_primary()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st record;
    msg text;
    det text;
BEGIN
    SELECT s.role, s.term, s.fenced, s.primary_name INTO st FROM @extschema@.ha_state s;
    BEGIN
        PERFORM @extschema@.ha_fence_check(st.term, st.role, st.fenced, st.primary_name);
    EXCEPTION WHEN read_only_sql_transaction THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
        RAISE EXCEPTION 'this node may not make a backup now: %', msg
            USING ERRCODE = 'read_only_sql_transaction',
                  DETAIL = concat_ws(' ', NULLIF(det, ''),
                                     'Only the writable primary of the newest term backs up; the standby never competes.'),
                  HINT = format('Run the backup on the primary (%s).', coalesce(st.primary_name, 'unknown'));
    END;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_backup_require_primary() IS
    'crawler_ha (internal): raises 25006 unless this node is the writable primary of the newest term it knows';

-- What the backup command needs to know before it runs pgBackRest, and
-- whether it may: refuses on any node but the writable primary (25006) and
-- where WAL archiving is off (55000: a backup that cannot be restored to a
-- consistent state is no backup). SECURITY DEFINER for the write rule's C
-- half and the server's settings; it takes no argument.
CREATE FUNCTION @extschema@.ha_backup_begin()
RETURNS TABLE (node_name text, node_id integer, term bigint, system_identifier bigint, archive_command text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_backup_require_primary();
    IF current_setting('archive_mode') NOT IN ('on', 'always') THEN
        RAISE EXCEPTION 'WAL archiving is off on this node: a backup could not be restored'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run crawler-ha backup setup on this node (it turns archive_mode on; a restart follows).';
    END IF;
    RETURN QUERY
    SELECT n.node_name, n.node_id, s.term, (pg_control_system()).system_identifier,
           current_setting('archive_command')
      FROM @extschema@.ha_node n, @extschema@.ha_state s;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_backup_begin() IS
    'crawler_ha: this node''s name (the default stanza), term, system identifier and archive_command, for a backup about to start; raises 25006 unless this node is the writable primary of the newest term, 55000 when WAL archiving is off';

-- The freeze: the moment a backup's consistency figures describe. Called
-- as the first statement of a transaction that the caller commits at once
-- (it ends by itself within 10 s: idle_in_transaction_session_timeout).
-- Under an EXCLUSIVE lock on ha_state, which every write of crawl data
-- conflicts with (the write fence holds ha_state in ROW EXCLUSIVE mode
-- until its commit), so every write that began before has committed and none can
-- commit until this transaction ends, it writes a named restore point
-- into the WAL and takes a transaction id. A snapshot taken by another
-- session while this transaction is open sees exactly the crawl data at
-- the restore point. The other session proves that its snapshot is one
-- of those with the id: it commits a transaction of its own that takes an
-- id (SELECT pg_current_xact_id()) after this call returned, so that its
-- snapshot's horizon passes the freeze's id, then takes the snapshot
-- (BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1); the id is then among
-- the snapshot's running transactions exactly when the snapshot came after
-- the id was taken and before the freeze ended, which ha_backup_record()
-- checks before it computes the figures in that snapshot. Call it after
-- the backup has ended: a restore can only stop at a point after the
-- backup's end.
CREATE FUNCTION @extschema@.ha_backup_freeze(label text)
RETURNS TABLE (restore_point text, restore_point_lsn pg_lsn, freeze_xid xid8)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Writes in flight are short; a lock that does not come soon means
-- something holds ha_state (a stuck client): fail rather than queue
-- every write behind it.
SET lock_timeout = '10s'
AS $$
DECLARE
    rp text;
BEGIN
    IF label IS NULL THEN
        RAISE EXCEPTION 'label must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF NOT @extschema@.ha_backup_label_ok(label) THEN
        RAISE EXCEPTION 'invalid backup label' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A pgBackRest label: YYYYMMDD-HHMMSSF, or YYYYMMDD-HHMMSSF_YYYYMMDD-HHMMSS followed by D or I.';
    END IF;
    -- Refused at once on a standby; checked again under the lock, where
    -- nothing can change it.
    PERFORM @extschema@.ha_backup_require_primary();
    -- The id must be taken under the lock for the snapshot check to mean
    -- anything: an id taken earlier would also be running in a snapshot
    -- taken before the freeze.
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'ha_backup_freeze() must come first in its transaction'
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'BEGIN, SELECT * FROM ha_backup_freeze(label), and COMMIT once the figures'' snapshot is taken.';
    END IF;
    -- Only per-node state is written (a transaction id, the WAL record):
    -- never wait for a synchronous standby while writes are frozen.
    PERFORM @extschema@.ha_commit_locally();
    PERFORM set_config('idle_in_transaction_session_timeout', '10s', true);
    LOCK TABLE @extschema@.ha_state IN EXCLUSIVE MODE;
    PERFORM @extschema@.ha_backup_require_primary();
    freeze_xid := pg_current_xact_id();
    rp := 'crawler_ha_' || label;
    restore_point := rp;
    restore_point_lsn := pg_create_restore_point(rp);
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_backup_freeze(text) IS
    'crawler_ha: the first call of a short transaction: holds crawl writes back until it ends (at most 10 s), writes the restore point crawler_ha_<label> and returns it with this transaction''s id, which ha_backup_record() expects to be running in its snapshot; 25006 unless this node is the writable primary';

-- The figures: per data table, the three checks of the original
-- specification exactly as ha_check_consistency() shows them (its
-- ha_table_summary() computes them), in the caller's snapshot.
CREATE FUNCTION @extschema@.ha_backup_figures()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_object_agg(t.tbl::text, jsonb_build_object(
               'row_count', (s.v ->> 0)::bigint,
               'latest_record', concat_ws(' key ', s.v ->> 3, s.v ->> 4),
               'id_range', concat_ws('..', s.v ->> 1, s.v ->> 2)))
      FROM unnest(@extschema@.ha_data_tables()) t(tbl),
           LATERAL (SELECT @extschema@.ha_table_summary(t.tbl)) s(v)
$$;
COMMENT ON FUNCTION @extschema@.ha_backup_figures() IS
    'crawler_ha (internal): {table: {row_count, latest_record, id_range}} of every data table in the current snapshot, the forms ha_check_consistency() shows';

-- Records a finished backup, as pgBackRest's info reports it, with its
-- verify result, and the figures of the data at its restore point. Runs
-- in a REPEATABLE READ transaction whose snapshot was taken while
-- ha_backup_freeze() held writes (freeze_xid among its running
-- transactions: 55000 otherwise; see ha_backup_freeze()). kept_labels: the labels the stanza's repository still holds
-- (its own among them); this stanza's rows not in it are marked expired.
-- Records a 'backup' HA event. Bad input: 22004 for a NULL, 22023 for a
-- value out of its form or range, 23505 for a label recorded before.
CREATE FUNCTION @extschema@.ha_backup_record(
    stanza text, label text, type text, prior text,
    started_at timestamptz, stopped_at timestamptz, start_lsn pg_lsn, stop_lsn pg_lsn,
    wal_start text, wal_stop text,
    size_bytes bigint, delta_bytes bigint, repo_size_bytes bigint, repo_delta_bytes bigint,
    verify_ok boolean, verify_detail text,
    restore_point_lsn pg_lsn, freeze_xid xid8, kept_labels text[])
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    figs jsonb;
    new_id bigint;
    expired text[];
    rp text;
BEGIN
    IF stanza IS NULL OR label IS NULL OR type IS NULL OR started_at IS NULL OR stopped_at IS NULL
       OR start_lsn IS NULL OR stop_lsn IS NULL OR wal_start IS NULL OR wal_stop IS NULL
       OR size_bytes IS NULL OR delta_bytes IS NULL OR repo_size_bytes IS NULL OR repo_delta_bytes IS NULL
       OR verify_ok IS NULL OR verify_detail IS NULL OR restore_point_lsn IS NULL OR freeze_xid IS NULL
       OR kept_labels IS NULL THEN
        RAISE EXCEPTION 'only prior may be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF stanza !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid stanza name' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A stanza name has 1 to 63 letters, digits, "_", "." or "-".';
    ELSIF NOT @extschema@.ha_backup_label_ok(label) OR (prior IS NOT NULL AND NOT @extschema@.ha_backup_label_ok(prior)) THEN
        RAISE EXCEPTION 'invalid backup label' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A pgBackRest label: YYYYMMDD-HHMMSSF, or YYYYMMDD-HHMMSSF_YYYYMMDD-HHMMSS followed by D or I.';
    ELSIF type NOT IN ('full', 'diff', 'incr') THEN
        RAISE EXCEPTION 'type must be full, diff or incr' USING ERRCODE = 'invalid_parameter_value';
    -- The label says the type (its last letter) and the full backup it
    -- depends on (before the "_"): the prior must belong to the same full.
    ELSIF right(label, 1) <> (CASE ha_backup_record.type WHEN 'full' THEN 'F' WHEN 'diff' THEN 'D' ELSE 'I' END) THEN
        RAISE EXCEPTION 'label % is not a % backup''s', label, type USING ERRCODE = 'invalid_parameter_value';
    ELSIF (type = 'full') <> (prior IS NULL)
          OR (prior IS NOT NULL AND split_part(prior, '_', 1) <> split_part(label, '_', 1)) THEN
        RAISE EXCEPTION 'prior must be NULL for a full backup, and a backup of the same full backup otherwise'
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF stopped_at < started_at OR stop_lsn < start_lsn THEN
        RAISE EXCEPTION 'the backup stops before it starts' USING ERRCODE = 'invalid_parameter_value';
    ELSIF wal_start !~ '^[0-9A-F]{24}$' OR wal_stop !~ '^[0-9A-F]{24}$' THEN
        RAISE EXCEPTION 'invalid WAL file name' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A WAL segment''s name is 24 hexadecimal digits.';
    ELSIF least(size_bytes, delta_bytes, repo_size_bytes, repo_delta_bytes) < 0 THEN
        RAISE EXCEPTION 'sizes must not be negative' USING ERRCODE = 'invalid_parameter_value';
    ELSIF octet_length(verify_detail) > 10000 THEN
        RAISE EXCEPTION 'verify_detail is longer than 10000 bytes' USING ERRCODE = 'invalid_parameter_value';
    ELSIF restore_point_lsn < stop_lsn THEN
        RAISE EXCEPTION 'the restore point % comes before the backup''s end %', restore_point_lsn, stop_lsn
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Call ha_backup_freeze() after the backup has ended: a restore stops only after it.';
    ELSIF array_position(kept_labels, NULL) IS NOT NULL OR NOT label = ANY (kept_labels) THEN
        RAISE EXCEPTION 'kept_labels must list the labels the repository holds, this one among them, without NULLs'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF current_setting('transaction_isolation') NOT IN ('repeatable read', 'serializable') THEN
        RAISE EXCEPTION 'ha_backup_record() needs a REPEATABLE READ transaction'
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = 'Its figures must all come from the one snapshot taken during the freeze.';
    END IF;
    IF NOT freeze_xid = ANY (ARRAY(SELECT pg_snapshot_xip(pg_current_snapshot()))) THEN
        RAISE EXCEPTION 'this transaction''s snapshot was not taken during the freeze of transaction %', freeze_xid
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The figures would not be those of the restore point.',
                  HINT = 'After ha_backup_freeze() returned and before its transaction ends: SELECT pg_current_xact_id(), then BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1.';
    END IF;

    PERFORM @extschema@.ha_commit_locally();
    figs := @extschema@.ha_backup_figures();
    rp := 'crawler_ha_' || label;
    BEGIN
        INSERT INTO @extschema@.ha_backups
            (stanza, label, type, prior, node, term, system_identifier, started_at, stopped_at, start_lsn,
             stop_lsn, wal_start, wal_stop, size_bytes, delta_bytes, repo_size_bytes, repo_delta_bytes,
             restore_point, restore_point_lsn, figures, figures_at, verify_ok, verify_detail)
        SELECT ha_backup_record.stanza, ha_backup_record.label, ha_backup_record.type, ha_backup_record.prior,
               n.node_name, s.term, (pg_control_system()).system_identifier,
               ha_backup_record.started_at, ha_backup_record.stopped_at, ha_backup_record.start_lsn,
               ha_backup_record.stop_lsn, ha_backup_record.wal_start, ha_backup_record.wal_stop,
               ha_backup_record.size_bytes, ha_backup_record.delta_bytes, ha_backup_record.repo_size_bytes,
               ha_backup_record.repo_delta_bytes, rp, ha_backup_record.restore_point_lsn, figs,
               pg_catalog.now(), ha_backup_record.verify_ok, ha_backup_record.verify_detail
          FROM @extschema@.ha_node n, @extschema@.ha_state s
        RETURNING id INTO new_id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'backup % of stanza % is recorded already', label, stanza USING ERRCODE = 'unique_violation';
    END;
    -- For ha_backup_record_blobs(), later in this transaction: which backup
    -- this snapshot's figures were recorded for (the row's xmin cannot say
    -- it: the insert above runs in a subtransaction of its own).
    PERFORM set_config('crawler_ha_backup.recorded', ha_backup_record.stanza || '/' || ha_backup_record.label, true);
    WITH e AS (
        UPDATE @extschema@.ha_backups b SET expired_at = clock_timestamp()
         WHERE b.stanza = ha_backup_record.stanza AND b.expired_at IS NULL
           AND NOT b.label = ANY (ha_backup_record.kept_labels)
        RETURNING b.label)
    SELECT coalesce(array_agg(e.label ORDER BY e.label), '{}') INTO expired FROM e;
    PERFORM @extschema@.ha_record_event('backup',
        format('%s backup %s of stanza %s: %s', type, label, stanza,
               CASE WHEN verify_ok THEN 'verified' ELSE 'verify FAILED' END),
        extract(epoch FROM stopped_at - started_at) * 1000,
        jsonb_build_object('ok', verify_ok, 'stanza', stanza, 'label', label, 'type', type, 'prior', prior,
                           'size_bytes', size_bytes, 'repo_size_bytes', repo_size_bytes, 'restore_point', rp,
                           'restore_point_lsn', restore_point_lsn::text, 'expired', to_jsonb(expired)));
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_backup_record(text, text, text, text, timestamptz, timestamptz, pg_lsn, pg_lsn, text, text, bigint, bigint, bigint, bigint, boolean, text, pg_lsn, xid8, text[]) IS
    'crawler_ha: records a finished backup with its verify result and the figures of every data table at its restore point (in a REPEATABLE READ snapshot taken during ha_backup_freeze()), marks the stanza''s backups not in kept_labels expired, and records a backup event; returns the row''s id';

-- A backup that failed before it could be recorded: an HA event, so that
-- a failed schedule is seen where every other event is. message is what
-- pgBackRest said (it never prints a passphrase), cut to 2000 bytes.
CREATE FUNCTION @extschema@.ha_backup_failed(stanza text, type text, step text, message text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    msg text;
BEGIN
    IF stanza IS NULL OR step IS NULL OR message IS NULL THEN
        RAISE EXCEPTION 'stanza, step and message must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF stanza !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid stanza name' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A stanza name has 1 to 63 letters, digits, "_", "." or "-".';
    ELSIF type IS NOT NULL AND type NOT IN ('full', 'diff', 'incr') THEN
        RAISE EXCEPTION 'type must be full, diff, incr or NULL' USING ERRCODE = 'invalid_parameter_value';
    ELSIF step NOT IN ('backup', 'verify', 'info', 'freeze', 'record', 'blobs', 'check') THEN
        RAISE EXCEPTION 'step must be backup, verify, info, freeze, record, blobs or check' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- whole characters only: a cut in the middle of one is invalid text
    msg := message;
    WHILE octet_length(msg) > 2000 LOOP
        msg := left(msg, length(msg) - greatest(1, (octet_length(msg) - 2000) / 4));
    END LOOP;
    PERFORM @extschema@.ha_commit_locally();
    RETURN @extschema@.ha_record_event('backup',
        format('%s backup of stanza %s failed at %s: %s', coalesce(type, 'a'), stanza, step,
               left(regexp_replace(msg, '[[:cntrl:]]+', ' ', 'g'), 300)),
        NULL,
        jsonb_build_object('ok', false, 'stanza', stanza, 'type', type, 'step', step, 'message', msg));
END
$$;
COMMENT ON FUNCTION @extschema@.ha_backup_failed(text, text, text, text) IS
    'crawler_ha: records a backup that failed (at step backup, verify, info, freeze, record, blobs or check) as a backup event with ok false; returns the event''s id';

-- The list, for readers: runs as its caller, who reads ha_backups with
-- its own SELECT.
CREATE FUNCTION @extschema@.ha_backups()
RETURNS TABLE (id bigint, node text, stanza text, label text, type text, prior text, term bigint,
               system_identifier bigint, started_at timestamptz, stopped_at timestamptz,
               start_lsn pg_lsn, stop_lsn pg_lsn, wal_start text, wal_stop text, size_bytes bigint,
               delta_bytes bigint, repo_size_bytes bigint, repo_delta_bytes bigint,
               restore_point text, restore_point_lsn pg_lsn, figures jsonb, figures_at timestamptz,
               verify_ok boolean, verify_detail text, recorded_at timestamptz, expired_at timestamptz,
               blob_count bigint, blob_bytes bigint, blob_manifest text, blobs_ok boolean, blobs_copied bigint,
               blobs_stored_bytes bigint, blobs_detail text, restore_tested_at timestamptz,
               restore_test_ok boolean, restore_test_detail jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.id, b.node, b.stanza, b.label, b.type, b.prior, b.term, b.system_identifier, b.started_at,
           b.stopped_at, b.start_lsn, b.stop_lsn, b.wal_start, b.wal_stop, b.size_bytes, b.delta_bytes,
           b.repo_size_bytes, b.repo_delta_bytes, b.restore_point, b.restore_point_lsn, b.figures,
           b.figures_at, b.verify_ok, b.verify_detail, b.recorded_at, b.expired_at,
           b.blob_count, b.blob_bytes, b.blob_manifest, b.blobs_ok, b.blobs_copied, b.blobs_stored_bytes,
           b.blobs_detail, b.restore_tested_at, b.restore_test_ok, b.restore_test_detail
      FROM @extschema@.ha_backups b
     ORDER BY b.stopped_at, b.id
$$;
COMMENT ON FUNCTION @extschema@.ha_backups() IS
    'crawler_ha: the backups this node made, oldest first, with their figures, their blobs and whether retention expired them';

-- ---------------------------------------------------------------------------
-- The blobs of a backup (docs/backup.md, "The blobs"). The database backup
-- holds the images rows; the files they name are in the node's store, which
-- pgBackRest does not see. `crawler-ha backup run` copies them into the
-- repository itself, and the set it copies must be the one the backup's
-- rows reference: the rows at the restore point, i.e. in the very snapshot
-- the figures were computed in. So both functions below run in that
-- REPEATABLE READ transaction, after ha_backup_record() (which proves the
-- snapshot was taken during the freeze) and before its commit.

-- The distinct blobs the images rows of the caller's snapshot reference:
-- per sha256 one file_path (the lowest image id's: every row of a blob
-- names the same bytes, and the path only gives the extension a restore
-- puts back) and its size. SECURITY DEFINER: the admin may not read images
-- otherwise; 25000 outside a REPEATABLE READ transaction, since a list from
-- a snapshot of its own would not be the backup's.
CREATE FUNCTION @extschema@.ha_backup_blob_manifest()
RETURNS TABLE (sha256 text, file_path text, file_size bigint)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_isolation') NOT IN ('repeatable read', 'serializable') THEN
        RAISE EXCEPTION 'ha_backup_blob_manifest() needs a REPEATABLE READ transaction'
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = 'The blobs must be those of the snapshot the backup''s figures come from.';
    END IF;
    RETURN QUERY
    SELECT DISTINCT ON (r.sha256) r.sha256, r.file_path, r.file_size
      FROM @extschema@.image_blobs r  -- files and thumbnails
     ORDER BY r.sha256, r.image_id;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_backup_blob_manifest() IS
    'crawler_ha: the distinct blobs (sha256, file_path, file_size) the images rows of the caller''s REPEATABLE READ snapshot reference (their files and thumbnails), sha256 order; 25000 in any other transaction';

-- Records the blob summary of a backup ha_backup_record() just recorded in
-- this transaction: the count and bytes of ha_backup_blob_manifest() in the
-- same snapshot (computed here, not taken from the caller, so that the row
-- says what the rows referenced whatever the command did), and the name of
-- the manifest the command writes into the repository. Returns the count and
-- bytes, which the command compares with the list it read. 22004 a NULL,
-- 22023 a bad name, 25000 not REPEATABLE READ, 55000 no such backup recorded
-- in this transaction (a summary from another snapshot would not be its).
CREATE FUNCTION @extschema@.ha_backup_record_blobs(stanza text, label text, manifest text)
RETURNS TABLE (blob_count bigint, blob_bytes bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    z bigint;
BEGIN
    IF stanza IS NULL OR label IS NULL OR manifest IS NULL THEN
        RAISE EXCEPTION 'stanza, label and manifest must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF manifest <> format('crawler_ha/blobs/manifests/%s/%s.json.enc', stanza, label)
          OR stanza !~ '^[A-Za-z0-9_.-]{1,63}$' OR NOT @extschema@.ha_backup_label_ok(label) THEN
        RAISE EXCEPTION 'invalid stanza, label or manifest name' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'The manifest is crawler_ha/blobs/manifests/<stanza>/<label>.json.enc.';
    END IF;
    IF current_setting('transaction_isolation') NOT IN ('repeatable read', 'serializable') THEN
        RAISE EXCEPTION 'ha_backup_record_blobs() needs a REPEATABLE READ transaction'
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    SELECT count(*), coalesce(sum(m.file_size), 0) INTO n, z FROM @extschema@.ha_backup_blob_manifest() m;
    UPDATE @extschema@.ha_backups b
       SET blob_count = n, blob_bytes = z, blob_manifest = manifest
     WHERE b.stanza = ha_backup_record_blobs.stanza AND b.label = ha_backup_record_blobs.label
       AND b.blob_manifest IS NULL
       -- recorded by this very transaction: its snapshot is the figures'
       AND current_setting('crawler_ha_backup.recorded', true)
           = ha_backup_record_blobs.stanza || '/' || ha_backup_record_blobs.label;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'backup % of stanza % was not recorded in this transaction', label, stanza
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call it after ha_backup_record(), before the commit.';
    END IF;
    blob_count := n;
    blob_bytes := z;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_backup_record_blobs(text, text, text) IS
    'crawler_ha: in ha_backup_record()''s transaction, records the count and bytes of the backup''s blobs (ha_backup_blob_manifest() in the same snapshot) and its manifest''s name; returns them';

-- How the copy of a backup's blobs into the repository ended, once: ok
-- when every blob of the manifest is there and verified, copied and
-- stored_bytes what this run wrote (blobs already in the repository are
-- never copied again), detail what failed (cut to 10000 bytes); a failure
-- is also a 'backup' event, by ha_backup_failed(step 'blobs'), as any
-- failed step is. 22004 a NULL (detail may be), 22023 a
-- negative count, 55000 no such backup or its outcome recorded already.
CREATE FUNCTION @extschema@.ha_backup_blobs_done(stanza text, label text, ok boolean, copied bigint,
                                                 stored_bytes bigint, detail text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    msg text := coalesce(detail, '');
BEGIN
    IF stanza IS NULL OR label IS NULL OR ok IS NULL OR copied IS NULL OR stored_bytes IS NULL THEN
        RAISE EXCEPTION 'only detail may be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF copied < 0 OR stored_bytes < 0 THEN
        RAISE EXCEPTION 'copied and stored_bytes must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WHILE octet_length(msg) > 10000 LOOP
        msg := left(msg, length(msg) - greatest(1, (octet_length(msg) - 10000) / 4));
    END LOOP;
    PERFORM @extschema@.ha_commit_locally();
    UPDATE @extschema@.ha_backups b
       SET blobs_ok = ok, blobs_copied = copied, blobs_stored_bytes = stored_bytes, blobs_detail = msg
     WHERE b.stanza = ha_backup_blobs_done.stanza AND b.label = ha_backup_blobs_done.label
       AND b.blob_manifest IS NOT NULL AND b.blobs_ok IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'backup % of stanza % has no blob manifest waiting for its outcome', label, stanza
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_backup_blobs_done(text, text, boolean, bigint, bigint, text) IS
    'crawler_ha: records once how the copy of a backup''s blobs ended (ok, objects copied and bytes written by this run, what failed)';
