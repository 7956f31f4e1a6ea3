-- Statements for `information_request_answers`; loaded by store::statements, one per "-- name:" section.

-- name: upsert
-- Returns 1 for an insert, 0 for an update, nothing for an unchanged row.
INSERT INTO information_request_answers (
    booking_id,
    position,
    information_request_id,
    question,
    answer,
    ticket_id,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :booking_id,
    :position,
    :information_request_id,
    :question,
    :answer,
    :ticket_id,
    :raw_json,
    :now,
    :now
)
ON CONFLICT (booking_id, position) DO UPDATE SET
    information_request_id = excluded.information_request_id,
    question = excluded.question,
    answer = excluded.answer,
    ticket_id = excluded.ticket_id,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at
-- An identical live row is left as it is: no write, and no row returned (unchanged).
WHERE information_request_answers.raw_json IS NOT excluded.raw_json
RETURNING first_synced_at = last_changed_at;

-- name: prune
-- Positions beyond the parent's current item count.
DELETE FROM information_request_answers WHERE booking_id = :parent_id AND position >= :count;

-- name: count
SELECT COUNT(*) FROM information_request_answers;
