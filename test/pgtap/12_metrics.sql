-- ha_metrics(): every database-side metric of the node agent's /metrics in
-- one call, rendered by the agent as it is. Its signature and who may call
-- it; the rows' form (Prometheus names, one kind and one help per name,
-- counters named _total, flat string labels, no NULL or NaN, ordered by
-- name and labels); the values after crafting sessions, frontier items, HA
-- terms, consistency logs and the blob store; which sessions are listed;
-- crawl_error_kind()'s classification of the worker's errors; the backups'
-- figures (ha_backup_summary()) from crafted ha_backups rows and events,
-- their restore tests among them.
BEGIN;
SELECT * FROM no_plan();

-- Signature, SECURITY INVOKER, STABLE, a pinned search_path, a comment.
SELECT has_function('public', 'ha_metrics', ARRAY[]::text[], 'ha_metrics() exists');
SELECT is(pg_get_function_result('public.ha_metrics()'::regprocedure),
          'TABLE(name text, kind text, help text, labels jsonb, value double precision)',
          'it returns (name, kind, help, labels, value)');
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = 'public.ha_metrics()'::regprocedure), false,
          'it runs as its caller (SECURITY INVOKER)');
SELECT is((SELECT provolatile FROM pg_proc WHERE oid = 'public.ha_metrics()'::regprocedure), 's',
          'it is STABLE: one snapshot, and no statement in it may write');
SELECT ok((SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_proc
            WHERE oid = 'public.ha_metrics()'::regprocedure), 'it has a fixed search_path');
SELECT ok((SELECT 'jit=off' = ANY (proconfig) FROM pg_proc WHERE oid = 'public.ha_metrics()'::regprocedure),
          'it never pays for a JIT compilation');
SELECT matches(obj_description('public.ha_metrics()'::regprocedure, 'pg_proc'), '^crawler_ha: ', 'it has a COMMENT');
SELECT is((SELECT provolatile FROM pg_proc WHERE oid = 'public.crawl_error_kind(text)'::regprocedure), 'i',
          'crawl_error_kind() is IMMUTABLE (it reads nothing)');
SELECT matches(obj_description('public.crawl_error_kind(text)'::regprocedure, 'pg_proc'), '^crawler_ha: ',
               'crawl_error_kind() has a COMMENT');
SELECT is((SELECT provolatile::text || prosecdef::text FROM pg_proc WHERE oid = 'public.ha_backup_summary()'::regprocedure), 'sfalse',
          'ha_backup_summary() is STABLE and runs as its caller');
SELECT ok((SELECT 'search_path=pg_catalog, pg_temp' = ANY (proconfig) FROM pg_proc
            WHERE oid = 'public.ha_backup_summary()'::regprocedure), 'ha_backup_summary() has a fixed search_path');
SELECT matches(obj_description('public.ha_backup_summary()'::regprocedure, 'pg_proc'), '^crawler_ha: ',
               'ha_backup_summary() has a COMMENT');
SELECT is(pg_get_indexdef(i::regclass), d, i || ': ' || d)
  FROM (VALUES
    ('public.ha_backups_kept_idx', 'CREATE INDEX ha_backups_kept_idx ON public.ha_backups USING btree (stopped_at) WHERE (expired_at IS NULL)'),
    ('public.ha_backups_unverified_idx', 'CREATE INDEX ha_backups_unverified_idx ON public.ha_backups USING btree (recorded_at) WHERE (NOT verify_ok)'),
    ('public.ha_events_backup_failed_idx', 'CREATE INDEX ha_events_backup_failed_idx ON public.ha_events USING btree (at) WHERE ((kind = ''backup''::text) AND ((detail ->> ''ok''::text) = ''false''::text))')
  ) AS x(i, d);
SELECT is((SELECT pg_get_indexdef(indexrelid) FROM pg_index
            WHERE indexrelid = 'public.crawl_frontier_failed_at_idx'::regclass),
          'CREATE INDEX crawl_frontier_failed_at_idx ON public.crawl_frontier USING btree (updated_at) WHERE (state = ''failed''::text)',
          'the URLs that failed for good are indexed by their time');

-- Privileges: the reader (the agent's /metrics) and the admin; nobody else.
SELECT ok(has_function_privilege(r, f, 'EXECUTE'), r || ' may execute ' || f)
  FROM unnest(ARRAY['crawler_ha_reader', 'crawler_ha_admin']) r,
       unnest(ARRAY['public.ha_metrics()', 'public.crawl_error_kind(text)', 'public.ha_backup_summary()']) f;
SELECT ok(NOT has_function_privilege(r, f, 'EXECUTE'), r || ' may not execute ' || f)
  FROM unnest(ARRAY['crawler_ha_writer', 'crawler_ha_agent', 'public']) r,
       unnest(ARRAY['public.ha_metrics()', 'public.crawl_error_kind(text)', 'public.ha_backup_summary()']) f;

-- The error kinds: the worker's wording (worker/src) and libcurl's, old and new.
SELECT is(crawl_error_kind(e), k, format('crawl_error_kind(%L) = %s', e, k))
  FROM (VALUES
    ('HTTP 404', 'http_4xx'), ('HTTP 410 at http://x.test/b', 'http_4xx'),
    ('HTTP 429 (Retry-After 1 s)', 'http_4xx'), ('HTTP 403', 'http_4xx'),
    ('HTTP 500', 'http_5xx'), ('HTTP 503 at http://x.test/ (Retry-After 30 s)', 'http_5xx'),
    ('HTTP 301 redirect without a usable Location', 'redirect'),
    ('HTTP 302 redirect to an unusable Location ftp://x.test/', 'redirect'),
    ('too many redirects (more than 5 followed; the last to http://x.test/)', 'redirect'),
    ('invalid redirect target http://', 'redirect'),
    ('Timeout was reached: Operation too slow. Less than 1000 bytes/sec transferred the last 20 seconds', 'timeout'),
    ('Couldn''t resolve host name: Could not resolve host: nx.test', 'dns'),
    ('Could not resolve hostname: Could not resolve host: nx.test', 'dns'),
    ('SSL connect error: OpenSSL SSL_connect: Connection reset by peer', 'tls'),
    ('SSL peer certificate or SSH remote key was not OK: SSL certificate problem', 'tls'),
    ('Problem with the SSL CA cert (path? access rights?): x', 'tls'),
    ('Couldn''t connect to server: Failed to connect to x.test port 80', 'connection'),
    ('Could not connect to server: Failed to connect to x.test port 80', 'connection'),
    ('Transferred a partial file: transfer closed with 19900 bytes remaining to read', 'connection'),
    ('Failure when receiving data from the peer: Connection reset by peer', 'connection'),
    ('Server returned nothing (no headers, no data): x', 'connection'),
    ('Stream error in the HTTP/2 framing layer: x', 'connection'),
    ('too large: body larger than 52428800 bytes', 'too_large'),
    ('too large: the declared size is over the limit', 'too_large'),
    ('too many pixels: 100000x100000 is over max_pixels 100000000', 'too_large'),
    ('too large for the agent''s store (HTTP 413)', 'too_large'),
    ('disallowed by robots.txt', 'robots'),
    ('redirected to http://x.test/private: disallowed by robots.txt', 'robots'),
    ('robots.txt of x.test is unavailable (server error or unreachable)', 'robots'),
    ('not an image: the content is HTML text (Content-Type text/html)', 'content'),
    ('corrupt jpeg image: VipsJpeg: Premature end of JPEG file (Content-Type image/jpeg)', 'content'),
    ('not parsed: elements nest 140002 deep (the limit is 10000)', 'content'),
    ('not a sitemap: not well-formed XML: Premature end of data in tag urlset line 1 (line 1)', 'content'),
    ('store: No space left on device', 'storage'),
    ('store_full: the agent''s store is full (HTTP 507 store_full)', 'storage'),
    ('upload: the agent''s sha256 of the file differs (HTTP 422)', 'storage'),
    ('upload refused: HTTP 400 bad_request', 'storage'),
    ('session settings unavailable', 'other'), ('invalid URL', 'other'), ('lease expired', 'other'),
    ('HTTP 4040', 'other'), ('HTTP 99', 'other'), ('HTTP', 'other'), ('http 404', 'other'),
    ('redirected to http://x.test/', 'other'), ('disallowed by robots.txt!', 'other'), ('', 'other'),
    (' HTTP 404', 'other'), ('corrupt file', 'other'), ('été', 'other')
  ) AS x(e, k);
SELECT is(crawl_error_kind(NULL), 'other', 'crawl_error_kind(NULL) = other');
-- ... inlined into the statement that uses it (it runs once per recent failure).
CREATE TEMP TABLE errors_here (e text);
CREATE FUNCTION pg_temp.plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q;
END
$$;
SELECT unalike((SELECT string_agg(l, ' ') FROM pg_temp.plan('SELECT public.crawl_error_kind(e) FROM errors_here') l),
               '%crawl_error_kind%', 'crawl_error_kind() is inlined');

-- The HA worker has read this node's state (as in 10_endpoint_check).
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        EXIT WHEN (SELECT healthy FROM public.ha_health());
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;

-- The data. Session a runs; b runs with a URL queued and one leased; c was
-- stopped 23 hours ago and e finished an hour ago (both listed); d finished
-- 25 hours ago (not listed). now() is the transaction's start: fixed while
-- this file runs. Counters are written at commit: crawl_counts_flush() writes
-- them within this transaction, and the event counters are then set by hand.
SELECT crawl_start(ARRAY['http://a.test/']) AS a \gset
SELECT crawl_start(ARRAY['http://b.test/']) AS b \gset
SELECT crawl_start(ARRAY['http://c.test/']) AS c \gset
SELECT crawl_start(ARRAY['http://d.test/']) AS d \gset
SELECT crawl_start(ARRAY['http://e.test/']) AS e \gset
UPDATE crawl_sessions SET status = 'stopped', finished_at = now() - interval '23 hours' WHERE id = :c;
UPDATE crawl_sessions SET status = 'finished', finished_at = now() - interval '25 hours' WHERE id = :d;
UPDATE crawl_sessions SET status = 'finished', finished_at = now() - interval '1 hour' WHERE id = :e;
UPDATE crawl_frontier SET state = 'done' WHERE session_id IN (:c, :d, :e);
-- a: the seed and 3 more queued, 2 leased, 4 done, 2 failed; b: the seed and 1 leased.
INSERT INTO crawl_frontier (session_id, url, kind, depth, state, host, lease_owner, lease_expires_at, last_error, updated_at)
SELECT s, u, 'page', 1, st, h, CASE WHEN st = 'leased' THEN 'w1' END,
       CASE WHEN st = 'leased' THEN now() + interval '60 s' END, err, now() - age
  FROM (VALUES
    (:a, 'http://a.test/q1', 'queued', 'a.test', NULL, interval '0'),
    (:a, 'http://a.test/q2', 'queued', 'a.test', NULL, interval '0'),
    (:a, 'http://a.test/q3', 'queued', 'a.test', 'HTTP 500', interval '0'),
    (:a, 'http://a.test/l1', 'leased', 'a.test', NULL, interval '0'),
    (:a, 'http://a.test/l2', 'leased', 'a.test', NULL, interval '0'),
    (:a, 'http://a.test/d1', 'done', 'a.test', NULL, interval '0'),
    (:a, 'http://a.test/d2', 'done', 'a.test', NULL, interval '0'),
    (:a, 'http://a.test/d3', 'done', 'a.test', NULL, interval '0'),
    (:a, 'http://a.test/d4', 'done', 'a.test', NULL, interval '0'),
    (:a, 'http://a.test/f1', 'failed', 'a.test', 'HTTP 404', interval '10 minutes'),
    (:a, 'http://a.test/f2', 'failed', 'a.test', 'disallowed by robots.txt', interval '20 minutes'),
    (:b, 'http://b.test/l1', 'leased', 'b.test', NULL, interval '0'),
    (:e, 'http://e.test/f1', 'failed', 'e.test', 'HTTP 404 at http://e.test/moved', interval '30 minutes'),
    (:e, 'http://e.test/f2', 'failed', 'e.test', 'Timeout was reached: Operation too slow', interval '59 minutes'),
    (:d, 'http://d.test/f1', 'failed', 'd.test', 'HTTP 500', interval '2 hours')
  ) AS v(s, u, st, h, err, age);
SELECT crawl_counts_flush();
UPDATE crawl_session_counts SET pages_queued = 10, pages_fetched = 4, images_found = 6, images_stored = 3,
                                bytes_stored = 3000, errors = 2, retries = 5,
                                images_changed = 1, images_unchanged = 1, images_fresh = 9
 WHERE session_id = :a;
UPDATE crawl_session_counts SET pages_fetched = 1 WHERE session_id = :c;
UPDATE crawl_session_counts SET pages_fetched = 1, errors = 2 WHERE session_id = :e;

-- This node's HA history: two promotions that were failovers, one by a
-- switchover, its setup, and terms that another node took.
INSERT INTO ha_terms (term, primary_name, primary_node_id, reason)
SELECT t, nm, id, r FROM ha_node n, LATERAL (VALUES
    (901, n.node_name, n.node_id, 'setup'),
    (902, n.node_name, n.node_id, 'failover: primary x unreachable for 3 checks (timeout)'),
    (903, 'x', 1022, 'learned from peer'),
    (904, n.node_name, n.node_id, 'switchover from x'),
    (905, 'x', 1022, 'switchover'),
    (906, n.node_name, n.node_id, 'forced failover'),
    (907, 'x', 1022, 'granted by the witness: failover')) AS v(t, nm, id, r);
-- The consistency checks: the latest of each table counts.
INSERT INTO ha_sync_log (at, kind, table_name, ok, result) VALUES
    (now() - interval '10 minutes', 'check', 'public.images', true, '{"differing": 0}'),
    (now() - interval '5 minutes', 'check', 'public.images', false, '{"differing": 7}'),
    (now() - interval '5 minutes', 'check', 'public.crawl_sessions', true, '{"differing": 0}'),
    (now() - interval '1 minute', 'repair', 'public.images', true, '{"repaired": 7}');
-- The blob store: 2 held (30 bytes), 3 wanted of which one is held meanwhile
-- (not missing), one of the 2 missing failed once.
INSERT INTO ha_blob_store (store_id, last_scrub_at, scrubbed_blobs, corrupt_found, repaired)
VALUES ('tap-store', now() - interval '42 seconds', 9, 4, 3);
INSERT INTO ha_blobs (sha256, size) VALUES (repeat('a', 64), 10), (repeat('b', 64), 20);
INSERT INTO ha_blob_wanted (sha256, file_path, file_size, wanted_since, attempts) VALUES
    (repeat('b', 64), 'bb/bb/b.png', 20, now() - interval '500 seconds', 0),
    (repeat('c', 64), 'cc/cc/c.png', 300, now() - interval '100 seconds', 2),
    (repeat('d', 64), 'dd/dd/d.png', 4000, now() - interval '50 seconds', 0);

-- The backups this node made (as superuser: ha_backups is written only by
-- the backup functions otherwise). Nothing recorded yet: only the count.
DELETE FROM ha_backups;
DELETE FROM ha_events WHERE kind = 'backup';
SELECT is(ARRAY(SELECT x.name || x.labels::text || '=' || x.value FROM ha_metrics() x WHERE x.name LIKE 'crawler_ha_backup%'),
          ARRAY['crawler_ha_backups_kept{}=0'], 'no backup recorded: crawler_ha_backups_kept 0 and no other backup sample');
SELECT results_eq('SELECT * FROM ha_backup_summary()',
                  $$VALUES (false, NULL::timestamptz, NULL::timestamptz, 0::bigint, NULL::boolean, NULL::timestamptz, NULL::bigint,
                            NULL::timestamptz, NULL::bigint, NULL::timestamptz, NULL::bigint, NULL::timestamptz, NULL::boolean)$$,
                  'ha_backup_summary(): not configured, nothing else, no restore test');
SELECT is(pg_get_function_result('public.ha_backup_summary()'::regprocedure),
          'TABLE(configured boolean, last_success timestamp with time zone, last_failure timestamp with time zone, kept bigint, blobs_ok boolean, full_at timestamp with time zone, full_bytes bigint, diff_at timestamp with time zone, diff_bytes bigint, incr_at timestamp with time zone, incr_bytes bigint, restore_tested_at timestamp with time zone, restore_test_ok boolean)',
          'ha_backup_summary() returns one row of these columns');
-- A row of ha_backups: its type from its label, stopped at stopped.
CREATE FUNCTION pg_temp.bk(label text, stopped timestamptz, verified boolean DEFAULT true, expired boolean DEFAULT false,
                           repo_delta bigint DEFAULT 10, blobs boolean DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO ha_backups (stanza, label, type, prior, node, term, system_identifier, started_at, stopped_at, start_lsn,
                            stop_lsn, wal_start, wal_stop, size_bytes, delta_bytes, repo_size_bytes, repo_delta_bytes,
                            restore_point, restore_point_lsn, figures, figures_at, verify_ok, verify_detail, recorded_at,
                            expired_at, blobs_ok)
    VALUES ('alpha', label, CASE right(label, 1) WHEN 'F' THEN 'full' WHEN 'D' THEN 'diff' ELSE 'incr' END,
            CASE WHEN right(label, 1) <> 'F' THEN split_part(label, '_', 1) END, 'tap', 1, 1,
            stopped - interval '1 minute', stopped, '0/1', '0/2', repeat('0', 24), repeat('0', 24), 1000, 1000, 100,
            repo_delta, 'crawler_ha_' || label, '0/3', '{}', stopped + interval '1 minute', verified,
            CASE WHEN verified THEN 'status: ok' ELSE 'status: error' END, stopped + interval '2 minutes',
            CASE WHEN expired THEN stopped + interval '7 days' END, blobs)
$$;
-- A full backup retention removed; the newest full, differential and
-- incremental ones; a newer incremental one whose verify failed (recorded
-- 58 minutes ago); a failed attempt 30 minutes ago; a success event and
-- another kind's event with ok false, which are no failures.
SELECT pg_temp.bk('20261101-000000F', now() - interval '8 days', expired => true, repo_delta => 1);
SELECT pg_temp.bk('20261108-000000F', now() - interval '2 days', repo_delta => 5000, blobs => true);
SELECT pg_temp.bk('20261108-000000F_20261109-000000D', now() - interval '1 day', repo_delta => 700, blobs => true);
SELECT pg_temp.bk('20261108-000000F_20261110-000000I', now() - interval '2 hours', repo_delta => 30, blobs => false);
SELECT pg_temp.bk('20261108-000000F_20261110-010000I', now() - interval '1 hour', verified => false, repo_delta => 40);
-- Restore tests: the expired full backup's, the newest of all, failed (it
-- no longer counts); the kept full one's passed a day ago, the
-- differential one's 3 hours ago: the newest over the kept backups.
UPDATE ha_backups SET restore_tested_at = now() - interval '1 hour', restore_test_ok = false,
                      restore_test_detail = '{"problem": "x"}' WHERE label = '20261101-000000F';
UPDATE ha_backups SET restore_tested_at = now() - interval '1 day', restore_test_ok = true,
                      restore_test_detail = '{}' WHERE label = '20261108-000000F';
UPDATE ha_backups SET restore_tested_at = now() - interval '3 hours', restore_test_ok = true,
                      restore_test_detail = '{}' WHERE label = '20261108-000000F_20261109-000000D';
INSERT INTO ha_events (at, term, node, kind, reason, detail) VALUES
    (now() - interval '30 minutes', 1, 'tap', 'backup', 'incr backup of stanza alpha failed at backup: x',
     '{"ok": false, "step": "backup"}'),
    (now() - interval '20 minutes', 1, 'tap', 'backup', 'an event that says ok', '{"ok": true}'),
    (now() - interval '10 minutes', 1, 'tap', 'consistency', 'another kind', '{"ok": false}');

CREATE TEMP TABLE m AS SELECT x.* FROM ha_metrics() WITH ORDINALITY AS x(name, kind, help, labels, value, o);
GRANT SELECT ON m TO PUBLIC;
-- The value of one sample; whether a sample exists.
CREATE FUNCTION pg_temp.v(n text, l jsonb DEFAULT '{}') RETURNS double precision LANGUAGE sql AS
$$ SELECT m.value FROM m WHERE m.name = n AND m.labels = l $$;
CREATE FUNCTION pg_temp.has(n text, l jsonb DEFAULT '{}') RETURNS boolean LANGUAGE sql AS
$$ SELECT EXISTS (SELECT 1 FROM m WHERE m.name = n AND m.labels = l) $$;

-- The rows' form.
SELECT cmp_ok((SELECT count(*) FROM m), '>', 30::bigint, 'it returns samples');
SELECT is(ARRAY(SELECT DISTINCT m.name FROM m WHERE m.name !~ '^crawler_ha_[a-z0-9_]*[a-z0-9]$' OR m.name !~ '^[a-zA-Z_:][a-zA-Z0-9_:]*$'),
          '{}'::text[], 'every name is a Prometheus metric name starting crawler_ha_');
SELECT is(ARRAY(SELECT DISTINCT m.kind FROM m WHERE m.kind NOT IN ('gauge', 'counter')), '{}'::text[],
          'every kind is gauge or counter');
SELECT is(ARRAY(SELECT m.name FROM m GROUP BY m.name HAVING count(DISTINCT m.kind) <> 1 OR count(DISTINCT m.help) <> 1),
          '{}'::text[], 'each name has one kind and one help text');
SELECT is(ARRAY(SELECT DISTINCT m.name FROM m WHERE (m.kind = 'counter') <> (m.name LIKE '%\_total')),
          '{}'::text[], 'counters, and only counters, end in _total');
SELECT is(ARRAY(SELECT DISTINCT m.name FROM m WHERE m.help IS NULL OR m.help !~ '^[^\s].*[^\s]$' OR m.help ~ '[\n\r\\]'),
          '{}'::text[], 'every help text is one line, without a backslash');
SELECT is(ARRAY(SELECT DISTINCT m.name FROM m
                 WHERE m.labels IS NULL OR jsonb_typeof(m.labels) <> 'object'
                    OR EXISTS (SELECT 1 FROM jsonb_each(m.labels) l
                                WHERE jsonb_typeof(l.value) <> 'string' OR l.key !~ '^[a-zA-Z_][a-zA-Z0-9_]*$'
                                   OR l.key LIKE '\_\_%')),
          '{}'::text[], 'labels are flat objects of string values with valid label names');
SELECT is(ARRAY(SELECT DISTINCT m.name FROM m WHERE m.value IS NULL OR m.value = 'NaN' OR m.value IN ('Infinity', '-Infinity')),
          '{}'::text[], 'no value is NULL, NaN or infinite');
SELECT is(ARRAY(SELECT m.o FROM m ORDER BY m.o),
          ARRAY(SELECT m.o FROM m ORDER BY m.name COLLATE "C", m.labels::text COLLATE "C"),
          'rows come ordered by name, then labels::text (byte order)');
SELECT is((SELECT count(*) FROM (SELECT m.name, m.labels FROM m GROUP BY 1, 2 HAVING count(*) > 1) x), 0::bigint,
          'no sample repeats');
SELECT is(ARRAY(SELECT DISTINCT k FROM m, jsonb_object_keys(m.labels) k ORDER BY 1),
          ARRAY['kind', 'mode', 'node', 'role', 'session', 'table', 'type'],
          'labels are only these (no URL, host or image id)');

-- HA: this node's view, as ha_status() and ha_health() have it.
SELECT is(pg_temp.v('crawler_ha_up', jsonb_build_object('node', n.node_name)), 1::double precision,
          'crawler_ha_up{node} is 1') FROM ha_node n;
SELECT is((SELECT array_agg(m.labels ->> 'role') FROM m
            WHERE m.name = 'crawler_ha_node_role' AND m.labels ->> 'node' = s.node_name AND m.value = 1),
          ARRAY[s.role], 'crawler_ha_node_role: 1 for ' || s.node_name || '''s role ' || s.role)
  FROM ha_status() s;
SELECT is(pg_temp.v('crawler_ha_term', jsonb_build_object('node', s.node_name)), s.term::double precision,
          'crawler_ha_term of ' || s.node_name) FROM ha_status() s WHERE s.term IS NOT NULL;
SELECT is(pg_temp.v('crawler_ha_fenced', jsonb_build_object('node', s.node_name)), s.fenced::integer::double precision,
          'crawler_ha_fenced of ' || s.node_name) FROM ha_status() s;
SELECT is(pg_temp.v('crawler_ha_writable'), h.writable::integer::double precision, 'crawler_ha_writable is ha_health().writable')
  FROM ha_health() h;
SELECT is(pg_temp.v('crawler_ha_paused'), h.paused::integer::double precision, 'crawler_ha_paused') FROM ha_health() h;
SELECT is(pg_temp.has('crawler_ha_peer_reachable'), h.peer_healthy IS NOT NULL,
          'crawler_ha_peer_reachable only with a peer configured') FROM ha_health() h;
SELECT is(pg_temp.v('crawler_ha_replication_mode', jsonb_build_object('mode', current_setting('crawler_ha.replication_mode'))),
          1::double precision, 'crawler_ha_replication_mode{mode} is 1 for the configured mode');
SELECT is((SELECT count(*) FROM m WHERE m.name = 'crawler_ha_replication_mode'), 1::bigint, '... and there is one');
SELECT is(pg_temp.v('crawler_ha_replication_lag_bytes', jsonb_build_object('node', s.node_name)), s.lag_bytes::double precision,
          'crawler_ha_replication_lag_bytes of ' || s.node_name) FROM ha_status() s WHERE s.lag_bytes IS NOT NULL;
SELECT is((SELECT count(*) FROM m WHERE m.name LIKE 'crawler_ha_replication_lag_%'),
          (SELECT 2 * count(*) FROM ha_status() s WHERE s.lag_bytes IS NOT NULL),
          'the lag only where ha_status() knows it');
SELECT is((SELECT count(*) FROM m WHERE m.name IN ('crawler_ha_check_latency_seconds', 'crawler_ha_consecutive_failures')),
          (SELECT count(s.latency_ms) + count(s.consecutive_failures) FROM ha_status() s),
          'check latency and failures only for the nodes this one checks');
SELECT is(pg_temp.v('crawler_ha_failovers_total'), 2::double precision,
          'crawler_ha_failovers_total: this node''s promotions that were no switchover (from ha_terms)');
SELECT is(pg_temp.v('crawler_ha_switchovers_total'), 1::double precision,
          'crawler_ha_switchovers_total: this node''s promotions by a switchover');

-- Consistency: the latest check of each table.
SELECT is(pg_temp.v('crawler_ha_consistency_ok', '{"table": "public.images"}'), 0::double precision,
          'consistency_ok{table=images}: the latest check found differences');
SELECT is(pg_temp.v('crawler_ha_consistency_differing_rows', '{"table": "public.images"}'), 7::double precision,
          'consistency_differing_rows{table=images}: 7');
SELECT is(pg_temp.v('crawler_ha_consistency_last_check_timestamp_seconds', '{"table": "public.images"}'),
          extract(epoch FROM now() - interval '5 minutes')::double precision, '... checked 5 minutes ago (the repair is no check)');
SELECT is(pg_temp.v('crawler_ha_consistency_ok', '{"table": "public.crawl_sessions"}'), 1::double precision,
          'consistency_ok{table=crawl_sessions}: identical');
SELECT ok(NOT pg_temp.has('crawler_ha_consistency_ok', '{"table": "public.crawl_hosts"}'), 'a table never checked has no sample');

-- File sync: what ha_file_sync_status() says.
SELECT is(ARRAY[pg_temp.v('crawler_ha_file_sync_blobs_held'), pg_temp.v('crawler_ha_file_sync_bytes_held'),
                pg_temp.v('crawler_ha_file_sync_blobs_missing'), pg_temp.v('crawler_ha_file_sync_bytes_missing'),
                pg_temp.v('crawler_ha_file_sync_failing'), pg_temp.v('crawler_ha_file_sync_oldest_missing_age_seconds'),
                pg_temp.v('crawler_ha_scrub_corrupt_found_total'), pg_temp.v('crawler_ha_scrub_repaired_total'),
                pg_temp.v('crawler_ha_scrub_last_timestamp_seconds')],
          ARRAY[2, 30, 2, 4300, 1, 100, 4, 3, extract(epoch FROM now() - interval '42 seconds')]::double precision[],
          'file sync: held 2 (30 bytes), missing 2 (4300 bytes), 1 failing, the oldest for 100 s; scrub 4 corrupt, 3 repaired');
SELECT is(ARRAY[pg_temp.v('crawler_ha_file_sync_blobs_held'), pg_temp.v('crawler_ha_file_sync_bytes_held'),
                pg_temp.v('crawler_ha_file_sync_blobs_missing'), pg_temp.v('crawler_ha_file_sync_bytes_missing'),
                pg_temp.v('crawler_ha_file_sync_failing'), pg_temp.v('crawler_ha_file_sync_oldest_missing_age_seconds'),
                pg_temp.v('crawler_ha_scrub_corrupt_found_total'), pg_temp.v('crawler_ha_scrub_repaired_total')],
          (SELECT ARRAY[s.blobs_held, s.bytes_held, s.blobs_missing, s.bytes_missing, s.failing, s.oldest_missing_age_s,
                        s.corrupt_found, s.repaired]::double precision[] FROM ha_file_sync_status() s),
          '... the same as ha_file_sync_status()');
SELECT is(pg_temp.v('crawler_ha_images_rows'), (SELECT count(*) FROM images)::double precision,
          'crawler_ha_images_rows: the images rows, counted');

-- Backups: this node's, from ha_backup_summary().
SELECT is(ARRAY(SELECT m.name || m.labels::text || '=' || m.value FROM m WHERE m.name LIKE 'crawler_ha_backup%' ORDER BY m.o),
          ARRAY['crawler_ha_backup_blobs_ok{}=0',
                'crawler_ha_backup_last_failure_timestamp_seconds{}=' || extract(epoch FROM now() - interval '30 minutes')::double precision,
                'crawler_ha_backup_last_restore_test_timestamp_seconds{}=' || extract(epoch FROM now() - interval '3 hours')::double precision,
                'crawler_ha_backup_last_size_bytes{"type": "diff"}=700',
                'crawler_ha_backup_last_size_bytes{"type": "full"}=5000',
                'crawler_ha_backup_last_size_bytes{"type": "incr"}=30',
                'crawler_ha_backup_last_success_timestamp_seconds{"type": "diff"}=' || extract(epoch FROM now() - interval '1 day')::double precision,
                'crawler_ha_backup_last_success_timestamp_seconds{"type": "full"}=' || extract(epoch FROM now() - interval '2 days')::double precision,
                'crawler_ha_backup_last_success_timestamp_seconds{"type": "incr"}=' || extract(epoch FROM now() - interval '2 hours')::double precision,
                'crawler_ha_backup_restore_test_ok{}=1',
                'crawler_ha_backups_kept{}=4'],
          'backups: the newest verified kept one of each type (stop time, repo bytes), the newest failure (the event, newer than the failed verify), 4 kept (not the expired one), the newest''s blobs not all copied, the newest restore test of a kept backup passed 3 hours ago (not the expired one''s)');
SELECT results_eq('SELECT configured, last_success, last_failure, kept, blobs_ok, restore_tested_at, restore_test_ok FROM ha_backup_summary()',
                  $$VALUES (true, now() - interval '2 hours', now() - interval '30 minutes', 4::bigint, false,
                            now() - interval '3 hours', true)$$,
                  'ha_backup_summary(): the same figures');
SELECT is((SELECT kind FROM m WHERE m.name = 'crawler_ha_backup_restore_test_ok') || ' '
          || (SELECT kind FROM m WHERE m.name = 'crawler_ha_backup_last_restore_test_timestamp_seconds'), 'gauge gauge',
          'the restore test''s metrics are gauges');
-- A newer test, of the incremental backup, failed: 0, and its time.
UPDATE ha_backups SET restore_tested_at = now() - interval '90 minutes', restore_test_ok = false,
                      restore_test_detail = '{"problem": "the figures differ"}' WHERE label = '20261108-000000F_20261110-000000I';
SELECT is(ARRAY(SELECT x.name || x.labels::text || '=' || x.value FROM ha_metrics() x WHERE x.name LIKE '%restore_test%'),
          ARRAY['crawler_ha_backup_last_restore_test_timestamp_seconds{}=' || extract(epoch FROM now() - interval '90 minutes')::double precision,
                'crawler_ha_backup_restore_test_ok{}=0'],
          'the newest restore test failed: restore_test_ok 0, its time');
SELECT results_eq('SELECT restore_tested_at, restore_test_ok FROM ha_backup_summary()',
                  $$VALUES (now() - interval '90 minutes', false)$$, '... as ha_backup_summary() says');
-- A later test of the differential backup passed: 1 again (the row keeps
-- its newest test only).
UPDATE ha_backups SET restore_tested_at = now() - interval '80 minutes' WHERE label = '20261108-000000F_20261109-000000D';
SELECT is(ARRAY(SELECT x.name || x.labels::text || '=' || x.value FROM ha_metrics() x WHERE x.name LIKE '%restore_test%'),
          ARRAY['crawler_ha_backup_last_restore_test_timestamp_seconds{}=' || extract(epoch FROM now() - interval '80 minutes')::double precision,
                'crawler_ha_backup_restore_test_ok{}=1'],
          'a later test passed: restore_test_ok 1');
UPDATE ha_backups SET restore_tested_at = now() - interval '3 hours' WHERE label = '20261108-000000F_20261109-000000D';
SELECT is((SELECT kind FROM m WHERE m.name = 'crawler_ha_backups_kept'), 'gauge', 'every backup metric is a gauge');
-- The failure events gone (ha_retention()): the failed verify remains one.
DELETE FROM ha_events WHERE kind = 'backup';
SELECT is((SELECT value FROM ha_metrics() WHERE name = 'crawler_ha_backup_last_failure_timestamp_seconds'),
          extract(epoch FROM now() - interval '58 minutes')::double precision,
          'without the events, the backup recorded with its verify failed is the newest failure');
-- The newest verified backup's blobs not copied yet: no blobs_ok sample.
UPDATE ha_backups SET blobs_ok = NULL WHERE label = '20261108-000000F_20261110-000000I';
SELECT is((SELECT count(*) FROM ha_metrics() WHERE name = 'crawler_ha_backup_blobs_ok'), 0::bigint,
          'the newest verified backup''s blob copy has not ended: no blobs_ok sample');
-- Retention removed the incremental ones: the newest success is the differential one.
UPDATE ha_backups SET expired_at = now() WHERE type = 'incr';
SELECT is(ARRAY(SELECT x.name || x.labels::text || '=' || x.value FROM ha_metrics() x
                 WHERE x.name IN ('crawler_ha_backup_blobs_ok', 'crawler_ha_backups_kept')
                    OR x.labels ? 'type' AND x.labels ->> 'type' = 'incr'),
          ARRAY['crawler_ha_backup_blobs_ok{}=1', 'crawler_ha_backups_kept{}=2'],
          'incremental backups expired: no incr samples, 2 kept, the differential one''s blobs_ok');
SELECT is(ARRAY(SELECT x.name || x.labels::text || '=' || x.value FROM ha_metrics() x WHERE x.name LIKE '%restore_test%'),
          ARRAY['crawler_ha_backup_last_restore_test_timestamp_seconds{}=' || extract(epoch FROM now() - interval '3 hours')::double precision,
                'crawler_ha_backup_restore_test_ok{}=1'],
          '... and the failed restore test with them: the differential one''s, passed, is the newest');
-- No kept backup tested: no restore test sample.
UPDATE ha_backups SET restore_tested_at = NULL, restore_test_ok = NULL, restore_test_detail = NULL WHERE expired_at IS NULL;
SELECT is((SELECT count(*) FROM ha_metrics() x WHERE x.name LIKE '%restore_test%'), 0::bigint,
          'no kept backup tested (only expired ones): no restore test sample');

-- Crawl: the sessions listed and their samples.
SELECT is(ARRAY(SELECT DISTINCT (m.labels ->> 'session')::bigint FROM m WHERE m.labels ? 'session' ORDER BY 1),
          ARRAY[:a, :b, :c, :e]::bigint[], 'sessions running or ended in the last 24 hours are listed, d (25 hours) is not');
SELECT is(ARRAY(SELECT m.name FROM m WHERE m.labels = jsonb_build_object('session', :a::text) ORDER BY m.o),
          ARRAY['crawler_ha_crawl_bytes_stored_total', 'crawler_ha_crawl_errors_total', 'crawler_ha_crawl_images_changed_total',
                'crawler_ha_crawl_images_found_total', 'crawler_ha_crawl_images_fresh_total',
                'crawler_ha_crawl_images_stored_total', 'crawler_ha_crawl_images_unchanged_total',
                'crawler_ha_crawl_leased', 'crawler_ha_crawl_pages_fetched_total',
                'crawler_ha_crawl_queue_length', 'crawler_ha_crawl_retries_total', 'crawler_ha_crawl_running',
                'crawler_ha_crawl_success_ratio'],
          'a session has these samples');
SELECT is(ARRAY(SELECT m.value FROM m WHERE m.labels = jsonb_build_object('session', :a::text) ORDER BY m.o),
          ARRAY[3000, 2, 1, 6, 9, 3, 1, 2, 4, 4, 5, 1, 0.8182]::double precision[],
          'a: 3000 bytes, 2 errors, 1 image changed, 6 found, 9 fresh, 3 stored, 1 unchanged, 2 leased, 4 pages, 4 queued, '
          '5 retries, running, 9/11 success');
SELECT is(pg_temp.v('crawler_ha_crawl_success_ratio', jsonb_build_object('session', :a::text)),
          (SELECT success_rate::double precision FROM crawl_status(:a)), '... the success ratio crawl_status() has');
SELECT is(ARRAY[pg_temp.v('crawler_ha_crawl_queue_length', jsonb_build_object('session', :b::text)),
                pg_temp.v('crawler_ha_crawl_leased', jsonb_build_object('session', :b::text))],
          ARRAY[1, 1]::double precision[], 'b: its seed queued, 1 leased');
SELECT ok(NOT pg_temp.has('crawler_ha_crawl_success_ratio', jsonb_build_object('session', :b::text)),
          'b has no success ratio yet (nothing fetched, stored or failed)');
SELECT is(ARRAY[pg_temp.v('crawler_ha_crawl_running', jsonb_build_object('session', :c::text)),
                pg_temp.v('crawler_ha_crawl_pages_fetched_total', jsonb_build_object('session', :c::text)),
                pg_temp.v('crawler_ha_crawl_queue_length', jsonb_build_object('session', :c::text))],
          ARRAY[0, 1, 0]::double precision[], 'c, stopped 23 hours ago: not running, its counters, nothing queued');
SELECT is(pg_temp.v('crawler_ha_crawl_running', jsonb_build_object('session', :e::text)), 0::double precision,
          'e, finished an hour ago: not running');
SELECT is(pg_temp.v('crawler_ha_crawl_errors_total', jsonb_build_object('session', :e::text)), 2::double precision,
          'e: its 2 errors');
-- The recent errors by kind: the 4 failures of the last hour (d's is 2 hours old).
SELECT is(ARRAY(SELECT m.labels ->> 'kind' FROM m WHERE m.name = 'crawler_ha_crawl_recent_error_ratio' ORDER BY m.o),
          ARRAY['connection', 'content', 'dns', 'http_4xx', 'http_5xx', 'other', 'redirect', 'robots', 'storage',
                'timeout', 'tls', 'too_large'], 'recent_error_ratio: every kind, each once');
SELECT is(ARRAY(SELECT m.labels ->> 'kind' || '=' || m.value FROM m
                 WHERE m.name = 'crawler_ha_crawl_recent_error_ratio' AND m.value > 0 ORDER BY m.o),
          ARRAY['http_4xx=0.5', 'robots=0.25', 'timeout=0.25'],
          'recent_error_ratio: 2 of 4 http_4xx, 1 robots, 1 timeout; the rest 0');
SELECT ok((SELECT bool_and(crawl_error_kind(e) = ANY (ARRAY(SELECT m.labels ->> 'kind' FROM m
                                                             WHERE m.name = 'crawler_ha_crawl_recent_error_ratio')))
             FROM unnest(ARRAY['HTTP 404', 'HTTP 500', 'HTTP 301 redirect x', 'Timeout was reached', 'x', NULL,
                               'SSL x', 'store: x', 'not an image', 'too large', 'disallowed by robots.txt',
                               'Couldn''t resolve host name', 'Couldn''t connect to server']) e),
          'crawl_error_kind() only gives the kinds ha_metrics() lists');

-- The queue and the leases follow the frontier's rows as they change state.
UPDATE crawl_frontier SET state = 'done' WHERE session_id = :b AND state = 'leased';
INSERT INTO crawl_frontier (session_id, url, kind, depth, host) VALUES (:b, 'http://b.test/q2', 'image', 1, 'b.test');
SELECT crawl_counts_flush();
SELECT is(ARRAY(SELECT value FROM ha_metrics() WHERE name IN ('crawler_ha_crawl_queue_length', 'crawler_ha_crawl_leased')
                   AND labels = jsonb_build_object('session', :b::text) ORDER BY name),
          ARRAY[0, 2]::double precision[], 'b, its lease done and an image queued: 0 leased, 2 queued');
-- No recent failure: no ratio at all (it is undefined).
UPDATE crawl_frontier SET updated_at = now() - interval '2 hours' WHERE state = 'failed';
SELECT is((SELECT count(*) FROM ha_metrics() WHERE name = 'crawler_ha_crawl_recent_error_ratio'), 0::bigint,
          'no failure in the last hour: no recent_error_ratio');

-- Above the caps the large tables are estimated: 10001 blobs of 7 bytes,
-- their statistics taken (ANALYZE runs in a transaction).
DELETE FROM ha_blob_wanted;
DELETE FROM ha_blobs;
INSERT INTO ha_blobs (sha256, size) SELECT encode(sha256(g::text::bytea), 'hex'), 7 FROM generate_series(1, 10001) g;
ANALYZE ha_blobs;
SELECT is((SELECT array_agg(value ORDER BY name) FROM ha_metrics()
            WHERE name IN ('crawler_ha_file_sync_blobs_held', 'crawler_ha_file_sync_bytes_held')),
          ARRAY[10001, 70007]::double precision[], 'above 10000 blobs: the statistics'' count, bytes from a sample');
SELECT is((SELECT value FROM ha_metrics() WHERE name = 'crawler_ha_file_sync_blobs_missing'), 0::double precision,
          'nothing missing');

-- It writes nothing: it runs in a read-only transaction.
SAVEPOINT ro;
SET LOCAL transaction_read_only = on;
SELECT lives_ok('SELECT count(*) FROM ha_metrics()', 'it runs in a read-only transaction');
ROLLBACK TO SAVEPOINT ro;

-- Wrong callers get 42501; the reader and the admin get the same samples as
-- the owner (it reads nothing they may not read).
CREATE ROLE tap_m_reader LOGIN IN ROLE crawler_ha_reader;
CREATE ROLE tap_m_admin LOGIN IN ROLE crawler_ha_admin;
CREATE ROLE tap_m_writer LOGIN IN ROLE crawler_ha_writer;
CREATE ROLE tap_m_agent LOGIN IN ROLE crawler_ha_agent;
CREATE ROLE tap_m_nobody LOGIN;
CREATE TEMP TABLE owner_view AS SELECT name, labels, value FROM ha_metrics();
GRANT SELECT ON owner_view TO PUBLIC;
SET ROLE tap_m_reader;
SELECT is(ARRAY(SELECT row(x.name, x.labels, x.value)::text FROM ha_metrics() x),
          ARRAY(SELECT row(o.name, o.labels, o.value)::text FROM owner_view o ORDER BY o.name COLLATE "C", o.labels::text COLLATE "C"),
          'the reader may call it and sees what the owner sees');
RESET ROLE;
SET ROLE tap_m_admin;
SELECT lives_ok('SELECT * FROM ha_metrics()', 'the admin may call it');
RESET ROLE;
SET ROLE tap_m_writer;
SELECT throws_ok('SELECT * FROM ha_metrics()', '42501', NULL, 'the writer may not call it');
RESET ROLE;
SET ROLE tap_m_agent;
SELECT throws_ok('SELECT * FROM ha_metrics()', '42501', NULL, 'the agent role may not call it (it reads as the reader)');
RESET ROLE;
SET ROLE tap_m_nobody;
SELECT throws_ok(q, '42501', NULL, 'a role without the grant: ' || q || ' is refused')
  FROM unnest(ARRAY['SELECT * FROM ha_metrics()', 'SELECT crawl_error_kind(''HTTP 404'')',
                    'SELECT * FROM ha_backup_summary()']) q;
RESET ROLE;

-- The caller's search_path changes nothing.
CREATE SCHEMA tap_hostile;
CREATE TABLE tap_hostile.crawl_sessions (id bigint);
CREATE FUNCTION tap_hostile.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT 'epoch'::timestamptz $$;
SET search_path = tap_hostile, public;
SELECT is(ARRAY(SELECT row(x.name, x.labels, x.value)::text FROM ha_metrics() x),
          ARRAY(SELECT row(o.name, o.labels, o.value)::text FROM owner_view o ORDER BY o.name COLLATE "C", o.labels::text COLLATE "C"),
          'a hostile search_path changes no sample');
RESET search_path;

SELECT * FROM finish();
ROLLBACK;
