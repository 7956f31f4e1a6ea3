-- Statements for `quarantine`, items the job could not read.

-- name: exists
SELECT 1 FROM quarantine WHERE stream = :stream AND item_key = :item_key;

-- name: upsert
INSERT INTO quarantine (stream, item_key, item_id, parent_id, error, raw_json, first_seen_at, last_seen_at)
VALUES (:stream, :item_key, :item_id, :parent_id, :error, :raw_json, :now, :now)
ON CONFLICT (stream, item_key) DO UPDATE SET
    item_id = excluded.item_id,
    parent_id = excluded.parent_id,
    error = excluded.error,
    raw_json = excluded.raw_json,
    last_seen_at = excluded.last_seen_at;

-- name: release
-- The item was read after all.
DELETE FROM quarantine WHERE stream = :stream AND item_key = :item_key;

-- name: release_children
-- An order's sub-resources were fetched again: what was unreadable before is judged anew.
DELETE FROM quarantine WHERE stream = :stream AND parent_id = :parent_id;

-- name: sweep
-- After a complete scan: items it no longer listed are gone, or were read.
DELETE FROM quarantine WHERE stream = :stream AND parent_id IS NULL AND last_seen_at < :since;

-- name: ids
-- Quarantined items that can be fetched again by id, those waiting longest first (since they
-- were last asked for, or since they were first seen): a run asks for at most :limit of them,
-- and newcomers never starve the items before them.
SELECT item_id FROM quarantine WHERE stream = :stream AND item_id IS NOT NULL
ORDER BY COALESCE(retried_at, first_seen_at), item_id
LIMIT :limit;

-- name: retried
-- The item was asked for by id now (whatever came of it).
UPDATE quarantine SET retried_at = :now WHERE stream = :stream AND item_id = :item_id;

-- name: count
SELECT COUNT(*) FROM quarantine;

-- name: by_stream
SELECT stream, COUNT(*) FROM quarantine GROUP BY stream ORDER BY stream;
