-- Statements for `information_requests`; loaded by store::statements, one per "-- name:" section.

-- name: insert
-- A new row; one already stored is left to `update`.
INSERT INTO information_requests (
    id,
    experience_id,
    type,
    required,
    scope,
    question,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :id,
    :experience_id,
    :type,
    :required,
    :scope,
    :question,
    :raw_json,
    :now,
    :now
)
ON CONFLICT (id) DO NOTHING;

-- name: update
-- A stored row whose content changed (or that was removed and is listed again); an identical
-- live row is not written at all.
UPDATE information_requests SET
    experience_id = :experience_id,
    type = :type,
    required = :required,
    scope = :scope,
    question = :question,
    raw_json = :raw_json,
    last_changed_at = :now
WHERE id = :id
  AND (raw_json IS NOT :raw_json);

-- name: prune
-- Items the parent no longer lists; :ids is a JSON array.
DELETE FROM information_requests
WHERE experience_id = :parent_id AND id NOT IN (SELECT value FROM json_each(:ids));

-- name: count
SELECT COUNT(*) FROM information_requests;
