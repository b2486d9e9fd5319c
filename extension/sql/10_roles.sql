-- Roles with least privilege. Roles belong to the whole cluster, so they are
-- created once and survive DROP EXTENSION; every privilege is granted in
-- 90_grants.sql once all objects exist.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'crawler_ha_writer') THEN
        CREATE ROLE crawler_ha_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'crawler_ha_reader') THEN
        CREATE ROLE crawler_ha_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'crawler_ha_admin') THEN
        CREATE ROLE crawler_ha_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'crawler_ha_agent') THEN
        CREATE ROLE crawler_ha_agent NOLOGIN;
    END IF;
END
$roles$;

COMMENT ON ROLE crawler_ha_writer IS 'crawler_ha: may call the write API and read the crawl data, nothing else';
COMMENT ON ROLE crawler_ha_reader IS 'crawler_ha: may read the crawl data';
COMMENT ON ROLE crawler_ha_admin IS 'crawler_ha: may call the ha_* functions that change cluster state';
COMMENT ON ROLE crawler_ha_agent IS 'crawler_ha: the node agent: may call the blob_* functions, ha_status(), ha_health(), ha_endpoint_check() and ha_file_sync_status(), nothing else, and read no table';
