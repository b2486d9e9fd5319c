-- Periodic work, scheduled with pg_cron when it is there: the consistency
-- check (every 5 minutes, and within a minute after a failover, switchover or
-- rejoin), the lease reaper, and retention of old events and logs.

-- Expired leases back to the queue, without the fence: for callers that
-- have already passed it in this transaction (crawl_claim).
CREATE FUNCTION @extschema@.crawl_requeue_expired(max_items integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    UPDATE @extschema@.crawl_frontier f
       SET state = 'queued', lease_expires_at = NULL, last_error = 'lease expired', updated_at = clock_timestamp()
     WHERE f.id IN (SELECT e.id FROM @extschema@.crawl_frontier e
                     WHERE e.state = 'leased' AND e.lease_expires_at < clock_timestamp()
                     ORDER BY e.lease_expires_at LIMIT max_items
                     FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_requeue_expired(integer) IS
    'crawler_ha (internal): return up to max_items expired leases to the queue';

CREATE FUNCTION @extschema@.crawl_reap_leases(max_items integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF max_items IS NULL OR max_items < 1 THEN
        RAISE EXCEPTION 'max_items must be a positive number' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.ha_assert_writable();
    RETURN @extschema@.crawl_requeue_expired(max_items);
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_reap_leases(integer) IS
    'crawler_ha: return expired leases (crashed workers) to the queue; claims do this too, the schedule keeps it going when nobody claims';

-- The scheduled check: on the primary only, and an unreachable peer is an
-- alert event, not a failed job. What it writes (the check's log, the alert)
-- is this node's own and commits without waiting for a synchronous standby:
-- in replication_mode = sync with the standby gone, the job would otherwise
-- wait for ever (set outside the block, whose error would undo it).
CREATE FUNCTION @extschema@.ha_check_job(reason text DEFAULT 'schedule')
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad integer;
BEGIN
    IF (SELECT s.role FROM @extschema@.ha_state s) <> 'primary'
       OR coalesce(current_setting('crawler_ha.peer_conninfo', true), '') = '' THEN
        RETURN false;
    END IF;
    PERFORM @extschema@.ha_commit_locally();
    BEGIN
        SELECT count(*) FILTER (WHERE NOT c.ok) INTO bad
          FROM @extschema@.ha_check_consistency() c WHERE c.check_name = 'range_hash';
        RETURN bad = 0;
    EXCEPTION WHEN OTHERS THEN
        PERFORM @extschema@.ha_record_event('alert', 'consistency check (' || reason || ') failed: ' || SQLERRM);
        RETURN false;
    END;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_check_job(text) IS
    'crawler_ha: the scheduled consistency check (primary only; a failure becomes an alert event)';

-- After a failover, switchover, promotion or rejoin the data may differ:
-- check once as soon as such an event is newer than the last check.
CREATE FUNCTION @extschema@.ha_check_after_events()
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM @extschema@.ha_events e
                WHERE e.kind IN ('failover', 'switchover', 'promotion', 'rejoin')
                  AND e.at > coalesce((SELECT max(c.at) FROM @extschema@.ha_events c WHERE c.kind = 'consistency'),
                                      '-infinity')) THEN
        RETURN @extschema@.ha_check_job('after failover');
    END IF;
    RETURN false;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_check_after_events() IS
    'crawler_ha: run the consistency check if a failover, switchover, promotion or rejoin happened since the last one';

CREATE FUNCTION @extschema@.ha_retention(keep interval DEFAULT '30 days')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a bigint;
    b bigint;
BEGIN
    IF keep IS NULL OR keep < '1 hour' THEN
        RAISE EXCEPTION 'keep must be at least 1 hour' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.ha_commit_locally();  -- both tables are per node
    DELETE FROM @extschema@.ha_events e WHERE e.at < now() - keep;
    GET DIAGNOSTICS a = ROW_COUNT;
    DELETE FROM @extschema@.ha_sync_log l WHERE l.at < now() - keep;
    GET DIAGNOSTICS b = ROW_COUNT;
    RETURN a + b;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_retention(interval) IS
    'crawler_ha: delete HA events and consistency logs older than keep; returns how many rows went';

-- Register the named pg_cron jobs (idempotent: pg_cron replaces a job of the
-- same name). Schedules can be changed later with cron.alter_job.
CREATE FUNCTION @extschema@.ha_schedule_maintenance(check_schedule text DEFAULT '*/5 * * * *',
                                                    reaper_schedule text DEFAULT '* * * * *',
                                                    retention_schedule text DEFAULT '17 3 * * *')
RETURNS TABLE (job_name text, schedule text, command text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j record;
BEGIN
    IF check_schedule IS NULL OR reaper_schedule IS NULL OR retention_schedule IS NULL THEN
        RAISE EXCEPTION 'schedules must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_regproc('cron.schedule_in_database') IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in this cluster''s cron database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add pg_cron to shared_preload_libraries (with crawler_ha), set cron.database_name, restart, '
                         'run CREATE EXTENSION pg_cron there, then call ha_schedule_maintenance() again.';
    END IF;
    PERFORM @extschema@.ha_commit_locally();  -- pg_cron's tables are per node
    FOR j IN SELECT * FROM (VALUES
        ('crawler_ha_consistency', check_schedule, format('SELECT %s.ha_check_job()', '@extschema@')),
        ('crawler_ha_after_failover', '* * * * *', format('SELECT %s.ha_check_after_events()', '@extschema@')),
        ('crawler_ha_lease_reaper', reaper_schedule, format('SELECT %s.crawl_reap_leases()', '@extschema@')),
        ('crawler_ha_retention', retention_schedule, format('SELECT %s.ha_retention()', '@extschema@'))) v(n, s, c)
    LOOP
        EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4)' USING j.n, j.s, j.c, current_database();
        job_name := j.n; schedule := j.s; command := j.c;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_schedule_maintenance(text, text, text) IS
    'crawler_ha: register the pg_cron jobs: consistency check (every 5 minutes and after failovers), lease reaper, retention';

-- With pg_cron already in this database, schedule at once.
DO $schedule$
BEGIN
    IF to_regproc('cron.schedule_in_database') IS NOT NULL
       AND has_function_privilege('cron.schedule_in_database(text, text, text, text, text, boolean)', 'EXECUTE') THEN
        PERFORM @extschema@.ha_schedule_maintenance();
    END IF;
END
$schedule$;
