-- File sync, the SQL side: the node agent's blob bookkeeping (per node,
-- never replicated), the trigger that queues a missing blob for every
-- images row however it arrives, and the worker's crawl_blob_target().
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- Not part of the replicated data.
SELECT 'ha_blobs'::regclass = ANY (ha_data_tables()) OR 'ha_blob_wanted'::regclass = ANY (ha_data_tables())
       OR 'ha_blob_store'::regclass = ANY (ha_data_tables()) AS replicated;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'images'::regclass AND NOT tgisinternal;

-- Without an agent a worker is told so (55000); with one it gets its URL.
SELECT * FROM crawl_blob_target();
ALTER SYSTEM SET crawler_ha.agent_url = 'https://10.0.0.5:8000';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT * FROM crawl_blob_target();
SELECT agent_url FROM ha_ping();
SELECT agent_url FROM ha_status() WHERE is_local;
-- Refused values leave the setting as it was.
ALTER SYSTEM SET crawler_ha.agent_url = 'ftp://10.0.0.5/';
ALTER SYSTEM SET crawler_ha.agent_url = 'https://user:secret@10.0.0.5:8000';
ALTER SYSTEM SET crawler_ha.agent_url = 'https://10.0.0.5:8000/a b';
ALTER SYSTEM SET crawler_ha.agent_url = 'https://';
ALTER SYSTEM RESET crawler_ha.agent_url;
SELECT pg_reload_conf();

-- No store attached: rows queue nothing, the agent's writes are refused.
SELECT crawl_start(ARRAY['http://blob.test/'], '{"delay_ms": 0}') AS s \gset
SELECT image_record(:s, 'http://blob.test/early.png', repeat('e', 64), 'ee/ee/' || repeat('e', 64) || '.png',
                    5, 1, 1, 'png', 'image/png') IS NOT NULL AS recorded;
SELECT count(*) AS wanted FROM ha_blob_wanted;
SELECT blob_stored(repeat('e', 64), 5);
-- The first attach: false (take an inventory); the same store again: true.
SELECT blob_store_attach('3f2b1c9e-0d4a-4f7e-9a61-1b2c3d4e5f60') AS known;
SELECT blob_store_attach('3f2b1c9e-0d4a-4f7e-9a61-1b2c3d4e5f60') AS known;
-- The inventory found one blob; the requeue finds the row recorded before.
SELECT blob_inventory(ARRAY[repeat('0', 64)], ARRAY[7]::bigint[]) AS inventoried;
SELECT blob_requeue_missing() AS requeued;
SELECT blob_requeue_missing() AS requeued_again;
SELECT sha256 = repeat('e', 64) AS early, file_path, file_size, attempts FROM ha_blob_wanted;

-- The trigger: an image whose blob is held queues nothing, a missing one
-- is queued once, a changed sha256 queues the new blob.
SELECT blob_stored(repeat('a', 64), 10);
SELECT image_record(:s, 'http://blob.test/a.png', repeat('a', 64), 'aa/aa/' || repeat('a', 64) || '.png',
                    10, 1, 1, 'png', 'image/png') AS a \gset
SELECT count(*) AS wanted_a FROM ha_blob_wanted WHERE sha256 = repeat('a', 64);
SELECT image_record(:s, 'http://blob.test/b.png', repeat('b', 64), 'bb/bb/' || repeat('b', 64) || '.png',
                    20, 1, 1, 'png', 'image/png') IS NOT NULL AS recorded;
SELECT image_record(:s, 'http://blob.test/b2.png', repeat('b', 64), 'bb/bb/' || repeat('b', 64) || '.png',
                    20, 1, 1, 'png', 'image/png') IS NOT NULL AS recorded;
SELECT count(*) AS wanted_b FROM ha_blob_wanted WHERE sha256 = repeat('b', 64);
SELECT image_record(:s, 'http://blob.test/a.png', repeat('c', 64), 'cc/cc/' || repeat('c', 64) || '.webp',
                    30, 1, 1, 'webp', 'image/webp') = :a AS same_row_new_content;
SELECT left(sha256, 1) AS wanted, file_path, file_size FROM ha_blob_wanted ORDER BY sha256;
-- Rows the write API records name blobs their writer has just uploaded to
-- this node's agent, whose record normally follows: they wait 2 s before
-- they are handed out. The requeued one is due at once.
SELECT left(sha256, 1) AS wanted, next_try_at > now() AS waits,
       next_try_at <= now() + interval '2 s' AS at_most_2_s FROM ha_blob_wanted ORDER BY sha256;
SELECT left(sha256, 1) AS due FROM blob_wanted(10);
-- A row that arrives any other way (the apply worker, a merge, a repair:
-- session_replication_role = replica) names a blob no writer sent here: due
-- at once.
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE images SET sha256 = repeat('9', 64), file_path = '99/99/' || repeat('9', 64) || '.png'
 WHERE url = 'http://blob.test/b2.png';
SELECT next_try_at <= now() AS due_at_once FROM ha_blob_wanted WHERE sha256 = repeat('9', 64);
ROLLBACK;
UPDATE ha_blob_wanted SET next_try_at = now();

-- The fetch queue: due items oldest first, handed out once, back-off on failure.
SELECT left(sha256, 1) AS sha, file_size, attempts FROM blob_wanted(2);
SELECT left(sha256, 1) AS sha FROM blob_wanted(10);
SELECT blob_fetch_failed(repeat('b', 64), E'peer said 503\nforged line');
SELECT attempts, next_try_at > now() AS backing_off, next_try_at <= now() + interval '2 s' AS first_step,
       last_error FROM ha_blob_wanted WHERE sha256 = repeat('b', 64);
SELECT blob_fetch_failed(repeat('f', 64), NULL) AS not_wanted_is_no_error;
-- Fetched: held, off the list.
SELECT blob_stored_many(ARRAY[repeat('b', 64), repeat('c', 64), repeat('b', 64)], ARRAY[20, 30, 20]::bigint[]) AS stored;
SELECT left(sha256, 1) AS still_wanted FROM ha_blob_wanted ORDER BY 1;
-- A wanted entry whose row is gone leaves the list instead of being fetched.
SELECT image_delete(id) FROM images WHERE url = 'http://blob.test/early.png';
UPDATE ha_blob_wanted SET next_try_at = now();
SELECT count(*) AS handed FROM blob_wanted(10);
SELECT count(*) AS wanted_left FROM ha_blob_wanted;
-- Hundreds of stale entries ahead of a live one do not hide it: one call
-- drops them all and hands the live one out.
SELECT count(image_record(:s, 'http://blob.test/stale/' || g || '.png', h, substr(h, 1, 2) || '/' || substr(h, 3, 2) || '/' || h || '.png',
                          1, 1, 1, 'png', 'image/png')) AS stale_rows
  FROM generate_series(1, 250) g, LATERAL (SELECT lpad(to_hex(g), 64, '0') AS h) x;
SELECT count(image_delete(id)) AS deleted FROM images WHERE url LIKE 'http://blob.test/stale/%';
SELECT image_record(:s, 'http://blob.test/live.png', repeat('d', 64), 'dd/dd/' || repeat('d', 64) || '.png',
                    40, 1, 1, 'png', 'image/png') IS NOT NULL AS recorded;
UPDATE ha_blob_wanted SET next_try_at = now();
SELECT count(*) AS queued FROM ha_blob_wanted;
SELECT left(sha256, 1) AS handed FROM blob_wanted(1);
SELECT count(*) AS wanted_left FROM ha_blob_wanted;
SELECT count(image_delete(id)) AS deleted FROM images WHERE url = 'http://blob.test/live.png';
DELETE FROM ha_blob_wanted WHERE sha256 = repeat('d', 64);

-- The scrub: never verified first; a corrupt blob is wanted again, and
-- storing it again is a repair; both are HA events.
SELECT left(sha256, 1) AS sha, size FROM blob_scrub_next(2);
SELECT blob_verified(repeat('0', 64)) AS verified, blob_verified(repeat('9', 64)) AS unknown;
-- A pass bounded by when it began skips what was verified since; no bound
-- (NULL) returns every held blob.
SELECT bool_and(s.sha256 <> repeat('0', 64)) AS skips_verified_since, count(*) AS older
  FROM blob_scrub_next(100, (SELECT verified_at FROM ha_blobs WHERE sha256 = repeat('0', 64))) s;
SELECT (SELECT count(*) FROM blob_scrub_next(100, NULL)) = (SELECT count(*) FROM ha_blobs) AS unbounded_all;
SELECT blob_corrupt(repeat('a', 64), E'hash mismatch\r\n') AS requeued_a;
SELECT blob_corrupt(repeat('b', 64), 'hash mismatch') AS requeued_b;
SELECT left(sha256, 1) AS wanted, corrupt_at IS NOT NULL AS corrupt FROM ha_blob_wanted ORDER BY 1;
-- An inventory does not trust a copy found corrupt again.
SELECT blob_inventory(ARRAY[repeat('b', 64)], ARRAY[20]::bigint[]) AS inventoried;
SELECT count(*) AS b_held FROM ha_blobs WHERE sha256 = repeat('b', 64);
SELECT blob_stored(repeat('b', 64), 20);
SELECT kind, reason, detail - 'corrupt_at' AS detail FROM ha_events WHERE kind LIKE 'blob%' ORDER BY id;
SELECT blobs_held, bytes_held, blobs_missing, bytes_missing, failing, last_scrub_at IS NOT NULL AS scrubbed,
       scrubbed_blobs, corrupt_found, repaired, orphans_pending FROM ha_file_sync_status();

-- Orphans: the grace is at least the longest lease.
SELECT * FROM blob_orphans('23 hours', 10);
SELECT * FROM blob_orphans('1 day', 10);
SELECT left(sha256, 1) AS marked FROM ha_blobs WHERE unreferenced_since IS NOT NULL ORDER BY 1;
-- Unreferenced and not uploaded for longer than the grace: an orphan.
UPDATE ha_blobs SET unreferenced_since = now() - interval '3 days', last_put_at = now() - interval '3 days'
 WHERE sha256 IN (repeat('0', 64), repeat('a', 64));
SELECT left(sha256, 1) AS orphan FROM blob_orphans('2 days', 10);
-- No row references 'a' since a.png changed content; uploaded again now, it is kept.
SELECT blob_stored(repeat('a', 64), 10);
SELECT left(sha256, 1) AS orphan FROM blob_orphans('2 days', 10);
SELECT left(h, 1) AS referenced FROM blob_referenced(ARRAY[repeat('0', 64), repeat('b', 64), repeat('c', 64)]) h;
SELECT blob_removed(repeat('0', 64)) AS removed_orphan, blob_removed(repeat('b', 64)) AS removed_referenced,
       blob_removed(repeat('9', 64)) AS removed_unknown;
SELECT left(sha256, 1) AS held FROM ha_blobs ORDER BY 1;
-- blob_removed() must see rows committed while it waited.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT blob_removed(repeat('a', 64));
ROLLBACK;

-- A read-only transaction (a standby's default) is refused with the way out.
BEGIN READ ONLY;
SELECT blob_verified(repeat('b', 64));
ROLLBACK;
\set VERBOSITY default
BEGIN READ ONLY;
SELECT blob_verified(repeat('b', 64));
ROLLBACK;
\set VERBOSITY terse

-- Another store (a wiped disk): the bookkeeping starts again.
SELECT blob_store_attach('store-2') AS known;
SELECT count(*) AS held FROM ha_blobs;
SELECT blob_requeue_missing() AS requeued;
SELECT blobs_held, blobs_missing, scrubbed_blobs, corrupt_found, repaired FROM ha_file_sync_status();

-- Clean up for the tests after this one.
SELECT crawl_stop(:s);
DELETE FROM ha_blobs;
DELETE FROM ha_blob_wanted;
DELETE FROM ha_blob_store;

-- Thumbnails are blobs like the files they were made of: queued by the
-- trigger, referenced, never orphans while a row names them, in the
-- requeue, the consistency check's missing blobs and the backup manifest.
SELECT blob_store_attach('store-th') AS known;
SELECT crawl_start(ARRAY['http://blobth.test/'], '{"thumbnails": {"small": 50}}') AS st \gset
SELECT blob_stored(repeat('a', 64), 100);
SELECT image_record(:st, 'http://blobth.test/t.jpg', repeat('a', 64), 'aa/aa/' || repeat('a', 64) || '.jpg', 100,
                    100, 100, 'jpeg', 'image/jpeg',
                    thumbnails => jsonb_build_object('small', jsonb_build_object('sha256', repeat('f', 64),
                        'file_path', 'ff/ff/' || repeat('f', 64) || '.png', 'width', 50, 'height', 50, 'bytes', 40))) AS ti \gset
SELECT left(sha256, 1) AS wanted, file_path, file_size FROM ha_blob_wanted ORDER BY sha256;
SELECT left(h, 1) AS referenced FROM blob_referenced(ARRAY[repeat('a', 64), repeat('f', 64), repeat('9', 64)]) h;
SELECT * FROM image_blob_find(repeat('f', 64));
SELECT ha_blob_missing_summary() - 'queued' AS missing;
-- A thumbnail added to a row later (the same bytes again) is queued too.
SELECT image_record(:st, 'http://blobth.test/t.jpg', repeat('a', 64), 'aa/aa/' || repeat('a', 64) || '.jpg', 100,
                    100, 100, 'jpeg', 'image/jpeg',
                    thumbnails => jsonb_build_object('big', jsonb_build_object('sha256', repeat('d', 64),
                        'file_path', 'dd/dd/' || repeat('d', 64) || '.jpg', 'width', 90, 'height', 90, 'bytes', 70))) = :ti AS same_row;
SELECT left(sha256, 1) AS wanted FROM ha_blob_wanted ORDER BY sha256;
-- Fetched: held, off the list; not orphans while the row names them.
SELECT blob_stored_many(ARRAY[repeat('f', 64), repeat('d', 64)], ARRAY[40, 70]::bigint[]) AS stored;
UPDATE ha_blobs SET last_put_at = now() - interval '3 days';
SELECT count(*) AS orphans FROM blob_orphans('2 days', 10);
SELECT count(*) AS marked FROM ha_blobs WHERE unreferenced_since IS NOT NULL;
SELECT ha_blob_missing_summary() - 'queued' AS missing;
-- A corrupt thumbnail is wanted again under its own path and size.
SELECT blob_corrupt(repeat('f', 64), 'bad bytes') AS requeued;
SELECT left(sha256, 1) AS wanted, file_path, file_size, corrupt_at IS NOT NULL AS corrupt FROM ha_blob_wanted;
SELECT blob_stored(repeat('f', 64), 40);
-- The backup manifest lists them.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT left(sha256, 1) AS backed_up, file_path, file_size FROM ha_backup_blob_manifest()
 WHERE sha256 IN (repeat('a', 64), repeat('d', 64), repeat('f', 64));
ROLLBACK;
-- Gone from the row (new bytes), a thumbnail is an orphan like any blob.
SELECT image_record(:st, 'http://blobth.test/t.jpg', repeat('a', 64), 'aa/aa/' || repeat('a', 64) || '.jpg', 100,
                    100, 100, 'jpeg', 'image/jpeg') = :ti AS same_row;
SELECT image_delete(:ti) AS deleted;
UPDATE ha_blobs SET last_put_at = now() - interval '3 days';
SELECT count(*) AS newly_marked FROM blob_orphans('2 days', 10);
UPDATE ha_blobs SET unreferenced_since = now() - interval '3 days';
SELECT left(sha256, 1) AS orphan FROM blob_orphans('2 days', 10) ORDER BY 1;
SELECT blob_removed(repeat('f', 64)) AS removed_thumbnail;
SELECT crawl_stop(:st);
DELETE FROM ha_blobs;
DELETE FROM ha_blob_wanted;
DELETE FROM ha_blob_store;
