-- The crawl data: replicated between the data nodes (see ha_*.sql for the
-- publication). Ids come from the node-partitioned sequences of 20_node.sql.

CREATE TABLE @extschema@.crawl_sessions (
    id            bigint PRIMARY KEY DEFAULT pg_catalog.nextval('@extschema@.crawl_sessions_id_seq'),
    status        text NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'stopped', 'finished')),
    seeds         text[] NOT NULL,
    settings      jsonb NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at   timestamptz,
    pages_queued  bigint NOT NULL DEFAULT 0,
    pages_fetched bigint NOT NULL DEFAULT 0,
    images_found  bigint NOT NULL DEFAULT 0,
    images_stored bigint NOT NULL DEFAULT 0,
    bytes_stored  bigint NOT NULL DEFAULT 0,
    errors        bigint NOT NULL DEFAULT 0,
    retries       bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((status = 'running') = (finished_at IS NULL))
);
ALTER SEQUENCE @extschema@.crawl_sessions_id_seq OWNED BY @extschema@.crawl_sessions.id;
COMMENT ON TABLE @extschema@.crawl_sessions IS
    'crawler_ha: one crawl: its seeds, settings and counters';

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

CREATE TABLE @extschema@.crawl_frontier (
    id               bigint PRIMARY KEY DEFAULT pg_catalog.nextval('@extschema@.crawl_frontier_id_seq'),
    session_id       bigint NOT NULL REFERENCES @extschema@.crawl_sessions (id) ON DELETE CASCADE,
    url              text NOT NULL CHECK (pg_catalog.octet_length(url) BETWEEN 1 AND 2048),
    kind             text NOT NULL CHECK (kind IN ('page', 'image')),
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
-- so the next level is found while images fill the idle connections.
CREATE INDEX crawl_frontier_queued_idx ON @extschema@.crawl_frontier
    (host, (depth + (kind = 'image')::integer), id) WHERE state = 'queued';
-- Expired leases are found by expiry; per-host lease counts by host.
CREATE INDEX crawl_frontier_lease_expiry_idx ON @extschema@.crawl_frontier (lease_expires_at) WHERE state = 'leased';
CREATE INDEX crawl_frontier_leased_host_idx ON @extschema@.crawl_frontier (host) WHERE state = 'leased';
-- A session is finished when nothing is queued or leased.
CREATE INDEX crawl_frontier_open_idx ON @extschema@.crawl_frontier (session_id) WHERE state IN ('queued', 'leased');
COMMENT ON TABLE @extschema@.crawl_frontier IS
    'crawler_ha: every URL of every session, with its state and lease';

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
    CONSTRAINT images_url_key UNIQUE (url)
);
ALTER SEQUENCE @extschema@.images_id_seq OWNED BY @extschema@.images.id;
CREATE INDEX images_sha256_idx ON @extschema@.images (sha256);
CREATE INDEX images_session_id_idx ON @extschema@.images (session_id);
COMMENT ON TABLE @extschema@.images IS
    'crawler_ha: one row per image URL; the bytes are on disk, content-addressed by sha256';

-- pg_dump keeps the crawl data (but not per-node state) of an extension.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.crawl_sessions', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.crawl_hosts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.crawl_frontier', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.images', '');
