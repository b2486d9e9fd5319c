-- The crawl data: replicated between the data nodes. Every id comes from a
-- sequence the id column owns, made node-partitioned at the end of this file.
-- A new data table goes here and into ha_data_tables() below, which everything
-- that concerns the replicated data follows (the publication, the copy at a
-- rejoin, consistency checks, merges, grants), and gets its merge rule in
-- 66_merge_rules.sql.

CREATE SEQUENCE @extschema@.crawl_sessions_id_seq AS bigint;
CREATE TABLE @extschema@.crawl_sessions (
    id            bigint PRIMARY KEY DEFAULT pg_catalog.nextval('@extschema@.crawl_sessions_id_seq'),
    status        text NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'stopped', 'finished')),
    seeds         text[] NOT NULL,
    settings      jsonb NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((status = 'running') = (finished_at IS NULL))
);
ALTER SEQUENCE @extschema@.crawl_sessions_id_seq OWNED BY @extschema@.crawl_sessions.id;
COMMENT ON TABLE @extschema@.crawl_sessions IS
    'crawler_ha: one crawl: its seeds and settings (its counters: crawl_session_counts)';

-- A session's counters, one row for each (session, node, backend slot) that
-- counted something. A writer adds to its own backend's row only, once, when
-- its transaction commits (crawl_counts.c): concurrent writers never wait for
-- each other on a counter, and a transaction of a hundred calls updates its
-- row once. Only the sums mean anything (crawl_session_totals): the rows by
-- state (queued, leased, done, failed) move with the frontier's rows, so one
-- slot's share of queued goes negative when another slot queued what it
-- leased. The key is one column, as consistency checks and merges compare
-- rows by a single-column key.
CREATE TABLE @extschema@.crawl_session_counts (
    key           text PRIMARY KEY,
    session_id    bigint NOT NULL REFERENCES @extschema@.crawl_sessions (id) ON DELETE CASCADE,
    node_id       integer NOT NULL,
    slot          integer NOT NULL,
    pages_queued  bigint NOT NULL DEFAULT 0,
    pages_fetched bigint NOT NULL DEFAULT 0,
    images_found  bigint NOT NULL DEFAULT 0,
    images_stored bigint NOT NULL DEFAULT 0,
    bytes_stored  bigint NOT NULL DEFAULT 0,
    errors        bigint NOT NULL DEFAULT 0,
    retries       bigint NOT NULL DEFAULT 0,
    -- re-crawls: a known image URL whose bytes changed, that answered the
    -- same bytes (304 Not Modified, or a body of the same sha256), or that
    -- was checked within the session's image_expiry_s and not fetched
    images_changed   bigint NOT NULL DEFAULT 0,
    images_unchanged bigint NOT NULL DEFAULT 0,
    images_fresh     bigint NOT NULL DEFAULT 0,
    queued        bigint NOT NULL DEFAULT 0,
    leased        bigint NOT NULL DEFAULT 0,
    done          bigint NOT NULL DEFAULT 0,
    failed        bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK (key = session_id::text || '/' || node_id::text || '/' || slot::text)
);
CREATE INDEX crawl_session_counts_session_idx ON @extschema@.crawl_session_counts (session_id);
COMMENT ON TABLE @extschema@.crawl_session_counts IS
    'crawler_ha: a session''s counters, per (session, node, backend slot); crawl_session_totals sums them';

-- Politeness state per host, shared by every worker through the database.
CREATE TABLE @extschema@.crawl_hosts (
    host              text PRIMARY KEY,
    next_fetch_at     timestamptz NOT NULL DEFAULT '-infinity',
    crawl_delay       interval,
    backoff_until     timestamptz,
    robots_txt        text,
    robots_fetched_at timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX crawl_hosts_next_fetch_at_idx ON @extschema@.crawl_hosts (next_fetch_at);
COMMENT ON TABLE @extschema@.crawl_hosts IS
    'crawler_ha: per-host politeness (next allowed fetch, robots.txt Crawl-delay, back-off)';

CREATE SEQUENCE @extschema@.crawl_frontier_id_seq AS bigint;
CREATE TABLE @extschema@.crawl_frontier (
    id               bigint PRIMARY KEY DEFAULT pg_catalog.nextval('@extschema@.crawl_frontier_id_seq'),
    session_id       bigint NOT NULL REFERENCES @extschema@.crawl_sessions (id) ON DELETE CASCADE,
    url              text NOT NULL CHECK (pg_catalog.octet_length(url) BETWEEN 1 AND 2048),
    kind             text NOT NULL CHECK (kind IN ('page', 'image', 'sitemap')),
    depth            integer NOT NULL CHECK (depth >= 0),
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'leased', 'done', 'failed')),
    host             text NOT NULL,
    found_on         text,
    lease_owner      text,
    leased_at        timestamptz,
    lease_expires_at timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    next_fetch_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    result           jsonb,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (session_id, url),
    CHECK (state <> 'leased' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);
ALTER SEQUENCE @extschema@.crawl_frontier_id_seq OWNED BY @extschema@.crawl_frontier.id;
-- Claims walk queued items host by host, shallowest first, an image as if
-- it were one level deeper: the pages a page links to go before its images,
-- so the next level is found while images fill the idle connections. A
-- sitemap is at the depth of the page it stands for (35_validation.sql).
CREATE INDEX crawl_frontier_queued_idx ON @extschema@.crawl_frontier
    (host, (depth + (kind = 'image')::integer), id) WHERE state = 'queued';
-- Expired leases are found by expiry; per-host lease counts by host.
CREATE INDEX crawl_frontier_lease_expiry_idx ON @extschema@.crawl_frontier (lease_expires_at) WHERE state = 'leased';
CREATE INDEX crawl_frontier_leased_host_idx ON @extschema@.crawl_frontier (host) WHERE state = 'leased';
-- A session is finished when nothing is queued or leased.
CREATE INDEX crawl_frontier_open_idx ON @extschema@.crawl_frontier (session_id) WHERE state IN ('queued', 'leased');
COMMENT ON TABLE @extschema@.crawl_frontier IS
    'crawler_ha: every URL of every session, with its state and lease';

CREATE SEQUENCE @extschema@.images_id_seq AS bigint;
CREATE TABLE @extschema@.images (
    id           bigint PRIMARY KEY DEFAULT pg_catalog.nextval('@extschema@.images_id_seq'),
    url          text NOT NULL CHECK (pg_catalog.octet_length(url) BETWEEN 1 AND 2048),
    filename     text,
    file_path    text NOT NULL,
    file_size    bigint NOT NULL CHECK (file_size >= 0),
    width        integer CHECK (width >= 0),
    height       integer CHECK (height >= 0),
    format       text,
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type text,
    found_on     text,
    -- No foreign key: image_record() checks the session, and an FK check that
    -- locks the session row, followed by the same transaction's update of its
    -- counters, costs more than the insert itself (measured: 2.3x fewer
    -- image_record calls per second in a batch). Only the write API writes here.
    session_id   bigint,
    http_status  integer,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- The response's validators (ETag, Last-Modified), sent back in a
    -- re-crawl's conditional request; when its bytes were last confirmed
    -- (fetched, or a 304), against the session's image_expiry_s.
    etag          text CHECK (pg_catalog.octet_length(etag) BETWEEN 1 AND 1024 AND etag ~ '^[ -~]+$'),
    last_modified text CHECK (pg_catalog.octet_length(last_modified) BETWEEN 1 AND 1024 AND last_modified ~ '^[ -~]+$'),
    checked_at    timestamptz DEFAULT pg_catalog.now(),  -- NULL: never confirmed (not fresh)
    -- The thumbnails made of these bytes, by the session's sizes' names:
    -- {"small": {"sha256", "file_path", "width", "height", "bytes"}}, each a
    -- blob of the same store (image_thumbnails_problem() is the rule, in
    -- 44_thumbnails.sql). NULL: none asked; {}: asked, none made.
    thumbnails    jsonb CHECK (pg_catalog.jsonb_typeof(thumbnails) = 'object'),
    CONSTRAINT images_url_key UNIQUE (url)
);
ALTER SEQUENCE @extschema@.images_id_seq OWNED BY @extschema@.images.id;
CREATE INDEX images_sha256_idx ON @extschema@.images (sha256);
-- A session's images in id order: image_list(session => ...) pages through
-- them by this index without sorting (it also serves any lookup by session).
CREATE INDEX images_session_id_idx ON @extschema@.images (session_id, id);
COMMENT ON TABLE @extschema@.images IS
    'crawler_ha: one row per image URL; the bytes are on disk, content-addressed by sha256';

-- pg_dump keeps the crawl data (but not per-node state) of an extension.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.crawl_sessions', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.crawl_session_counts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.crawl_hosts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.crawl_frontier', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.images', '');

-- The replicated data tables, parents before children: the one list.
CREATE FUNCTION @extschema@.ha_data_tables()
RETURNS regclass[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['@extschema@.crawl_sessions', '@extschema@.crawl_session_counts', '@extschema@.crawl_hosts',
                 '@extschema@.crawl_frontier', '@extschema@.images']::pg_catalog.regclass[]
$$;
COMMENT ON FUNCTION @extschema@.ha_data_tables() IS
    'crawler_ha: the replicated data tables, parents before children';

-- The same list as SQL text, each name schema-qualified and quoted, for the
-- statements that take a list of tables (CREATE PUBLICATION, TRUNCATE).
CREATE FUNCTION @extschema@.ha_data_table_list()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.relname), ', ' ORDER BY t.i)
      FROM pg_catalog.unnest(@extschema@.ha_data_tables()) WITH ORDINALITY AS t(rel, i)
      JOIN pg_catalog.pg_class c ON c.oid = t.rel
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
$$;
COMMENT ON FUNCTION @extschema@.ha_data_table_list() IS
    'crawler_ha (internal): ha_data_tables() as a quoted, comma-separated list for CREATE PUBLICATION and TRUNCATE';

-- How many rows the data tables hold together: a node about to become a
-- standby or a witness must hold none.
CREATE FUNCTION @extschema@.ha_data_rows()
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl regclass;
    n bigint;
    total bigint := 0;
BEGIN
    FOREACH tbl IN ARRAY @extschema@.ha_data_tables() LOOP
        EXECUTE pg_catalog.format('SELECT count(*) FROM %s', tbl) INTO n;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION @extschema@.ha_data_rows() IS
    'crawler_ha (internal): the number of rows in all of ha_data_tables()';

-- The id sequences of the data tables: those their columns own.
CREATE FUNCTION @extschema@.ha_id_sequences()
RETURNS TABLE (tbl regclass, seq regclass)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.rel, d.objid::pg_catalog.regclass
      FROM pg_catalog.unnest(@extschema@.ha_data_tables()) WITH ORDINALITY AS t(rel, i)
      JOIN pg_catalog.pg_depend d
        ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = t.rel
       AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'a'
      JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
     ORDER BY t.i
$$;
COMMENT ON FUNCTION @extschema@.ha_id_sequences() IS
    'crawler_ha (internal): each data table with an id sequence, and that sequence';

-- Node-partitioned ids: the first id of node `node_id`'s residue class
-- (modulo 1024) above `after`; where its sequences continue after `after`.
-- Every id a node hands out is congruent to its node id modulo 1024, so two
-- nodes never produce the same id, before or after a failover, and nothing
-- needs fixing at promotion (logical replication does not carry sequences).
-- See docs/ids.md.
CREATE FUNCTION @extschema@.ha_id_after(after bigint, node_id integer)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT (GREATEST(after, 0) / 1024 + 1) * 1024 + node_id $$;
COMMENT ON FUNCTION @extschema@.ha_id_after(bigint, integer) IS
    'crawler_ha (internal): the first id of the node''s residue class (modulo 1024) above the given one';

DO $seqs$
DECLARE
    n integer := (SELECT node_id FROM @extschema@.ha_node);
    seq regclass;
BEGIN
    FOR seq IN SELECT i.seq FROM @extschema@.ha_id_sequences() i LOOP
        EXECUTE pg_catalog.format('ALTER SEQUENCE %s INCREMENT BY 1024 MINVALUE 1 START WITH %s RESTART WITH %s NO CYCLE',
                                  seq, n, n);
    END LOOP;
END
$seqs$;
