-- Statements for `experiences`; loaded by store::statements, one per "-- name:" section.

-- name: lookup
-- The stored raw_json and whether the row is live: whether a listed parent differs from what
-- is stored, to stage only new or changed ones for the fan-out.
SELECT raw_json, removed_at IS NULL FROM experiences WHERE id = :id;

-- name: insert
-- A new row; one already stored is left to `update`.
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
ON CONFLICT (id) DO NOTHING;

-- name: update
-- A stored row whose content changed (or that was removed and is listed again); an identical
-- live row is not written at all.
UPDATE experiences SET
    type = :type,
    state = :state,
    name = :name,
    description = :description,
    created_at = :created_at,
    updated_at = :updated_at,
    tag_ids_json = :tag_ids_json,
    media_json = :media_json,
    metadata_json = :metadata_json,
    removed_at = NULL,
    raw_json = :raw_json,
    last_changed_at = :now
WHERE id = :id
  AND (raw_json IS NOT :raw_json OR removed_at IS NOT NULL);

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
-- waiting is kept, and a row whose newer listing is in quarantine waits for that one to read
-- (its older copy would overwrite nothing newer, but writing it would release the quarantine).
INSERT OR IGNORE INTO staging (stream, item_key, raw_json, staged_at)
SELECT :stream, id, raw_json, :now FROM experiences WHERE removed_at IS NULL
  AND id NOT IN (SELECT item_key FROM quarantine WHERE stream = :stream AND parent_id IS NULL);

-- name: count
-- Live rows only.
SELECT COUNT(*) FROM experiences WHERE removed_at IS NULL;

-- name: updated_at
-- The stored row's updated_at: a webhook's fetch older than it changes nothing.
SELECT updated_at FROM experiences WHERE id = :id;
