-- Statements for `booking_tickets`; loaded by store::statements, one per "-- name:" section.

-- name: upsert
-- Returns 1 for an insert, 0 for an update, nothing for an unchanged row.
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
ON CONFLICT (id) DO UPDATE SET
    booking_id = excluded.booking_id,
    status = excluded.status,
    ticket_variant_id = excluded.ticket_variant_id,
    check_in_time = excluded.check_in_time,
    checked_in_by = excluded.checked_in_by,
    check_in_method = excluded.check_in_method,
    items_json = excluded.items_json,
    urls_json = excluded.urls_json,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at
-- An identical live row is left as it is: no write, and no row returned (unchanged).
WHERE booking_tickets.raw_json IS NOT excluded.raw_json
RETURNING first_synced_at = last_changed_at;

-- name: prune
-- Items the parent no longer lists; :ids is a JSON array.
DELETE FROM booking_tickets
WHERE booking_id = :parent_id AND id NOT IN (SELECT value FROM json_each(:ids));

-- name: count
SELECT COUNT(*) FROM booking_tickets;
