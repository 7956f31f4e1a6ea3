-- understory-sync schema, version 21: the webhook receiver's inbox and its counters.
--
-- The receiver commits each verified delivery here before it answers 2xx, so a kill right after
-- the answer loses nothing; `webhook_id` is unique, so a delivery sent again (a retry, a
-- duplicate) is one row. The applier takes rows in `seq` order, fetches the item the event names
-- and stores it through the listing sync's own path; `applied_at` marks a row done.
CREATE TABLE webhook_inbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       TEXT NOT NULL UNIQUE,   -- the `webhook-id` header: the same on every retry
    event_type       TEXT NOT NULL,          -- e.g. v1.booking.updated
    stream           TEXT,                   -- the stream the event's item belongs to; NULL: a type no enabled stream has
    item_id          TEXT,                   -- the item's id from the payload; NULL: none
    event_timestamp  TEXT,                   -- the envelope's `timestamp`, as sent
    received_at      TEXT NOT NULL,          -- committed by the receiver (UTC)
    applied_at       TEXT,                   -- NULL: waiting for the applier
    outcome          TEXT,                   -- stored, unchanged, removed, gone, stale, quarantined, ignored
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    body             TEXT NOT NULL           -- the delivery as received (thin events: ids, no personal data)
);
CREATE INDEX webhook_inbox_waiting ON webhook_inbox (seq) WHERE applied_at IS NULL;
CREATE INDEX webhook_inbox_item ON webhook_inbox (stream, item_id);

-- One row: the receiver's life and the counters that are not rows of the inbox.
CREATE TABLE webhook_state (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    receiving_since     TEXT,      -- when the running receiver started; NULL: never ran
    stopped_at          TEXT,      -- when it last stopped cleanly; NULL: running (or killed)
    duplicates          INTEGER NOT NULL DEFAULT 0,  -- deliveries of a webhook-id already in the inbox
    refused             INTEGER NOT NULL DEFAULT 0,  -- deliveries answered 4xx (signature, timestamp, body)
    last_applied_at     TEXT,
    last_lag_ms         INTEGER    -- from the event's timestamp to its item committed, for the last one applied
);

ALTER TABLE sync_runs ADD COLUMN webhook_missed INTEGER; -- rows this listing sync had to insert or change that a webhook should have brought; NULL: no receiver
