-- Alerts: the original specification's three (a database down, replication
-- lag, disk use) and the HA core's own (a failover or switchover happened,
-- a node fenced, consistency differences found, file sync behind, backups
-- stale or failing, a restore test failed), decided here once. The node agent calls
-- ha_alert_evaluate() every few seconds, POSTs what it returns to a webhook
-- (Alertmanager's webhook format) and reports each delivery with
-- ha_alert_notified(); the dashboard and the HTTP API read ha_alerts().
-- docs/agent.md ("Alerts") describes the whole.
--
-- The conditions read what ha_metrics() reports, from the same sources
-- (ha_status(), ha_health(), ha_terms, ha_sync_status(), ha_blob_wanted,
-- ha_backup_summary()), so an alert and its metric never disagree. Where
-- the HA worker has a rule of its own (when a peer is unhealthy, how much
-- lag is too much) the alert uses that rule, not a second threshold.
--
-- Everything here is per node, never replicated: each node evaluates what
-- it sees, keeps its own alert states and records its own HA events. A
-- cluster-wide alert is sent by one node only (ha_alert_sender()); an alert
-- about a node's own disk, fence or store by that node.

CREATE TABLE @extschema@.ha_alert_rules (
    alert       text PRIMARY KEY,
    alertname   text NOT NULL UNIQUE,
    severity    text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    -- 'cluster': sent by the node ha_alert_sender() names; 'node': about
    -- the node that evaluates it, sent by that node
    scope       text NOT NULL CHECK (scope IN ('cluster', 'node')),
    -- NULL where the HA worker's own setting decides (see ha_alert_configure())
    threshold   double precision CHECK (threshold >= 0 AND threshold < 'Infinity'),
    cooldown_s  integer NOT NULL CHECK (cooldown_s BETWEEN 0 AND 2592000),
    enabled     boolean NOT NULL DEFAULT true,
    description text NOT NULL
);
COMMENT ON TABLE @extschema@.ha_alert_rules IS
    'crawler_ha: the alerts this node evaluates, their thresholds and cooldowns (per node, never replicated; change with ha_alert_configure())';

-- The original specification's thresholds and cooldowns: a database down
-- after 3 failed checks (the HA worker's crawler_ha.failure_threshold),
-- 300 s; replication lag above 60 s (crawler_ha.replication_lag_threshold),
-- 600 s; disk use above 85 %, 1800 s.
INSERT INTO @extschema@.ha_alert_rules (alert, alertname, severity, scope, threshold, cooldown_s, description) VALUES
    ('database_down', 'CrawlerHaDatabaseDown', 'critical', 'cluster', NULL, 300,
     'another node''s database failed crawler_ha.failure_threshold health checks in a row (or answered too slowly): the HA worker calls it unhealthy'),
    ('replication_lag', 'CrawlerHaReplicationLag', 'warning', 'cluster', NULL, 600,
     'the standby is further behind than crawler_ha.replication_lag_threshold'),
    ('disk_usage', 'CrawlerHaDiskUsage', 'warning', 'node', 85, 1800,
     'the file system of this node''s blob store is fuller than threshold percent (the agent measures it)'),
    ('failover', 'CrawlerHaFailover', 'critical', 'cluster', 600, 300,
     'this node was promoted by a failover (not a switchover) less than threshold seconds ago'),
    ('switchover', 'CrawlerHaSwitchover', 'info', 'cluster', 600, 300,
     'this node was promoted by a planned switchover less than threshold seconds ago'),
    ('node_fenced', 'CrawlerHaNodeFenced', 'critical', 'node', NULL, 300,
     'this node is fenced: it refuses writes until it rejoins'),
    ('consistency_differences', 'CrawlerHaConsistencyDifferences', 'warning', 'cluster', 0, 1800,
     'the last consistency check of a data table found more than threshold rows differing between the nodes'),
    ('file_sync_behind', 'CrawlerHaFileSyncBehind', 'warning', 'node', 300, 900,
     'a blob this node''s rows reference has been missing from its store for more than threshold seconds');

-- The backups (80_backups.sql, docs/backup.md), evaluated on the node that
-- backs up: the primary (ha_state: primary, not fenced, as the backup rule
-- reads it). A standby backs up nothing, so its own backups age without
-- anything being wrong; the cluster's newest backup is the primary's, or
-- the other node's from before this one became primary, which it cannot
-- see: the moment it became primary stands for those (a new primary has
-- the threshold to make its first backup, and a failure before it counts no
-- more). A node where no backup and no failure was ever recorded has no
-- backups configured: none of the three alerts.
-- - backup_stale: no successful backup (verified, not expired) for 93600 s
--   (26 h). The agent's default schedule makes one an hour (weekly full,
--   daily diff, hourly incr) and cron's example too; 26 h also lets a daily
--   schedule alone be late by two hours (a long full backup) before it
--   fires, and leaves the hourly failures themselves to backup_failed.
--   Critical: a day of crawl that only the live pair holds, lost to a bad
--   DELETE or a bug replicated to both. Reminded every 4 h (Alertmanager's
--   default repeat_interval): it changes slowly and ends with the next
--   backup.
-- - backup_failed: the newest attempt failed (a failure newer than the
--   newest success). No threshold: a state. The agent retries in 5 min and
--   the next success resolves it; reminded every hour, the schedule's step.
-- - restore_test_failed: the newest restore test of a kept backup
--   (crawler-ha backup test-restore, run by the agent after a scheduled
--   backup at most once per backup_restore_test_interval_s, a day by
--   default) failed, and ran after the moment this node became primary (an
--   older one is history: the other node's tests covered the time between).
--   No threshold: a state, resolved by the next test that passes. Warning:
--   the backups exist and the live pair holds the data, but a restore from
--   them is in doubt until someone looks. Reminded every 4 h: it can change
--   only once per test interval.
--   A test that has not run for long gets no alert of its own, nor a part
--   in backup_stale (docs/backup.md, "Metrics and alerts"). The agent tests
--   only after a backup that succeeded, so tests stop with the backups,
--   which backup_stale and backup_failed report; a test that ran and failed
--   is this alert. What is left is mostly a node where tests are off on
--   purpose (backup_restore_test_interval_s 0, backups from cron), which
--   the extension cannot tell from one where they stopped: its alert would
--   never end, and an old test's row leaves with retention, so it would
--   resolve by itself later, having tested nothing. In backup_stale it
--   would do worse: a critical alert that operators learn to disable hides
--   the backups' own staleness. A test that cannot even start (its scratch
--   directory missing) records nothing; the agent logs it as an error.
INSERT INTO @extschema@.ha_alert_rules (alert, alertname, severity, scope, threshold, cooldown_s, description) VALUES
    ('backup_stale', 'CrawlerHaBackupStale', 'critical', 'cluster', 93600, 14400,
     'the primary''s newest successful backup (verified, not expired), or the moment it became primary if later, is older than threshold seconds'),
    ('backup_failed', 'CrawlerHaBackupFailed', 'warning', 'cluster', NULL, 3600,
     'the primary''s newest backup attempt failed: a failure (a backup event with ok false, or a verify that failed) is newer than its newest successful backup and than the moment it became primary'),
    ('restore_test_failed', 'CrawlerHaRestoreTestFailed', 'warning', 'cluster', NULL, 14400,
     'the primary''s newest restore test (crawler-ha backup test-restore of a backup not expired), run since it became primary, failed: the backup did not restore, or its figures or blobs differ from those recorded');

-- What this node has decided about each alert (one row per alert and label
-- set), and what it has delivered.
CREATE TABLE @extschema@.ha_alert_state (
    alert              text NOT NULL REFERENCES @extschema@.ha_alert_rules ON DELETE CASCADE,
    labels             jsonb NOT NULL CHECK (pg_catalog.jsonb_typeof(labels) = 'object'),
    active             boolean NOT NULL,
    -- when it became active, or, once inactive, when it resolved
    since              timestamptz NOT NULL,
    started_at         timestamptz NOT NULL,
    value              double precision,
    summary            text NOT NULL,
    -- the last notification delivered, and the last 'firing' one (the
    -- cooldown counts from it)
    notified_status    text CHECK (notified_status IN ('firing', 'resolved')),
    notified_at        timestamptz,
    firing_notified_at timestamptz,
    PRIMARY KEY (alert, labels)
);
COMMENT ON TABLE @extschema@.ha_alert_state IS
    'crawler_ha: the state of each alert on this node and its last delivered notification (per node, never replicated)';

-- Whether this node sends the cluster-wide alerts: the writable primary
-- does; a standby does only while its primary is unhealthy to it (then no
-- primary can). One node sends a given alert, so that the receiver gets no
-- duplicate from the pair. A fenced node sends none: whichever node fenced
-- it, its view is the stale one.
CREATE FUNCTION @extschema@.ha_alert_sender()
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h record;
BEGIN
    SELECT * INTO h FROM @extschema@.ha_health();
    IF NOT FOUND OR h.fenced THEN
        RETURN false;
    END IF;
    RETURN coalesce(h.writable, false) OR (h.role = 'standby' AND h.peer_healthy IS FALSE);
END
$$;
COMMENT ON FUNCTION @extschema@.ha_alert_sender() IS
    'crawler_ha: whether this node sends the cluster-wide alerts now (the writable primary, or a standby whose primary is unhealthy to it)';

-- The alerts active now, as this node sees them: one row per alert and
-- label set. store_used_percent is what the agent measured of its store's
-- file system (NULL: not measured, disk_usage stays as it was).
CREATE FUNCTION @extschema@.ha_alert_conditions(store_used_percent double precision)
RETURNS TABLE (alert text, labels jsonb, value double precision, summary text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me text;
    my_id integer;
    lag_threshold_s double precision;
    r record;
    oldest timestamptz;
    -- the backups, read once for the three alerts about them
    backups_read boolean := false;
    backs_up boolean;
    bk record;
    primary_since timestamptz;
    covered timestamptz;
    why text;
    tested text;
    problem text;
BEGIN
    SELECT nd.node_name, nd.node_id INTO me, my_id FROM @extschema@.ha_node nd;
    -- in its base unit (ms), whatever unit it was written in
    SELECT g.setting::double precision / 1000 INTO lag_threshold_s
      FROM pg_catalog.pg_settings g WHERE g.name = 'crawler_ha.replication_lag_threshold';
    FOR r IN SELECT * FROM @extschema@.ha_alert_rules WHERE enabled LOOP
        CASE r.alert
        WHEN 'database_down' THEN
            RETURN QUERY
            SELECT r.alert, pg_catalog.jsonb_build_object('node', s.node_name), s.consecutive_failures::double precision,
                   pg_catalog.format('%s (%s) is unhealthy to %s: %s health checks failed in a row%s',
                                     s.node_name, s.role, me, s.consecutive_failures,
                                     coalesce(': ' || pg_catalog.left(s.detail, 200), ''))
              FROM @extschema@.ha_status() s
             WHERE NOT s.is_local AND s.healthy IS FALSE;
        WHEN 'replication_lag' THEN
            RETURN QUERY
            SELECT r.alert, pg_catalog.jsonb_build_object('node', s.node_name), s.lag_seconds,
                   pg_catalog.format('replication to %s is %s s behind (%s bytes), above %s s',
                                     s.node_name, pg_catalog.round(s.lag_seconds::numeric, 1), s.lag_bytes,
                                     lag_threshold_s)
              FROM @extschema@.ha_status() s
             WHERE s.lag_seconds > lag_threshold_s;
        WHEN 'disk_usage' THEN
            IF store_used_percent > r.threshold THEN
                RETURN QUERY SELECT r.alert, pg_catalog.jsonb_build_object('node', me), store_used_percent,
                    pg_catalog.format('the blob store of %s is %s %% full, above %s %%', me,
                                      pg_catalog.round(store_used_percent::numeric, 1), r.threshold);
            ELSIF store_used_percent IS NULL THEN
                -- not measured this time: an active one stays as it is
                RETURN QUERY SELECT st.alert, st.labels, st.value, st.summary
                  FROM @extschema@.ha_alert_state st WHERE st.alert = r.alert AND st.active;
            END IF;
        WHEN 'failover', 'switchover' THEN
            RETURN QUERY
            SELECT r.alert, pg_catalog.jsonb_build_object('node', me, 'term', t.term::text),
                   EXTRACT(epoch FROM pg_catalog.now() - t.started_at)::double precision,
                   pg_catalog.format('%s became primary in term %s at %s: %s', me, t.term, t.started_at,
                                     pg_catalog.left(t.reason, 200))
              FROM @extschema@.ha_terms t
             WHERE t.primary_node_id = (SELECT nd.node_id FROM @extschema@.ha_node nd)
               AND t.reason <> 'setup'
               AND (t.reason LIKE 'switchover from %') = (r.alert = 'switchover')
               AND t.started_at > pg_catalog.now() - pg_catalog.make_interval(secs => r.threshold);
        WHEN 'node_fenced' THEN
            RETURN QUERY
            SELECT r.alert, pg_catalog.jsonb_build_object('node', me), 1::double precision,
                   pg_catalog.format('%s is fenced in term %s: it refuses writes until it rejoins', me, h.term)
              FROM @extschema@.ha_health() h
             WHERE h.fenced;
        WHEN 'consistency_differences' THEN
            RETURN QUERY
            SELECT r.alert, pg_catalog.jsonb_build_object('table', c.table_name),
                   (c.check_result ->> 'differing')::double precision,
                   pg_catalog.format('the consistency check of %s at %s found %s rows differing between the nodes',
                                     c.table_name, c.last_check, c.check_result ->> 'differing')
              FROM @extschema@.ha_sync_status() c
             WHERE pg_catalog.jsonb_typeof(c.check_result -> 'differing') = 'number'
               AND (c.check_result ->> 'differing')::double precision > r.threshold;
        WHEN 'file_sync_behind' THEN
            -- the index on wanted_since finds the longest missing at once
            SELECT w.wanted_since INTO oldest FROM @extschema@.ha_blob_wanted w
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.ha_blobs b WHERE b.sha256 = w.sha256)
             ORDER BY w.wanted_since LIMIT 1;
            IF oldest < pg_catalog.now() - pg_catalog.make_interval(secs => r.threshold) THEN
                RETURN QUERY SELECT r.alert, pg_catalog.jsonb_build_object('node', me),
                    EXTRACT(epoch FROM pg_catalog.now() - oldest)::double precision,
                    pg_catalog.format('a blob has been missing from the store of %s since %s', me, oldest);
            END IF;
        WHEN 'backup_stale', 'backup_failed', 'restore_test_failed' THEN
            IF NOT backups_read THEN
                backups_read := true;
                SELECT s.role = 'primary' AND NOT s.fenced INTO backs_up FROM @extschema@.ha_state s;
                IF backs_up THEN
                    SELECT * INTO bk FROM @extschema@.ha_backup_summary();
                    -- The start of this node's run as primary: its first term
                    -- after the last one another node (or an unknown one) held.
                    SELECT pg_catalog.min(t.started_at) INTO primary_since FROM @extschema@.ha_terms t
                     WHERE t.primary_node_id = my_id
                       AND t.term > coalesce((SELECT pg_catalog.max(o.term) FROM @extschema@.ha_terms o
                                               WHERE o.primary_node_id IS DISTINCT FROM my_id), 0);
                    -- Backed up to here, in the cluster: greatest() skips NULLs.
                    covered := greatest(bk.last_success, primary_since);
                END IF;
            END IF;
            -- (two tests: bk is unassigned where this node does not back up)
            CONTINUE WHEN NOT coalesce(backs_up, false);
            CONTINUE WHEN NOT bk.configured;
            IF r.alert = 'backup_stale' THEN
                -- Never a success nor a promotion here (a standalone node):
                -- from its first attempt, the first failure or backup recorded.
                oldest := coalesce(covered, least(
                    (SELECT pg_catalog.min(e.at) FROM @extschema@.ha_events e
                      WHERE e.kind = 'backup' AND (e.detail ->> 'ok') = 'false'),
                    (SELECT b.recorded_at FROM @extschema@.ha_backups b ORDER BY b.id LIMIT 1)));
                IF oldest < pg_catalog.now() - pg_catalog.make_interval(secs => r.threshold) THEN
                    RETURN QUERY SELECT r.alert, pg_catalog.jsonb_build_object('node', me),
                        EXTRACT(epoch FROM pg_catalog.now() - oldest)::double precision,
                        CASE WHEN bk.last_success IS NOT NULL AND bk.last_success >= oldest
                             THEN pg_catalog.format('the newest successful backup of %s ended at %s, more than %s s ago',
                                                    me, bk.last_success, r.threshold)
                             WHEN oldest = primary_since
                             THEN pg_catalog.format('%s has made no successful backup since it became primary at %s, more than %s s ago',
                                                    me, primary_since, r.threshold)
                             ELSE pg_catalog.format('%s has made no successful backup since its first attempt at %s, more than %s s ago',
                                                    me, oldest, r.threshold) END;
                END IF;
            ELSIF r.alert = 'restore_test_failed' THEN
                IF NOT bk.restore_test_ok AND bk.restore_tested_at > coalesce(primary_since, '-infinity') THEN
                    -- which backup, and what the test found (a kept row: the
                    -- partial index of the kept backups finds it)
                    SELECT pg_catalog.format('%s backup %s of stanza %s', b.type, b.label, b.stanza),
                           b.restore_test_detail ->> 'problem'
                      INTO tested, problem
                      FROM @extschema@.ha_backups b
                     WHERE b.expired_at IS NULL AND b.restore_tested_at = bk.restore_tested_at
                     ORDER BY b.id DESC LIMIT 1;
                    RETURN QUERY SELECT r.alert, pg_catalog.jsonb_build_object('node', me),
                        EXTRACT(epoch FROM bk.restore_tested_at)::double precision,
                        pg_catalog.format('the newest restore test on %s, of %s, failed at %s: %s', me,
                                          coalesce(tested, 'a backup'),
                                          bk.restore_tested_at,
                                          pg_catalog.left(pg_catalog.regexp_replace(coalesce(problem, 'see its restore event'),
                                                                                    '[[:cntrl:]]+', ' ', 'g'), 300));
                END IF;
            ELSIF bk.last_failure > coalesce(covered, '-infinity') THEN
                -- what the newest failure said (a verify that failed and whose
                -- event ha_retention() deleted says nothing more)
                SELECT e.reason INTO why FROM @extschema@.ha_events e
                 WHERE e.kind = 'backup' AND (e.detail ->> 'ok') = 'false' AND e.at >= bk.last_failure
                 ORDER BY e.at DESC LIMIT 1;
                RETURN QUERY SELECT r.alert, pg_catalog.jsonb_build_object('node', me),
                    EXTRACT(epoch FROM bk.last_failure)::double precision,
                    pg_catalog.format('the newest backup attempt on %s failed at %s: %s', me, bk.last_failure,
                                      pg_catalog.left(coalesce(why, 'its verify failed'), 300));
            END IF;
        END CASE;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_alert_conditions(double precision) IS
    'crawler_ha: the alerts active now as this node sees them (internal: ha_alert_evaluate() keeps their states)';

-- One evaluation: brings ha_alert_state up to date with what is active
-- now, records an HA event ('alert') for each alert that fires or
-- resolves, and returns the notifications due from this node:
-- - 'firing' for an active alert never notified, or notified longer than
--   its cooldown ago (the cooldown counts from the last 'firing' delivered,
--   across episodes: an alert that flaps is notified once per cooldown);
-- - 'resolved' for an inactive alert whose last notification said firing.
-- Nothing is marked delivered here: the agent calls ha_alert_notified()
-- once the receiver took it, so a failed delivery is due again at the next
-- evaluation. Evaluations of one node are serialized (a lock on the state
-- table); a read-only session is refused (25006), since it must write.
CREATE FUNCTION @extschema@.ha_alert_evaluate(store_used_percent double precision DEFAULT NULL)
RETURNS TABLE (alert text, alertname text, status text, severity text, labels jsonb, summary text,
               description text, value double precision, started_at timestamptz, ended_at timestamptz)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sends boolean;
    c record;
    now_active jsonb;
BEGIN
    IF store_used_percent IS NOT NULL AND NOT (store_used_percent BETWEEN 0 AND 100) THEN
        RAISE EXCEPTION 'crawler_ha: store_used_percent must be between 0 and 100, not %', store_used_percent
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.current_setting('transaction_read_only') = 'on' THEN
        RAISE EXCEPTION 'crawler_ha: ha_alert_evaluate() writes this node''s alert states and cannot run read-only'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Connect with options=''-c default_transaction_read_only=off -c synchronous_commit=local''.';
    END IF;
    -- Bookkeeping of this node: no wait for a synchronous standby.
    PERFORM @extschema@.ha_commit_locally();
    LOCK TABLE @extschema@.ha_alert_state IN SHARE ROW EXCLUSIVE MODE;

    -- What is active now, as a value (a temporary table would churn the
    -- catalog at every evaluation).
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(a)), '[]') INTO now_active
      FROM @extschema@.ha_alert_conditions(store_used_percent) a;

    -- Fired: new, or active again.
    FOR c IN
        SELECT n.alert, n.labels, n.value, n.summary
          FROM pg_catalog.jsonb_to_recordset(now_active) AS n(alert text, labels jsonb, value double precision, summary text)
          LEFT JOIN @extschema@.ha_alert_state s ON s.alert = n.alert AND s.labels = n.labels
         WHERE s.alert IS NULL OR NOT s.active
    LOOP
        INSERT INTO @extschema@.ha_alert_state AS s (alert, labels, active, since, started_at, value, summary)
        VALUES (c.alert, c.labels, true, pg_catalog.now(), pg_catalog.now(), c.value, c.summary)
        ON CONFLICT ON CONSTRAINT ha_alert_state_pkey DO UPDATE
            SET active = true, since = pg_catalog.now(), started_at = pg_catalog.now(),
                value = excluded.value, summary = excluded.summary;
        PERFORM @extschema@.ha_record_event('alert', pg_catalog.format('alert %s firing: %s', c.alert, c.summary),
                                           NULL, pg_catalog.jsonb_build_object('alert', c.alert, 'status', 'firing',
                                                                               'labels', c.labels, 'value', c.value));
    END LOOP;
    -- Still active: its figure now.
    UPDATE @extschema@.ha_alert_state s SET value = n.value, summary = n.summary
      FROM pg_catalog.jsonb_to_recordset(now_active) AS n(alert text, labels jsonb, value double precision, summary text)
     WHERE s.alert = n.alert AND s.labels = n.labels AND s.active
       AND (s.value IS DISTINCT FROM n.value OR s.summary IS DISTINCT FROM n.summary);
    -- Resolved.
    FOR c IN
        UPDATE @extschema@.ha_alert_state s SET active = false, since = pg_catalog.now()
         WHERE s.active
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_to_recordset(now_active) AS n(alert text, labels jsonb)
                            WHERE n.alert = s.alert AND n.labels = s.labels)
        RETURNING s.alert, s.labels, s.summary
    LOOP
        PERFORM @extschema@.ha_record_event('alert', pg_catalog.format('alert %s resolved: %s', c.alert, c.summary),
                                           NULL, pg_catalog.jsonb_build_object('alert', c.alert, 'status', 'resolved',
                                                                               'labels', c.labels));
    END LOOP;
    -- Forget what resolved long ago and owes no notice.
    DELETE FROM @extschema@.ha_alert_state s
     WHERE NOT s.active AND s.notified_status IS DISTINCT FROM 'firing'
       AND s.since < pg_catalog.now() - interval '7 days';

    sends := @extschema@.ha_alert_sender();
    RETURN QUERY
    SELECT s.alert, r.alertname, CASE WHEN s.active THEN 'firing' ELSE 'resolved' END, r.severity,
           s.labels, s.summary, r.description, s.value, s.started_at,
           CASE WHEN s.active THEN NULL ELSE s.since END
      FROM @extschema@.ha_alert_state s
      JOIN @extschema@.ha_alert_rules r ON r.alert = s.alert
     WHERE (r.scope = 'node' OR sends)
       AND CASE WHEN s.active
                THEN s.firing_notified_at IS NULL
                     OR s.firing_notified_at <= pg_catalog.now() - pg_catalog.make_interval(secs => r.cooldown_s)
                ELSE s.notified_status = 'firing' END
     ORDER BY s.started_at, s.alert, s.labels;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_alert_evaluate(double precision) IS
    'crawler_ha: evaluates the alerts on this node (HA events for each that fires or resolves) and returns the notifications due from it (for the node agent)';

-- The agent's report that a notification reached the receiver. Returns
-- false when there is no such alert state (forgotten meanwhile).
CREATE FUNCTION @extschema@.ha_alert_notified(alert text, labels jsonb, status text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF alert IS NULL OR labels IS NULL OR status IS NULL OR status NOT IN ('firing', 'resolved') THEN
        RAISE EXCEPTION 'crawler_ha: ha_alert_notified() needs an alert, its labels and a status firing or resolved'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.ha_commit_locally();
    UPDATE @extschema@.ha_alert_state s
       SET notified_status = ha_alert_notified.status, notified_at = pg_catalog.now(),
           firing_notified_at = CASE WHEN ha_alert_notified.status = 'firing' THEN pg_catalog.now()
                                     ELSE s.firing_notified_at END
     WHERE s.alert = ha_alert_notified.alert AND s.labels = ha_alert_notified.labels;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_alert_notified(text, jsonb, text) IS
    'crawler_ha: records that a notification of an alert was delivered (for the node agent)';

-- The alerts of this node as last evaluated, active ones first: what the
-- dashboard and GET /api/alerts show.
CREATE FUNCTION @extschema@.ha_alerts()
RETURNS TABLE (alert text, alertname text, severity text, labels jsonb, active boolean, since timestamptz,
               value double precision, threshold double precision, summary text, notified_at timestamptz)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.alert, r.alertname, r.severity, s.labels, s.active, s.since, s.value, r.threshold, s.summary,
           s.notified_at
      FROM @extschema@.ha_alert_state s
      JOIN @extschema@.ha_alert_rules r ON r.alert = s.alert
     ORDER BY s.active DESC, s.since DESC, s.alert, s.labels;
$$;
COMMENT ON FUNCTION @extschema@.ha_alerts() IS
    'crawler_ha: this node''s alerts as last evaluated (active first), with their last delivered notification';

-- Changes an alert's threshold, cooldown or whether it is evaluated; NULL
-- keeps what is set. Returns the rule as it is now.
CREATE FUNCTION @extschema@.ha_alert_configure(alert text, threshold double precision DEFAULT NULL,
                                               cooldown_s integer DEFAULT NULL, enabled boolean DEFAULT NULL)
RETURNS SETOF @extschema@.ha_alert_rules
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.ha_alert_rules;
BEGIN
    SELECT * INTO r FROM @extschema@.ha_alert_rules WHERE ha_alert_rules.alert = ha_alert_configure.alert;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'crawler_ha: there is no alert "%"', pg_catalog.left(coalesce(ha_alert_configure.alert, 'NULL'), 64)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The alerts: ' || (SELECT pg_catalog.string_agg(x.alert, ', ' ORDER BY x.alert)
                                              FROM @extschema@.ha_alert_rules x) || '.';
    END IF;
    IF ha_alert_configure.threshold IS NOT NULL THEN
        IF r.threshold IS NULL THEN
            RAISE EXCEPTION 'crawler_ha: the alert % has no threshold of its own', r.alert
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = CASE r.alert
                                 WHEN 'database_down' THEN 'It follows the HA worker: set crawler_ha.failure_threshold.'
                                 WHEN 'replication_lag' THEN 'It follows the HA worker: set crawler_ha.replication_lag_threshold.'
                                 ELSE 'It fires on a state, not a figure.' END;
        END IF;
        IF NOT (ha_alert_configure.threshold >= 0 AND ha_alert_configure.threshold < 'Infinity')
           OR (r.alert = 'disk_usage' AND ha_alert_configure.threshold > 100) THEN
            RAISE EXCEPTION 'crawler_ha: % is not a threshold for the alert %', ha_alert_configure.threshold, r.alert
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = CASE WHEN r.alert = 'disk_usage' THEN 'A percentage, 0 to 100.'
                                  ELSE 'A finite number, 0 or more.' END;
        END IF;
    END IF;
    IF ha_alert_configure.cooldown_s IS NOT NULL AND NOT (ha_alert_configure.cooldown_s BETWEEN 0 AND 2592000) THEN
        RAISE EXCEPTION 'crawler_ha: a cooldown of % s is out of range', ha_alert_configure.cooldown_s
            USING ERRCODE = 'invalid_parameter_value', HINT = 'From 0 to 2592000 s (30 days).';
    END IF;
    RETURN QUERY
    UPDATE @extschema@.ha_alert_rules x
       SET threshold = coalesce(ha_alert_configure.threshold, x.threshold),
           cooldown_s = coalesce(ha_alert_configure.cooldown_s, x.cooldown_s),
           enabled = coalesce(ha_alert_configure.enabled, x.enabled)
     WHERE x.alert = r.alert
    RETURNING x.*;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_alert_configure(text, double precision, integer, boolean) IS
    'crawler_ha: changes an alert''s threshold, cooldown or whether it is evaluated on this node (NULL keeps the setting)';
