-- Statements for `experiences`; loaded by store::statements, one per "-- name:" section.

-- name: lookup
-- The stored raw_json and whether the row is live: whether a listed parent differs from what
-- is stored, to stage only new or changed ones for the fan-out.
SELECT raw_json, removed_at IS NULL FROM experiences WHERE id = :id;

-- name: upsert
-- Returns 1 for an insert, 0 for an update, nothing for an unchanged row.
INSERT INTO experiences (
    id,
    type,
    state,
    name,
    description,
    created_at,
    updated_at,
    tag_ids_json,
    media_json,
    metadata_json,
    removed_at,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :id,
    :type,
    :state,
    :name,
    :description,
    :created_at,
    :updated_at,
    :tag_ids_json,
    :media_json,
    :metadata_json,
    NULL,
    :raw_json,
    :now,
    :now
)
ON CONFLICT (id) DO UPDATE SET
    type = excluded.type,
    state = excluded.state,
    name = excluded.name,
    description = excluded.description,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at,
    tag_ids_json = excluded.tag_ids_json,
    media_json = excluded.media_json,
    metadata_json = excluded.metadata_json,
    removed_at = excluded.removed_at,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at
-- An identical live row is left as it is: no write, and no row returned (unchanged).
WHERE experiences.raw_json IS NOT excluded.raw_json OR experiences.removed_at IS NOT NULL
RETURNING first_synced_at = last_changed_at;

-- name: removal_candidates
-- After a complete scan: live rows it did not list, with the id to confirm each by.
SELECT id, id FROM experiences
WHERE removed_at IS NULL
  AND id NOT IN (SELECT item_key FROM scan_seen WHERE stream = :stream);

-- name: confirm_removed
-- Candidates the API confirmed gone (404). :keys is a JSON array.
UPDATE experiences SET removed_at = :now, last_changed_at = :now
WHERE removed_at IS NULL AND id IN (SELECT value FROM json_each(:keys));

-- name: stage_all
-- Every stored row, staged once for a newly enabled per-parent stream; a newer listing already
-- waiting is kept.
INSERT OR IGNORE INTO staging (stream, item_key, raw_json, staged_at)
SELECT :stream, id, raw_json, :now FROM experiences WHERE removed_at IS NULL;

-- name: count
-- Live rows only.
SELECT COUNT(*) FROM experiences WHERE removed_at IS NULL;
