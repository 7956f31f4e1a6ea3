-- Statements for `scan_seen`, the keys the current scan of a stream has listed.

-- name: reset
-- A new scan begins.
DELETE FROM scan_seen WHERE stream = :stream;

-- name: add
INSERT OR IGNORE INTO scan_seen (stream, item_key) VALUES (:stream, :item_key);
