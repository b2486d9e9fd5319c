-- The merge rules (HA part 2), applied on the new primary to rows an old
-- primary wrote after the split point. The rows reach them through
-- ha_merge_receive() (67_merge_receive.sql) during a rejoin, or through
-- ha_merge_rows() by hand. See docs/ha.md, "Merge rules".

-- The progress a frontier state stands for; a lease from another term is void.
-- A SQL-standard body without SET, like the write API's rules: the planner
-- inlines it where the merge compares rows.
CREATE FUNCTION @extschema@.ha_merge_rank(state text, lease_valid boolean)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE state WHEN 'done' THEN 3 WHEN 'failed' THEN 2
                  WHEN 'leased' THEN CASE WHEN lease_valid THEN 1 ELSE 0 END ELSE 0 END;
COMMENT ON FUNCTION @extschema@.ha_merge_rank(text, boolean) IS
    'crawler_ha (internal): done > failed > leased (here) > queued, for merging frontier rows';

-- Incoming rows that break the write API's rule for their table: refused is
-- [{"rec": the row as a record of the table, in JSON, "rule": the rule it
-- breaks}, ...]. Each is recorded as a conflict event (it is not merged);
-- returns how many.
CREATE FUNCTION @extschema@.ha_merge_refuse_invalid(tbl text, key text, refused jsonb, from_node text,
                                                    from_term bigint)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(@extschema@.ha_record_event('conflict',
               format('%s %s (%s) from %s (term %s) breaks the write API''s rule on %s; not merged',
                      tbl, c -> 'rec' ->> 'id', left(c -> 'rec' ->> 'url', 200), from_node, from_term, c ->> 'rule'),
               NULL,
               jsonb_build_object('table', tbl, 'key', c -> 'rec' -> key, 'from_node', from_node,
                                  'from_term', from_term, 'rule', c ->> 'rule', 'other', c -> 'rec')))::integer
      FROM jsonb_array_elements(refused) c
$$;
COMMENT ON FUNCTION @extschema@.ha_merge_refuse_invalid(text, text, jsonb, text, bigint) IS
    'crawler_ha (internal): records a conflict for each merged row that breaks the write API''s rule; returns how many';
REVOKE ALL ON FUNCTION @extschema@.ha_merge_refuse_invalid(text, text, jsonb, text, bigint) FROM PUBLIC;

-- On the new primary: merge rows an old primary wrote after the split.
-- rows is an array of the table's records as text ('{"(...)","(...)"}'),
-- their columns in this node's order: what ha_merge_receive() gets from a
-- rejoining node, which builds each record by the column names this node
-- gave it (ha_merge_columns()), and what ha_merge_rows() makes of JSON.
-- The rules (docs/ha.md):
--   a row missing here is inserted as it is (ids never collide across nodes);
--   images: same URL and same sha256 is the same image (thumbnails only
--     there join those here); a different sha256 is
--     a conflict: the row here (the newer term) stays, the other is recorded;
--   crawl_frontier: the URL's further progress wins (done > failed > queued;
--     the old term's lease is void, so a leased row arrives queued); done here
--     and failed there (or the reverse) is a conflict, recorded, done wins;
--   crawl_sessions: a stop on either side holds; different seeds or settings
--     are a conflict (this row stays);
--   crawl_session_counts: the old primary's rows keep the larger retries
--     count; every touched session's other counters are then recounted from
--     the rows (the difference goes to this node's slot 0);
--   crawl_hosts: the later politeness times and the newer robots.txt win;
--   a row the old primary deleted is kept here and reported.
-- A row the write API could not have written is not merged (a conflict). A
-- key sent twice in one call is merged as if its rows came one after the
-- other: the first as a row missing here, the next ones against it.
-- Returns {table, from_node, from_term, rows, inserted, replaced, kept,
-- conflicts, deleted_here}: inserted + replaced + kept is the rows merged,
-- conflicts counts the conflict events.
-- Every call is recorded as a 'merge' event listing the keys it inserted or
-- replaced; every conflict is its own 'conflict' event with both rows.
-- Idempotent: merging the same rows again changes nothing.
-- Errors: 22004 for a NULL tbl or rows, 22023 for a table that is not a
-- data table, a row that is NULL or rows that are not a one-dimensional
-- array, and the input functions' own SQLSTATE (22P02 for a malformed
-- record, 22003 for a number out of range, ...) for text that is not an
-- array of the table's records, with the message cut to 200 characters (the
-- input functions quote all the text they could not read: megabytes).
--
-- Set-based: the rows are read once, into an array of the table's records
-- (the cast names the extension's own type for the table, never one taken
-- from the caller), and each rule is one statement over that array. A tail
-- is mostly rows the new primary lacks: they are inserted at once, and only
-- the rows that were not (a row here under the same key) are compared with
-- the rows here, locked first in key order. For the frontier and the images,
-- the rows here are found by one index probe per incoming row (a LATERAL
-- subquery with OFFSET 0, which the planner cannot turn into a join): those
-- tables grow during a merge faster than their statistics, and a join
-- planned on the statistics of a near-empty table compared every incoming
-- row with every row here (50,000 x 2,000 comparisons a chunk).
-- Not SECURITY DEFINER and not granted: ha_merge_receive() and
-- ha_merge_rows() call it, as the extension's owner.
CREATE FUNCTION @extschema@.ha_merge_records(tbl regclass, rows text, deleted_keys jsonb DEFAULT '[]',
                                             from_node text DEFAULT NULL, from_term bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inserted jsonb := '[]';  -- the keys this call inserted
    replaced jsonb := '[]';  -- and those whose row here it changed
    kept bigint := 0;
    conflicts bigint := 0;
    sessions bigint[] := '{}';  -- whose counters are recounted
    refused jsonb;  -- the rows the write API could not have written, with the rule each breaks
    -- the rows as sent (sent_), those of them that pass the write API's
    -- rule (in_), and those that are compared with the rows here (rest_):
    -- all but the ones inserted
    sent_s @extschema@.crawl_sessions[];
    sent_c @extschema@.crawl_session_counts[];
    sent_h @extschema@.crawl_hosts[];
    sent_f @extschema@.crawl_frontier[];
    sent_i @extschema@.images[];
    in_s @extschema@.crawl_sessions[];
    rest_s @extschema@.crawl_sessions[];
    in_f @extschema@.crawl_frontier[];
    rest_f @extschema@.crawl_frontier[];
    in_i @extschema@.images[];
    rest_i @extschema@.images[];
    n_rows bigint;  -- how many were sent
    dims integer;
    has_null boolean;
    err_state text;
    err_msg text;
    err_detail text;
    summary jsonb;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    -- In sync mode the synchronous standby is the very node that is merging
    -- and waiting for this answer: its commit must not wait for it. (Local to
    -- the transaction, not to the function, so that it holds at the commit.)
    PERFORM set_config('synchronous_commit', 'local', true);
    IF tbl IS NULL OR rows IS NULL THEN
        RAISE EXCEPTION 'tbl and rows must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.ha_require_data_table(tbl);
    IF jsonb_typeof(coalesce(deleted_keys, '[]')) <> 'array' THEN
        RAISE EXCEPTION 'deleted_keys must be a JSON array' USING ERRCODE = 'invalid_parameter_value';
    ELSIF length(from_node) > 64 THEN
        RAISE EXCEPTION 'from_node is too long' USING ERRCODE = 'string_data_right_truncation';
    END IF;
    from_node := coalesce(from_node, 'unknown');
    BEGIN
        CASE tbl
        WHEN '@extschema@.crawl_sessions'::regclass THEN
            sent_s := rows::@extschema@.crawl_sessions[];
            SELECT cardinality(sent_s), array_ndims(sent_s),
                   CASE WHEN array_ndims(sent_s) = 1 THEN array_position(sent_s, NULL) IS NOT NULL END
              INTO n_rows, dims, has_null;
        WHEN '@extschema@.crawl_session_counts'::regclass THEN
            sent_c := rows::@extschema@.crawl_session_counts[];
            SELECT cardinality(sent_c), array_ndims(sent_c),
                   CASE WHEN array_ndims(sent_c) = 1 THEN array_position(sent_c, NULL) IS NOT NULL END
              INTO n_rows, dims, has_null;
        WHEN '@extschema@.crawl_hosts'::regclass THEN
            sent_h := rows::@extschema@.crawl_hosts[];
            SELECT cardinality(sent_h), array_ndims(sent_h),
                   CASE WHEN array_ndims(sent_h) = 1 THEN array_position(sent_h, NULL) IS NOT NULL END
              INTO n_rows, dims, has_null;
        WHEN '@extschema@.crawl_frontier'::regclass THEN
            sent_f := rows::@extschema@.crawl_frontier[];
            SELECT cardinality(sent_f), array_ndims(sent_f),
                   CASE WHEN array_ndims(sent_f) = 1 THEN array_position(sent_f, NULL) IS NOT NULL END
              INTO n_rows, dims, has_null;
        ELSE
            sent_i := rows::@extschema@.images[];
            SELECT cardinality(sent_i), array_ndims(sent_i),
                   CASE WHEN array_ndims(sent_i) = 1 THEN array_position(sent_i, NULL) IS NOT NULL END
              INTO n_rows, dims, has_null;
        END CASE;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT, err_detail = PG_EXCEPTION_DETAIL;
        -- (the input functions' detail, when they give one, as the message's end)
        RAISE EXCEPTION 'rows are not an array of % records: %', tbl,
                        left(err_msg, 200) || coalesce(' (' || left(nullif(err_detail, ''), 200) || ')', '')
            USING ERRCODE = err_state,
                  HINT = 'Each record lists the columns of the table here in their order (ha_merge_columns()).';
    END;
    IF dims > 1 THEN
        RAISE EXCEPTION 'rows must be a one-dimensional array' USING ERRCODE = 'invalid_parameter_value';
    ELSIF has_null THEN
        RAISE EXCEPTION 'rows must not contain NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF tbl = '@extschema@.crawl_sessions'::regclass THEN
        -- The first row of each id (in key order) and the others, which,
        -- like the rows whose id is here, are compared with the row here.
        SELECT coalesce(array_agg(x.r ORDER BY (x.r).id) FILTER (WHERE x.first), '{}'),
               coalesce(array_agg(x.r ORDER BY x.n) FILTER (WHERE NOT x.first), '{}')
          INTO in_s, rest_s
          FROM (SELECT y.r, y.n, row_number() OVER (PARTITION BY (y.r).id ORDER BY y.n) = 1 AS first
                  FROM (SELECT row_number() OVER () AS n, r
                          FROM unnest(sent_s) r) y) x;
        -- the rows here, locked in key order: what is decided below holds until the commit
        PERFORM 1 FROM @extschema@.crawl_sessions c WHERE c.id = ANY (ARRAY(SELECT r.id FROM unnest(in_s) r))
          ORDER BY c.id FOR UPDATE OF c;
        WITH ins AS (
            INSERT INTO @extschema@.crawl_sessions
            SELECT r.* FROM unnest(in_s) r
             WHERE NOT EXISTS (SELECT 1 FROM @extschema@.crawl_sessions c WHERE c.id = r.id)
            RETURNING id)
        SELECT coalesce(jsonb_agg(ins.id ORDER BY ins.id), '[]'),
               ARRAY(SELECT r FROM unnest(in_s) r WHERE r.id NOT IN (SELECT ins.id FROM ins)) || rest_s
          INTO inserted, rest_s
          FROM ins;
        SELECT coalesce(array_agg(DISTINCT c.id), '{}'),
               conflicts + count(@extschema@.ha_record_event('conflict',
                   format('crawl_sessions %s differs on %s (term %s): seeds or settings; the row here stays',
                          r.id, from_node, from_term), NULL,
                   jsonb_build_object('table', 'crawl_sessions', 'key', r.id, 'from_node', from_node,
                                      'from_term', from_term, 'kept', to_jsonb(c), 'other', to_jsonb(r))))
                   FILTER (WHERE c.seeds IS DISTINCT FROM r.seeds OR c.settings IS DISTINCT FROM r.settings)
          INTO sessions, conflicts
          FROM unnest(rest_s) r JOIN @extschema@.crawl_sessions c ON c.id = r.id;
        -- a stop on either side holds
        WITH stop AS (
            SELECT DISTINCT ON (r.id) r.id, r.finished_at FROM unnest(rest_s) r
             WHERE r.status = 'stopped' ORDER BY r.id),
        up AS (
            UPDATE @extschema@.crawl_sessions c
               SET status = 'stopped', finished_at = coalesce(c.finished_at, stop.finished_at, now()), updated_at = now()
              FROM stop
             WHERE c.id = stop.id AND c.status <> 'stopped'
            RETURNING c.id)
        SELECT coalesce(jsonb_agg(up.id ORDER BY up.id), '[]') INTO replaced FROM up;
        kept := n_rows - jsonb_array_length(inserted) - jsonb_array_length(replaced);

    ELSIF tbl = '@extschema@.crawl_session_counts'::regclass THEN
        -- The old primary's own rows: what it counted in its term. Every
        -- counter that the rows can tell is recounted below, so that an
        -- image or a URL the merge kept from this side is not counted twice;
        -- only the retries and a re-crawl's images changed, unchanged and
        -- fresh, which no row records, keep the larger figure.
        -- Rows of a session that is not here are kept (not merged). Rows for
        -- one counter row are one upsert with their largest figures: the
        -- first is inserted (or replaces the row here), the others replace.
        WITH r AS (
            SELECT x.n, x.sent_key, x.k, x.session_id, x.node_id, x.slot,
                   min(x.n) OVER (PARTITION BY x.k) AS first_n, max(x.retries) OVER (PARTITION BY x.k) AS most,
                   max(x.images_changed) OVER (PARTITION BY x.k) AS most_changed,
                   max(x.images_unchanged) OVER (PARTITION BY x.k) AS most_unchanged,
                   max(x.images_fresh) OVER (PARTITION BY x.k) AS most_fresh
              FROM (SELECT row_number() OVER () AS n, c.key AS sent_key,
                           c.session_id || '/' || c.node_id || '/' || c.slot AS k,
                           c.session_id, c.node_id, c.slot, coalesce(c.retries, 0) AS retries,
                           coalesce(c.images_changed, 0) AS images_changed,
                           coalesce(c.images_unchanged, 0) AS images_unchanged,
                           coalesce(c.images_fresh, 0) AS images_fresh
                      FROM unnest(sent_c) c) x
             WHERE EXISTS (SELECT 1 FROM @extschema@.crawl_sessions s WHERE s.id = x.session_id)),
        up AS (
            INSERT INTO @extschema@.crawl_session_counts AS c
                   (key, session_id, node_id, slot, retries, images_changed, images_unchanged, images_fresh)
            SELECT r.k, r.session_id, r.node_id, r.slot, r.most, r.most_changed, r.most_unchanged, r.most_fresh
              FROM r WHERE r.n = r.first_n
             ORDER BY r.k
            ON CONFLICT (key) DO UPDATE
               SET retries = greatest(c.retries, EXCLUDED.retries),
                   images_changed = greatest(c.images_changed, EXCLUDED.images_changed),
                   images_unchanged = greatest(c.images_unchanged, EXCLUDED.images_unchanged),
                   images_fresh = greatest(c.images_fresh, EXCLUDED.images_fresh), updated_at = now()
            RETURNING c.key, (c.xmax = 0) AS fresh)
        SELECT coalesce(jsonb_agg(to_jsonb(r.sent_key) ORDER BY r.n) FILTER (WHERE up.fresh AND r.n = r.first_n), '[]'),
               coalesce(jsonb_agg(to_jsonb(r.sent_key) ORDER BY r.n) FILTER (WHERE NOT (up.fresh AND r.n = r.first_n)), '[]'),
               coalesce(array_agg(DISTINCT r.session_id), '{}')
          INTO inserted, replaced, sessions
          FROM r JOIN up ON up.key = r.k;
        kept := n_rows - jsonb_array_length(inserted) - jsonb_array_length(replaced);

    ELSIF tbl = '@extschema@.crawl_hosts'::regclass THEN
        -- One upsert in key order (the rows here locked as it goes). The
        -- rows of one host are taken together, as merging them one after
        -- the other would: the latest politeness times, the newest
        -- robots.txt. A row here that would not change is kept.
        WITH r AS (
            SELECT r.host, max(r.next_fetch_at) AS next_fetch_at, max(r.backoff_until) AS backoff_until,
                   max(r.robots_fetched_at) AS robots_fetched_at,
                   (array_agg(r.crawl_delay ORDER BY r.robots_fetched_at DESC NULLS LAST, r.n))[1] AS crawl_delay,
                   (array_agg(r.robots_txt ORDER BY r.robots_fetched_at DESC NULLS LAST, r.n))[1] AS robots_txt,
                   (array_agg(r.updated_at ORDER BY r.n))[1] AS updated_at
              FROM (SELECT row_number() OVER () AS n, r.*
                      FROM unnest(sent_h) r) r
             GROUP BY r.host),
        up AS (
            INSERT INTO @extschema@.crawl_hosts AS h
                   (host, next_fetch_at, crawl_delay, backoff_until, robots_txt, robots_fetched_at, updated_at)
            SELECT r.host, r.next_fetch_at, r.crawl_delay, r.backoff_until, r.robots_txt, r.robots_fetched_at,
                   r.updated_at
              FROM r ORDER BY r.host
            ON CONFLICT (host) DO UPDATE
               SET next_fetch_at = greatest(h.next_fetch_at, EXCLUDED.next_fetch_at),
                   backoff_until = greatest(h.backoff_until, EXCLUDED.backoff_until),
                   crawl_delay = CASE WHEN EXCLUDED.robots_fetched_at > coalesce(h.robots_fetched_at, '-infinity')
                                      THEN EXCLUDED.crawl_delay ELSE h.crawl_delay END,
                   robots_txt = CASE WHEN EXCLUDED.robots_fetched_at > coalesce(h.robots_fetched_at, '-infinity')
                                     THEN EXCLUDED.robots_txt ELSE h.robots_txt END,
                   robots_fetched_at = greatest(h.robots_fetched_at, EXCLUDED.robots_fetched_at),
                   updated_at = now()
             WHERE EXCLUDED.next_fetch_at > h.next_fetch_at
                OR EXCLUDED.backoff_until > coalesce(h.backoff_until, '-infinity')
                OR EXCLUDED.robots_fetched_at > coalesce(h.robots_fetched_at, '-infinity')
            RETURNING h.host, (h.xmax = 0) AS fresh)
        SELECT coalesce(jsonb_agg(up.host ORDER BY up.host) FILTER (WHERE up.fresh), '[]'),
               coalesce(jsonb_agg(up.host ORDER BY up.host) FILTER (WHERE NOT up.fresh), '[]')
          INTO inserted, replaced FROM up;
        kept := n_rows - jsonb_array_length(inserted) - jsonb_array_length(replaced);

    ELSIF tbl = '@extschema@.crawl_frontier'::regclass THEN
        -- A row the write API could not have written (a javascript: URL, a
        -- host that is not the URL's) is not merged: a conflict, recorded.
        -- Each row's rule is evaluated once (OFFSET 0: not copied into each
        -- use of it).
        SELECT coalesce(array_agg(x.r ORDER BY x.n) FILTER (WHERE x.rule IS NULL), '{}'),
               coalesce(jsonb_agg(jsonb_build_object('rec', to_jsonb(x.r), 'rule', x.rule) ORDER BY x.n)
                        FILTER (WHERE x.rule IS NOT NULL), '[]')
          INTO in_f, refused
          FROM (SELECT row_number() OVER () AS n, r,
                       @extschema@.crawl_item_problem(r.url, r.kind, r.depth, r.host, r.found_on, r.lease_owner) AS rule
                  FROM unnest(sent_f) r
                OFFSET 0) x;
        conflicts := conflicts + @extschema@.ha_merge_refuse_invalid('crawl_frontier', 'id', refused, from_node, from_term);
        SELECT conflicts + count(@extschema@.ha_record_event('conflict',
                   format('crawl_frontier %s (%s) from %s belongs to session %s, which is not here; not merged',
                          r.id, left(r.url, 200), from_node, r.session_id), NULL,
                   jsonb_build_object('table', 'crawl_frontier', 'key', r.id, 'from_node', from_node,
                                      'from_term', from_term, 'other', to_jsonb(r))))
          INTO conflicts
          FROM unnest(in_f) r
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.crawl_sessions c WHERE c.id = r.session_id);

        -- Only there (no row here under its id, nor its session's URL under
        -- another id: the two unique keys, which ON CONFLICT checks): inserted.
        WITH ins AS (
            INSERT INTO @extschema@.crawl_frontier AS f
                   (id, session_id, url, kind, depth, state, host, found_on, lease_owner, leased_at,
                    lease_expires_at, attempts, last_error, next_fetch_at, result, created_at, updated_at)
            SELECT r.id, r.session_id, r.url, r.kind, r.depth,
                   -- a lease of the other term is void
                   CASE WHEN r.state = 'leased' THEN 'queued' ELSE r.state END, r.host, r.found_on,
                   CASE WHEN r.state = 'leased' THEN NULL ELSE r.lease_owner END,
                   r.leased_at, NULL, r.attempts, r.last_error, r.next_fetch_at, r.result, r.created_at, r.updated_at
              FROM unnest(in_f) r
             WHERE EXISTS (SELECT 1 FROM @extschema@.crawl_sessions c WHERE c.id = r.session_id)
            ON CONFLICT DO NOTHING
            RETURNING f.id, f.session_id, f.url, f.state)
        -- A row inserted as sent has nothing here to be compared with but
        -- itself; the others (a row here under its id or URL, a key sent
        -- twice, a session not here) are compared below.
        SELECT coalesce(jsonb_agg(ins.id), '[]'), coalesce(array_agg(DISTINCT ins.session_id), '{}'),
               ARRAY(SELECT r FROM unnest(in_f) r
                      WHERE NOT EXISTS (SELECT 1 FROM ins i
                                         WHERE i.id = r.id AND i.session_id = r.session_id AND i.url = r.url
                                           AND i.state = CASE WHEN r.state = 'leased' THEN 'queued' ELSE r.state END))
          INTO inserted, sessions, rest_f
          FROM ins;

        IF cardinality(rest_f) > 0 THEN
            -- the rows here under the same id, or the same URL of the session
            -- under another id, locked in key order
            PERFORM 1 FROM @extschema@.crawl_frontier f
              WHERE f.id = ANY (ARRAY(
                        SELECT h.id FROM unnest(rest_f) r,
                               LATERAL (SELECT x.id FROM @extschema@.crawl_frontier x WHERE x.id = r.id
                                        UNION ALL
                                        SELECT x.id FROM @extschema@.crawl_frontier x
                                         WHERE x.session_id = r.session_id AND x.url = r.url
                                        OFFSET 0) h))
              ORDER BY f.id FOR UPDATE OF f;
            -- done on one side, failed on the other: a conflict
            SELECT conflicts + count(@extschema@.ha_record_event('conflict',
                       format('%s was %s here and %s on %s (term %s); done wins', left(r.url, 200), (h.f).state,
                              r.state, from_node, from_term), NULL,
                       jsonb_build_object('table', 'crawl_frontier', 'key', (h.f).id, 'from_node', from_node,
                                          'from_term', from_term,
                                          'kept', CASE WHEN (h.f).state = 'done' THEN to_jsonb(h.f) ELSE to_jsonb(r) END,
                                          'other', CASE WHEN (h.f).state = 'done' THEN to_jsonb(r) ELSE to_jsonb(h.f) END)))
              INTO conflicts
              FROM unnest(rest_f) r,
                   LATERAL (SELECT x AS f FROM @extschema@.crawl_frontier x WHERE x.id = r.id
                            UNION ALL
                            SELECT x FROM @extschema@.crawl_frontier x
                             WHERE x.session_id = r.session_id AND x.url = r.url AND x.id <> r.id
                            OFFSET 0) h
             WHERE r.state IN ('done', 'failed') AND (h.f).state IN ('done', 'failed') AND r.state <> (h.f).state;

            -- the URL's further progress wins
            WITH m AS MATERIALIZED (
                -- the same id, else the same URL of the session
                SELECT DISTINCT ON (h.id) r.*, h.id AS cur_id
                  FROM unnest(rest_f) r,
                       LATERAL (SELECT coalesce((SELECT x.id FROM @extschema@.crawl_frontier x WHERE x.id = r.id),
                                                (SELECT x.id FROM @extschema@.crawl_frontier x
                                                  WHERE x.session_id = r.session_id AND x.url = r.url)) AS id
                                OFFSET 0) h
                 WHERE h.id IS NOT NULL
                 ORDER BY h.id, @extschema@.ha_merge_rank(r.state, false) DESC),
            up AS (
                UPDATE @extschema@.crawl_frontier f
                   SET state = m.state, result = m.result, last_error = m.last_error,
                       attempts = greatest(f.attempts, m.attempts), lease_expires_at = NULL,
                       lease_owner = coalesce(m.lease_owner, f.lease_owner), leased_at = m.leased_at,
                       updated_at = clock_timestamp()
                  FROM m
                 WHERE f.id = m.cur_id
                   AND @extschema@.ha_merge_rank(m.state, false) > @extschema@.ha_merge_rank(f.state, true)
                RETURNING f.id, f.session_id)
            SELECT coalesce(jsonb_agg(up.id), '[]'), sessions || coalesce(array_agg(DISTINCT up.session_id), '{}')
              INTO replaced, sessions FROM up;
        END IF;
        kept := cardinality(in_f) - jsonb_array_length(inserted) - jsonb_array_length(replaced);

    ELSE  -- images: one row per URL
        -- A row image_record() could not have written (a file_path outside
        -- the store, control characters) is not merged: a conflict, recorded.
        SELECT coalesce(array_agg(x.r ORDER BY x.n) FILTER (WHERE x.rule IS NULL), '{}'),
               coalesce(jsonb_agg(jsonb_build_object('rec', to_jsonb(x.r), 'rule', x.rule) ORDER BY x.n)
                        FILTER (WHERE x.rule IS NOT NULL), '[]')
          INTO in_i, refused
          FROM (SELECT row_number() OVER () AS n, r,
                       coalesce(@extschema@.image_problem(r.url, r.sha256, r.file_path, r.file_size, r.width, r.height,
                                                          r.format, r.content_type, r.found_on, r.http_status,
                                                          r.filename),
                                CASE WHEN @extschema@.image_thumbnails_problem(r.thumbnails) IS NOT NULL
                                     THEN 'thumbnails' END) AS rule
                  FROM unnest(sent_i) r
                OFFSET 0) x;
        conflicts := conflicts + @extschema@.ha_merge_refuse_invalid('images', 'url', refused, from_node, from_term);
        -- only there (no row here with its URL, nor its id): inserted
        WITH ins AS (
            INSERT INTO @extschema@.images AS i
            SELECT r.* FROM unnest(in_i) r
            ON CONFLICT DO NOTHING
            RETURNING i.id, i.session_id, i.url, i.sha256)
        -- a row inserted as sent is the one row here with its URL: no conflict
        SELECT coalesce(jsonb_agg(ins.id), '[]'),
               coalesce(array_agg(DISTINCT ins.session_id) FILTER (WHERE ins.session_id IS NOT NULL), '{}'),
               ARRAY(SELECT r FROM unnest(in_i) r
                      WHERE NOT EXISTS (SELECT 1 FROM ins i WHERE i.url = r.url AND i.sha256 = r.sha256))
          INTO inserted, sessions, rest_i
          FROM ins;
        -- same URL, other bytes: the row here (the newer term) stays
        SELECT conflicts + count(@extschema@.ha_record_event('conflict',
                   format('%s has other content on %s (term %s): sha256 %s there, %s here; the row here stays',
                          left(r.url, 200), from_node, from_term, r.sha256, (h.i).sha256), NULL,
                   jsonb_build_object('table', 'images', 'key', r.url, 'from_node', from_node,
                                      'from_term', from_term, 'kept', to_jsonb(h.i), 'other', to_jsonb(r))))
          INTO conflicts
          FROM unnest(rest_i) r,
               LATERAL (SELECT x AS i FROM @extschema@.images x WHERE x.url = r.url OFFSET 0) h
         WHERE (h.i).sha256 <> r.sha256;
        -- same URL, same bytes: the thumbnails only there join those here
        -- (a name here keeps its blob), within the rule's 8
        WITH up AS (
            UPDATE @extschema@.images i SET thumbnails = r.thumbnails || coalesce(i.thumbnails, '{}')
              FROM unnest(rest_i) r
             WHERE i.url = r.url AND i.sha256 = r.sha256 AND r.thumbnails IS NOT NULL
               AND EXISTS (SELECT 1 FROM jsonb_object_keys(r.thumbnails) k WHERE NOT coalesce(i.thumbnails, '{}') ? k)
               AND (SELECT count(*) FROM jsonb_object_keys(r.thumbnails || coalesce(i.thumbnails, '{}'))) <= 8
            RETURNING i.id)
        SELECT coalesce(jsonb_agg(up.id), '[]') INTO replaced FROM up;
        kept := cardinality(in_i) - jsonb_array_length(inserted) - jsonb_array_length(replaced);
    END IF;

    -- Counters follow the merged rows: what this merge's writes counted is
    -- written first, then the difference to a recount from the rows goes to
    -- this node's slot 0 (no backend's): the rows by state exactly, the
    -- events never downwards (they are statistics that other writes may
    -- already have moved on).
    IF cardinality(sessions) > 0 THEN
        PERFORM @extschema@.crawl_counts_flush();
        INSERT INTO @extschema@.crawl_session_counts AS c
               (key, session_id, node_id, slot, pages_queued, pages_fetched, images_found, images_stored,
                bytes_stored, errors, queued, leased, done, failed)
        SELECT x.id || '/' || me.node_id || '/0', x.id, me.node_id, 0,
               greatest(x.pages_queued - t.pages_queued, 0), greatest(x.pages_fetched - t.pages_fetched, 0),
               greatest(x.images_found - t.images_found, 0), greatest(x.images_stored - t.images_stored, 0),
               greatest(x.bytes_stored - t.bytes_stored, 0), greatest(x.errors - t.errors, 0),
               x.queued - t.queued, x.leased - t.leased, x.done - t.done, x.failed - t.failed
          FROM (SELECT u.id, f.pages_queued, f.images_found, f.pages_fetched, f.errors, f.queued, f.leased, f.done,
                       f.failed, i.images_stored, i.bytes_stored
                  FROM (SELECT DISTINCT unnest(sessions) AS id) u,
                       LATERAL (SELECT count(*) FILTER (WHERE @extschema@.crawl_counts_as_page(f.kind)) AS pages_queued,
                                       count(*) FILTER (WHERE f.kind = 'image') AS images_found,
                                       count(*) FILTER (WHERE @extschema@.crawl_counts_as_page(f.kind)
                                                          AND f.state = 'done') AS pages_fetched,
                                       count(*) FILTER (WHERE f.state = 'failed') AS errors,
                                       count(*) FILTER (WHERE f.state = 'queued') AS queued,
                                       count(*) FILTER (WHERE f.state = 'leased') AS leased,
                                       count(*) FILTER (WHERE f.state = 'done') AS done,
                                       count(*) FILTER (WHERE f.state = 'failed') AS failed
                                  FROM @extschema@.crawl_frontier f WHERE f.session_id = u.id) f,
                       LATERAL (SELECT count(*) AS images_stored, coalesce(sum(i.file_size), 0) AS bytes_stored
                                  FROM @extschema@.images i WHERE i.session_id = u.id) i
                 WHERE EXISTS (SELECT 1 FROM @extschema@.crawl_sessions s WHERE s.id = u.id)) x
          JOIN @extschema@.crawl_session_totals t ON t.session_id = x.id
         CROSS JOIN @extschema@.ha_node me
        ON CONFLICT (key) DO UPDATE
           SET pages_queued = c.pages_queued + EXCLUDED.pages_queued,
               pages_fetched = c.pages_fetched + EXCLUDED.pages_fetched,
               images_found = c.images_found + EXCLUDED.images_found,
               images_stored = c.images_stored + EXCLUDED.images_stored,
               bytes_stored = c.bytes_stored + EXCLUDED.bytes_stored,
               errors = c.errors + EXCLUDED.errors,
               queued = c.queued + EXCLUDED.queued, leased = c.leased + EXCLUDED.leased,
               done = c.done + EXCLUDED.done, failed = c.failed + EXCLUDED.failed,
               updated_at = now();
        -- merged queued work reopens a finished session
        UPDATE @extschema@.crawl_sessions c SET status = 'running', finished_at = NULL, updated_at = now()
         WHERE c.id = ANY (sessions) AND c.status = 'finished'
           AND EXISTS (SELECT 1 FROM @extschema@.crawl_frontier f WHERE f.session_id = c.id AND f.state IN ('queued', 'leased'));
    END IF;

    summary := jsonb_build_object('table', tbl::text, 'from_node', from_node, 'from_term', from_term,
                                  'rows', n_rows,
                                  'inserted', jsonb_array_length(inserted), 'replaced', jsonb_array_length(replaced),
                                  'kept', kept, 'conflicts', conflicts,
                                  'deleted_here', jsonb_array_length(coalesce(deleted_keys, '[]')));
    PERFORM @extschema@.ha_record_event('merge',
        format('%s rows of %s from %s (term %s): %s inserted, %s replaced, %s kept, %s conflicts%s',
               n_rows, tbl, from_node, from_term, jsonb_array_length(inserted),
               jsonb_array_length(replaced), kept, conflicts,
               CASE WHEN jsonb_array_length(coalesce(deleted_keys, '[]')) > 0
                    THEN format('; %s rows it deleted are kept here', jsonb_array_length(deleted_keys)) ELSE '' END),
        NULL, summary || jsonb_build_object('inserted_keys', inserted, 'replaced_keys', replaced,
                                            'deleted_there', coalesce(deleted_keys, '[]')));
    RETURN summary;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_merge_records(regclass, text, jsonb, text, bigint) IS
    'crawler_ha (internal): on the primary, merges rows (an array of the table''s records, as text) an old primary wrote after the split point, by the documented rules; records a merge event and one conflict event per conflict; idempotent';
REVOKE ALL ON FUNCTION @extschema@.ha_merge_records(regclass, text, jsonb, text, bigint) FROM PUBLIC;

-- The merge rules for rows given as JSON, matched to the columns by name:
-- an operator's way in (the rows of a conflict event or of a kept copy are
-- JSON), while a rejoin sends records (ha_merge_receive()). The rows are
-- read into the table's records here, in this node's column order, and
-- ha_merge_records() merges them. A key missing from a row is NULL, a key
-- that is no column is ignored. Errors as ha_merge_records(), and 22023 for
-- rows that are not a JSON array of objects.
CREATE FUNCTION @extschema@.ha_merge_rows(tbl regclass, rows jsonb, deleted_keys jsonb DEFAULT '[]',
                                          from_node text DEFAULT NULL, from_term bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR rows IS NULL THEN
        RAISE EXCEPTION 'tbl and rows must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.ha_require_data_table(tbl);
    IF jsonb_typeof(rows) <> 'array' THEN
        RAISE EXCEPTION 'rows must be a JSON array' USING ERRCODE = 'invalid_parameter_value';
    ELSIF jsonb_path_exists(rows, 'strict $[*] ? (@.type() != "object")') THEN
        RAISE EXCEPTION 'every row must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- each branch names the extension's own type for its table
    RETURN @extschema@.ha_merge_records(tbl,
        CASE tbl
        WHEN '@extschema@.crawl_sessions'::regclass THEN
            (SELECT coalesce(array_agg(r), '{}')::text
               FROM jsonb_populate_recordset(NULL::@extschema@.crawl_sessions, rows) r)
        WHEN '@extschema@.crawl_session_counts'::regclass THEN
            (SELECT coalesce(array_agg(r), '{}')::text
               FROM jsonb_populate_recordset(NULL::@extschema@.crawl_session_counts, rows) r)
        WHEN '@extschema@.crawl_hosts'::regclass THEN
            (SELECT coalesce(array_agg(r), '{}')::text
               FROM jsonb_populate_recordset(NULL::@extschema@.crawl_hosts, rows) r)
        WHEN '@extschema@.crawl_frontier'::regclass THEN
            (SELECT coalesce(array_agg(r), '{}')::text
               FROM jsonb_populate_recordset(NULL::@extschema@.crawl_frontier, rows) r)
        ELSE
            (SELECT coalesce(array_agg(r), '{}')::text
               FROM jsonb_populate_recordset(NULL::@extschema@.images, rows) r)
        END,
        deleted_keys, from_node, from_term);
END
$$;
COMMENT ON FUNCTION @extschema@.ha_merge_rows(regclass, jsonb, jsonb, text, bigint) IS
    'crawler_ha: on the primary, merges rows (JSON objects, columns by name) an old primary wrote after the split point, by the documented rules; records a merge event and one conflict event per conflict; idempotent';

REVOKE ALL ON FUNCTION @extschema@.ha_merge_rows(regclass, jsonb, jsonb, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.ha_merge_rows(regclass, jsonb, jsonb, text, bigint) TO crawler_ha_admin;
