-- Argument checks shared by the write API. Internal: no role may call them
-- directly. Each raises a documented SQLSTATE (docs/api.md) on bad input.

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
    host := lower(substring(url FROM '^[Hh][Tt][Tt][Pp][Ss]?://(?:[^/?#@]*@)?([^/?#@:]+(?::[0-9]{1,5})?)(?:[/?#]|$)'));
    IF host IS NULL OR url !~ '^[!-~]+$' OR host !~ '^[a-z0-9._~%!$&''()*+,;=\[\]-]+(:[0-9]+)?$' THEN
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
    IF worker !~ '^[!-~]+$' THEN
        RAISE EXCEPTION 'invalid worker name "%"', left(worker, 200)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A worker name is 1 to 200 printable ASCII characters without spaces.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_check_worker(text) IS
    'crawler_ha (internal): validate a worker name';

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

-- The session settings: defaults filled in, every key checked, unknown keys
-- refused (a typo must not silently do nothing).
CREATE FUNCTION @extschema@.crawl_settings(options jsonb, seeds text[])
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    defaults jsonb := jsonb_build_object(
        'max_depth', 5, 'max_pages', 100000, 'images_any_host', false,
        'delay_ms', 1000, 'per_host', 2, 'max_attempts', 3,
        'user_agent', 'crawler_ha/@CRAWLER_HA_VERSION@', 'robots', true,
        'max_page_bytes', 10485760, 'max_image_bytes', 52428800,
        'max_pixels', 100000000, 'min_width', 0, 'min_height', 0);
    limits jsonb := jsonb_build_object(
        'max_depth', '[0,1000]', 'max_pages', '[1,1000000000]', 'delay_ms', '[0,86400000]',
        'per_host', '[1,1000]', 'max_attempts', '[1,100]', 'max_page_bytes', '[1,1073741824]',
        'max_image_bytes', '[1,10737418240]', 'max_pixels', '[1,1000000000000]',
        'min_width', '[0,1000000]', 'min_height', '[0,1000000]');
    merged jsonb;
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
                domains := domains || to_jsonb(lower(d));
            END LOOP;
        ELSIF k IN ('images_any_host', 'robots') THEN
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
        ELSE
            RAISE EXCEPTION 'unknown option "%"', left(k, 100)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Known options: ' || array_to_string(ARRAY(
                          SELECT jsonb_object_keys(defaults) UNION SELECT 'allowed_domains' ORDER BY 1), ', ') || '.';
        END IF;
    END LOOP;
    merged := defaults || options;
    IF NOT options ? 'allowed_domains' THEN
        -- By default a crawl stays on the hosts of its seeds.
        SELECT coalesce(jsonb_agg(DISTINCT h), '[]') INTO domains
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
