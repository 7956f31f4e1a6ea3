-- Statements for `information_request_answers`; loaded by store::statements, one per "-- name:" section.

-- name: insert
-- A new row; one already stored is left to `update`.
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
ON CONFLICT (booking_id, position) DO NOTHING;

-- name: update
-- A stored row whose content changed (or that was removed and is listed again); an identical
-- live row is not written at all.
UPDATE information_request_answers SET
    information_request_id = :information_request_id,
    question = :question,
    answer = :answer,
    ticket_id = :ticket_id,
    raw_json = :raw_json,
    last_changed_at = :now
WHERE booking_id = :booking_id AND position = :position
  AND (raw_json IS NOT :raw_json);

-- name: prune
-- Positions beyond the parent's current item count.
DELETE FROM information_request_answers WHERE booking_id = :parent_id AND position >= :count;

-- name: count
SELECT COUNT(*) FROM information_request_answers;
