-- Argument checks shared by the write API. Internal: no role may call them
-- directly. Each raises a documented SQLSTATE (docs/api.md) on bad input.

-- The rules themselves: each is written once, here or in crawl_validate.c,
-- and used by the checks below, by the write API's set-based statements and
-- by the merge of an old primary's rows (ha_merge_records), which refuses what
-- the write API would refuse. The small ones are SQL-standard bodies, bound
-- to their functions and operators when the extension is created (no
-- search_path is consulted when they run) and inlined by the planner. The
-- URL and image rules are C: as regular expressions they were a fifth of
-- every image_record() call.

-- The host (with port, lower case) of an absolute http(s) URL of printable
-- ASCII with a host, at most 2048 characters; NULL for anything else.
CREATE FUNCTION @extschema@.crawl_url_host_of(url text)
RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crawl_url_host_of';
COMMENT ON FUNCTION @extschema@.crawl_url_host_of(text) IS
    'crawler_ha (internal): the host of a valid http(s) URL, NULL for an invalid one';

-- A host's site by the Public Suffix List (crawl_site.c): its registrable
-- domain, NULL for an IP address, a one-label name or a public suffix; and
-- whether a name is a public suffix on the list. STABLE: the list is a file
-- a package update can change. Only crawl_settings() calls them, when a
-- crawl starts; the session keeps the domains they gave.
CREATE FUNCTION @extschema@.crawl_registrable_domain(host text)
RETURNS text
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crawl_registrable_domain';
COMMENT ON FUNCTION @extschema@.crawl_registrable_domain(text) IS
    'crawler_ha: the registrable domain of a host by the Public Suffix List (www.example.co.uk: example.co.uk), NULL when it has none';

CREATE FUNCTION @extschema@.crawl_public_suffix(host text)
RETURNS boolean
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crawl_public_suffix';
COMMENT ON FUNCTION @extschema@.crawl_public_suffix(text) IS
    'crawler_ha: whether a host name is a public suffix on the Public Suffix List (com, co.uk, github.io)';

-- A worker name: 1 to 200 printable ASCII characters without spaces.
CREATE FUNCTION @extschema@.crawl_worker_ok(worker text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.length(worker) <= 200 AND worker ~ '^[!-~]+$';
COMMENT ON FUNCTION @extschema@.crawl_worker_ok(text) IS
    'crawler_ha (internal): whether a worker name is valid';

-- A frontier item is a page (HTML or CSS: parsed for links and images), an
-- image (stored), or a sitemap (sitemaps.org XML, gzipped or not, or a list
-- of URLs: parsed for pages, their images and more sitemaps).
CREATE FUNCTION @extschema@.crawl_kind_ok(kind text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN kind IN ('page', 'image', 'sitemap');
COMMENT ON FUNCTION @extschema@.crawl_kind_ok(text) IS
    'crawler_ha (internal): whether a frontier kind is valid (page, image or sitemap)';

-- Whether an item of `kind` counts as a page: in pages_queued and
-- pages_fetched, and against the page budget (max_pages). A sitemap does: it
-- is a document fetched for the URLs it holds, as a page is for its links,
-- and a site that serves sitemaps without end (each listing new ones) is
-- then bounded by max_pages as a site of endless pages is. The one statement
-- of the rule, for the enqueue functions, crawl_complete() and the recount
-- of a merge.
CREATE FUNCTION @extschema@.crawl_counts_as_page(kind text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN kind IN ('page', 'sitemap');
COMMENT ON FUNCTION @extschema@.crawl_counts_as_page(text) IS
    'crawler_ha (internal): whether a frontier item of this kind counts as a page (pages queued and fetched, max_pages)';

CREATE FUNCTION @extschema@.crawl_depth_ok(depth integer)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN depth BETWEEN 0 AND 1000;
COMMENT ON FUNCTION @extschema@.crawl_depth_ok(integer) IS
    'crawler_ha (internal): whether a frontier depth is valid (0 to 1000)';

-- Text that people read (a file name, a content type) has no control
-- characters: none of U+0001-U+001F, U+007F-U+009F (NUL is never in text).
CREATE FUNCTION @extschema@.crawl_text_ok(value text)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crawl_text_ok';
COMMENT ON FUNCTION @extschema@.crawl_text_ok(text) IS
    'crawler_ha (internal): whether a text has no control characters';

-- What a frontier row may hold, by the rules of crawl_enqueue() and
-- crawl_claim(): NULL for a row the write API could have written, else the
-- column that breaks a rule. The host is the URL's, as crawl_enqueue() sets it.
CREATE FUNCTION @extschema@.crawl_item_problem(url text, kind text, depth integer, host text, found_on text,
                                               lease_owner text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN @extschema@.crawl_url_host_of(url) IS NULL THEN 'url'
            WHEN host IS DISTINCT FROM @extschema@.crawl_url_host_of(url) THEN 'host'
            WHEN NOT coalesce(@extschema@.crawl_kind_ok(kind), false) THEN 'kind'
            WHEN NOT coalesce(@extschema@.crawl_depth_ok(depth), false) THEN 'depth'
            WHEN found_on IS NOT NULL AND @extschema@.crawl_url_host_of(found_on) IS NULL THEN 'found_on'
            WHEN lease_owner IS NOT NULL AND NOT @extschema@.crawl_worker_ok(lease_owner) THEN 'lease_owner'
       END;
COMMENT ON FUNCTION @extschema@.crawl_item_problem(text, text, integer, text, text, text) IS
    'crawler_ha (internal): NULL for a frontier row the write API could have written, else the column that breaks a rule';

-- What an image row may hold, by the rules of image_record(): NULL for a row
-- it could have written, else the column that breaks a rule. file_path is
-- where the worker's content-addressed store keeps the bytes, relative to
-- its root: the sha256's first two hex digits, its next two, then the sha256
-- itself with the extension of the format (ab/cd/abcd...ef.png). It names no
-- other file and cannot leave the store.
CREATE FUNCTION @extschema@.image_problem(url text, sha256 text, file_path text, file_size bigint,
                                          width integer, height integer, format text, content_type text,
                                          found_on text, http_status integer, filename text)
RETURNS text
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'image_problem';
COMMENT ON FUNCTION @extschema@.image_problem(text, text, text, bigint, integer, integer, text, text, text, integer, text) IS
    'crawler_ha (internal): NULL for an image row image_record() could have written, else the column that breaks a rule';

-- Returns the URL's host (with port, lower case); raises on anything that is
-- not an absolute http(s) URL of printable ASCII with a host.
CREATE FUNCTION @extschema@.crawl_url_host(url text, name text DEFAULT 'url')
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    host text;
BEGIN
    IF url IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', name USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF length(url) > 2048 THEN
        RAISE EXCEPTION '% is too long', name
            USING ERRCODE = 'string_data_right_truncation',
                  DETAIL = format('It has %s characters; at most 2048 are allowed.', length(url));
    END IF;
    host := @extschema@.crawl_url_host_of(url);
    IF host IS NULL THEN
        RAISE EXCEPTION 'invalid % "%"', name, left(url, 200)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A URL is an absolute http or https URL with a host, in printable ASCII (percent-encode the rest).';
    END IF;
    RETURN host;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_url_host(text, text) IS
    'crawler_ha (internal): validate an http(s) URL and return its host';

CREATE FUNCTION @extschema@.crawl_check_worker(worker text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF worker IS NULL THEN
        RAISE EXCEPTION 'worker must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF length(worker) > 200 THEN
        RAISE EXCEPTION 'worker name is too long'
            USING ERRCODE = 'string_data_right_truncation', DETAIL = 'At most 200 characters are allowed.';
    END IF;
    IF NOT @extschema@.crawl_worker_ok(worker) THEN
        RAISE EXCEPTION 'invalid worker name "%"', left(worker, 200)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A worker name is 1 to 200 printable ASCII characters without spaces.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_check_worker(text) IS
    'crawler_ha (internal): validate a worker name';

-- A frontier item's kind: page, image or sitemap.
CREATE FUNCTION @extschema@.crawl_check_kind(kind text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF kind IS NULL THEN
        RAISE EXCEPTION 'kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF NOT @extschema@.crawl_kind_ok(kind) THEN
        RAISE EXCEPTION 'invalid kind "%"', left(kind, 100)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'kind is page, image or sitemap.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_check_kind(text) IS
    'crawler_ha (internal): validate a frontier item''s kind';

CREATE FUNCTION @extschema@.crawl_check_interval(value interval, name text, lo interval, hi interval)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', name USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF value < lo OR value > hi THEN
        RAISE EXCEPTION '% % is out of range', name, value
            USING ERRCODE = 'invalid_parameter_value', DETAIL = format('It must be between %s and %s.', lo, hi);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_check_interval(interval, text, interval, interval) IS
    'crawler_ha (internal): validate an interval argument';

-- The longest lease a worker may take or renew to (crawl_claim,
-- crawl_renew): the one number both check against, and the shortest grace
-- before an agent may delete an unreferenced blob (blob_orphans), since a
-- worker that uploaded a blob records its row while it holds the lease.
CREATE FUNCTION @extschema@.crawl_lease_max()
RETURNS interval
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT interval '1 day' $$;
COMMENT ON FUNCTION @extschema@.crawl_lease_max() IS
    'crawler_ha (internal): the longest lease crawl_claim and crawl_renew grant; the shortest orphan grace of blob_orphans';

-- An array argument is a list: one dimension (or none, when empty).
-- array_position() and friends refuse more (0A000) and unnest() would
-- flatten them silently; a documented 22023 says what is wrong instead.
CREATE FUNCTION @extschema@.crawl_check_list(value anyarray, name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF array_ndims(value) > 1 THEN
        RAISE EXCEPTION '% must be a one-dimensional array', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('It has %s dimensions.', array_ndims(value));
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_check_list(anyarray, text) IS
    'crawler_ha (internal): refuse an array argument of more than one dimension';

-- The session settings: defaults filled in, every key checked, unknown keys
-- refused (a typo must not silently do nothing). Whole numbers are stored as
-- JSON integers whatever their spelling (2.0, 2e0, 20e-1 are 2): every
-- reader casts them to integer or bigint.
CREATE FUNCTION @extschema@.crawl_settings(options jsonb, seeds text[])
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    defaults jsonb := jsonb_build_object(
        'max_depth', 5, 'max_pages', 100000, 'images_any_host', false,
        'delay_ms', 1000, 'per_host', 2, 'max_attempts', 3,
        'user_agent', 'crawler_ha/@CRAWLER_HA_VERSION@', 'robots', true, 'sitemaps', true,
        'max_page_bytes', 10485760, 'max_image_bytes', 52428800,
        'max_pixels', 100000000, 'min_width', 0, 'min_height', 0, 'image_expiry_s', 7776000,
        'random_wait', false, 'scope', 'hosts');
    limits jsonb := jsonb_build_object(
        'max_depth', '[0,1000]', 'max_pages', '[1,1000000000]', 'delay_ms', '[0,86400000]',
        'per_host', '[1,1000]', 'max_attempts', '[1,100]', 'max_page_bytes', '[1,1073741824]',
        'max_image_bytes', '[1,10737418240]', 'max_pixels', '[1,1000000000000]',
        'min_width', '[0,1000000]', 'min_height', '[0,1000000]', 'image_expiry_s', '[0,3153600000]');
    merged jsonb;
    numbers jsonb := '{}';
    k text;
    v jsonb;
    n numeric;
    d text;
    domains jsonb := '[]';
BEGIN
    IF options IS NULL THEN
        RAISE EXCEPTION 'options must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Pass ''{}'' for the defaults.';
    END IF;
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k, v IN SELECT key, value FROM jsonb_each(options) LOOP
        IF k = 'allowed_domains' THEN
            IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) > 1000 THEN
                RAISE EXCEPTION 'option allowed_domains must be an array of at most 1000 host names'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            FOR d IN SELECT CASE WHEN jsonb_typeof(e) = 'string' THEN e #>> '{}' END FROM jsonb_array_elements(v) e LOOP
                IF d IS NULL OR lower(d) !~ '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$' THEN
                    RAISE EXCEPTION 'invalid domain "%" in option allowed_domains', left(coalesce(d, 'null'), 200)
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                IF @extschema@.crawl_public_suffix(d) THEN
                    RAISE EXCEPTION 'domain "%" in option allowed_domains is a public suffix', lower(d)
                        USING ERRCODE = 'invalid_parameter_value',
                              DETAIL = 'Anyone can register a site under it: the crawl would have no bound.',
                              HINT = 'Name the site itself, such as example.' || split_part(lower(d), ':', 1) || '.';
                END IF;
                domains := domains || to_jsonb(lower(d));
            END LOOP;
        ELSIF k IN ('accept_pages', 'reject_pages', 'accept_images', 'reject_images') THEN
            -- URL patterns (POSIX regular expressions as PostgreSQL's ~ reads
            -- them): each must compile, so that a bad one is said now, not
            -- at the first link it meets.
            IF jsonb_typeof(v) <> 'array' THEN
                RAISE EXCEPTION 'option % must be an array of at most 50 patterns', k
                    USING ERRCODE = 'invalid_parameter_value';
            ELSIF jsonb_array_length(v) > 50 THEN
                RAISE EXCEPTION 'option % must be an array of at most 50 patterns', k
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            FOR d IN SELECT CASE WHEN jsonb_typeof(e) = 'string' THEN e #>> '{}' END FROM jsonb_array_elements(v) e LOOP
                IF d IS NULL OR length(d) NOT BETWEEN 1 AND 500 THEN
                    RAISE EXCEPTION 'option % holds something that is not a pattern of 1 to 500 characters', k
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                BEGIN
                    PERFORM '' ~ d;
                EXCEPTION WHEN invalid_regular_expression THEN
                    RAISE EXCEPTION 'option % holds an invalid regular expression "%"', k, left(d, 200)
                        USING ERRCODE = 'invalid_parameter_value', DETAIL = SQLERRM;
                END;
            END LOOP;
        ELSIF k = 'thumbnails' THEN
            -- named sizes; none by default (no key)
            numbers := numbers || jsonb_build_object(k, @extschema@.crawl_thumbnail_sizes(v));
        ELSIF k = 'scope' THEN
            IF v NOT IN ('"hosts"', '"site"') THEN
                RAISE EXCEPTION 'option scope must be "hosts" or "site"' USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'hosts: the seeds'' hosts and their subdomains; site: the seeds'' registrable domains (www.example.co.uk: *.example.co.uk).';
            ELSIF options ? 'allowed_domains' THEN
                RAISE EXCEPTION 'options scope and allowed_domains exclude each other' USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'allowed_domains names the crawl''s domains; scope derives them from the seeds.';
            END IF;
        ELSIF k IN ('images_any_host', 'robots', 'random_wait', 'sitemaps') THEN
            IF jsonb_typeof(v) <> 'boolean' THEN
                RAISE EXCEPTION 'option % must be true or false', k USING ERRCODE = 'invalid_parameter_value';
            END IF;
        ELSIF k = 'user_agent' THEN
            IF jsonb_typeof(v) <> 'string' OR (v #>> '{}') !~ '^[ -~]+$' OR length(v #>> '{}') > 256 THEN
                RAISE EXCEPTION 'option user_agent must be 1 to 256 printable ASCII characters'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        ELSIF limits ? k THEN
            IF jsonb_typeof(v) <> 'number' THEN
                RAISE EXCEPTION 'option % must be a number', k USING ERRCODE = 'invalid_parameter_value';
            END IF;
            n := v::text::numeric;
            IF n <> trunc(n) OR NOT (limits ->> k)::numrange @> n THEN
                RAISE EXCEPTION 'option % = % is out of range', k, left(v::text, 40)
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = format('It must be a whole number in %s.', limits ->> k);
            END IF;
            numbers := numbers || jsonb_build_object(k, n::bigint);
        ELSE
            RAISE EXCEPTION 'unknown option "%"', left(k, 100)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Known options: ' || array_to_string(ARRAY(
                          SELECT jsonb_object_keys(defaults)
                          UNION SELECT unnest(ARRAY['allowed_domains', 'scope', 'accept_pages', 'reject_pages',
                                                    'accept_images', 'reject_images', 'thumbnails'])
                          ORDER BY 1), ', ') || '.';
        END IF;
    END LOOP;
    merged := defaults || options || numbers;
    IF NOT options ? 'allowed_domains' THEN
        -- By default a crawl stays on the hosts of its seeds; with scope
        -- site, on their registrable domains (a host without one, such as
        -- an IP address or localhost, stays itself).
        SELECT coalesce(jsonb_agg(DISTINCT coalesce(
                   CASE WHEN merged ->> 'scope' = 'site' THEN @extschema@.crawl_registrable_domain(h) END, h)), '[]')
          INTO domains
          FROM unnest(seeds) s, LATERAL @extschema@.crawl_url_host(s, 'seed') h;
    END IF;
    RETURN merged || jsonb_build_object('allowed_domains', domains);
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_settings(jsonb, text[]) IS
    'crawler_ha (internal): validate crawl options and fill in the defaults';

-- Is host inside one of the allowed domains (the domain itself or a subdomain)?
CREATE FUNCTION @extschema@.crawl_in_scope(host text, domains jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM jsonb_array_elements_text(domains) d
        WHERE host = d OR right(host, length(d) + 1) = '.' || d
           OR split_part(host, ':', 1) = d OR right(split_part(host, ':', 1), length(d) + 1) = '.' || d)
$$;
COMMENT ON FUNCTION @extschema@.crawl_in_scope(text, jsonb) IS
    'crawler_ha (internal): whether a host is within a crawl''s allowed domains';

-- The crawl's scope for one URL of `kind` on `host`, under a session's
-- settings: an image on any host when images_any_host is on, else a host
-- within allowed_domains (a sitemap too: it is read for the pages it lists,
-- and a host whose pages are out of the crawl has none to give). The one statement of the rule: the enqueue
-- functions filter links by it, and workers ask crawl_redirect_allowed(),
-- which applies it, before they follow a redirect.
CREATE FUNCTION @extschema@.crawl_scope_ok(settings jsonb, host text, kind text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (kind = 'image' AND (settings ->> 'images_any_host')::boolean)
       OR @extschema@.crawl_in_scope(host, settings -> 'allowed_domains');
COMMENT ON FUNCTION @extschema@.crawl_scope_ok(jsonb, text, text) IS
    'crawler_ha (internal): whether a URL of this kind on this host is inside a crawl with these settings';

-- The crawl's URL patterns for one URL of `kind`: with accept patterns of its
-- kind (accept_pages, accept_images), one must match; no reject pattern of
-- its kind may. POSIX regular expressions as ~ reads them, matched against
-- the whole normalised URL. The one statement of the rule: the enqueue
-- functions filter links (not seeds) by it, and crawl_redirect_allowed()
-- applies it to a redirect's target. A sitemap passes whatever the
-- patterns: they choose the pages and images a crawl keeps, and a sitemap's
-- URL (/sitemap.xml.gz) says nothing of the pages it lists, which meet the
-- page patterns as they are queued. Held to accept_pages, --accept-page
-- '/gallery/' would drop every sitemap, and with it the gallery pages that
-- no link reaches; the session's sitemaps setting is the switch for them.
CREATE FUNCTION @extschema@.crawl_patterns_ok(settings jsonb, url text, kind text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN kind = 'sitemap' OR ((NOT settings ? (CASE WHEN kind = 'image' THEN 'accept_images' ELSE 'accept_pages' END)
        OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements_text(
                       settings -> (CASE WHEN kind = 'image' THEN 'accept_images' ELSE 'accept_pages' END)) p
                    WHERE url ~ p))
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements_text(
                       settings -> (CASE WHEN kind = 'image' THEN 'reject_images' ELSE 'reject_pages' END)) p
                    WHERE url ~ p));
COMMENT ON FUNCTION @extschema@.crawl_patterns_ok(jsonb, text, text) IS
    'crawler_ha (internal): whether a URL of this kind passes a crawl''s accept and reject patterns';

-- Whether crawl_patterns_ok() can refuse a URL of `kind` under these
-- settings: accept or reject patterns of its kind are set. A worker fetches
-- no link of such a kind before its lease (crawl_session_settings()).
CREATE FUNCTION @extschema@.crawl_has_patterns(settings jsonb, kind text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN kind <> 'sitemap'
   AND (settings ? (CASE WHEN kind = 'image' THEN 'accept_images' ELSE 'accept_pages' END)
        OR coalesce(pg_catalog.jsonb_array_length(
               settings -> (CASE WHEN kind = 'image' THEN 'reject_images' ELSE 'reject_pages' END)), 0) > 0);
COMMENT ON FUNCTION @extschema@.crawl_has_patterns(jsonb, text) IS
    'crawler_ha (internal): whether a crawl has accept or reject patterns for URLs of this kind';

-- The crawl's depth for a URL of `kind` found at `depth`: a page up to
-- max_depth, an image one level further (the images of the deepest pages
-- are fetched). A sitemap stands at the depth of the URL whose host's
-- robots.txt named it (0 for a seed's host, and for --sitemap), an index's
-- sitemaps at the index's own depth, and the pages it lists one level below
-- it, as links of that URL (their image:image entries one further, as the
-- images of those pages), so max_depth bounds what sitemaps bring as it
-- bounds links; a sitemap is queued only above max_depth, where its pages
-- can still be. The one statement of the rule, for both enqueue functions.
CREATE FUNCTION @extschema@.crawl_depth_within(max_depth integer, depth integer, kind text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN depth <= max_depth + CASE kind WHEN 'image' THEN 1 WHEN 'sitemap' THEN -1 ELSE 0 END;
COMMENT ON FUNCTION @extschema@.crawl_depth_within(integer, integer, text) IS
    'crawler_ha (internal): whether a URL of this kind at this depth is within a crawl''s max_depth';
