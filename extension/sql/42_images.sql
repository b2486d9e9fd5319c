-- Images: record (idempotent, keyed by URL), get, delete.

-- The precise diagnosis of a bad image_record() call: raises the documented
-- SQLSTATE for the first bad argument. image_record() calls it only when its
-- one-expression fast check fails, so valid calls pay for a single test.
-- The rules are image_problem()'s (35_validation.sql); this only says which
-- one failed, with its SQLSTATE. It returns without raising for one call
-- alone: an exact repeat, in a stopped session, of an image already
-- recorded, which image_record() answers as before (it changes nothing).
CREATE FUNCTION @extschema@.image_check(session bigint, url text, sha256 text, file_path text, file_size bigint,
                                        width integer, height integer, format text, content_type text,
                                        found_on text, http_status integer, filename text, item bigint,
                                        worker text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text;
BEGIN
    IF session IS NULL THEN
        RAISE EXCEPTION 'session must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF sha256 IS NULL THEN
        RAISE EXCEPTION 'sha256 must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF file_path IS NULL THEN
        RAISE EXCEPTION 'file_path must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF file_size IS NULL THEN
        RAISE EXCEPTION 'file_size must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF length(format) > 32 OR length(content_type) > 255 OR length(filename) > 1024 THEN
        RAISE EXCEPTION 'format, content_type or filename is too long' USING ERRCODE = 'string_data_right_truncation',
            DETAIL = 'At most 32, 255 and 1024 characters.';
    ELSIF (item IS NULL) <> (worker IS NULL) THEN
        RAISE EXCEPTION 'item and worker go together' USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Pass both to complete the frontier item in the same transaction, or neither.';
    END IF;
    problem := @extschema@.image_problem(url, sha256, file_path, file_size, width, height, format, content_type,
                                         found_on, http_status, filename);
    IF problem = 'sha256' THEN
        RAISE EXCEPTION 'invalid sha256 "%"', left(sha256, 100)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'sha256 is 64 lower-case hex digits.';
    ELSIF problem = 'file_path' THEN
        RAISE EXCEPTION 'invalid file_path "%"', left(file_path, 200)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'file_path is the file''s place in the content-addressed store: the sha256''s first two hex digits, '
                           || 'its next two, then the sha256 and an extension of 1 to 16 lower-case letters or digits ('
                           || left(sha256, 2) || '/' || substr(sha256, 3, 2) || '/' || sha256 || '.png).';
    ELSIF problem = 'file_size' THEN
        RAISE EXCEPTION 'file_size % is out of range', file_size USING ERRCODE = 'invalid_parameter_value';
    ELSIF problem = 'width or height' THEN
        RAISE EXCEPTION 'image size %x% is out of range', width, height USING ERRCODE = 'invalid_parameter_value';
    ELSIF problem = 'format' THEN
        RAISE EXCEPTION 'invalid format %', to_json(format)::text
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'format is 1 to 32 lower-case letters, digits, ".", "+" or "-", starting with a letter or digit.';
    ELSIF problem IN ('content_type', 'filename') THEN
        RAISE EXCEPTION '% contains a control character', problem
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Control characters (U+0001 to U+001F, U+007F to U+009F) are not allowed.';
    ELSIF problem = 'http_status' THEN
        RAISE EXCEPTION 'http_status % is out of range', http_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM @extschema@.crawl_url_host(url, 'url');
    IF found_on IS NOT NULL THEN
        PERFORM @extschema@.crawl_url_host(found_on, 'found_on');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.crawl_sessions s WHERE s.id = session) THEN
        RAISE EXCEPTION 'crawl session % does not exist', session USING ERRCODE = 'no_data_found';
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.crawl_sessions s WHERE s.id = session AND s.status = 'stopped') THEN
        IF EXISTS (SELECT 1 FROM @extschema@.images i WHERE i.url = image_check.url AND i.sha256 = image_check.sha256) THEN
            RETURN;  -- a repeat: it changes nothing
        END IF;
        RAISE EXCEPTION 'crawl session % is stopped', session
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('A stopped session records nothing more; the image %s is not recorded.', left(url, 200));
    END IF;
    RAISE EXCEPTION 'invalid image_record() arguments' USING ERRCODE = 'invalid_parameter_value';
END
$$;
COMMENT ON FUNCTION @extschema@.image_check(bigint, text, text, text, bigint, integer, integer, text, text, text, integer, text, bigint, text) IS
    'crawler_ha (internal): raise the precise error for bad image_record() arguments';

-- An HTTP validator (ETag, Last-Modified) as image_record() stores it: NULL,
-- or 1 to 1024 printable ASCII characters (it goes back into a request
-- header); 22023 otherwise.
CREATE FUNCTION @extschema@.image_check_validator(value text, name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NOT NULL AND (octet_length(value) NOT BETWEEN 1 AND 1024 OR value !~ '^[ -~]+$') THEN
        RAISE EXCEPTION 'invalid %: 1 to 1024 printable ASCII characters are expected', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s bytes.', octet_length(value));
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.image_check_validator(text, text) IS
    'crawler_ha (internal): an ETag or Last-Modified value image_record() may store (NULL, or 1 to 1024 printable ASCII characters); 22023 otherwise';

CREATE FUNCTION @extschema@.image_record(session bigint, url text, sha256 text, file_path text, file_size bigint,
                                         width integer, height integer, format text, content_type text,
                                         found_on text DEFAULT NULL, http_status integer DEFAULT 200,
                                         filename text DEFAULT NULL, item bigint DEFAULT NULL,
                                         worker text DEFAULT NULL, etag text DEFAULT NULL,
                                         last_modified text DEFAULT NULL, thumbnails jsonb DEFAULT NULL,
                                         thumbnail_error text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    image_id bigint;
    inserted boolean;
    problem text;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    -- Fast path: image_problem()'s rules (one C call) and a session that is
    -- not stopped; image_check() says what is wrong.
    IF session IS NULL OR (item IS NULL) <> (worker IS NULL)
       OR @extschema@.image_problem(url, sha256, file_path, file_size, width, height, format, content_type,
                                    found_on, http_status, filename) IS NOT NULL
       OR NOT EXISTS (SELECT 1 FROM @extschema@.crawl_sessions s WHERE s.id = session AND s.status <> 'stopped') THEN
        PERFORM @extschema@.image_check(session, url, sha256, file_path, file_size, width, height, format,
                                        content_type, found_on, http_status, filename, item, worker);
    END IF;
    IF etag IS NOT NULL OR last_modified IS NOT NULL THEN
        PERFORM @extschema@.image_check_validator(etag, 'etag');
        PERFORM @extschema@.image_check_validator(last_modified, 'last_modified');
    END IF;
    problem := @extschema@.image_thumbnails_problem(thumbnails);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid thumbnails: %', problem USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'thumbnails is {"name": {"sha256", "file_path", "width", "height", "bytes"}, ...}, at most 8.';
    END IF;

    -- New URL: a new row. Same URL, new bytes: the image changed; the row
    -- follows it. The INSERT comes first because a new URL is the common
    -- case: one statement for it, where an UPDATE probe first cost a second.
    INSERT INTO @extschema@.images AS i
           (url, filename, file_path, file_size, width, height, format, sha256, content_type,
            found_on, session_id, http_status, etag, last_modified, thumbnails)
    VALUES (url, filename, file_path, file_size, width, height, format, sha256, content_type,
            found_on, session, coalesce(http_status, 200), etag, last_modified, thumbnails)
    ON CONFLICT ON CONSTRAINT images_url_key DO UPDATE
       SET filename = EXCLUDED.filename, file_path = EXCLUDED.file_path, file_size = EXCLUDED.file_size,
           width = EXCLUDED.width, height = EXCLUDED.height, format = EXCLUDED.format,
           sha256 = EXCLUDED.sha256, content_type = EXCLUDED.content_type, found_on = EXCLUDED.found_on,
           session_id = EXCLUDED.session_id, http_status = EXCLUDED.http_status, etag = EXCLUDED.etag,
           last_modified = EXCLUDED.last_modified, thumbnails = EXCLUDED.thumbnails,  -- of the old bytes: gone
           updated_at = now(), checked_at = now()
     WHERE i.sha256 <> EXCLUDED.sha256
    RETURNING i.id, i.xmax = 0 INTO image_id, inserted;
    IF image_id IS NULL THEN
        -- Same URL, same bytes (a retry, or a re-crawl whose server sent the
        -- body again): the row stays; only its validators and checked_at
        -- move, and thumbnails made now join those it has (by name, the new
        -- ones win: another session may ask for other sizes of the same
        -- image). ON CONFLICT locked the row even though its WHERE kept it
        -- as it was, so it is still there with these bytes.
        UPDATE @extschema@.images i
           SET etag = image_record.etag, last_modified = image_record.last_modified, checked_at = now(),
               thumbnails = CASE WHEN image_record.thumbnails IS NULL THEN i.thumbnails
                                 ELSE coalesce(i.thumbnails, '{}') || image_record.thumbnails END
         WHERE i.url = image_record.url
        RETURNING i.id INTO image_id;
        PERFORM @extschema@.crawl_count(session, images_unchanged => 1);
    ELSIF inserted THEN
        PERFORM @extschema@.crawl_count(session, images_stored => 1, bytes_stored => file_size);
    ELSE
        PERFORM @extschema@.crawl_count(session, images_changed => 1, bytes_stored => file_size);
    END IF;

    IF item IS NOT NULL THEN
        -- A thumbnail that could not be made does not lose the image: its
        -- row is recorded without it, and the item's result says why.
        PERFORM @extschema@.crawl_complete(item, worker,
            jsonb_build_object('http_status', coalesce(http_status, 200), 'bytes', file_size, 'image_id', image_id)
            || CASE WHEN thumbnail_error IS NULL THEN '{}'
                    ELSE jsonb_build_object('thumbnail_error', @extschema@.ha_blob_clip(thumbnail_error)) END);
    END IF;
    RETURN image_id;
END
$$;
COMMENT ON FUNCTION @extschema@.image_record(bigint, text, text, text, bigint, integer, integer, text, text, text, integer, text, bigint, text, text, text, jsonb, text) IS
    'crawler_ha: record an image by URL (idempotent: the same URL and sha256 again returns the same id and changes only its validators and checked_at, counted as unchanged; new bytes under a known URL are counted as changed); with item and worker it also completes that frontier item; etag and last_modified are the response''s validators (22023 unless 1 to 1024 printable ASCII characters); thumbnails are the blobs made of these bytes (image_thumbnails_problem(), 22023 otherwise; joined by name to those of the same bytes, replaced with new bytes); thumbnail_error, when thumbnails could not be made, goes into the completed item''s result';

-- A re-crawl's known image, confirmed without its body: `fetched` true after a
-- 304 Not Modified to the conditional request the lease's validators made
-- (checked_at moves; counted as unchanged); false when the lease said it was
-- confirmed within the session's image_expiry_s and nothing was fetched
-- (counted as fresh). With item and worker it also completes that frontier
-- item. NULL, and nothing done, when the images table no longer has the URL:
-- the worker then fetches it whole.
CREATE FUNCTION @extschema@.image_unchanged(session bigint, url text, fetched boolean, item bigint DEFAULT NULL,
                                            worker text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    image_id bigint;
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    IF session IS NULL OR url IS NULL OR fetched IS NULL THEN
        RAISE EXCEPTION 'session, url and fetched must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF (item IS NULL) <> (worker IS NULL) THEN
        RAISE EXCEPTION 'item and worker go together' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass both to complete the frontier item, or neither.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.crawl_sessions s WHERE s.id = session AND s.status <> 'stopped') THEN
        IF NOT EXISTS (SELECT 1 FROM @extschema@.crawl_sessions s WHERE s.id = session) THEN
            RAISE EXCEPTION 'crawl session % does not exist', session USING ERRCODE = 'no_data_found';
        END IF;
        RAISE EXCEPTION 'crawl session % is stopped', session USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF fetched THEN
        UPDATE @extschema@.images i SET checked_at = now() WHERE i.url = image_unchanged.url
        RETURNING i.id INTO image_id;
    ELSE
        SELECT i.id INTO image_id FROM @extschema@.images i WHERE i.url = image_unchanged.url;
    END IF;
    IF image_id IS NULL THEN
        RETURN NULL;
    END IF;
    IF fetched THEN
        PERFORM @extschema@.crawl_count(session, images_unchanged => 1);
    ELSE
        PERFORM @extschema@.crawl_count(session, images_fresh => 1);
    END IF;
    IF item IS NOT NULL THEN
        PERFORM @extschema@.crawl_complete(item, worker,
            CASE WHEN fetched THEN jsonb_build_object('http_status', 304, 'image_id', image_id, 'note', 'unchanged (304 Not Modified)')
                 ELSE @extschema@.crawl_fresh_result(image_id) END);
    END IF;
    RETURN image_id;
END
$$;
COMMENT ON FUNCTION @extschema@.image_unchanged(bigint, text, boolean, bigint, text) IS
    'crawler_ha: a known image confirmed without its body (fetched: a 304; not fetched: within image_expiry_s), counted as unchanged or fresh; with item and worker it completes that frontier item; NULL when the images table has no such URL';

CREATE FUNCTION @extschema@.image_get(id bigint)
RETURNS SETOF @extschema@.images
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY SELECT * FROM @extschema@.images i WHERE i.id = image_get.id;
END
$$;
COMMENT ON FUNCTION @extschema@.image_get(bigint) IS
    'crawler_ha: the image row with this id, or no row';

CREATE FUNCTION @extschema@.image_delete(id bigint)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.ha_assert_writable();
    IF id IS NULL THEN
        RAISE EXCEPTION 'id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM @extschema@.images i WHERE i.id = image_delete.id;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION @extschema@.image_delete(bigint) IS
    'crawler_ha: delete an image row (not its file, which other URLs may share); false when there was none';
