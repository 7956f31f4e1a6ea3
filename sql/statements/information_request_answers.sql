-- Statements for `information_request_answers`; loaded by store::statements, one per "-- name:" section.

-- name: lookup
-- The stored raw_json and whether the row is live, to tell inserts, updates and
-- unchanged rows apart before writing anything.
SELECT raw_json, 1 FROM information_request_answers WHERE booking_id = :booking_id AND position = :position;

-- name: upsert
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
    last_changed_at = excluded.last_changed_at;

-- name: prune
-- Positions beyond the parent's current item count.
DELETE FROM information_request_answers WHERE booking_id = :parent_id AND position >= :count;

-- name: count
SELECT COUNT(*) FROM information_request_answers;
