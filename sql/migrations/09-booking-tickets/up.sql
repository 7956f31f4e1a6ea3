-- understory-sync schema, version 9: booking tickets, with their check-ins.
--
-- Fetched per booking (`GET /v1/bookings/{id}/tickets`) when the booking is new or changed.
CREATE TABLE booking_tickets (
    id                 TEXT PRIMARY KEY,
    booking_id         TEXT NOT NULL REFERENCES bookings(id) ON DELETE CASCADE,
    status             TEXT,
    ticket_variant_id  TEXT,
    check_in_time      TEXT,
    checked_in_by      TEXT,
    check_in_method    TEXT,
    items_json         TEXT,
    urls_json          TEXT,
    raw_json           TEXT NOT NULL,
    first_synced_at    TEXT NOT NULL,
    last_changed_at    TEXT NOT NULL
);
CREATE INDEX booking_tickets_booking_id ON booking_tickets (booking_id);
CREATE INDEX booking_tickets_ticket_variant_id ON booking_tickets (ticket_variant_id);
