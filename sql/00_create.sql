-- The extension installs into the current schema and checks its library.
\set SHOW_CONTEXT never
CREATE EXTENSION crawler_ha;
SELECT extversion, extrelocatable FROM pg_extension WHERE extname = 'crawler_ha';
SELECT crawler_ha_library_version() = (SELECT extversion FROM pg_extension WHERE extname = 'crawler_ha') AS library_matches;
-- This node's number and name come from crawler_ha.node_id / node_name.
SELECT node_id, node_name FROM ha_node;
-- Every id this node hands out is congruent to its node id modulo 1024.
SELECT seqrelid::regclass, seqstart, seqincrement FROM pg_sequence
 WHERE seqrelid::regclass::text IN ('crawl_sessions_id_seq', 'crawl_frontier_id_seq', 'images_id_seq')
 ORDER BY seqrelid::regclass::text;
-- The data tables and the functions of the write API (the HA tests cover ha_*).
SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname !~ '^ha_' OR c.relname = 'ha_node' ORDER BY 1;
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer,
       p.proconfig AS settings, obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND p.proname ~ '^(crawl|image)_' ORDER BY p.oid::regprocedure::text;
-- Roles exist and cannot log in.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'crawler_ha_%' ORDER BY 1;
