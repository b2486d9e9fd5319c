-- The extension goes into the schema given to CREATE EXTENSION, and works
-- from there under any search_path.
\set SHOW_CONTEXT never
DROP EXTENSION crawler_ha;
CREATE SCHEMA crawl;
CREATE EXTENSION crawler_ha SCHEMA crawl;
SELECT n.nspname, count(*) AS tables FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname IN ('images', 'crawl_sessions', 'crawl_frontier', 'crawl_hosts', 'ha_node') GROUP BY 1;
SET search_path = pg_catalog;
SELECT crawl.crawl_start(ARRAY['http://schema.test/'], '{"delay_ms": 0}') AS s \gset
SELECT url, depth FROM crawl.crawl_claim('w', 5);
SELECT has_schema_privilege('crawler_ha_writer', 'crawl', 'USAGE') AS writer_uses_schema;
RESET search_path;
DROP EXTENSION crawler_ha;
DROP SCHEMA crawl;
CREATE EXTENSION crawler_ha;
