-- Reads for the node agent's HTTP application API: lists of sessions and of
-- images, one page at a time. Every rule is here; the agent only passes the
-- request's parameters on.
--
-- They run as their caller (SECURITY INVOKER): the reader, the writer and the
-- admin already SELECT the data tables, so these need no privilege of their
-- own. Pagination is by key (the last id of the previous page), never by
-- offset, so a page costs the same however deep it is.
--
-- Every filter is optional (NULL: not applied). Each call is planned with its
-- own argument values (plan_cache_mode = force_custom_plan): the filters left
-- NULL fold away, so the plan is the index scan that suits the filters given,
-- not one generic plan for every combination (a generic plan would page a
-- session's images by walking the whole table in id order).

CREATE FUNCTION @extschema@.crawl_list(max_rows integer DEFAULT 100, before bigint DEFAULT NULL)
RETURNS TABLE (session_id bigint, status text, seed_count integer, first_seed text,
               started_at timestamptz, finished_at timestamptz, pages_fetched bigint,
               images_found bigint, images_stored bigint, bytes_stored bigint, errors bigint, retries bigint)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    IF max_rows IS NULL THEN
        RAISE EXCEPTION 'max_rows must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF max_rows NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_rows % is out of range', max_rows
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'max_rows is between 1 and 1000.';
    ELSIF before < 0 THEN
        RAISE EXCEPTION 'before % is out of range', before
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'before is a session id: not negative.';
    END IF;
    -- Newest first: the primary key backwards, from `before` down.
    RETURN QUERY
    SELECT s.id, s.status, cardinality(s.seeds), s.seeds[array_lower(s.seeds, 1)], s.started_at,
           s.finished_at, t.pages_fetched, t.images_found, t.images_stored, t.bytes_stored, t.errors,
           t.retries
      FROM @extschema@.crawl_sessions s
     CROSS JOIN LATERAL (
           SELECT coalesce(sum(c.pages_fetched), 0)::bigint AS pages_fetched,
                  coalesce(sum(c.images_found), 0)::bigint AS images_found,
                  coalesce(sum(c.images_stored), 0)::bigint AS images_stored,
                  coalesce(sum(c.bytes_stored), 0)::bigint AS bytes_stored,
                  coalesce(sum(c.errors), 0)::bigint AS errors,
                  coalesce(sum(c.retries), 0)::bigint AS retries
             FROM @extschema@.crawl_session_counts c WHERE c.session_id = s.id) t
     WHERE (crawl_list.before IS NULL OR s.id < crawl_list.before)
     ORDER BY s.id DESC
     LIMIT crawl_list.max_rows;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_list(integer, bigint) IS
    'crawler_ha: crawl sessions, newest first, at most max_rows (1 to 1000) of them; with before, only those whose id is below it (pass the last id of the previous page). The status is as stored: crawl_status() finishes a running session whose queue is empty';

CREATE FUNCTION @extschema@.image_list(session bigint DEFAULT NULL, host text DEFAULT NULL,
                                       format text DEFAULT NULL, min_bytes bigint DEFAULT NULL,
                                       min_width integer DEFAULT NULL, min_height integer DEFAULT NULL,
                                       created_from timestamptz DEFAULT NULL,
                                       created_before timestamptz DEFAULT NULL,
                                       after_id bigint DEFAULT NULL, max_rows integer DEFAULT 100)
RETURNS SETOF @extschema@.images
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    IF max_rows IS NULL THEN
        RAISE EXCEPTION 'max_rows must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF max_rows NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_rows % is out of range', max_rows
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'max_rows is between 1 and 1000.';
    ELSIF after_id < 0 THEN
        RAISE EXCEPTION 'after_id % is out of range', after_id
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'after_id is an image id: not negative.';
    ELSIF min_bytes < 0 OR min_width < 0 OR min_height < 0 THEN
        RAISE EXCEPTION 'min_bytes, min_width and min_height must not be negative'
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF octet_length(host) > 259 THEN
        RAISE EXCEPTION 'host is too long'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('It has %s bytes; at most 259 are allowed.', octet_length(host));
    ELSIF octet_length(image_list.format) > 32 THEN
        RAISE EXCEPTION 'format is too long'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('It has %s bytes; at most 32 are allowed.', octet_length(image_list.format));
    END IF;
    -- In id order from after_id: the primary key, or (session_id, id) for a
    -- session's images. The other filters, host among them, are checked on
    -- the rows met in id order until max_rows match (no index serves them).
    -- The host is the URL's by crawl_url_host_of(), the rule everything else
    -- of the extension uses (lower case, with the port when the URL has one);
    -- the argument is compared with it in lower case, by equality: there are
    -- no wildcards, and text that is no host matches nothing. A range with
    -- created_from at or after created_before holds nothing: no row.
    RETURN QUERY
    SELECT i.*
      FROM @extschema@.images i
     WHERE (image_list.after_id IS NULL OR i.id > image_list.after_id)
       AND (image_list.session IS NULL OR i.session_id = image_list.session)
       AND (image_list.host IS NULL OR @extschema@.crawl_url_host_of(i.url) = lower(image_list.host))
       AND (image_list.format IS NULL OR lower(i.format) = lower(image_list.format))
       AND (image_list.min_bytes IS NULL OR i.file_size >= image_list.min_bytes)
       AND (image_list.min_width IS NULL OR i.width >= image_list.min_width)
       AND (image_list.min_height IS NULL OR i.height >= image_list.min_height)
       AND (image_list.created_from IS NULL OR i.created_at >= image_list.created_from)
       AND (image_list.created_before IS NULL OR i.created_at < image_list.created_before)
     ORDER BY i.id
     LIMIT image_list.max_rows;
END
$$;
COMMENT ON FUNCTION @extschema@.image_list(bigint, text, text, bigint, integer, integer, timestamptz, timestamptz, bigint, integer) IS
    'crawler_ha: image rows in id order, at most max_rows (1 to 1000), after after_id (pass the last id of the previous page), filtered by session, host of the URL, format, minimum size and bytes, created_from <= created_at < created_before (every filter optional). Index-driven by id, or by (session_id, id) with a session; the host and the other filters are checked on the rows met in id order until max_rows match';
