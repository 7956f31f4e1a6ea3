-- understory-sync schema, version 10: the questions an experience asks at booking.
--
-- Fetched per experience (`GET /v1/experiences/{id}/information-requests`) when the experience
-- is new or changed.
CREATE TABLE information_requests (
    id               TEXT PRIMARY KEY,
    experience_id    TEXT NOT NULL REFERENCES experiences(id) ON DELETE CASCADE,
    type             TEXT,
    required         INTEGER,
    scope            TEXT,
    question         TEXT,
    raw_json         TEXT NOT NULL,
    first_synced_at  TEXT NOT NULL,
    last_changed_at  TEXT NOT NULL
);
CREATE INDEX information_requests_experience_id ON information_requests (experience_id);
