-- Statements for `information_requests`; loaded by store::statements, one per "-- name:" section.

-- name: lookup
-- The stored raw_json and whether the row is live, to tell inserts, updates and
-- unchanged rows apart before writing anything.
SELECT raw_json, 1 FROM information_requests WHERE id = :id;

-- name: upsert
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
ON CONFLICT (id) DO UPDATE SET
    experience_id = excluded.experience_id,
    type = excluded.type,
    required = excluded.required,
    scope = excluded.scope,
    question = excluded.question,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at;

-- name: prune
-- Items the parent no longer lists; :ids is a JSON array.
DELETE FROM information_requests
WHERE experience_id = :parent_id AND id NOT IN (SELECT value FROM json_each(:ids));

-- name: count
SELECT COUNT(*) FROM information_requests;
