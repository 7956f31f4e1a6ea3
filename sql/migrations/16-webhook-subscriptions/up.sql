-- understory-sync schema, version 16: webhook subscriptions, read-only.
--
-- Scanned whole each run (`GET /v1/webhook-subscriptions` takes no filter); a subscription the
-- list no longer has is marked `removed_at` once `GET …/{id}` answers 404.
CREATE TABLE webhook_subscriptions (
    id                TEXT PRIMARY KEY,
    url               TEXT,
    state             TEXT,
    event_types_json  TEXT,
    description       TEXT,
    created_at        TEXT,
    updated_at        TEXT,
    metadata_json     TEXT,
    removed_at        TEXT,
    raw_json          TEXT NOT NULL,
    first_synced_at   TEXT NOT NULL,
    last_changed_at   TEXT NOT NULL
);
