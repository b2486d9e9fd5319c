-- SECURITY DEFINER functions run as the extension's owner, a superuser.
-- Nothing a caller chooses may make them run the caller's code or read what
-- the caller may not: the consistency functions accept only the replicated
-- data tables, refused before anything of any other relation is read; every
-- definer pins its search_path; and no definer takes an argument that names
-- a relation, type or function except those that check it against that list.
BEGIN;
SELECT * FROM no_plan();

CREATE ROLE tap_admin LOGIN IN ROLE crawler_ha_admin;
CREATE ROLE tap_nobody LOGIN;

-- A table the admin may not read.
CREATE TABLE public.tap_private (id bigint PRIMARY KEY, secret text);
INSERT INTO public.tap_private VALUES (1, 'only for the owner'), (42, 'and this');
REVOKE ALL ON public.tap_private FROM PUBLIC;

-- The exploit, as the admin: a temporary table whose column has a domain
-- whose CHECK calls the admin's own function. Whoever evaluates that CHECK
-- runs the function; run as a superuser, it makes the admin one. What it did
-- is counted in sequences, which a rollback does not undo: the refused call
-- (and the transaction around each throws_ok) cannot hide that it ran.
SET ROLE tap_admin;
CREATE TEMP SEQUENCE tap_spy_calls;
CREATE TEMP SEQUENCE tap_spy_as_superuser;
CREATE TEMP SEQUENCE tap_spy_escalated;
CREATE FUNCTION pg_temp.tap_spy(v integer) RETURNS boolean
LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM pg_catalog.nextval('pg_temp.tap_spy_calls');
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        PERFORM pg_catalog.nextval('pg_temp.tap_spy_as_superuser');
        BEGIN
            EXECUTE 'ALTER ROLE tap_admin SUPERUSER';
            PERFORM pg_catalog.nextval('pg_temp.tap_spy_escalated');
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END IF;
    RETURN true;
END
$f$;
CREATE DOMAIN pg_temp.tap_trap AS integer CHECK (pg_temp.tap_spy(VALUE));
CREATE TEMP TABLE tap_victim (id bigint PRIMARY KEY, v pg_temp.tap_trap);
INSERT INTO tap_victim VALUES (1, 1);
-- The same, named like a data table: a temporary table comes first in the
-- caller's search_path, so 'images' names this one.
CREATE TEMP TABLE images (id bigint PRIMARY KEY, v pg_temp.tap_trap);
RESET ROLE;
SELECT is((SELECT last_value FROM pg_temp.tap_spy_calls), 1::bigint, 'the trap works: the insert ran the admin''s function');
SELECT is((SELECT is_called FROM pg_temp.tap_spy_as_superuser), false, '... as the admin, not as a superuser');

SET ROLE tap_admin;
SELECT throws_ok(q, '22023', NULL, 'admin: ' || q || ' is refused (22023)')
  FROM unnest(ARRAY[
    'SELECT * FROM ha_diff(''tap_victim'')',
    'SELECT * FROM ha_diff(''tap_victim'', recheck => ''0'')',
    'SELECT * FROM ha_diff(''images'')',
    'SELECT * FROM ha_check_consistency(ARRAY[''tap_victim''::regclass])',
    'SELECT * FROM ha_check_consistency(ARRAY[''public.images'', ''tap_victim'']::regclass[])',
    'SELECT * FROM ha_check_consistency(ARRAY[''images''::regclass])',
    'SELECT * FROM ha_diff(''public.tap_private'')',
    'SELECT * FROM ha_check_consistency(ARRAY[''public.tap_private''::regclass])',
    'SELECT * FROM ha_check_consistency(ARRAY[''pg_catalog.pg_authid''::regclass])',
    'SELECT * FROM ha_diff(''pg_catalog.pg_authid'')',
    'SELECT * FROM ha_diff(''public.ha_sync_log'')',
    'SELECT * FROM ha_diff(''public.ha_state'')',
    'SELECT * FROM ha_diff(4294967295::oid::regclass)',
    'SELECT * FROM ha_merge_rows(''tap_victim'', ''[]'')'
  ]) q;
RESET ROLE;
SELECT is((SELECT last_value FROM pg_temp.tap_spy_calls), 1::bigint,
          'the admin''s function never ran inside the refused calls');
SELECT is((SELECT is_called FROM pg_temp.tap_spy_as_superuser), false,
          'the admin''s function never ran as the extension''s owner');
SELECT is((SELECT is_called FROM pg_temp.tap_spy_escalated), false, 'the admin never became a superuser');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'tap_admin'), false, 'tap_admin is not a superuser');

-- The refusal names the table with its schema and lists the allowed ones.
SET ROLE tap_admin;
SELECT throws_like('SELECT * FROM ha_diff(''images'')', 'pg_temp_%.images is not a crawler_ha data table',
                   'a temporary "images" is named as the temporary table it is');
RESET ROLE;

-- The data tables themselves are accepted: the call gets past the check to
-- the peer (none here: 08001), by name or through the search_path.
SELECT throws_ok(format('SELECT * FROM ha_diff(%L)', t), '08001', NULL, 'admin: ha_diff(' || t || ') is accepted')
  FROM unnest(ARRAY['public.images', 'crawl_sessions', 'crawl_hosts', 'crawl_frontier']) t
 WHERE coalesce(current_setting('crawler_ha.peer_conninfo', true), '') = '';

-- The internal functions check the same list themselves (they are what the
-- peer runs, and what every SECURITY DEFINER function here goes through).
SELECT throws_ok(q, '22023', NULL, q || ' -> 22023')
  FROM unnest(ARRAY[
    'SELECT ha_table_key(''tap_victim'')',
    'SELECT ha_table_summary(''tap_victim'')',
    'SELECT ha_table_bounds(''tap_victim'')',
    'SELECT ha_range_hashes(''tap_victim'', ''[[0, 10]]'', 4)',
    'SELECT ha_range_rows(''tap_victim'', ''[[0, 10]]'')',
    'SELECT ha_apply_rows(''tap_victim'', ''[{"id": 2, "v": 2}]'', ''[]'')',
    'SELECT ha_table_summary(''public.tap_private'')',
    'SELECT ha_range_rows(''public.tap_private'', ''[[0, 100]]'')'
  ]) q;
SELECT is((SELECT last_value FROM pg_temp.tap_spy_calls), 1::bigint, 'the internal functions did not run it either');
SELECT throws_ok('SELECT ha_table_key(NULL)', '22004', NULL, 'ha_table_key(NULL) -> 22004');
SELECT is((SELECT count(*) FROM ha_table_key(t)), 1::bigint, 'ha_table_key(' || t::text || ') works')
  FROM unnest(ha_data_tables()) t;

-- A standby, or a read-only transaction, refuses the check up front with
-- 25006 and says where to run it (it records every check in this node's
-- ha_sync_log and ha_events), instead of failing at its first INSERT.
LOCK TABLE ha_state IN EXCLUSIVE MODE;  -- as a demotion does
UPDATE ha_state SET role = 'standby', primary_name = 'tap_primary';
SET ROLE tap_admin;
SELECT throws_ok('SELECT * FROM ha_check_consistency()', '25006',
                 format('ha_check_consistency() runs on the primary; node %s is the standby', (SELECT node_name FROM ha_node)),
                 'on a standby: 25006, naming the node and its role');
SELECT throws_ok('SELECT * FROM ha_check_consistency(ARRAY[''tap_victim''::regclass])', '22023', NULL,
                 'on a standby too, another table is refused as such');
RESET ROLE;
UPDATE ha_state SET role = 'primary', primary_name = (SELECT node_name FROM ha_node);

-- Bookkeeping on per-node tables commits without waiting for a synchronous
-- standby, but never at the expense of the caller's own writes: this
-- transaction has written already, so the setting stays as it was.
SELECT is(ha_commit_locally(), false, 'a transaction that has written keeps its synchronous_commit');
SELECT is(current_setting('synchronous_commit'), 'on', 'synchronous_commit is still on');

-- Every SECURITY DEFINER function of the extension pins its search_path to
-- pg_catalog, pg_temp (pg_temp last: a caller's temporary objects never
-- shadow anything it names).
SELECT is(ARRAY(SELECT p.oid::regprocedure::text
                  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
                  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crawler_ha'
                 WHERE p.prosecdef AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
                 ORDER BY 1),
          '{}'::text[], 'every SECURITY DEFINER function sets search_path = pg_catalog, pg_temp');
-- ... and none is owned by anyone but the extension's owner.
SELECT is(ARRAY(SELECT p.oid::regprocedure::text
                  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
                  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crawler_ha'
                 WHERE p.proowner <> e.extowner ORDER BY 1),
          '{}'::text[], 'every function belongs to the extension''s owner');

-- No SECURITY DEFINER function takes an argument that names a relation,
-- type, function or operator, or a value of any type (polymorphic, record),
-- except these, each of which accepts only ha_data_tables(). A new one must
-- be reviewed and added here.
SELECT is(ARRAY(SELECT DISTINCT p.oid::regprocedure::text
                  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
                  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crawler_ha',
                       unnest(p.proargtypes::oid[]) a(t)
                  JOIN pg_type ty ON ty.oid = a.t
                 WHERE p.prosecdef
                   AND (ty.typname IN ('regclass', '_regclass', 'regtype', '_regtype', 'regproc', 'regprocedure',
                                       'regoper', 'regoperator', 'regnamespace', 'regrole', 'regconfig',
                                       'regdictionary', 'regcollation', 'oid', 'name')
                        OR ty.typtype = 'p' OR ty.typtype = 'c' OR ty.typtype = 'd')
                 ORDER BY 1),
          ARRAY['ha_check_consistency(regclass[])', 'ha_diff(regclass,integer,integer,interval)',
                'ha_merge_receive(regclass,text,text[],jsonb,text,bigint,integer,integer)',
                'ha_merge_rows(regclass,jsonb,jsonb,text,bigint)'],
          'only the reviewed SECURITY DEFINER functions take a relation, type or function argument');

-- A login with no crawler_ha role may call nothing of the extension.
SELECT is(ARRAY(SELECT p.oid::regprocedure::text
                  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
                  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crawler_ha'
                 WHERE has_function_privilege('tap_nobody', p.oid, 'EXECUTE') ORDER BY 1),
          '{}'::text[], 'PUBLIC may execute no function of the extension');

-- The functions that send SQL text to the peer are for superusers only,
-- whoever has EXECUTE on them.
SET ROLE tap_admin;
SELECT throws_ok(q, '42501', NULL, 'admin: ' || q || ' is refused')
  FROM unnest(ARRAY['SELECT ha_peer_query(''SELECT 1'')', 'SELECT ha_peer_send(''SELECT 1'')',
                    'SELECT ha_peer_receive()', 'SELECT ha_peer_call(''1'')', 'SELECT ha_peer_begin(''1'')',
                    'SELECT ha_alter_system(''work_mem'', ''1GB'')', 'SELECT ha_request(''pause'')']) q;
RESET ROLE;
-- (and granting EXECUTE on them opens nothing)
GRANT EXECUTE ON FUNCTION ha_peer_query(text, integer), ha_peer_send(text, text[], integer), ha_peer_receive(),
                          ha_alter_system(text, text), ha_request(text, text, boolean) TO tap_admin;
SET ROLE tap_admin;
SELECT throws_ok(q, '42501', 'only a superuser may ' || m, 'even with EXECUTE: ' || q || ' is for superusers')
  FROM (VALUES ('SELECT ha_peer_query(''SELECT 1'')', 'call ha_peer_query() directly'),
               ('SELECT ha_peer_send(''SELECT 1'')', 'query the peer directly'),
               ('SELECT ha_peer_receive()', 'query the peer directly'),
               ('SELECT ha_alter_system(''work_mem'', ''1GB'')', 'call ha_alter_system() directly'),
               ('SELECT ha_request(''pause'')', 'call ha_request() directly')) v(q, m);
RESET ROLE;

-- Last, as nothing but temporary tables can be written after it: in a
-- read-only transaction (a fenced primary's) the check refuses up front too.
SET LOCAL transaction_read_only = on;
SET ROLE tap_admin;
SELECT throws_ok('SELECT * FROM ha_check_consistency()', '25006',
                 'ha_check_consistency() needs a read-write transaction', 'in a read-only transaction: 25006');
RESET ROLE;
SELECT is((SELECT last_value FROM pg_temp.tap_spy_calls), 1::bigint, 'the admin''s function never ran but for the insert');

SELECT * FROM finish();
ROLLBACK;
