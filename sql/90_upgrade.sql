-- Upgrade path: install a named version, then update to the default one.
-- With one released version this proves the machinery; each new version adds
-- its crawler_ha--a--b.sql and this file's expected output grows with it.
\set SHOW_CONTEXT never
DROP EXTENSION crawler_ha;
CREATE EXTENSION crawler_ha VERSION '1.0';
ALTER EXTENSION crawler_ha UPDATE;
SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'crawler_ha') AS at_default
  FROM pg_extension WHERE extname = 'crawler_ha';
SELECT count(*) > 0 AS api_present FROM pg_proc WHERE proname = 'crawl_claim';
