-- Images: idempotent record keyed by URL, content change, get, delete.
\set SHOW_CONTEXT never
SELECT crawl_start(ARRAY['http://img.test/'], '{"delay_ms": 0, "per_host": 10}') AS s \gset
SELECT image_record(:s, 'http://img.test/a.png', repeat('ab', 32), 'ab/ab/' || repeat('ab', 32) || '.png',
                    1234, 640, 480, 'png', 'image/png', 'http://img.test/', 200, 'a.png') AS a \gset
SELECT :a % 1024 AS node_part;
-- A retry after a lost reply: same id, nothing changes, counted once.
SELECT image_record(:s, 'http://img.test/a.png', repeat('ab', 32), 'ab/ab/' || repeat('ab', 32) || '.png',
                    1234, 640, 480, 'png', 'image/png', 'http://img.test/', 200, 'a.png') = :a AS same_id;
SELECT updated_at AS updated_before, filename || found_on AS content_before FROM images WHERE id = :a \gset
SELECT image_record(:s, 'http://img.test/a.png', repeat('ab', 32), 'ab/ab/' || repeat('ab', 32) || '.png',
                    1234, 640, 480, 'png', 'image/png') = :a AS same_id_again;
-- The row's content stays (only checked_at and the validators move).
SELECT updated_at = :'updated_before' AND filename || found_on = :'content_before' AS content_untouched
  FROM images WHERE id = :a;
SELECT images_stored, bytes_stored FROM crawl_session_totals WHERE session_id = :s;
-- Same bytes under another URL: a second row, the same file.
SELECT image_record(:s, 'http://img.test/copy.png', repeat('ab', 32), 'ab/ab/' || repeat('ab', 32) || '.png',
                    1234, 640, 480, 'png', 'image/png') <> :a AS new_row;
SELECT count(*) AS rows, count(DISTINCT file_path) AS files FROM images WHERE sha256 = repeat('ab', 32);
-- The image changed on the server: same URL, same id, new content.
SELECT image_record(:s, 'http://img.test/a.png', repeat('cd', 32), 'cd/cd/' || repeat('cd', 32) || '.webp',
                    99, 10, 10, 'webp', 'image/webp') = :a AS same_id_new_content;
SELECT url, sha256 = repeat('cd', 32) AS new_hash, file_size, width, height, format FROM image_get(:a);
SELECT images_stored, bytes_stored FROM crawl_session_totals WHERE session_id = :s;

-- Recording an image can complete its frontier item in the same transaction.
SELECT crawl_enqueue(:s, ARRAY['http://img.test/b.gif'], 1, 'image', 'http://img.test/');
SELECT item_id AS item FROM crawl_claim('iw', 10) WHERE url = 'http://img.test/b.gif' \gset
SELECT image_record(:s, 'http://img.test/b.gif', repeat('ef', 32), 'ef/ef/' || repeat('ef', 32) || '.gif', 42, 1, 1, 'gif', 'image/gif',
                    item => :item, worker => 'iw') IS NOT NULL AS recorded;
SELECT state, result ? 'image_id' AS linked FROM crawl_frontier WHERE id = :item;
SELECT image_record(:s, 'http://img.test/b.gif', repeat('ef', 32), 'ef/ef/' || repeat('ef', 32) || '.gif', 42, 1, 1, 'gif', 'image/gif',
                    item => :item, worker => 'iw') IS NOT NULL AS retry_is_fine;

-- Bad input: a clear error and no row. :'p' is a valid file_path.
SELECT 'ab/ab/' || repeat('ab', 32) || '.png' AS p \gset
SELECT count(*) AS images_before FROM images;
SELECT image_record(NULL, 'http://img.test/x.png', repeat('ab', 32), :'p', 1, 1, 1, 'png', 'image/png');
SELECT image_record(:s, NULL, repeat('ab', 32), :'p', 1, 1, 1, 'png', 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', NULL, :'p', 1, 1, 1, 'png', 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', 'ABCD', :'p', 1, 1, 1, 'png', 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), NULL, 1, 1, 1, 'png', 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), '../../etc/passwd', 1, 1, 1, 'png', 'image/png');
-- file_path is the file's place in the content-addressed store, nothing else.
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), '/etc/shadow', 1, 1, 1, 'png', 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), 'cd/cd/' || repeat('cd', 32) || '.png', 1, 1, 1, 'png', 'image/png');
-- No control characters in what people read.
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), :'p', 1, 1, 1, 'PNG', 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), :'p', 1, 1, 1, 'png', E'image/png\r\nX-Injected: 1');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), :'p', 1, 1, 1, 'png', 'image/png', filename => E'\x1b[31mred.png');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), :'p', -1, 1, 1, 'png', 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), :'p', 9223372036854775807, 1, 1, 'png', 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), :'p', 1, -1, 1, 'png', 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), :'p', 1, 1, 2147483647, 'png', 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), :'p', 1, 1, 1, repeat('f', 100000), 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), :'p', 1, 1, 1, 'png', 'image/png', http_status => 999);
SELECT image_record(:s, 'data:image/png;base64,AAAA', repeat('ab', 32), :'p', 1, 1, 1, 'png', 'image/png');
SELECT image_record(:s, 'http://img.test/x.png', repeat('ab', 32), :'p', 1, 1, 1, 'png', 'image/png', item => 1);
SELECT image_record(424242, 'http://img.test/x.png', repeat('ab', 32), :'p', 1, 1, 1, 'png', 'image/png');
SELECT count(*) AS images_after FROM images;

-- get and delete (the original API's GET and DELETE /api/images/{id}).
SELECT count(*) AS missing FROM image_get(-1);
SELECT * FROM image_get(NULL);
SELECT image_delete(:a), image_delete(:a);
SELECT count(*) AS gone FROM image_get(:a);
SELECT image_delete(NULL);

-- A stopped session records nothing more; a repeat of what it recorded is
-- answered as before.
SELECT crawl_stop(:s);
SELECT image_record(:s, 'http://img.test/copy.png', repeat('ab', 32), 'ab/ab/' || repeat('ab', 32) || '.png',
                    1234, 640, 480, 'png', 'image/png') IS NOT NULL AS repeat_is_fine;
SELECT image_record(:s, 'http://img.test/late.png', repeat('ab', 32), 'ab/ab/' || repeat('ab', 32) || '.png',
                    1234, 640, 480, 'png', 'image/png');

-- Counters are written when the recording transaction commits, to its
-- backend's own row (session, node, slot): within the transaction the totals
-- do not show them yet; a rolled-back savepoint takes its counts with it; a
-- transaction of many calls writes its row once.
SELECT crawl_start(ARRAY['http://count.test/']) AS c \gset
SELECT count(*) AS count_rows FROM crawl_session_counts WHERE session_id = :c;
BEGIN;
SELECT image_record(:c, 'http://count.test/' || g || '.png', h, left(h, 2) || '/' || substr(h, 3, 2) || '/' || h || '.png',
                    10, 1, 1, 'png', 'image/png') IS NOT NULL AS recorded
  FROM generate_series(1, 3) g, LATERAL (SELECT encode(sha256(g::text::bytea), 'hex') AS h) x;
SELECT images_stored AS before_commit FROM crawl_session_totals WHERE session_id = :c;
SAVEPOINT s1;
SELECT image_record(:c, 'http://count.test/gone.png', repeat('ee', 32), 'ee/ee/' || repeat('ee', 32) || '.png',
                    1000, 1, 1, 'png', 'image/png') IS NOT NULL AS recorded_then_rolled_back;
ROLLBACK TO s1;
SAVEPOINT s2;
SELECT image_record(:c, 'http://count.test/kept.png', repeat('ef', 32), 'ef/ef/' || repeat('ef', 32) || '.png',
                    100, 1, 1, 'png', 'image/png') IS NOT NULL AS recorded_in_a_kept_savepoint;
RELEASE s2;
COMMIT;
SELECT images_stored, bytes_stored, queued, leased, done, failed FROM crawl_session_totals WHERE session_id = :c;
SELECT count(*) AS count_rows, count(*) FILTER (WHERE c.slot > 0 AND c.node_id = (SELECT node_id FROM ha_node)) AS own_slots,
       bool_and(c.key = c.session_id || '/' || c.node_id || '/' || c.slot) AS keys_name_their_row
  FROM crawl_session_counts c WHERE c.session_id = :c;
-- An aborted transaction counts nothing.
BEGIN;
SELECT image_record(:c, 'http://count.test/aborted.png', repeat('fe', 32), 'fe/fe/' || repeat('fe', 32) || '.png',
                    1, 1, 1, 'png', 'image/png') IS NOT NULL AS recorded_then_aborted;
ROLLBACK;
SELECT images_stored, bytes_stored FROM crawl_session_totals WHERE session_id = :c;
-- Only the owner writes the counters.
SET ROLE crawler_ha_writer;
SELECT crawl_count(:c, images_stored => 1000);
UPDATE crawl_session_counts SET images_stored = 0;
RESET ROLE;

-- Re-crawls. The response's validators are stored with the row; a known
-- image URL is leased with them, and with whether it was confirmed within
-- the session's image_expiry_s.
SELECT crawl_start(ARRAY['http://re.test/'], '{"delay_ms": 0, "per_host": 10, "image_expiry_s": 3600}') AS r \gset
SELECT image_record(:r, 'http://re.test/v.png', repeat('0a', 32), '0a/0a/' || repeat('0a', 32) || '.png',
                    10, 1, 1, 'png', 'image/png', etag => '"v1"', last_modified => 'Wed, 21 Oct 2015 07:28:00 GMT') AS v \gset
SELECT etag, last_modified, checked_at > now() - interval '1 minute' AS checked_now FROM images WHERE id = :v;
-- The same bytes again, new validators: counted unchanged, validators follow.
SELECT image_record(:r, 'http://re.test/v.png', repeat('0a', 32), '0a/0a/' || repeat('0a', 32) || '.png',
                    10, 1, 1, 'png', 'image/png', etag => '"v2"') = :v AS same_row;
SELECT etag, last_modified FROM images WHERE id = :v;
-- New bytes under the known URL: counted changed.
SELECT image_record(:r, 'http://re.test/v.png', repeat('0b', 32), '0b/0b/' || repeat('0b', 32) || '.png',
                    20, 1, 1, 'png', 'image/png', etag => '"v3"') = :v AS same_row_changed;
SELECT images_stored, images_changed, images_unchanged, images_fresh, bytes_stored FROM crawl_status(:r);
-- A known image confirmed within image_expiry_s is done as it is queued:
-- never leased, counted fresh. A new one is queued.
SELECT crawl_enqueue(:r, ARRAY['http://re.test/v.png', 'http://re.test/new.png', 'http://re.test/late.png'],
                     1, 'image', 'http://re.test/') AS queued;
SELECT url, state, attempts, leased_at IS NULL AS never_leased, result ->> 'note' AS note,
       (result ->> 'image_id')::bigint = :v AS its_image
  FROM crawl_frontier WHERE session_id = :r AND kind = 'image' ORDER BY url;
SELECT images_fresh FROM crawl_status(:r);
-- An image recorded after its URL was queued (another worker, another
-- session): the lease brings its validators and freshness; a new one none.
SELECT image_record(:r, 'http://re.test/late.png', repeat('0c', 32), '0c/0c/' || repeat('0c', 32) || '.png',
                    30, 1, 1, 'png', 'image/png', etag => '"l1"') AS late \gset
SELECT url, known_etag, known_last_modified, known_fresh FROM crawl_claim('rw', 10)
 WHERE kind = 'image' ORDER BY url;
SELECT id AS litem FROM crawl_frontier WHERE session_id = :r AND url = 'http://re.test/late.png' \gset
SELECT id AS nitem FROM crawl_frontier WHERE session_id = :r AND url = 'http://re.test/new.png' \gset
-- Fresh at the lease: not fetched, completed as such. A 304: checked_at moves.
SELECT image_unchanged(:r, 'http://re.test/late.png', false, :litem, 'rw') = :late AS fresh_recorded;
SELECT state, result ->> 'note' AS note FROM crawl_frontier WHERE id = :litem;
UPDATE images SET checked_at = now() - interval '1 day' WHERE id = :v;
SELECT image_unchanged(:r, 'http://re.test/v.png', true) = :v AS revalidated;
SELECT checked_at > now() - interval '1 minute' AS checked_now FROM images WHERE id = :v;
-- A URL the images table does not know: NULL, nothing completed or counted.
SELECT image_unchanged(:r, 'http://re.test/new.png', true, :nitem, 'rw') IS NULL AS unknown_url;
SELECT state FROM crawl_frontier WHERE id = :nitem;
SELECT images_changed, images_unchanged, images_fresh FROM crawl_status(:r);
-- Expired: a confirmation older than image_expiry_s is not fresh.
SELECT crawl_release('rw', ARRAY[:nitem]::bigint[]);
UPDATE images SET checked_at = now() - interval '2 hours' WHERE id = :v;
SELECT crawl_enqueue(:r, ARRAY['http://re.test/v.png?again'], 1, 'image', 'http://re.test/');
SELECT image_record(:r, 'http://re.test/v.png?again', repeat('0b', 32), '0b/0b/' || repeat('0b', 32) || '.png',
                    20, 1, 1, 'png', 'image/png') IS NOT NULL AS recorded;
UPDATE images SET checked_at = now() - interval '2 hours' WHERE url = 'http://re.test/v.png?again';
SELECT url, known_fresh FROM crawl_claim('rw', 10) WHERE kind = 'image' ORDER BY url;
-- Bad input.
SELECT image_record(:r, 'http://re.test/w.png', repeat('0a', 32), '0a/0a/' || repeat('0a', 32) || '.png',
                    10, 1, 1, 'png', 'image/png', etag => E'"x"\r\nSet-Cookie: a=b');
SELECT image_record(:r, 'http://re.test/w.png', repeat('0a', 32), '0a/0a/' || repeat('0a', 32) || '.png',
                    10, 1, 1, 'png', 'image/png', last_modified => repeat('x', 1025));
SELECT image_record(:r, 'http://re.test/w.png', repeat('0a', 32), '0a/0a/' || repeat('0a', 32) || '.png',
                    10, 1, 1, 'png', 'image/png', etag => '');
SELECT count(*) AS no_row FROM images WHERE url = 'http://re.test/w.png';
SELECT image_unchanged(NULL, 'http://re.test/v.png', true);
SELECT image_unchanged(:r, NULL, true);
SELECT image_unchanged(:r, 'http://re.test/v.png', NULL);
SELECT image_unchanged(:r, 'http://re.test/v.png', true, 1);
SELECT image_unchanged(424242, 'http://re.test/v.png', true);
SELECT crawl_start(ARRAY['http://re.test/'], '{"image_expiry_s": -1}');
SELECT crawl_start(ARRAY['http://re.test/'], '{"image_expiry_s": 1e12}');
SELECT crawl_start(ARRAY['http://re.test/'], '{"image_expiry_s": "90 days"}');
-- A second session over the same seeds is a revisit (no early image fetches).
SELECT revisit AS first_is_no_revisit FROM crawl_session_settings(:r);
SELECT crawl_start(ARRAY['http://other.test/', 'http://re.test/']) AS r2 \gset
SELECT revisit AS second_is_a_revisit FROM crawl_session_settings(:r2);
SELECT crawl_stop(:r2);
-- A stopped session confirms nothing more (55000).
SELECT crawl_stop(:r);
DO $$
BEGIN
    PERFORM image_unchanged((SELECT max(id) FROM crawl_sessions WHERE seeds = ARRAY['http://re.test/']),
                            'http://re.test/v.png', true);
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    RAISE NOTICE 'refused: %', SQLERRM ~ '^crawl session \d+ is stopped$';
END
$$;

-- Thumbnails: the session setting, the rule for a row's thumbnails, and
-- image_record() recording them with the image.
SELECT crawl_start(ARRAY['http://th.test/'], '{"thumbnails": {"small": 50, "big": 2.7e2}, "delay_ms": 0, "per_host": 10}') AS th \gset
SELECT settings -> 'thumbnails' AS sizes FROM crawl_sessions WHERE id = :th;
SELECT thumbnails FROM crawl_session_settings(:th);
SELECT thumbnails IS NULL AS none_by_default FROM crawl_session_settings(:r);
-- Bad settings: 22023 each, with what is wrong.
DO $$
DECLARE
    bad text;
BEGIN
    FOREACH bad IN ARRAY ARRAY['{"thumbnails": [50]}', '{"thumbnails": null}', '{"thumbnails": {"Small": 50}}',
                               '{"thumbnails": {"1x": 50}}', '{"thumbnails": {"a;drop table images": 50}}',
                               '{"thumbnails": {"small": 15}}', '{"thumbnails": {"small": 4097}}',
                               '{"thumbnails": {"small": 50.5}}', '{"thumbnails": {"small": "50"}}',
                               '{"thumbnails": {"small": 1e400}}',
                               '{"thumbnails": {"a": 20, "b": 20, "c": 20, "d": 20, "e": 20, "f": 20, "g": 20, "h": 20, "i": 20}}',
                               '{"thumbnails": {"' || repeat('x', 33) || '": 50}}'] LOOP
        BEGIN
            PERFORM crawl_start(ARRAY['http://th.test/'], bad::jsonb);
            RAISE NOTICE 'accepted %', bad;
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE NOTICE '22023: %', SQLERRM;
        END;
    END LOOP;
END
$$;
SELECT crawl_settings('{"thumbnails": {}}', ARRAY['http://th.test/']) -> 'thumbnails' AS empty_is_none;
-- A row with its thumbnails, in one call.
SELECT image_record(:th, 'http://th.test/a.jpg', repeat('1', 64), '11/11/' || repeat('1', 64) || '.jpg', 5000,
                    800, 600, 'jpeg', 'image/jpeg',
                    thumbnails => jsonb_build_object(
                        'small', jsonb_build_object('sha256', repeat('2', 64), 'file_path', '22/22/' || repeat('2', 64) || '.jpg',
                                                    'width', 50, 'height', 38, 'bytes', 900),
                        'big', jsonb_build_object('sha256', repeat('3', 64), 'file_path', '33/33/' || repeat('3', 64) || '.png',
                                                  'width', 270, 'height', 203, 'bytes', 9000))) AS th_a \gset
SELECT jsonb_object_keys(thumbnails) AS names FROM images WHERE id = :th_a ORDER BY 1;
SELECT image_thumbnail_sha256s(thumbnails) = ARRAY[repeat('3', 64), repeat('2', 64)] AS indexed_sha256s
  FROM images WHERE id = :th_a;
-- The same bytes again with another size: the names join; without
-- thumbnails: they stay; new bytes: they go with the old bytes.
SELECT image_record(:th, 'http://th.test/a.jpg', repeat('1', 64), '11/11/' || repeat('1', 64) || '.jpg', 5000,
                    800, 600, 'jpeg', 'image/jpeg',
                    thumbnails => jsonb_build_object('tiny', jsonb_build_object('sha256', repeat('4', 64),
                        'file_path', '44/44/' || repeat('4', 64) || '.jpg', 'width', 20, 'height', 15, 'bytes', 300))) = :th_a AS same_row;
SELECT image_record(:th, 'http://th.test/a.jpg', repeat('1', 64), '11/11/' || repeat('1', 64) || '.jpg', 5000,
                    800, 600, 'jpeg', 'image/jpeg') = :th_a AS same_row;
SELECT array_agg(k ORDER BY k) AS names FROM images, jsonb_object_keys(thumbnails) k WHERE id = :th_a;
SELECT image_record(:th, 'http://th.test/a.jpg', repeat('5', 64), '55/55/' || repeat('5', 64) || '.jpg', 5000,
                    800, 600, 'jpeg', 'image/jpeg', thumbnails => '{}') = :th_a AS same_row_new_bytes;
SELECT thumbnails FROM images WHERE id = :th_a;
-- A thumbnail that could not be made: the image is recorded, the item's
-- result says why (clipped, control characters as spaces).
SELECT crawl_enqueue(:th, ARRAY['http://th.test/b.jpg'], 1, 'image', 'http://th.test/');
SELECT item_id AS th_item FROM crawl_claim('thw', 10) WHERE url = 'http://th.test/b.jpg' \gset
SELECT image_record(:th, 'http://th.test/b.jpg', repeat('6', 64), '66/66/' || repeat('6', 64) || '.jpg', 100,
                    10, 10, 'jpeg', 'image/jpeg', item => :th_item, worker => 'thw', thumbnails => '{}',
                    thumbnail_error => E'thumbnail: corrupt\njpeg ' || repeat('x', 2000)) IS NOT NULL AS recorded;
SELECT state, left(result ->> 'thumbnail_error', 30) AS thumbnail_error, length(result ->> 'thumbnail_error') AS clipped
  FROM crawl_frontier WHERE id = :th_item;
-- Bad thumbnails: 22023 and no row.
DO $$
DECLARE
    s bigint := (SELECT max(id) FROM crawl_sessions WHERE seeds = ARRAY['http://th.test/']);
    ok jsonb := jsonb_build_object('sha256', repeat('7', 64), 'file_path', '77/77/' || repeat('7', 64) || '.jpg',
                                   'width', 50, 'height', 50, 'bytes', 10);
    bad jsonb;
BEGIN
    FOREACH bad IN ARRAY ARRAY[
        '[]'::jsonb, '"small"', 'null', jsonb_build_object('Small', ok), jsonb_build_object('small', '[]'::jsonb),
        jsonb_build_object('small', ok - 'bytes'), jsonb_build_object('small', ok || '{"extra": 1}'),
        jsonb_build_object('small', ok || jsonb_build_object('sha256', repeat('G', 64))),
        jsonb_build_object('small', ok || '{"file_path": "../../etc/passwd"}'),
        jsonb_build_object('small', ok || jsonb_build_object('file_path', '77/77/' || repeat('8', 64) || '.jpg')),
        jsonb_build_object('small', ok || '{"width": 0}'), jsonb_build_object('small', ok || '{"height": 4097}'),
        jsonb_build_object('small', ok || '{"width": "50"}'), jsonb_build_object('small', ok || '{"bytes": 1e30}'),
        jsonb_build_object('small', ok || '{"width": 1.5}'), jsonb_build_object('small', ok || '{"bytes": null}'),
        (SELECT jsonb_object_agg('t' || g, ok) FROM generate_series(1, 9) g)] LOOP
        BEGIN
            PERFORM image_record(s, 'http://th.test/bad.jpg', repeat('7', 64), '77/77/' || repeat('7', 64) || '.jpg',
                                 10, 100, 100, 'jpeg', 'image/jpeg', thumbnails => bad);
            RAISE NOTICE 'accepted %', bad;
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE NOTICE '22023: %', SQLERRM;
        END;
    END LOOP;
END
$$;
SELECT count(*) AS no_bad_row FROM images WHERE url = 'http://th.test/bad.jpg';
SELECT image_thumbnails_problem(NULL) IS NULL AS null_is_none, image_thumbnails_problem('{}') IS NULL AS empty_is_valid;
-- The index serves a lookup of one thumbnail blob.
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT 1 FROM images i
 WHERE i.thumbnails IS NOT NULL AND image_thumbnail_sha256s(i.thumbnails) @> ARRAY[repeat('2', 64)];
RESET enable_seqscan;
SELECT crawl_stop(:th);
