-- Statements for `webhook_inbox` and `webhook_state`: the receiver's inbox and counters.

-- name: receive
-- A verified delivery; one whose webhook-id is already here changes nothing.
INSERT INTO webhook_inbox (webhook_id, event_type, stream, item_id, event_timestamp, received_at, body)
VALUES (:webhook_id, :event_type, :stream, :item_id, :event_timestamp, :now, :body)
ON CONFLICT (webhook_id) DO NOTHING;

-- name: count_duplicate
INSERT INTO webhook_state (id, duplicates) VALUES (1, 1)
ON CONFLICT (id) DO UPDATE SET duplicates = duplicates + 1;

-- name: add_refused
INSERT INTO webhook_state (id, refused) VALUES (1, :refused)
ON CONFLICT (id) DO UPDATE SET refused = refused + excluded.refused;

-- name: started
INSERT INTO webhook_state (id, receiving_since, stopped_at) VALUES (1, :now, NULL)
ON CONFLICT (id) DO UPDATE SET receiving_since = excluded.receiving_since, stopped_at = NULL;

-- name: stopped
UPDATE webhook_state SET stopped_at = :now WHERE id = 1;

-- name: waiting
-- The oldest rows not applied yet, in the order they arrived.
SELECT seq, webhook_id, event_type, stream, item_id, event_timestamp, attempts
FROM webhook_inbox WHERE applied_at IS NULL ORDER BY seq LIMIT :limit;

-- name: applied
UPDATE webhook_inbox SET applied_at = :now, outcome = :outcome, last_error = NULL, attempts = attempts + 1
WHERE seq = :seq;

-- name: failed
UPDATE webhook_inbox SET attempts = attempts + 1, last_error = :error WHERE seq = :seq;

-- name: gave_up
UPDATE webhook_inbox SET applied_at = :now, outcome = :outcome, last_error = :error, attempts = attempts + 1
WHERE seq = :seq;

-- name: lag
UPDATE webhook_state SET last_applied_at = :now, last_lag_ms = :lag_ms WHERE id = 1;

-- name: prune
-- Applied rows past their keeping time; rows still waiting are never pruned.
DELETE FROM webhook_inbox WHERE applied_at IS NOT NULL AND applied_at < :before;

-- name: watch_since
-- When the last successful listing sync started, if a receiver has been up since before then:
-- every change after it happened while the receiver was up, so a delivery should have brought
-- it. Nothing when no receiver is up, or none was at the last listing.
SELECT MAX(r.started_at) FROM sync_runs r JOIN webhook_state s ON s.id = 1
WHERE s.receiving_since IS NOT NULL AND s.stopped_at IS NULL
  AND r.status = 'succeeded' AND r.started_at >= s.receiving_since;

-- name: delivered_since
-- Whether a delivery about the item arrived at or after the given time (the last listing's
-- start): then a listing that finds it changed is not a webhook's miss (its event came, maybe
-- not applied yet). One the applier gave up (outcome 'failed') brought nothing: the listing
-- had to, and counts it.
SELECT 1 FROM webhook_inbox WHERE stream = :stream AND item_id = :item_id AND received_at >= :since
  AND outcome IS NOT 'failed' LIMIT 1;

-- name: status
SELECT
    (SELECT COUNT(*) FROM webhook_inbox),
    (SELECT COUNT(*) FROM webhook_inbox WHERE applied_at IS NOT NULL),
    (SELECT COUNT(*) FROM webhook_inbox WHERE applied_at IS NULL),
    (SELECT MIN(received_at) FROM webhook_inbox WHERE applied_at IS NULL),
    s.duplicates, s.refused, s.receiving_since, s.stopped_at, s.last_applied_at, s.last_lag_ms,
    (SELECT webhook_missed FROM sync_runs WHERE webhook_missed IS NOT NULL ORDER BY id DESC LIMIT 1),
    (SELECT SUM(webhook_missed) FROM sync_runs WHERE started_at >= s.receiving_since),
    s.id IS NOT NULL,
    (SELECT COUNT(*) FROM webhook_inbox WHERE outcome = 'failed')
FROM (SELECT 1) LEFT JOIN webhook_state s ON s.id = 1;
