-- ha_endpoint_check(): the rule behind the load balancers' checks that the
-- node agent serves (GET /primary, /replica, /read-only, /health). Its
-- signature and who may call it, bad arguments with their SQLSTATEs (an
-- endpoint or a max_lag comes from an HTTP request), and its answers on this
-- node: one server with the extension, never set up as a pair, so the
-- primary of term 0, where the 'primary' check must agree with
-- ha_health().writable. A standby's answers need a pair: a TAP test has them.
BEGIN;
SELECT * FROM plan(64);

-- Signature, SECURITY DEFINER, a pinned search_path, a comment.
SELECT has_function('public', 'ha_endpoint_check', ARRAY['text', 'text'], 'ha_endpoint_check(text, text) exists');
SELECT is(pg_get_function_arguments('public.ha_endpoint_check(text,text)'::regprocedure),
          'endpoint text, max_lag text DEFAULT NULL::text', 'its arguments: endpoint, max_lag defaulting to NULL');
SELECT is(pg_get_function_result('public.ha_endpoint_check(text,text)'::regprocedure),
          'TABLE(ok boolean, reason text, lag_bytes bigint)', 'it returns (ok, reason, lag_bytes)');
SELECT is_definer('public', 'ha_endpoint_check', ARRAY['text', 'text'], 'it is SECURITY DEFINER');
SELECT ok((SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_proc
            WHERE oid = 'public.ha_endpoint_check(text,text)'::regprocedure), 'it has a fixed search_path');
SELECT isnt(obj_description('public.ha_endpoint_check(text,text)'::regprocedure, 'pg_proc'), NULL, 'it has a COMMENT');

-- Privileges: the roles that may call ha_health(), nobody else.
SELECT function_privs_are('public', 'ha_endpoint_check', ARRAY['text', 'text'], r, ARRAY['EXECUTE'],
                          r || ' may execute ha_endpoint_check')
  FROM unnest(ARRAY['crawler_ha_reader', 'crawler_ha_writer', 'crawler_ha_admin', 'crawler_ha_agent']) r;
SELECT function_privs_are('public', 'ha_endpoint_check', ARRAY['text', 'text'], 'public', '{}',
                          'PUBLIC may not execute ha_endpoint_check');

-- The SQLSTATE and message of a statement's error, or NULL.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- The endpoint: NULL is 22004; any other name 22023, naming the accepted
-- ones and repeating no more than about 80 characters of what came.
SELECT throws_ok('SELECT * FROM ha_endpoint_check(NULL)', '22004', 'endpoint must not be NULL',
                 'a NULL endpoint -> 22004');
SELECT throws_ok('SELECT * FROM ha_endpoint_check(NULL, ''16MB'')', '22004', 'endpoint must not be NULL',
                 'a NULL endpoint with a max_lag -> 22004');
SELECT throws_ok(format('SELECT * FROM ha_endpoint_check(%L)', e), '22023',
                 format('endpoint must be primary, read-write, replica, read-only or health, not "%s"', e),
                 format('endpoint %L -> 22023', e))
  FROM unnest(ARRAY['', 'Primary', 'master', 'standby', ' health', 'primary ', 'read_only', 'readonly',
                    'replica''; DROP TABLE images; --', '%s%n']) e;
SELECT throws_ok(format('SELECT * FROM ha_endpoint_check(%s)', e), '22023', NULL, format('endpoint %s -> 22023', e))
  FROM unnest(ARRAY['repeat(''x'', 1000000)', 'repeat(''é'', 1000)', 'E''health\n''', 'E''\x01''']) e;
SELECT cmp_ok(length(pg_temp.err(format('SELECT * FROM ha_endpoint_check(%s)', e))), '<', 200,
              format('endpoint %s: the message repeats at most about 80 characters of it', e))
  FROM unnest(ARRAY['repeat(''x'', 1000000)', 'repeat(''é'', 1000)']) e;
SELECT is(pg_temp.err('SELECT * FROM ha_endpoint_check(E''a\nb\tc'')'),
          '22023: endpoint must be primary, read-write, replica, read-only or health, not "a?b?c"',
          'control characters in an endpoint are not repeated into the log');

-- max_lag: read by pg_size_bytes(), with its errors, for every endpoint.
SELECT throws_ok(format('SELECT * FROM ha_endpoint_check(%L, %L)', e, l), s, NULL,
                 format('max_lag %L for %s -> %s', l, e, s))
  FROM (VALUES ('replica', 'abc', '22023'), ('replica', '', '22023'), ('replica', '16 XB', '22023'),
               ('replica', '-1', '22023'), ('replica', '-1 kB', '22023'),
               ('replica', '99999999999999999999PB', '22003'), ('read-only', 'abc', '22023'),
               ('health', '-1', '22023'), ('primary', '99999999999999999999PB', '22003')) AS x(e, l, s);
SELECT throws_ok('SELECT * FROM ha_endpoint_check(''replica'', ''-1'')', '22023',
                 'max_lag must not be negative: "-1"', 'a negative max_lag says so');
SELECT throws_ok('SELECT * FROM ha_endpoint_check(''replica'', repeat(''9'', 100000))', '22023', NULL,
                 'a max_lag of 100000 characters -> 22023');
SELECT cmp_ok(length(pg_temp.err('SELECT * FROM ha_endpoint_check(''replica'', repeat(''9'', 100000))')), '<', 200,
              'and its message repeats at most about 80 characters of it');
SELECT lives_ok(format('SELECT * FROM ha_endpoint_check(''replica'', %s)', l), format('max_lag %s is a size', l))
  FROM unnest(ARRAY['NULL', '''16MB''', '''1 kB''', '''1048576''', '''0''', ''' 2 GB ''']) l;

-- This node's answers. Wait (at most 30 s) for the HA worker to have read
-- this node's state, as a load balancer's first check after a start would.
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        EXIT WHEN (SELECT healthy FROM public.ha_health());
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT is((SELECT role || ' ' || term FROM ha_health()), 'primary 0',
          'this node is the primary of term 0 (never set up as a pair)');
SELECT is((SELECT ok FROM ha_endpoint_check(e)), (SELECT writable FROM ha_health()),
          e || ': ok exactly when ha_health() says writable')
  FROM unnest(ARRAY['primary', 'read-write']) e;
SELECT is((SELECT row(c.ok, c.reason, c.lag_bytes)::text FROM ha_endpoint_check(e) c),
          (SELECT row(true, 'the writable primary of term ' || h.term, h.lag_bytes)::text FROM ha_health() h),
          e || ': ok, as the writable primary, with the lag ha_health() shows')
  FROM unnest(ARRAY['primary', 'read-write', 'read-only']) e;
SELECT is((SELECT row(c.ok, c.reason, c.lag_bytes)::text FROM ha_endpoint_check('replica', l) c),
          (SELECT row(false, 'this node is the primary (term ' || h.term || '), not a standby', h.lag_bytes)::text
             FROM ha_health() h),
          format('replica (max_lag %s): not ok, a primary is no standby', coalesce(l, 'NULL')))
  FROM unnest(ARRAY[NULL, '1 TB']) l;
SELECT is((SELECT row(c.ok, c.reason)::text FROM ha_endpoint_check('health') c),
          (SELECT row(true, 'this node is the primary of term ' || h.term)::text FROM ha_health() h),
          'health: ok, naming the role and the term');
SELECT is((SELECT count(*) FROM ha_endpoint_check('health', '0')), 1::bigint, 'one row, whatever the endpoint');

-- Each role that may call it, for real; a role without the grant gets 42501.
CREATE ROLE tap_ep_agent LOGIN IN ROLE crawler_ha_agent;
CREATE ROLE tap_ep_reader LOGIN IN ROLE crawler_ha_reader;
CREATE ROLE tap_ep_nobody LOGIN;
SET ROLE tap_ep_agent;
SELECT is((SELECT ok FROM ha_endpoint_check('primary')), true, 'the agent: primary is ok here');
SELECT is((SELECT ok FROM ha_endpoint_check('replica', '16MB')), false, 'the agent: replica is not');
RESET ROLE;
SET ROLE tap_ep_reader;
SELECT is((SELECT ok FROM ha_endpoint_check('health')), true, 'a reader: health is ok');
RESET ROLE;
SET ROLE tap_ep_nobody;
SELECT throws_ok(q, '42501', NULL, 'a role without the grant: ' || q || ' is refused')
  FROM unnest(ARRAY['SELECT * FROM ha_endpoint_check(''health'')',
                    'SELECT * FROM ha_endpoint_check(''primary'', ''16MB'')']) q;
RESET ROLE;

-- The caller's search_path changes nothing: the size is read by PostgreSQL's
-- own pg_size_bytes(), the catalogs are pg_catalog's.
CREATE SCHEMA tap_hostile;
CREATE FUNCTION tap_hostile.pg_size_bytes(text) RETURNS bigint LANGUAGE sql AS $$ SELECT -1::bigint $$;
CREATE TABLE tap_hostile.pg_subscription (subname text);
SET search_path = tap_hostile, public;
SELECT is((SELECT row(c.ok, c.reason)::text FROM ha_endpoint_check('replica', '16MB') c),
          (SELECT row(false, 'this node is the primary (term ' || h.term || '), not a standby')::text FROM ha_health() h),
          'a hostile search_path changes no answer');
RESET search_path;

SELECT * FROM finish();
ROLLBACK;
