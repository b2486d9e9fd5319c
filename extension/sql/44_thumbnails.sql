-- Thumbnails: the session setting that asks for them, the rule for what an
-- images row records of them, and how the file sync, the orphan sweep, the
-- consistency check and the backups find their blobs.
--
-- A thumbnail is a blob of the same content-addressed store as the image it
-- was made of (ab/cd/<sha256>.<ext>), recorded with that image in its row's
-- `thumbnails` column by the same image_record() call: a row never names a
-- thumbnail whose blob was not stored first, and never lacks one it was
-- recorded with. Every mechanism that follows images rows' blobs reads them
-- through image_blobs (all of them) or image_blob_find() (one of them), so
-- that an original and a thumbnail are one kind of thing to it.

-- file_path is sha256's content address in the store (ab/cd/<sha256>.<ext>):
-- image_problem()'s rule for an image's own file, for a thumbnail's.
CREATE FUNCTION @extschema@.crawl_blob_address_ok(sha256 text, file_path text)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'crawl_blob_address_ok';
COMMENT ON FUNCTION @extschema@.crawl_blob_address_ok(text, text) IS
    'crawler_ha (internal): whether file_path is ab/cd/<sha256>.<ext> of a valid sha256';

-- A thumbnail size's name: a lower-case identifier, at most 32 characters
-- (it becomes a JSON key in exports and a file name part in webdataset).
CREATE FUNCTION @extschema@.crawl_thumbnail_name_ok(name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN name ~ '^[a-z][a-z0-9_]{0,31}$';
COMMENT ON FUNCTION @extschema@.crawl_thumbnail_name_ok(text) IS
    'crawler_ha (internal): whether a thumbnail size''s name is valid (^[a-z][a-z0-9_]{0,31}$)';

-- The session setting `thumbnails`: {"name": box, ...}, at most 8 sizes,
-- each box a whole number of pixels from 16 to 4096 that the thumbnail fits
-- in, aspect kept, never enlarged (Scrapy's IMAGES_THUMBS). Returns it with
-- every box as a JSON integer (2e2 is 200); 22023 with what is wrong.
CREATE FUNCTION @extschema@.crawl_thumbnail_sizes(sizes jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
    n numeric;
    out jsonb := '{}';
BEGIN
    IF sizes IS NULL OR jsonb_typeof(sizes) <> 'object' THEN
        RAISE EXCEPTION 'option thumbnails must be an object of named sizes'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example {"small": 50, "big": 270}.';
    ELSIF (SELECT count(*) FROM jsonb_object_keys(sizes)) > 8 THEN
        RAISE EXCEPTION 'option thumbnails has more than 8 sizes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k, v IN SELECT key, value FROM jsonb_each(sizes) LOOP
        IF NOT @extschema@.crawl_thumbnail_name_ok(k) THEN
            RAISE EXCEPTION 'invalid thumbnail name %', left(to_json(k)::text, 100)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A name is a lower-case letter, then up to 31 lower-case letters, digits or "_".';
        END IF;
        n := CASE WHEN jsonb_typeof(v) = 'number' THEN v::text::numeric END;
        IF n IS NULL OR n <> trunc(n) OR n NOT BETWEEN 16 AND 4096 THEN
            RAISE EXCEPTION 'thumbnail size % = % is out of range', k, left(v::text, 40)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A size is the side in pixels of the box the thumbnail fits in: a whole number from 16 to 4096.';
        END IF;
        out := out || jsonb_build_object(k, n::integer);
    END LOOP;
    RETURN out;
END
$$;
COMMENT ON FUNCTION @extschema@.crawl_thumbnail_sizes(jsonb) IS
    'crawler_ha (internal): validate the thumbnails setting ({"name": 16..4096, ...}, at most 8), 22023 otherwise';

-- The rule for an images row's thumbnails: NULL when image_record() could
-- have written them, else what is wrong (image_record() raises it as 22023;
-- a merge refuses such a row). NULL thumbnails are valid (none asked), and
-- so is {} (asked, none made). Each entry, under a valid name, is exactly
-- {"sha256", "file_path" (its content address), "width", "height" (1 to
-- 4096: a thumbnail fits a box of at most 4096), "bytes" (1 to 100 MiB)}.
-- STRICT: for NULL the answer is NULL without a call, which a merge of
-- rows without thumbnails would otherwise make for each row (a PL/pgSQL
-- call with its SET clause, 12 ms per 10,000 rows).
CREATE FUNCTION @extschema@.image_thumbnails_problem(thumbnails jsonb)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
    f text;
    n numeric;
    hi integer;
BEGIN
    IF jsonb_typeof(thumbnails) <> 'object' THEN
        RETURN 'thumbnails must be a JSON object';
    ELSIF (SELECT count(*) FROM jsonb_object_keys(thumbnails)) > 8 THEN
        RETURN 'more than 8 thumbnails';
    END IF;
    FOR k, v IN SELECT key, value FROM jsonb_each(thumbnails) LOOP
        IF NOT @extschema@.crawl_thumbnail_name_ok(k) THEN
            RETURN format('invalid thumbnail name %s', left(to_json(k)::text, 100));
        ELSIF jsonb_typeof(v) <> 'object' THEN
            RETURN format('thumbnail %s is not an object', k);
        ELSIF ARRAY(SELECT jsonb_object_keys(v) ORDER BY 1) <> ARRAY['bytes', 'file_path', 'height', 'sha256', 'width'] THEN
            RETURN format('thumbnail %s must have exactly the keys sha256, file_path, width, height and bytes', k);
        ELSIF jsonb_typeof(v -> 'sha256') <> 'string' OR jsonb_typeof(v -> 'file_path') <> 'string'
              OR NOT @extschema@.crawl_blob_address_ok(v ->> 'sha256', v ->> 'file_path') THEN
            RETURN format('thumbnail %s: sha256 must be 64 lower-case hex digits and file_path its place in the store (ab/cd/<sha256>.<ext>)', k);
        END IF;
        FOREACH f IN ARRAY ARRAY['width', 'height', 'bytes'] LOOP
            n := CASE WHEN jsonb_typeof(v -> f) = 'number' THEN (v ->> f)::numeric END;
            hi := CASE f WHEN 'bytes' THEN 104857600 ELSE 4096 END;
            IF n IS NULL OR n <> trunc(n) OR n NOT BETWEEN 1 AND hi THEN
                RETURN format('thumbnail %s: %s must be a whole number from 1 to %s', k, f, hi);
            END IF;
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.image_thumbnails_problem(jsonb) IS
    'crawler_ha (internal): NULL for thumbnails image_record() could have written, else what is wrong';

-- The sha256s of a row's thumbnails, for the index below: which rows
-- reference a blob as a thumbnail is one index probe, as it is for an
-- original by images_sha256_idx. Anything that is not a valid entry has no
-- sha256 here (a row only holds valid ones; this must not fail on others).
CREATE FUNCTION @extschema@.image_thumbnail_sha256s(thumbnails jsonb)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(t.value ->> 'sha256' ORDER BY t.key), '{}')
      FROM jsonb_each(CASE WHEN jsonb_typeof(thumbnails) = 'object' THEN thumbnails END) t
     WHERE jsonb_typeof(t.value) = 'object' AND t.value ? 'sha256'
$$;
COMMENT ON FUNCTION @extschema@.image_thumbnail_sha256s(jsonb) IS
    'crawler_ha (internal): the sha256s of an images row''s thumbnails (indexed)';
CREATE INDEX images_thumbnail_sha256s_idx ON @extschema@.images
    USING gin (@extschema@.image_thumbnail_sha256s(thumbnails)) WHERE thumbnails IS NOT NULL;

-- Every blob images rows reference: each row's own file (thumbnail NULL)
-- and each of its thumbnails. The set-based readers (the requeue after an
-- inventory, the orphan marking, the consistency check's missing blobs, the
-- backup manifest) read this; a lookup of one blob is image_blob_find().
CREATE VIEW @extschema@.image_blobs AS
    SELECT i.id AS image_id, NULL::text AS thumbnail, i.sha256, i.file_path, i.file_size
      FROM @extschema@.images i
    UNION ALL
    SELECT i.id, t.key, t.value ->> 'sha256', t.value ->> 'file_path', (t.value ->> 'bytes')::bigint
      FROM @extschema@.images i CROSS JOIN LATERAL pg_catalog.jsonb_each(i.thumbnails) t
     WHERE i.thumbnails IS NOT NULL;
COMMENT ON VIEW @extschema@.image_blobs IS
    'crawler_ha (internal): every blob an images row references, its own file (thumbnail NULL) and its thumbnails';
REVOKE ALL ON @extschema@.image_blobs FROM PUBLIC;

-- One blob as local images rows reference it (the lowest id's row: every
-- row of a blob names the same bytes), an original first, else a
-- thumbnail; no row when none does. Two index probes.
-- A body parsed when the extension is created (BEGIN ATOMIC), not a string
-- with SET search_path: the caller's search_path cannot change what it
-- names, and the planner inlines it into the calling query. With a SET
-- clause it could not, and each call from PL/pgSQL (the wanted queue's
-- stale check, a few hundred a poll) planned this query again: 0.23 ms a
-- call against 0.03 ms inlined.
-- Both branches sort by i.id + 0, an order no index gives: ordered by i.id,
-- a plan made before the table's first ANALYZE walked images_pkey in id
-- order until a row matched, every row for a blob no row names (5 ms a
-- call at 12,000 rows). Now the matches are found by their index and the
-- few there are sorted.
CREATE FUNCTION @extschema@.image_blob_find(sha256 text)
RETURNS TABLE (file_path text, file_size bigint)
LANGUAGE sql STABLE
BEGIN ATOMIC
    (SELECT i.file_path, i.file_size FROM @extschema@.images i WHERE i.sha256 = $1 ORDER BY i.id + 0 LIMIT 1)
    UNION ALL
    (SELECT t.value ->> 'file_path', (t.value ->> 'bytes')::bigint
       FROM @extschema@.images i CROSS JOIN LATERAL jsonb_each(i.thumbnails) t
      WHERE i.thumbnails IS NOT NULL AND @extschema@.image_thumbnail_sha256s(i.thumbnails) @> ARRAY[$1]
        AND t.value ->> 'sha256' = $1
      ORDER BY i.id + 0 LIMIT 1)
    LIMIT 1;
END;
COMMENT ON FUNCTION @extschema@.image_blob_find(text) IS
    'crawler_ha (internal): the file_path and size under which a local images row references this blob (original or thumbnail); no row when none does';
