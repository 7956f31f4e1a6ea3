-- Statements for `information_requests`; loaded by store::statements, one per "-- name:" section.

-- name: upsert
-- Returns 1 for an insert, 0 for an update, nothing for an unchanged row.
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
    last_changed_at = excluded.last_changed_at
-- An identical live row is left as it is: no write, and no row returned (unchanged).
WHERE information_requests.raw_json IS NOT excluded.raw_json
RETURNING first_synced_at = last_changed_at;

-- name: prune
-- Items the parent no longer lists; :ids is a JSON array.
DELETE FROM information_requests
WHERE experience_id = :parent_id AND id NOT IN (SELECT value FROM json_each(:ids));

-- name: count
SELECT COUNT(*) FROM information_requests;
