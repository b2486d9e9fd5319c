-- The frontier: enqueue, claim with leases, renew, release, complete, fail.
-- A claimed URL is never lost (leases expire back into the queue) and never
-- handed out twice at once (FOR UPDATE SKIP LOCKED, completion needs the lease).

-- Whether a worker may follow a redirect of an item of `kind` in `session`
-- to `url`: the scope crawl_enqueue() holds links to (crawl_scope_ok), so a
-- redirect cannot take a crawl where a link could not. A read: it needs no
-- write fence, and a standby answers it too.
CREATE FUNCTION @extschema@.crawl_redirect_allowed(session bigint, url text, kind text)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    settings jsonb;
    host text;
BEGIN
    IF session IS NULL THEN
        RAISE EXCEPTION 'session must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF url IS NULL THEN
        RAISE EXCEPTION 'url must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.crawl_check_kind(kind);
    host := @extschema@.crawl_url_host(url, 'url');
    SELECT cs.settings INTO settings FROM @extschema@.crawl_sessions cs WHERE cs.id = session;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'crawl session % does not exist', session USING ERRCODE = 'no_data_found';
    END IF;
    RETURN coalesce(@extschema@.crawl_scope_ok(settings, host, kind)
                    AND @extschema@.crawl_patterns_ok(settings, url, kind), false);
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_redirect_allowed(bigint, text, text) IS
    'crawler_ha: whether a worker may follow a redirect of a session''s item to this URL (the crawl''s scope and URL patterns)';

-- A known image is fresh when its bytes were confirmed (fetched, or a 304)
-- within the session's image_expiry_s before t: it is not fetched again.
-- The one statement of the rule: crawl_enqueue() and crawl_enqueue_many()
-- put such an image in done at once, and a lease (crawl_lease_items) says it
-- of an image recorded after its URL was queued.
CREATE FUNCTION @extschema@.crawl_image_fresh(checked_at timestamptz, settings jsonb, t timestamptz)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(checked_at > t - make_interval(secs => coalesce((settings ->> 'image_expiry_s')::double precision, 0)),
                false);
COMMENT ON FUNCTION @extschema@.crawl_image_fresh(timestamptz, jsonb, timestamptz) IS
    'crawler_ha (internal): whether a known image confirmed at checked_at is fresh at t under a session''s image_expiry_s';

-- The result of a frontier item done as fresh (NULL for no image): the same
-- whether the enqueue or image_unchanged() completes it.
CREATE FUNCTION @extschema@.crawl_fresh_result(image_id bigint)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN image_id IS NOT NULL
            THEN jsonb_build_object('image_id', image_id, 'note', 'fresh: confirmed within image_expiry_s, not fetched') END;
COMMENT ON FUNCTION @extschema@.crawl_fresh_result(bigint) IS
    'crawler_ha (internal): the result of a frontier item done without a fetch because its image is fresh';

-- One page's links: crawl_enqueue_many() with the same kind, depth and
-- found_on for every URL, so that the rules (scope, patterns, depth, page
-- budget, fresh images) are written once. The scalar arguments are checked
-- here first, for errors that name them as the caller passed them.
CREATE FUNCTION @extschema@.crawl_enqueue(session bigint, urls text[], depth integer, kind text,
                                          found_on text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    IF session IS NULL THEN
        RAISE EXCEPTION 'session must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF urls IS NULL THEN
        RAISE EXCEPTION 'urls must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF depth IS NULL THEN
        RAISE EXCEPTION 'depth must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.crawl_check_kind(kind);
    IF NOT @extschema@.crawl_depth_ok(depth) THEN
        RAISE EXCEPTION 'depth % is out of range', depth
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'depth is between 0 and 1000.';
    ELSIF cardinality(urls) > 100000 THEN
        RAISE EXCEPTION 'too many URLs in one call: %', cardinality(urls)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'At most 100000 URLs per call.';
    END IF;
    PERFORM @extschema@.crawl_check_list(urls, 'urls');
    IF found_on IS NOT NULL THEN
        PERFORM @extschema@.crawl_url_host(found_on, 'found_on');
    END IF;
    n := cardinality(urls);
    RETURN @extschema@.crawl_enqueue_many(session, urls, array_fill(kind, ARRAY[n]),
                                          array_fill(depth, ARRAY[n]), array_fill(found_on, ARRAY[n]));
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_enqueue(bigint, text[], integer, text, text) IS
    'crawler_ha: queue URLs (kind page, image or sitemap) found at a depth; URLs already in the session, out of scope, too deep or over the page budget are skipped. Returns how many were newly queued';

-- The links of many pages of one session in one call: what crawl_enqueue()
-- does for each (url, kind, depth, found_on), in array order, with one fence
-- check, one session lock and one insert. A worker sends the links of every
-- page it parsed meanwhile in one call and claims right behind it.
CREATE FUNCTION @extschema@.crawl_enqueue_many(session bigint, urls text[], kinds text[], depths integer[],
                                               found_on text[])
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    hosts text[];
    budget bigint;
    max_depth integer;
    pages integer;
    images integer;
    known_fresh integer;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    IF session IS NULL THEN
        RAISE EXCEPTION 'session must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF urls IS NULL OR kinds IS NULL OR depths IS NULL OR found_on IS NULL THEN
        RAISE EXCEPTION 'urls, kinds, depths and found_on must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.crawl_check_list(urls, 'urls'), @extschema@.crawl_check_list(kinds, 'kinds'),
            @extschema@.crawl_check_list(depths, 'depths'), @extschema@.crawl_check_list(found_on, 'found_on');
    IF cardinality(urls) > 100000 THEN
        RAISE EXCEPTION 'too many URLs in one call: %', cardinality(urls)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'At most 100000 URLs per call.';
    ELSIF cardinality(kinds) <> cardinality(urls) OR cardinality(depths) <> cardinality(urls)
          OR cardinality(found_on) <> cardinality(urls) THEN
        RAISE EXCEPTION 'urls, kinds, depths and found_on differ in length'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'There is one kind, depth and found_on (or NULL) per URL.';
    ELSIF array_position(kinds, NULL) IS NOT NULL OR array_position(depths, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'kinds and depths must not contain NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF EXISTS (SELECT 1 FROM unnest(kinds) k WHERE NOT @extschema@.crawl_kind_ok(k)) THEN
        RAISE EXCEPTION 'invalid kind "%"', left((SELECT k FROM unnest(kinds) k WHERE NOT @extschema@.crawl_kind_ok(k) LIMIT 1), 100)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'kind is page, image or sitemap.';
    ELSIF EXISTS (SELECT 1 FROM unnest(depths) d WHERE NOT @extschema@.crawl_depth_ok(d)) THEN
        RAISE EXCEPTION 'depth % is out of range', (SELECT d FROM unnest(depths) d WHERE NOT @extschema@.crawl_depth_ok(d) LIMIT 1)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'depth is between 0 and 1000.';
    END IF;
    -- Validate everything before writing anything: the rule for every URL in
    -- one statement, the precise error for the first URL that breaks it.
    PERFORM @extschema@.crawl_url_host(f, 'found_on')
       FROM (SELECT DISTINCT f FROM unnest(found_on) f WHERE f IS NOT NULL) t;
    SELECT array_agg(@extschema@.crawl_url_host_of(u) ORDER BY o) INTO hosts
      FROM unnest(urls) WITH ORDINALITY AS t(u, o);
    IF array_position(hosts, NULL) IS NOT NULL THEN
        PERFORM @extschema@.crawl_url_host(u, 'url')
           FROM unnest(urls) WITH ORDINALITY AS t(u, o) WHERE o = array_position(hosts, NULL);
    END IF;

    -- The session row is the lock that keeps the page budget exact.
    SELECT * INTO s FROM @extschema@.crawl_sessions cs WHERE cs.id = session FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'crawl session % does not exist', session USING ERRCODE = 'no_data_found';
    END IF;
    IF s.status <> 'running' OR cardinality(urls) = 0 THEN
        RETURN 0;  -- a stopped crawl takes no more work; not an error for the worker
    END IF;
    max_depth := (s.settings ->> 'max_depth')::integer;
    budget := greatest((s.settings ->> 'max_pages')::bigint - @extschema@.crawl_pages_queued(session), 0);

    WITH candidates AS (
        SELECT DISTINCT ON (t.u) t.u, t.h, t.k, t.d, t.f, t.o
          FROM unnest(urls, hosts, kinds, depths, found_on) WITH ORDINALITY AS t(u, h, k, d, f, o)
         WHERE @extschema@.crawl_depth_within(max_depth, t.d, t.k)
           AND @extschema@.crawl_scope_ok(s.settings, t.h, t.k)
           AND (t.d = 0 OR @extschema@.crawl_patterns_ok(s.settings, t.u, t.k))
         ORDER BY t.u, t.o
    ), fresh AS (
        SELECT c.*, count(*) FILTER (WHERE @extschema@.crawl_counts_as_page(c.k)) OVER (ORDER BY c.o) AS page_number
          FROM candidates c
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.crawl_frontier f
                            WHERE f.session_id = session AND f.url = c.u)
    ), kept AS (
        SELECT * FROM fresh WHERE NOT @extschema@.crawl_counts_as_page(fresh.k) OR fresh.page_number <= budget
    ), new_hosts AS (
        INSERT INTO @extschema@.crawl_hosts (host)
        SELECT DISTINCT kept.h FROM kept
        ON CONFLICT (host) DO NOTHING
    ), ins AS (
        -- A known image confirmed within image_expiry_s goes in done (as
        -- image_unchanged(fetched => false) would complete it): no lease, no
        -- round trip, no request.
        INSERT INTO @extschema@.crawl_frontier (session_id, url, kind, depth, host, found_on, state, result)
        SELECT session, kept.u, kept.k, kept.d, kept.h, kept.f,
               CASE WHEN known.id IS NULL THEN 'queued' ELSE 'done' END, @extschema@.crawl_fresh_result(known.id)
          FROM kept
          LEFT JOIN @extschema@.images known
            ON kept.k = 'image' AND known.url = kept.u
           AND @extschema@.crawl_image_fresh(known.checked_at, s.settings, now())
         ORDER BY kept.o
        ON CONFLICT (session_id, url) DO NOTHING
        RETURNING kind, state
    )
    SELECT count(*) FILTER (WHERE @extschema@.crawl_counts_as_page(ins.kind)),
           count(*) FILTER (WHERE NOT @extschema@.crawl_counts_as_page(ins.kind)),
           count(*) FILTER (WHERE ins.state = 'done')
      INTO pages, images, known_fresh FROM ins;

    IF pages + images > 0 THEN
        PERFORM @extschema@.crawl_count(session, pages_queued => pages, images_found => images,
                                        images_fresh => known_fresh);
    END IF;
    RETURN pages + images;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_enqueue_many(bigint, text[], text[], integer[], text[]) IS
    'crawler_ha: crawl_enqueue() for many (url, kind, depth, found_on) of one session at once, in array order; returns how many were newly queued';

-- The politeness rules a lease follows, shared by crawl_claim() and
-- crawl_lease_early(): the time between two fetches of a host (its
-- robots.txt Crawl-delay or the session's delay_ms, the longer), and how many
-- of its URLs are leased now (against the session's per_host).
-- `spread` scales delay_ms: with the session's random_wait, crawl_claim()
-- passes a factor drawn from 0.5 to 1.5 (wget's --random-wait), so a
-- crawl's fetches do not come at a fixed beat; a Crawl-delay, the site's
-- own demand, is never shortened by it.
CREATE FUNCTION @extschema@.crawl_fetch_delay(robots_delay interval, settings jsonb, spread float8 DEFAULT 1)
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN greatest(coalesce(robots_delay, '0'),
                make_interval(secs => (settings ->> 'delay_ms')::numeric * spread::numeric / 1000));
COMMENT ON FUNCTION @extschema@.crawl_fetch_delay(interval, jsonb, float8) IS
    'crawler_ha (internal): the time between two fetches of a host in a session: its Crawl-delay or delay_ms (times spread), the longer';

-- The spread of one wait: from 0.5 to 1.5 with the session's random_wait, else 1.
CREATE FUNCTION @extschema@.crawl_wait_spread(settings jsonb)
RETURNS float8
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
RETURN CASE WHEN (settings ->> 'random_wait')::boolean THEN 0.5 + random() ELSE 1 END;
COMMENT ON FUNCTION @extschema@.crawl_wait_spread(jsonb) IS
    'crawler_ha (internal): the factor on delay_ms of one wait between fetches: random from 0.5 to 1.5 with random_wait, else 1';

CREATE FUNCTION @extschema@.crawl_host_leased(host text)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT count(*) FROM @extschema@.crawl_frontier l WHERE l.host = crawl_host_leased.host AND l.state = 'leased');
COMMENT ON FUNCTION @extschema@.crawl_host_leased(text) IS
    'crawler_ha (internal): how many URLs of a host are leased now, across sessions and workers';

-- Items chosen for a worker, leased in one statement and returned in the
-- order they were chosen.
CREATE FUNCTION @extschema@.crawl_lease_items(ids bigint[], worker text, t timestamptz, lease interval)
RETURNS TABLE (item_id bigint, session_id bigint, url text, kind text, depth integer, attempts integer,
               found_on text, leased_at timestamptz, lease_expires_at timestamptz,
               known_etag text, known_last_modified text, known_fresh boolean)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH leased AS (
        UPDATE @extschema@.crawl_frontier f
           SET state = 'leased', lease_owner = worker, leased_at = t, lease_expires_at = t + lease,
               attempts = f.attempts + 1, updated_at = t
         WHERE f.id = ANY (ids)
        RETURNING f.id, f.session_id, f.url, f.kind, f.depth, f.attempts, f.found_on, f.leased_at, f.lease_expires_at
    )
    -- An image URL the images table knows comes with its validators (a
    -- re-crawl asks with If-None-Match / If-Modified-Since) and whether it
    -- was confirmed within the session's image_expiry_s (then it is not
    -- fetched at all: image_unchanged(..., fetched => false)).
    SELECT l.*, i.etag, i.last_modified, @extschema@.crawl_image_fresh(i.checked_at, s.settings, t)
      FROM leased l
      JOIN unnest(ids) WITH ORDINALITY AS o(id, n) ON o.id = l.id
      JOIN @extschema@.crawl_sessions s ON s.id = l.session_id
      LEFT JOIN @extschema@.images i ON l.kind = 'image' AND i.url = l.url
     ORDER BY o.n
$$;
COMMENT ON FUNCTION @extschema@.crawl_lease_items(bigint[], text, timestamptz, interval) IS
    'crawler_ha (internal): lease the chosen items to a worker, returned in the order chosen, an image with what the images table knows of its URL';

CREATE FUNCTION @extschema@.crawl_claim(worker text, max_items integer DEFAULT 16,
                                        lease interval DEFAULT '60 s')
RETURNS TABLE (item_id bigint, session_id bigint, url text, kind text, depth integer, attempts integer,
               found_on text, leased_at timestamptz, lease_expires_at timestamptz,
               known_etag text, known_last_modified text, known_fresh boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamptz := clock_timestamp();
    h record;
    r record;
    got integer := 0;
    on_host integer;
    leased_now integer;
    delay interval;
    ids bigint[] := '{}';
    sort_setting text;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    PERFORM @extschema@.crawl_check_worker(worker);
    IF max_items IS NULL THEN
        RAISE EXCEPTION 'max_items must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF max_items < 1 OR max_items > 10000 THEN
        RAISE EXCEPTION 'max_items % is out of range', max_items
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'max_items is between 1 and 10000.';
    END IF;
    PERFORM @extschema@.crawl_check_interval(lease, 'lease', '1 second', @extschema@.crawl_lease_max());

    -- Leases of crashed workers come back to the queue (70_maintenance.sql);
    -- the fence above already holds for this transaction.
    PERFORM @extschema@.crawl_requeue_expired(1000);

    -- A crawl's frontier grows from nothing to thousands of rows in seconds,
    -- long before autovacuum's first ANALYZE. On such estimates the planner
    -- read a host's whole queue and sorted it at every claim (tens of ms for
    -- 10,000 URLs); crawl_frontier_queued_idx has that order already. So
    -- no sorts while choosing (until the end of this function; an error
    -- undoes the setting with the (sub)transaction).
    sort_setting := pg_catalog.current_setting('enable_sort');
    PERFORM pg_catalog.set_config('enable_sort', 'off', true);

    -- One host at a time, under its row lock: the lock serialises politeness
    -- decisions for the host across all claimers; SKIP LOCKED lets the others
    -- take other hosts meanwhile. (A first row in index order, not EXISTS:
    -- EXISTS drops the ORDER BY that keeps it on the index.)
    FOR h IN
        SELECT ch.host, coalesce(ch.crawl_delay, '0') AS robots_delay
          FROM @extschema@.crawl_hosts ch
         WHERE ch.next_fetch_at <= t
           AND (ch.backoff_until IS NULL OR ch.backoff_until <= t)
           AND (SELECT q.id FROM @extschema@.crawl_frontier q
                  JOIN @extschema@.crawl_sessions s ON s.id = q.session_id
                 WHERE q.host = ch.host AND q.state = 'queued' AND q.next_fetch_at <= t
                   AND s.status = 'running'
                 ORDER BY q.host, q.depth + (q.kind = 'image')::integer, q.id LIMIT 1) IS NOT NULL
         ORDER BY ch.next_fetch_at, ch.host
         LIMIT max_items
         FOR UPDATE OF ch SKIP LOCKED
    LOOP
        leased_now := @extschema@.crawl_host_leased(h.host);
        on_host := 0;
        FOR r IN
            SELECT q.id, s.settings
              FROM @extschema@.crawl_frontier q
              JOIN @extschema@.crawl_sessions s ON s.id = q.session_id
             WHERE q.host = h.host AND q.state = 'queued' AND q.next_fetch_at <= t AND s.status = 'running'
             ORDER BY q.host, q.depth + (q.kind = 'image')::integer, q.id
             LIMIT max_items - got
             FOR UPDATE OF q SKIP LOCKED
        LOOP
            EXIT WHEN leased_now + on_host >= (r.settings ->> 'per_host')::integer;
            delay := @extschema@.crawl_fetch_delay(h.robots_delay, r.settings,
                                                   @extschema@.crawl_wait_spread(r.settings));
            ids := ids || r.id;
            on_host := on_host + 1;
            got := got + 1;
            IF delay > '0' THEN
                -- One fetch per delay: the next claim of this host waits.
                UPDATE @extschema@.crawl_hosts ch SET next_fetch_at = t + delay, updated_at = t
                 WHERE ch.host = h.host;
                EXIT;
            END IF;
        END LOOP;
        EXIT WHEN got >= max_items;
    END LOOP;
    PERFORM pg_catalog.set_config('enable_sort', sort_setting, true);
    IF got = 0 THEN
        -- Nothing to hand out: running sessions whose queue is empty are
        -- finished (here and in crawl_status, not in every completion, which
        -- would pay for the check once per URL).
        PERFORM @extschema@.crawl_finish_if_idle(s.id)
           FROM @extschema@.crawl_sessions s WHERE s.status = 'running';
        RETURN;
    END IF;
    -- Every lease in one statement, handed out in claim order.
    RETURN QUERY SELECT * FROM @extschema@.crawl_lease_items(ids, worker, t, lease);
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_claim(text, integer, interval) IS
    'crawler_ha: lease up to max_items queued URLs of running crawls to a worker, honouring each host''s delay, back-off and per-host limit; expired leases are reclaimed first';

-- How long until a host that waits out its politeness delay may be claimed
-- again, for the earliest such host with queued items of a running session;
-- NULL when none waits. A worker whose claim came back short sleeps that
-- long rather than polling (its idle back-off would overshoot the delay by
-- up to its longest wait). An index walk in next_fetch_at order that stops
-- at the first host with work. Not counted: a host's back-off after
-- failures and an item's own retry time, which the worker's back-off covers.
CREATE FUNCTION @extschema@.crawl_next_claim_in()
RETURNS interval
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamptz := pg_catalog.clock_timestamp();
    due timestamptz;
BEGIN
    -- A first queued row in index order, not EXISTS (which the planner turns
    -- into a semi-join over every queued row of the frontier).
    SELECT ch.next_fetch_at INTO due
      FROM @extschema@.crawl_hosts ch
     WHERE ch.next_fetch_at > t
       AND (SELECT q.id FROM @extschema@.crawl_frontier q
              JOIN @extschema@.crawl_sessions s ON s.id = q.session_id
             WHERE q.host = ch.host AND q.state = 'queued' AND s.status = 'running'
             ORDER BY q.host, q.depth + (q.kind = 'image')::integer, q.id LIMIT 1) IS NOT NULL
     ORDER BY ch.next_fetch_at
     LIMIT 1;
    RETURN due - t;  -- positive (due > t); NULL when no host waits
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_next_claim_in() IS
    'crawler_ha: how long until the earliest host that waits out its politeness delay, with queued items of a running session, may be claimed again; NULL when none waits';

CREATE FUNCTION @extschema@.crawl_lease_early(worker text, session bigint, urls text[],
                                              lease interval DEFAULT '60 s')
RETURNS TABLE (item_id bigint, session_id bigint, url text, kind text, depth integer, attempts integer,
               found_on text, leased_at timestamptz, lease_expires_at timestamptz,
               known_etag text, known_last_modified text, known_fresh boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamptz := clock_timestamp();
    s record;
    h record;
    r record;
    leased_now integer;
    on_host integer;
    ids bigint[] := '{}';
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    PERFORM @extschema@.crawl_check_worker(worker);
    IF session IS NULL OR urls IS NULL THEN
        RAISE EXCEPTION 'session and urls must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.crawl_check_list(urls, 'urls');
    IF cardinality(urls) > 10000 THEN
        RAISE EXCEPTION 'too many URLs in one call: %', cardinality(urls)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'At most 10000 URLs per call.';
    ELSIF array_position(urls, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'urls must not contain NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.crawl_check_interval(lease, 'lease', '1 second', @extschema@.crawl_lease_max());
    SELECT cs.status, cs.settings INTO s FROM @extschema@.crawl_sessions cs WHERE cs.id = session;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'crawl session % does not exist', session USING ERRCODE = 'no_data_found';
    END IF;
    IF s.status <> 'running' OR cardinality(urls) = 0 THEN
        RETURN;
    END IF;
    -- The same rules as crawl_claim(), host by host under the host's row
    -- lock, but only for hosts fetched without a delay: a URL fetched ahead
    -- of its lease cannot have been spaced. Locked hosts are skipped (their
    -- URLs wait for a claim), so no order of locks can deadlock.
    FOR h IN
        SELECT ch.host, ch.crawl_delay
          FROM @extschema@.crawl_hosts ch
         WHERE ch.host IN (SELECT q.host FROM @extschema@.crawl_frontier q
                            WHERE q.session_id = session AND q.url = ANY (urls) AND q.state = 'queued')
           AND ch.next_fetch_at <= t
           AND (ch.backoff_until IS NULL OR ch.backoff_until <= t)
         ORDER BY ch.host
         FOR UPDATE OF ch SKIP LOCKED
    LOOP
        CONTINUE WHEN @extschema@.crawl_fetch_delay(h.crawl_delay, s.settings) > '0';
        leased_now := @extschema@.crawl_host_leased(h.host);
        on_host := 0;
        FOR r IN
            SELECT q.id FROM @extschema@.crawl_frontier q
             WHERE q.session_id = session AND q.url = ANY (urls) AND q.host = h.host
               AND q.state = 'queued' AND q.next_fetch_at <= t
             ORDER BY q.id
             FOR UPDATE OF q SKIP LOCKED
        LOOP
            EXIT WHEN leased_now + on_host >= (s.settings ->> 'per_host')::integer;
            ids := ids || r.id;
            on_host := on_host + 1;
        END LOOP;
    END LOOP;
    RETURN QUERY SELECT * FROM @extschema@.crawl_lease_items(ids, worker, t, lease);
    -- Then the URLs no lease will ever come for: not in the frontier (the
    -- enqueue refused them: out of scope, too deep, over the page budget)
    -- or no longer queued (another worker holds them, or they are done).
    -- item_id is NULL. URLs still queued (per_host full, the host locked)
    -- are not returned: a later claim leases them.
    RETURN QUERY
    SELECT NULL::bigint, session, u.u, NULL::text, NULL::integer, NULL::integer, NULL::text,
           NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::text, NULL::boolean
      FROM (SELECT DISTINCT x AS u FROM unnest(urls) x) u
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.crawl_frontier q
                        WHERE q.session_id = session AND q.url = u.u
                          AND (q.state = 'queued' OR q.id = ANY (ids)));
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_lease_early(text, bigint, text[], interval) IS
    'crawler_ha: lease to a worker those of a session''s queued URLs it is fetching already (a page''s links, fetched while they were queued), where the host has no delay and per_host has room; then, with a NULL item_id, those that will never be leased to it (not in the frontier, or no longer queued); the others stay queued for a claim';

CREATE FUNCTION @extschema@.crawl_renew(worker text, items bigint[], lease interval DEFAULT '60 s')
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    PERFORM @extschema@.crawl_check_worker(worker);
    IF items IS NULL THEN
        RAISE EXCEPTION 'items must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.crawl_check_list(items, 'items');
    PERFORM @extschema@.crawl_check_interval(lease, 'lease', '1 second', @extschema@.crawl_lease_max());
    UPDATE @extschema@.crawl_frontier f
       SET lease_expires_at = clock_timestamp() + lease, updated_at = clock_timestamp()
     WHERE f.id = ANY (items) AND f.state = 'leased' AND f.lease_owner = worker;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_renew(text, bigint[], interval) IS
    'crawler_ha: extend the worker''s leases on these items; returns how many it still held';

CREATE FUNCTION @extschema@.crawl_release(worker text, items bigint[])
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    PERFORM @extschema@.crawl_check_worker(worker);
    IF items IS NULL THEN
        RAISE EXCEPTION 'items must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.crawl_check_list(items, 'items');
    -- A returned lease is not a failed attempt.
    UPDATE @extschema@.crawl_frontier f
       SET state = 'queued', lease_expires_at = NULL, attempts = greatest(f.attempts - 1, 0),
           updated_at = clock_timestamp()
     WHERE f.id = ANY (items) AND f.state = 'leased' AND f.lease_owner = worker;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_release(text, bigint[]) IS
    'crawler_ha: give the worker''s leases back (clean stop); the items are queued again and the attempt is not counted';

-- The lease check shared by complete and fail: the locked row, or an error.
CREATE FUNCTION @extschema@.crawl_lease_row(item bigint, worker text)
RETURNS @extschema@.crawl_frontier
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.crawl_frontier;
BEGIN
    IF item IS NULL THEN
        RAISE EXCEPTION 'item must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.crawl_check_worker(worker);
    SELECT * INTO r FROM @extschema@.crawl_frontier f WHERE f.id = item FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'frontier item % does not exist', item USING ERRCODE = 'no_data_found';
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_lease_row(bigint, text) IS
    'crawler_ha (internal): lock and return a frontier item';

CREATE FUNCTION @extschema@.crawl_refuse_lease(r @extschema@.crawl_frontier, worker text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'worker "%" does not hold the lease on frontier item %', left(worker, 200), r.id
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = format('The item is %s%s.', r.state,
                              CASE WHEN r.lease_owner IS NOT NULL THEN format(', last leased by "%s"', r.lease_owner) ELSE '' END);
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_refuse_lease(@extschema@.crawl_frontier, text) IS
    'crawler_ha (internal): raise 55000 for a lease the caller does not hold';

-- A stopped session records nothing more: a result that arrives after the
-- stop (a fetch that was under way) is refused, once, and the worker drops
-- the item; its lease expires and the item stays queued, never handed out.
CREATE FUNCTION @extschema@.crawl_refuse_stopped(r @extschema@.crawl_frontier)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'crawl session % is stopped', r.session_id
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = format('A stopped session records nothing more; the result for frontier item %s is not recorded.', r.id);
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_refuse_stopped(@extschema@.crawl_frontier) IS
    'crawler_ha (internal): raise 55000 for a result of a stopped session';

CREATE FUNCTION @extschema@.crawl_complete(item bigint, worker text, result jsonb DEFAULT '{}')
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.crawl_frontier;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    IF result IS NULL THEN
        RAISE EXCEPTION 'result must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Pass ''{}'' when there is nothing to report.';
    ELSIF jsonb_typeof(result) <> 'object' THEN
        RAISE EXCEPTION 'result must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    ELSIF octet_length(result::text) > 65536 THEN
        RAISE EXCEPTION 'result is too large' USING ERRCODE = 'program_limit_exceeded',
            DETAIL = 'At most 64 kB of JSON per item.';
    END IF;
    r := @extschema@.crawl_lease_row(item, worker);
    IF r.state = 'done' AND r.lease_owner = worker THEN
        RETURN true;  -- a retry after a lost reply: already done
    ELSIF r.state <> 'leased' OR r.lease_owner <> worker THEN
        PERFORM @extschema@.crawl_refuse_lease(r, worker);
    ELSIF (SELECT s.status FROM @extschema@.crawl_sessions s WHERE s.id = r.session_id) = 'stopped' THEN
        PERFORM @extschema@.crawl_refuse_stopped(r);
    END IF;
    UPDATE @extschema@.crawl_frontier f
       SET state = 'done', lease_expires_at = NULL, result = crawl_complete.result, last_error = NULL,
           updated_at = clock_timestamp()
     WHERE f.id = item;
    IF @extschema@.crawl_counts_as_page(r.kind) THEN
        PERFORM @extschema@.crawl_count(r.session_id, pages_fetched => 1);
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_complete(bigint, text, jsonb) IS
    'crawler_ha: mark a leased item done; repeating it (a retry) is harmless; refused (55000) without the lease';

CREATE FUNCTION @extschema@.crawl_fail(item bigint, worker text, error text, retry_after interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r @extschema@.crawl_frontier;
    max_attempts integer;
    session_status text;
    new_state text;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    IF error IS NULL THEN
        RAISE EXCEPTION 'error must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF length(error) > 4096 THEN
        RAISE EXCEPTION 'error text is too long' USING ERRCODE = 'string_data_right_truncation',
            DETAIL = 'At most 4096 characters.';
    END IF;
    IF retry_after IS NOT NULL THEN
        PERFORM @extschema@.crawl_check_interval(retry_after, 'retry_after', '0', '7 days');
    END IF;
    r := @extschema@.crawl_lease_row(item, worker);
    IF r.state IN ('failed', 'queued') AND r.lease_owner = worker AND r.last_error = error THEN
        RETURN r.state;  -- a retry after a lost reply
    ELSIF r.state <> 'leased' OR r.lease_owner <> worker THEN
        PERFORM @extschema@.crawl_refuse_lease(r, worker);
    END IF;
    SELECT (s.settings ->> 'max_attempts')::integer, s.status INTO max_attempts, session_status
      FROM @extschema@.crawl_sessions s WHERE s.id = r.session_id;
    IF session_status = 'stopped' THEN
        PERFORM @extschema@.crawl_refuse_stopped(r);
    END IF;
    new_state := CASE WHEN retry_after IS NOT NULL AND r.attempts < max_attempts THEN 'queued' ELSE 'failed' END;
    UPDATE @extschema@.crawl_frontier f
       SET state = new_state, lease_expires_at = NULL, last_error = error,
           next_fetch_at = CASE WHEN new_state = 'queued' THEN clock_timestamp() + retry_after ELSE f.next_fetch_at END,
           updated_at = clock_timestamp()
     WHERE f.id = item;
    PERFORM @extschema@.crawl_count(r.session_id, retries => CASE WHEN new_state = 'queued' THEN 1 ELSE 0 END,
                                    errors => CASE WHEN new_state = 'failed' THEN 1 ELSE 0 END);
    RETURN new_state;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_fail(bigint, text, text, interval) IS
    'crawler_ha: record a failed fetch; with retry_after the item is queued again until max_attempts, else it fails for good. Returns the new state';

CREATE FUNCTION @extschema@.crawl_host_set(host text, crawl_delay interval DEFAULT NULL, robots_txt text DEFAULT NULL,
                                           backoff_until timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    IF host IS NULL THEN
        RAISE EXCEPTION 'host must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF host !~ '^[a-z0-9._~%!$&''()*+,;=\[\]-]{1,255}(:[0-9]{1,5})?$' THEN
        RAISE EXCEPTION 'invalid host "%"', left(host, 200)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A host is a lower-case host name with an optional port, as in frontier rows.';
    END IF;
    IF crawl_delay IS NOT NULL THEN
        PERFORM @extschema@.crawl_check_interval(crawl_delay, 'crawl_delay', '0', '1 day');
    END IF;
    IF robots_txt IS NOT NULL AND octet_length(robots_txt) > 524288 THEN
        RAISE EXCEPTION 'robots_txt is too long' USING ERRCODE = 'string_data_right_truncation',
            DETAIL = 'At most 512 kB are kept; truncate it as crawlers do.';
    END IF;
    IF backoff_until IS NOT NULL AND backoff_until > now() + interval '7 days' THEN
        RAISE EXCEPTION 'backoff_until is more than 7 days ahead' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO @extschema@.crawl_hosts AS ch (host, crawl_delay, robots_txt, robots_fetched_at, backoff_until)
    VALUES (host, crawl_delay, robots_txt, CASE WHEN robots_txt IS NOT NULL THEN now() END, backoff_until)
    ON CONFLICT ON CONSTRAINT crawl_hosts_pkey DO UPDATE
       SET crawl_delay = coalesce(EXCLUDED.crawl_delay, ch.crawl_delay),
           robots_txt = coalesce(EXCLUDED.robots_txt, ch.robots_txt),
           robots_fetched_at = coalesce(EXCLUDED.robots_fetched_at, ch.robots_fetched_at),
           backoff_until = greatest(EXCLUDED.backoff_until, ch.backoff_until),
           updated_at = now();
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_host_set(text, interval, text, timestamptz) IS
    'crawler_ha: record a host''s robots.txt, its Crawl-delay and a back-off (429/503 Retry-After) shared by every worker';
