-- Statements for `webhook_subscriptions`; loaded by store::statements, one per "-- name:" section.

-- name: insert
-- A new row; one already stored is left to `update`.
INSERT INTO webhook_subscriptions (
    id,
    url,
    state,
    event_types_json,
    description,
    created_at,
    updated_at,
    metadata_json,
    removed_at,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :id,
    :url,
    :state,
    :event_types_json,
    :description,
    :created_at,
    :updated_at,
    :metadata_json,
    NULL,
    :raw_json,
    :now,
    :now
)
ON CONFLICT (id) DO NOTHING;

-- name: update
-- A stored row whose content changed (or that was removed and is listed again); an identical
-- live row is not written at all.
UPDATE webhook_subscriptions SET
    url = :url,
    state = :state,
    event_types_json = :event_types_json,
    description = :description,
    created_at = :created_at,
    updated_at = :updated_at,
    metadata_json = :metadata_json,
    removed_at = NULL,
    raw_json = :raw_json,
    last_changed_at = :now
WHERE id = :id
  AND (raw_json IS NOT :raw_json OR removed_at IS NOT NULL);

-- name: removal_candidates
-- After a complete scan: live rows it did not list, with the id to confirm each by.
SELECT id, id FROM webhook_subscriptions
WHERE removed_at IS NULL
  AND id NOT IN (SELECT item_key FROM scan_seen WHERE stream = :stream);

-- name: confirm_removed
-- Candidates the API confirmed gone (404). :keys is a JSON array.
UPDATE webhook_subscriptions SET removed_at = :now, last_changed_at = :now
WHERE removed_at IS NULL AND id IN (SELECT value FROM json_each(:keys));

-- name: count
-- Live rows only.
SELECT COUNT(*) FROM webhook_subscriptions WHERE removed_at IS NULL;
