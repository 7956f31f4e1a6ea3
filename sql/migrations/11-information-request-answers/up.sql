-- understory-sync schema, version 11: what guests answered at booking.
--
-- Fetched per booking (`GET /v1/bookings/{id}/information-request-answers`) when the booking is
-- new or changed. The schema is not published: answers have no id, so they are keyed by their
-- position in the booking's list, and `raw_json` keeps each one whole.
CREATE TABLE information_request_answers (
    booking_id              TEXT NOT NULL REFERENCES bookings(id) ON DELETE CASCADE,
    position                INTEGER NOT NULL,
    information_request_id  TEXT,
    question                TEXT,
    answer                  TEXT,
    ticket_id               TEXT,
    raw_json                TEXT NOT NULL,
    first_synced_at         TEXT NOT NULL,
    last_changed_at         TEXT NOT NULL,
    PRIMARY KEY (booking_id, position)
);
CREATE INDEX information_request_answers_request ON information_request_answers (information_request_id);
