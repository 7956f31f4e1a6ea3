-- Statements for `staging`, parents waiting for their sub-resources.

-- name: stage
-- A newer listing of the same parent replaces the one waiting.
INSERT INTO staging (stream, item_key, raw_json, staged_at)
VALUES (:stream, :item_key, :raw_json, :now)
ON CONFLICT (stream, item_key) DO UPDATE SET
    raw_json = excluded.raw_json,
    staged_at = excluded.staged_at;

-- name: next
-- The oldest waiting parents, skipping those a worker already has in hand.
SELECT item_key, raw_json FROM staging
WHERE stream = :stream AND item_key NOT IN (SELECT value FROM json_each(:busy))
ORDER BY staged_at, item_key
LIMIT :limit;

-- name: done
-- Only the listing that was fetched for: a newer one staged meanwhile waits its turn.
DELETE FROM staging WHERE stream = :stream AND item_key = :item_key AND raw_json = :raw_json;

-- name: drop
DELETE FROM staging WHERE stream = :stream AND item_key = :item_key;

-- name: count
SELECT COUNT(*) FROM staging WHERE stream = :stream;

-- name: by_stream
-- For `status`: parents waiting for the fan-out, per stream.
SELECT stream, COUNT(*) FROM staging GROUP BY stream ORDER BY stream;
