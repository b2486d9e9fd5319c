-- The witness's SQL side, on this node turned into a witness inside
-- the transaction: reports adopt a primary's newer term, a grant is refused
-- while the primary reports, to a stale or an unknown term, and given once
-- the primary has been silent long enough; the same candidate asking again
-- gets the same term; a stale primary learns the newer term from a report.
BEGIN;
SELECT * FROM no_plan();

SELECT is(ha_setup('witness'), 'witness', 'ha_setup(''witness'') on an empty node');
SELECT is(ha_setup('witness'), 'witness', 'and again: idempotent');
SELECT is((SELECT role FROM ha_state), 'witness', 'ha_state says witness');
SELECT is((SELECT count(*) FROM pg_publication WHERE pubname = 'crawler_ha_pub'), 0::bigint, 'no publication');
SELECT throws_ok('SELECT ha_setup(''primary'')', '55000', NULL, 'the witness cannot become a data node');
SELECT throws_ok('SELECT crawl_start(ARRAY[''http://witness.test/''])', '25006', NULL,
                 'the write API refuses on the witness');

-- a primary of term 3 reports (a witness added later): adopted
SELECT results_eq($$SELECT witness_term, primary_name, primary_node_id
                      FROM ha_witness_report(501, 'pa', 'primary', 3, false, '0/10'::pg_lsn, true, 60000, 1000, 3000)$$,
                  $$VALUES (3::bigint, 'pa'::text, 501)$$, 'a primary''s newer term is adopted');
SELECT is((SELECT reason FROM ha_terms WHERE term = 3), 'reported by its primary', 'and recorded in ha_terms');
SELECT results_eq($$SELECT witness_term FROM ha_witness_report(502, 'pb', 'standby', 3, false, NULL, false, 60000, 1000, 3000)$$,
                  $$VALUES (3::bigint)$$, 'a standby reports');
SELECT results_eq($$SELECT witness_term FROM ha_witness_report(502, 'pb', 'standby', 9, false, NULL, false, 60000, 1000, 3000)$$,
                  $$VALUES (3::bigint)$$, 'a standby''s term is never adopted');
SELECT is((SELECT count(*) FROM ha_witness_seen()), 2::bigint, 'ha_witness_seen() lists both');
SELECT is((SELECT reports FROM ha_witness_nodes WHERE node_id = 502), 2::bigint, 'reports are counted');

-- the primary reported just now and fences only after 60 s: refused
SELECT results_eq($$SELECT granted, term FROM ha_witness_grant(502, 'pb', 3, 100000)$$,
                  $$VALUES (false, 3::bigint)$$, 'refused while the primary reports');
SELECT matches((SELECT reason FROM ha_witness_grant(502, 'pb', 3, 100000)),
               'the primary pa reported to the witness \d+ ms ago', 'the refusal says why');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'grant_refused'), 1::bigint,
          'the refusal is recorded once (not on every request)');
SELECT matches((SELECT reason FROM ha_witness_grant(502, 'pb', 2, 100000)), '^stale', 'a stale candidate is refused');
SELECT matches((SELECT reason FROM ha_witness_grant(502, 'pb', 4, 100000)), 'never heard of term 4',
               'a term the witness never heard of is refused');

-- the primary went silent long enough (its fence_timeout 0, interval 0: 500 ms)
UPDATE ha_witness_nodes SET last_heard = now() - interval '1 day', fence_timeout_ms = 0, interval_ms = 0
 WHERE node_id = 501;
SELECT pg_sleep(0.6);  -- the witness counts silence from its own start at the earliest
SELECT matches((SELECT reason FROM ha_witness_grant(502, 'pb', 3, 10)), 'the candidate heard from the primary pa 10 ms ago',
               'refused while the candidate itself heard from the primary recently');
SELECT results_eq($$SELECT granted, term, primary_name FROM ha_witness_grant(502, 'pb', 3, 100000, 'test')$$,
                  $$VALUES (true, 4::bigint, 'pb'::text)$$, 'granted: term 4 to pb');
SELECT results_eq($$SELECT term, primary_name, primary_node_id FROM ha_state$$,
                  $$VALUES (4::bigint, 'pb'::text, 502)$$, 'the witness is at term 4 with primary pb');
SELECT matches((SELECT reason FROM ha_terms WHERE term = 4), '^granted by the witness: test', 'ha_terms holds the grant');
SELECT is((SELECT count(*) FROM ha_events WHERE kind = 'grant'), 1::bigint, 'a grant event');
SELECT results_eq($$SELECT granted, term FROM ha_witness_grant(502, 'pb', 3, 100000)$$,
                  $$VALUES (true, 4::bigint)$$, 'the same candidate asking again gets the same term');
SELECT is((SELECT count(*) FROM ha_terms WHERE term > 4), 0::bigint, 'no second grant');
SELECT results_eq($$SELECT granted, term FROM ha_witness_grant(501, 'pa', 3, 100000)$$,
                  $$VALUES (false, 4::bigint)$$, 'the old primary cannot get a term with its stale one');
-- the old primary reports: it learns term 4 and who holds it
SELECT results_eq($$SELECT witness_term, primary_name FROM ha_witness_report(501, 'pa', 'primary', 3, true, NULL, false, 0, 0, 0)$$,
                  $$VALUES (4::bigint, 'pb'::text)$$, 'a stale primary learns the newer term from its report');
SELECT throws_ok(format('SELECT * FROM ha_witness_report(%s, ''me'', ''primary'', 1, false, NULL, false, 0, 0, 0)',
                        (SELECT node_id FROM ha_node)), '22023', NULL, 'the witness''s own node id is refused');

SELECT * FROM finish();
ROLLBACK;
