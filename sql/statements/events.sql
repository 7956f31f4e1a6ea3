-- Statements for `events`; loaded by store::statements, one per "-- name:" section.

-- name: insert
-- A new row; one already stored is left to `update`.
INSERT INTO events (
    id,
    state,
    visibility,
    experience_id,
    capacity_total,
    capacity_reserved,
    session_count,
    first_session_start,
    first_session_end,
    timezone,
    location_id,
    sessions_json,
    created_at,
    updated_at,
    metadata_json,
    removed_at,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :id,
    :state,
    :visibility,
    :experience_id,
    :capacity_total,
    :capacity_reserved,
    :session_count,
    :first_session_start,
    :first_session_end,
    :timezone,
    :location_id,
    :sessions_json,
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
UPDATE events SET
    state = :state,
    visibility = :visibility,
    experience_id = :experience_id,
    capacity_total = :capacity_total,
    capacity_reserved = :capacity_reserved,
    session_count = :session_count,
    first_session_start = :first_session_start,
    first_session_end = :first_session_end,
    timezone = :timezone,
    location_id = :location_id,
    sessions_json = :sessions_json,
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
SELECT id, id FROM events
WHERE removed_at IS NULL
  AND id NOT IN (SELECT item_key FROM scan_seen WHERE stream = :stream);

-- name: confirm_removed
-- Candidates the API confirmed gone (404). :keys is a JSON array.
UPDATE events SET removed_at = :now, last_changed_at = :now
WHERE removed_at IS NULL AND id IN (SELECT value FROM json_each(:keys));

-- name: count
-- Live rows only.
SELECT COUNT(*) FROM events WHERE removed_at IS NULL;

-- name: updated_at
-- The stored row's updated_at: a webhook's fetch older than it changes nothing.
SELECT updated_at FROM events WHERE id = :id;
