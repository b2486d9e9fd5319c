-- Backups as metrics and alerts: what this node's backups say, decided here
-- once for ha_metrics() (75_metrics.sql) and for the alerts backup_stale,
-- backup_failed and restore_test_failed (77_alerts.sql), so that an alert
-- and its metric never disagree. This file comes after 80_backups.sql, which creates ha_backups:
-- an SQL function's body is checked against the tables when it is created.
-- ha_metrics() and ha_alert_conditions() are PL/pgSQL, which resolves a
-- statement at its first call, so those earlier files may call it.
--
-- Per node, like ha_backups: each node reports the backups it made itself
-- (a standby its old ones, from when it was primary). The cluster's view is
-- the newest over the nodes: Prometheus takes it from both nodes' metrics
-- (docs/prometheus/crawler_ha_alerts.yml); the alerts of 77_alerts.sql,
-- evaluated on the primary, which sees only its own, count the moment it
-- became primary for the other node's backups (and restore tests).
--
-- What counts:
-- - a success is a backup recorded verified (verify_ok) and not expired: one
--   that read back whole and that the repository still holds. Its time is
--   its stopped_at, pgBackRest's stop time (the data it restores is that of
--   a moment after it: its restore point).
-- - a failure is a 'backup' HA event with ok false (ha_backup_failed() of
--   any step, ha_backup_record() of a backup whose verify failed), or a row
--   recorded with verify_ok false: ha_retention() deletes old events, the
--   row stays. A failure at a step after the record (the blobs, the check)
--   comes after the stop time of the backup it belongs to, so it is newer
--   than that backup's success, as it should be: that backup is incomplete.
-- - backups are configured on this node once it has recorded a backup or a
--   failure. Without either, nothing was ever tried here: no alert.
-- - the restore test that counts is the newest (restore_tested_at) of a
--   backup still kept: `crawler-ha backup test-restore` records it on the
--   backup's row (84_restore.sql), and a test of a backup retention has
--   removed says nothing about what can be restored now. Each row holds its
--   backup's newest test, so the newest over the rows is the newest test.

-- The backups retention has not removed: a few hundred at most, however
-- many the node has recorded over the years (rows are never deleted).
CREATE INDEX ha_backups_kept_idx ON @extschema@.ha_backups (stopped_at) WHERE expired_at IS NULL;
-- The backups whose verify failed: rare.
CREATE INDEX ha_backups_unverified_idx ON @extschema@.ha_backups (recorded_at) WHERE NOT verify_ok;
-- The failed backup attempts among the HA events, so that the newest and
-- the oldest are one probe each whatever else the events hold.
CREATE INDEX ha_events_backup_failed_idx ON @extschema@.ha_events (at)
    WHERE kind = 'backup' AND (detail ->> 'ok') = 'false';

-- One row: whether backups are configured here, the newest success (any
-- type) and failure, the backups kept, whether the newest success's blobs
-- are all in the repository (NULL until its copy ended), per type the
-- newest success's stop time and the bytes it added to the repository
-- (repo_delta_bytes: compressed and encrypted, what pgBackRest calls the
-- repo backup size), and the newest restore test of a kept backup: when it
-- ran and whether it passed. NULL where there is none. It runs as its
-- caller (the reader and the admin read ha_backups and ha_events), takes no
-- argument and only reads, by the indexes above. The restore test needs no
-- index of its own: it comes from the kept backups, which are read anyway
-- (a few hundred rows at most under retention).
CREATE FUNCTION @extschema@.ha_backup_summary()
RETURNS TABLE (configured boolean, last_success timestamptz, last_failure timestamptz, kept bigint,
               blobs_ok boolean, full_at timestamptz, full_bytes bigint, diff_at timestamptz, diff_bytes bigint,
               incr_at timestamptz, incr_bytes bigint, restore_tested_at timestamptz, restore_test_ok boolean)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH kept AS MATERIALIZED (
        SELECT b.id, b.type, b.stopped_at, b.repo_delta_bytes, b.verify_ok, b.blobs_ok, b.restore_tested_at,
               b.restore_test_ok
          FROM @extschema@.ha_backups b
         WHERE b.expired_at IS NULL
    ), tested AS MATERIALIZED (
        -- the newest restore test (restore_test_ok is set with its time)
        SELECT k.restore_tested_at, k.restore_test_ok
          FROM kept k
         WHERE k.restore_tested_at IS NOT NULL
         ORDER BY k.restore_tested_at DESC, k.id DESC
         LIMIT 1
    ), newest AS MATERIALIZED (
        -- the newest success of each type
        SELECT DISTINCT ON (k.type) k.type, k.stopped_at, k.repo_delta_bytes, k.blobs_ok
          FROM kept k
         WHERE k.verify_ok
         ORDER BY k.type, k.stopped_at DESC, k.id DESC
    ), failure AS MATERIALIZED (
        SELECT greatest((SELECT max(e.at) FROM @extschema@.ha_events e
                          WHERE e.kind = 'backup' AND (e.detail ->> 'ok') = 'false'),
                        (SELECT max(b.recorded_at) FROM @extschema@.ha_backups b WHERE NOT b.verify_ok)) AS at
    )
    SELECT EXISTS (SELECT 1 FROM @extschema@.ha_backups) OR f.at IS NOT NULL,
           (SELECT max(n.stopped_at) FROM newest n),
           f.at,
           (SELECT count(*) FROM kept),
           (SELECT n.blobs_ok FROM newest n ORDER BY n.stopped_at DESC LIMIT 1),
           (SELECT n.stopped_at FROM newest n WHERE n.type = 'full'),
           (SELECT n.repo_delta_bytes FROM newest n WHERE n.type = 'full'),
           (SELECT n.stopped_at FROM newest n WHERE n.type = 'diff'),
           (SELECT n.repo_delta_bytes FROM newest n WHERE n.type = 'diff'),
           (SELECT n.stopped_at FROM newest n WHERE n.type = 'incr'),
           (SELECT n.repo_delta_bytes FROM newest n WHERE n.type = 'incr'),
           (SELECT t.restore_tested_at FROM tested t),
           (SELECT t.restore_test_ok FROM tested t)
      FROM failure f
$$;
COMMENT ON FUNCTION @extschema@.ha_backup_summary() IS
    'crawler_ha: this node''s backups in one row, as the backup metrics and alerts see them: configured (a backup or a failure recorded), the newest verified unexpired backup''s stop time and the newest failure (backup event with ok false, or verify failed), the backups kept, the newest''s blobs_ok, per type (full, diff, incr) the newest''s stop time and repo_delta_bytes, and the newest restore test of an unexpired backup (when it ran, whether it passed); NULL where there is none';
