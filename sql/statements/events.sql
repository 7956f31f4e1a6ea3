-- Statements for `events`; loaded by store::statements, one per "-- name:" section.

-- name: upsert
-- Returns 1 for an insert, 0 for an update, nothing for an unchanged row.
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
ON CONFLICT (id) DO UPDATE SET
    state = excluded.state,
    visibility = excluded.visibility,
    experience_id = excluded.experience_id,
    capacity_total = excluded.capacity_total,
    capacity_reserved = excluded.capacity_reserved,
    session_count = excluded.session_count,
    first_session_start = excluded.first_session_start,
    first_session_end = excluded.first_session_end,
    timezone = excluded.timezone,
    location_id = excluded.location_id,
    sessions_json = excluded.sessions_json,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at,
    metadata_json = excluded.metadata_json,
    removed_at = excluded.removed_at,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at
-- An identical live row is left as it is: no write, and no row returned (unchanged).
WHERE events.raw_json IS NOT excluded.raw_json OR events.removed_at IS NOT NULL
RETURNING first_synced_at = last_changed_at;

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
