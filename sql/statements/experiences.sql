-- Statements for `experiences`; loaded by store::statements, one per "-- name:" section.

-- name: lookup
-- The stored raw_json and whether the row is live, to tell inserts, updates and
-- unchanged rows apart before writing anything.
SELECT raw_json, removed_at IS NULL FROM experiences WHERE id = :id;

-- name: upsert
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
    last_changed_at = excluded.last_changed_at;

-- name: mark_removed
-- After a complete scan: rows it did not list. :seen is a JSON array of keys.
UPDATE experiences SET removed_at = :now, last_changed_at = :now
WHERE removed_at IS NULL AND id NOT IN (SELECT value FROM json_each(:seen));
