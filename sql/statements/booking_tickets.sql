-- Statements for `booking_tickets`; loaded by store::statements, one per "-- name:" section.

-- name: insert
-- A new row; one already stored is left to `update`.
INSERT INTO booking_tickets (
    id,
    booking_id,
    status,
    ticket_variant_id,
    check_in_time,
    checked_in_by,
    check_in_method,
    items_json,
    urls_json,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :id,
    :booking_id,
    :status,
    :ticket_variant_id,
    :check_in_time,
    :checked_in_by,
    :check_in_method,
    :items_json,
    :urls_json,
    :raw_json,
    :now,
    :now
)
ON CONFLICT (id) DO NOTHING;

-- name: update
-- A stored row whose content changed (or that was removed and is listed again); an identical
-- live row is not written at all.
UPDATE booking_tickets SET
    booking_id = :booking_id,
    status = :status,
    ticket_variant_id = :ticket_variant_id,
    check_in_time = :check_in_time,
    checked_in_by = :checked_in_by,
    check_in_method = :check_in_method,
    items_json = :items_json,
    urls_json = :urls_json,
    raw_json = :raw_json,
    last_changed_at = :now
WHERE id = :id
  AND (raw_json IS NOT :raw_json);

-- name: prune
-- Items the parent no longer lists; :ids is a JSON array.
DELETE FROM booking_tickets
WHERE booking_id = :parent_id AND id NOT IN (SELECT value FROM json_each(:ids));

-- name: count
SELECT COUNT(*) FROM booking_tickets;
