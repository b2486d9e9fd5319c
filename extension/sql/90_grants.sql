-- Privileges, last, once every object exists. PUBLIC gets nothing; the
-- writer may only call the write API and read; nobody but the owner writes
-- tables directly. The HA parts grant their own ha_* functions to the admin.

DO $revoke$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT d.objid::regprocedure
          FROM pg_catalog.pg_depend d
         WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'crawler_ha')
           AND d.deptype = 'e'
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$revoke$;

-- The data tables and their id sequences: read by every role, written only
-- through the write API.
DO $data$
DECLARE
    tbl regclass;
BEGIN
    FOREACH tbl IN ARRAY @extschema@.ha_data_tables() LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM PUBLIC', tbl);
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO crawler_ha_writer, crawler_ha_reader, crawler_ha_admin', tbl);
    END LOOP;
    FOR tbl IN SELECT i.seq FROM @extschema@.ha_id_sequences() i LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON SEQUENCE %s FROM PUBLIC', tbl);
    END LOOP;
END
$data$;

-- Each session's counters summed: read like the tables it sums.
REVOKE ALL ON @extschema@.crawl_session_totals FROM PUBLIC;
GRANT SELECT ON @extschema@.crawl_session_totals TO crawler_ha_writer, crawler_ha_reader, crawler_ha_admin;

REVOKE ALL ON @extschema@.ha_node FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO crawler_ha_writer, crawler_ha_reader, crawler_ha_admin;
GRANT SELECT ON @extschema@.ha_node TO crawler_ha_writer, crawler_ha_reader, crawler_ha_admin;

GRANT EXECUTE ON FUNCTION
    @extschema@.crawl_start(text[], jsonb),
    @extschema@.crawl_stop(bigint),
    @extschema@.crawl_status(bigint),
    @extschema@.crawl_session_settings(bigint),
    @extschema@.crawl_redirect_allowed(bigint, text, text),
    @extschema@.crawl_enqueue(bigint, text[], integer, text, text),
    @extschema@.crawl_enqueue_many(bigint, text[], text[], integer[], text[]),
    @extschema@.crawl_claim(text, integer, interval),
    @extschema@.crawl_next_claim_in(),
    @extschema@.crawl_lease_early(text, bigint, text[], interval),
    @extschema@.crawl_renew(text, bigint[], interval),
    @extschema@.crawl_release(text, bigint[]),
    @extschema@.crawl_complete(bigint, text, jsonb),
    @extschema@.crawl_fail(bigint, text, text, interval),
    @extschema@.crawl_host_set(text, interval, text, timestamptz),
    @extschema@.image_record(bigint, text, text, text, bigint, integer, integer, text, text, text, integer, text, bigint, text, text, text, jsonb, text),
    @extschema@.image_unchanged(bigint, text, boolean, bigint, text),
    @extschema@.image_get(bigint),
    @extschema@.image_delete(bigint)
   TO crawler_ha_writer;

GRANT EXECUTE ON FUNCTION
    @extschema@.crawl_status(bigint),
    @extschema@.image_get(bigint)
   TO crawler_ha_reader;

GRANT EXECUTE ON FUNCTION @extschema@.ha_set_node_id(integer, text) TO crawler_ha_admin;

-- What a crawl's scope site would make of a host: readable by every role,
-- so a caller can see the domains before starting one. They read only the
-- Public Suffix List.
GRANT EXECUTE ON FUNCTION
    @extschema@.crawl_registrable_domain(text),
    @extschema@.crawl_public_suffix(text)
   TO crawler_ha_reader, crawler_ha_writer, crawler_ha_admin;

-- The application API's reads (the node agent's HTTP front): lists of
-- sessions and images. They run as their caller, who reads the tables with
-- its own SELECT; image_list() applies the host rule crawl_url_host_of()
-- as its caller too, so the same roles may execute that pure function
-- (IMMUTABLE, it reads nothing): the planner inlines a function only for a
-- role that may execute it, and the executor refuses it to any other.
GRANT EXECUTE ON FUNCTION
    @extschema@.crawl_list(integer, bigint),
    @extschema@.image_list(bigint, text, text, bigint, integer, integer, timestamptz, timestamptz, bigint, integer),
    @extschema@.crawl_url_host_of(text)
   TO crawler_ha_reader, crawler_ha_writer, crawler_ha_admin;

GRANT EXECUTE ON FUNCTION
    @extschema@.ha_check_consistency(regclass[]),
    @extschema@.ha_diff(regclass, integer, integer, interval),
    @extschema@.ha_sync(text, boolean),
    @extschema@.ha_sync_status(),
    @extschema@.ha_schedule_maintenance(text, text, text),
    @extschema@.ha_retention(interval),
    @extschema@.crawl_reap_leases(integer)
   TO crawler_ha_admin;
GRANT EXECUTE ON FUNCTION @extschema@.ha_sync_status() TO crawler_ha_reader;
GRANT SELECT ON @extschema@.ha_sync_log TO crawler_ha_admin, crawler_ha_reader;

-- File sync. Workers ask where to upload a blob. The agent calls the blob_*
-- functions and reads the node's HA state, and reads no table: everything
-- it learns comes through a function.
GRANT EXECUTE ON FUNCTION @extschema@.crawl_blob_target() TO crawler_ha_writer;
GRANT USAGE ON SCHEMA @extschema@ TO crawler_ha_agent;
GRANT EXECUTE ON FUNCTION
    @extschema@.blob_store_attach(text),
    @extschema@.blob_inventory(text[], bigint[]),
    @extschema@.blob_requeue_missing(),
    @extschema@.blob_stored(text, bigint),
    @extschema@.blob_stored_many(text[], bigint[]),
    @extschema@.blob_wanted(integer),
    @extschema@.blob_fetch_failed(text, text),
    @extschema@.blob_scrub_next(integer, timestamptz),
    @extschema@.blob_verified(text),
    @extschema@.blob_corrupt(text, text),
    @extschema@.blob_orphans(interval, integer),
    @extschema@.blob_referenced(text[]),
    @extschema@.blob_removed(text),
    @extschema@.ha_status(),
    @extschema@.ha_health(),
    @extschema@.ha_endpoint_check(text, text),
    @extschema@.ha_file_sync_status()
   TO crawler_ha_agent;
-- The load balancers' checks: whoever may read ha_health() may ask them.
GRANT EXECUTE ON FUNCTION @extschema@.ha_endpoint_check(text, text)
   TO crawler_ha_reader, crawler_ha_writer, crawler_ha_admin;
GRANT EXECUTE ON FUNCTION @extschema@.ha_file_sync_status() TO crawler_ha_reader, crawler_ha_admin;

-- Metrics (75_metrics.sql): the agent's /metrics reads them as the reader.
-- ha_metrics() runs as its caller, who reads every table it reads already,
-- classifies errors with crawl_error_kind() and rates sessions with
-- crawl_success_rate() (pure functions, crawl_status()'s rule), so the same
-- roles may execute those too.
GRANT EXECUTE ON FUNCTION @extschema@.ha_metrics(), @extschema@.crawl_error_kind(text),
    @extschema@.crawl_success_rate(@extschema@.crawl_session_totals)
   TO crawler_ha_reader, crawler_ha_admin;
-- Its backup figures (82_backup_metrics.sql) come from ha_backup_summary(),
-- which runs as its caller too and reads ha_backups and ha_events, both
-- readable by these roles: the same grant, and nothing more.
GRANT EXECUTE ON FUNCTION @extschema@.ha_backup_summary() TO crawler_ha_reader, crawler_ha_admin;

-- Alerts (77_alerts.sql): the agent evaluates and delivers them; readers
-- see them; only the admin changes their thresholds and cooldowns.
GRANT EXECUTE ON FUNCTION @extschema@.ha_alert_evaluate(double precision),
                          @extschema@.ha_alert_notified(text, jsonb, text)
   TO crawler_ha_agent;
GRANT EXECUTE ON FUNCTION @extschema@.ha_alerts() TO crawler_ha_reader, crawler_ha_admin, crawler_ha_agent;
GRANT EXECUTE ON FUNCTION @extschema@.ha_alert_configure(text, double precision, integer, boolean) TO crawler_ha_admin;

-- Backups (80_backups.sql): the admin runs them (a freeze of writes is an
-- operator's act), readers and the admin list them. ha_backups() runs as
-- its caller, so both read the table with their own SELECT.
REVOKE ALL ON @extschema@.ha_backups FROM PUBLIC;
GRANT SELECT ON @extschema@.ha_backups TO crawler_ha_reader, crawler_ha_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.ha_backup_begin(),
    @extschema@.ha_backup_freeze(text),
    @extschema@.ha_backup_record(text, text, text, text, timestamptz, timestamptz, pg_lsn, pg_lsn, text, text,
                                 bigint, bigint, bigint, bigint, boolean, text, pg_lsn, xid8, text[]),
    @extschema@.ha_backup_failed(text, text, text, text),
    @extschema@.ha_backup_blob_manifest(),
    @extschema@.ha_backup_record_blobs(text, text, text),
    @extschema@.ha_backup_blobs_done(text, text, boolean, bigint, bigint, text)
   TO crawler_ha_admin;
GRANT EXECUTE ON FUNCTION @extschema@.ha_backups() TO crawler_ha_reader, crawler_ha_admin;
-- Restores (84_restore.sql): the admin records a restore test, as it
-- records a backup; ha_restored() is the superuser's alone, on a server
-- just restored, before anyone else connects.
GRANT EXECUTE ON FUNCTION @extschema@.ha_backup_restore_tested(text, text, boolean, jsonb) TO crawler_ha_admin;
