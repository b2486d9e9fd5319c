-- The write fence (ha_assert_writable(), C) and the lock order it relies on:
-- a write holds ha_state in ROW EXCLUSIVE mode to its commit and writes
-- nothing for it (no tuple lock, so no WAL record and no multixact); a change
-- of ha_state that stops this primary's writes must first take ha_state in
-- EXCLUSIVE mode, which ha_state's update trigger enforces. Callers and
-- signatures. Everything rolls back.
BEGIN;
SELECT * FROM no_plan();

SELECT ok(to_regprocedure('public.ha_assert_writable()') IS NOT NULL, 'ha_assert_writable() exists');
SELECT is((SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid = 'public.ha_assert_writable()'::regprocedure), 'c', '... in C');
SELECT ok(NOT (SELECT prosecdef FROM pg_proc WHERE oid = 'public.ha_assert_writable()'::regprocedure),
          '... not SECURITY DEFINER: the write functions that call it are');
SELECT ok(to_regprocedure('public.ha_state_fence_held()') IS NOT NULL, 'ha_state_fence_held() exists');
SELECT matches(obj_description(f::regprocedure, 'pg_proc'), '^crawler_ha: ', f || ' has a COMMENT')
  FROM unnest(ARRAY['public.ha_assert_writable()', 'public.ha_state_fence_held()']) f;

-- Wrong callers: neither is anybody's but the owner's.
SET LOCAL ROLE crawler_ha_writer;
SELECT throws_ok('SELECT ha_assert_writable()', '42501', NULL, 'the writer cannot call ha_assert_writable() directly');
SELECT throws_ok('SELECT ha_state_fence_held()', '42501', NULL, 'nor ha_state_fence_held()');
RESET ROLE;
SET LOCAL ROLE crawler_ha_reader;
SELECT throws_ok('SELECT ha_assert_writable()', '42501', NULL, 'nor can the reader');
RESET ROLE;

-- A write API call through the writer: the fence's lock, and no tuple lock.
SELECT is((SELECT role FROM ha_state), 'primary', 'this node is a primary');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation'
                        AND relation = 'public.ha_state'::regclass AND mode = 'RowExclusiveLock'),
          'before any write, this transaction holds no lock on ha_state');
CREATE TEMP TABLE xmax_before AS SELECT xmax AS row_xmax FROM ha_state;
SET LOCAL ROLE crawler_ha_writer;
SELECT ok(crawl_start(ARRAY['http://fence.test/']) > 0, 'the writer starts a crawl');
RESET ROLE;
SELECT ok(EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation'
                    AND relation = 'public.ha_state'::regclass AND mode = 'RowExclusiveLock' AND granted),
          'the write holds ha_state in ROW EXCLUSIVE mode until its transaction ends');
SELECT is((SELECT xmax::text FROM ha_state), (SELECT row_xmax::text FROM xmax_before),
          'and has not locked the state row (its xmax is unchanged: nothing WAL-logged)');
SELECT isnt((SELECT xmax::text FROM ha_state), pg_current_xact_id()::xid::text, '... nor holds it by this transaction''s id');
SELECT is(ha_state_fence_held(), false, 'ROW EXCLUSIVE is not the fence''s EXCLUSIVE lock');
SELECT lives_ok('SELECT ha_assert_writable()', 'ha_assert_writable() passes on the writable primary');

-- A change that stops this primary's writes, without the fence's lock: refused.
SELECT throws_ok('UPDATE ha_state SET fenced = true', '55000', NULL,
                 'fencing the primary without ha_state in EXCLUSIVE mode is refused');
SELECT throws_ok('UPDATE ha_state SET role = ''standby''', '55000', NULL,
                 'so is stepping it down');
SELECT lives_ok('UPDATE ha_state SET paused = paused', 'an update that does not stop writes needs no lock');
SELECT is((SELECT fenced FROM ha_state), false, 'the state is unchanged');

-- With the lock: allowed, and the very next write sees it.
LOCK TABLE ha_state IN EXCLUSIVE MODE;
SELECT is(ha_state_fence_held(), true, 'after LOCK TABLE ha_state IN EXCLUSIVE MODE the fence''s lock is held');
SELECT lives_ok('UPDATE ha_state SET fenced = true', 'fencing with the lock is allowed');
SELECT throws_ok('SELECT ha_assert_writable()', '25006', NULL, 'and the fence refuses the next write at once');
SET LOCAL ROLE crawler_ha_writer;
SELECT throws_ok('SELECT crawl_start(ARRAY[''http://fence.test/2''])', '25006', NULL,
                 'a write API call is refused with 25006');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
