-- understory-sync schema, version 1.
-- Conventions: timestamps are ISO-8601 UTC text ("2026-01-01T10:00:00.000Z"); money is three
-- columns, <name>_minor (integer, smallest unit), <name>_currency (ISO 4217), <name>_exponent
-- (decimal places); raw_json is the item exactly as the API sent it; first_synced_at and
-- last_changed_at are when this job first stored the row and last changed its content.

CREATE TABLE bookings (
    id                     TEXT PRIMARY KEY,
    status                 TEXT NOT NULL,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    company_id             TEXT NOT NULL,
    experience_id          TEXT NOT NULL,
    event_id               TEXT NOT NULL,
    locale                 TEXT NOT NULL,
    source                 TEXT,
    internal_note          TEXT,
    customer_type          TEXT NOT NULL,
    customer_name          TEXT,
    customer_company_name  TEXT,
    customer_vat_number    TEXT,
    customer_email         TEXT,
    customer_phone         TEXT,
    customer_address_line1 TEXT,
    customer_address_line2 TEXT,
    customer_city          TEXT,
    customer_zip_code      TEXT,
    customer_region        TEXT,
    customer_country       TEXT,
    metadata_json          TEXT,
    raw_json               TEXT NOT NULL,
    first_synced_at        TEXT NOT NULL,
    last_changed_at        TEXT NOT NULL
);

CREATE TABLE orders (
    id                     TEXT PRIMARY KEY,
    number                 TEXT NOT NULL,
    status                 TEXT NOT NULL,
    payment_status         TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    customer_type          TEXT NOT NULL,
    customer_name          TEXT,
    customer_company_name  TEXT,
    customer_vat_number    TEXT,
    customer_email         TEXT,
    customer_phone         TEXT,
    customer_address_line1 TEXT,
    customer_address_line2 TEXT,
    customer_city          TEXT,
    customer_zip_code      TEXT,
    customer_region        TEXT,
    customer_country       TEXT,
    origin_type            TEXT NOT NULL,
    origin_id              TEXT NOT NULL,
    discount_minor         INTEGER NOT NULL,
    discount_currency      TEXT NOT NULL,
    discount_exponent      INTEGER NOT NULL,
    vat_amount_minor       INTEGER NOT NULL,
    vat_amount_currency    TEXT NOT NULL,
    vat_amount_exponent    INTEGER NOT NULL,
    amount_minor           INTEGER NOT NULL,
    amount_currency        TEXT NOT NULL,
    amount_exponent        INTEGER NOT NULL,
    metadata_json          TEXT,
    raw_json               TEXT NOT NULL,
    first_synced_at        TEXT NOT NULL,
    last_changed_at        TEXT NOT NULL
);

-- Line items have no id in the API: they are identified by their order and position.
CREATE TABLE order_line_items (
    order_id                 TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    position                 INTEGER NOT NULL,
    quantity                 INTEGER NOT NULL,
    unit_price_minor         INTEGER NOT NULL,
    unit_price_currency      TEXT NOT NULL,
    unit_price_exponent      INTEGER NOT NULL,
    unit_vat_amount_minor    INTEGER NOT NULL,
    unit_vat_amount_currency TEXT NOT NULL,
    unit_vat_amount_exponent INTEGER NOT NULL,
    product_type             TEXT NOT NULL,
    product_id               TEXT NOT NULL,
    details_type             TEXT,
    experience_id            TEXT,
    ticket_id                TEXT,
    gift_card_id             TEXT,
    discount_minor           INTEGER,
    discount_currency        TEXT,
    discount_exponent        INTEGER,
    discount_code            TEXT,
    raw_json                 TEXT NOT NULL,
    first_synced_at          TEXT NOT NULL,
    last_changed_at          TEXT NOT NULL,
    PRIMARY KEY (order_id, position)
);

CREATE TABLE order_transactions (
    id               TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    provider         TEXT NOT NULL,
    amount_minor     INTEGER NOT NULL,
    amount_currency  TEXT NOT NULL,
    amount_exponent  INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    details_type     TEXT,
    gift_card_id     TEXT,
    raw_json         TEXT NOT NULL,
    first_synced_at  TEXT NOT NULL,
    last_changed_at  TEXT NOT NULL
);

CREATE TABLE order_refunds (
    id               TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    amount_minor     INTEGER NOT NULL,
    amount_currency  TEXT NOT NULL,
    amount_exponent  INTEGER NOT NULL,
    transaction_id   TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    raw_json         TEXT NOT NULL,
    first_synced_at  TEXT NOT NULL,
    last_changed_at  TEXT NOT NULL
);

-- consent_key is "id:<id>", or "legacy:<company_id>␟<email>␟<source>" for consents without id.
-- removed_at is set when a complete scan no longer lists the consent, cleared if it returns.
CREATE TABLE marketing_consents (
    consent_key      TEXT PRIMARY KEY,
    id               TEXT UNIQUE,
    company_id       TEXT NOT NULL,
    full_name        TEXT NOT NULL,
    email            TEXT NOT NULL,
    source           TEXT NOT NULL,
    references_json  TEXT,
    removed_at       TEXT,
    raw_json         TEXT NOT NULL,
    first_synced_at  TEXT NOT NULL,
    last_changed_at  TEXT NOT NULL
);

-- Session times are local wall-clock times (no offset) in `timezone`.
CREATE TABLE events (
    id                   TEXT PRIMARY KEY,
    state                TEXT NOT NULL,
    visibility           TEXT NOT NULL,
    experience_id        TEXT NOT NULL,
    capacity_total       INTEGER NOT NULL,
    capacity_reserved    INTEGER NOT NULL,
    session_count        INTEGER NOT NULL,
    first_session_start  TEXT,
    first_session_end    TEXT,
    timezone             TEXT,
    location_id          TEXT,
    sessions_json        TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    metadata_json        TEXT,
    removed_at           TEXT,
    raw_json             TEXT NOT NULL,
    first_synced_at      TEXT NOT NULL,
    last_changed_at      TEXT NOT NULL
);

CREATE TABLE experiences (
    id               TEXT PRIMARY KEY,
    type             TEXT NOT NULL,
    state            TEXT NOT NULL,
    name             TEXT NOT NULL,
    description      TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    tag_ids_json     TEXT,
    media_json       TEXT,
    metadata_json    TEXT,
    removed_at       TEXT,
    raw_json         TEXT NOT NULL,
    first_synced_at  TEXT NOT NULL,
    last_changed_at  TEXT NOT NULL
);

-- One row per stream. A pass is one walk of a stream's list; its fields are set while a pass
-- is under way and cleared when it completes, in the same transaction as its last page.
CREATE TABLE sync_state (
    stream             TEXT PRIMARY KEY,
    high_water_mark    TEXT,      -- newest updated_at a completed pass is known to cover
    cursor             TEXT,      -- the API's next cursor, only to resume a crashed pass
    cursor_saved_at    TEXT,      -- when `cursor` was received; stale cursors are not used
    pass_kind          TEXT,      -- bootstrap | incremental | scan
    pass_started_at    TEXT,
    pass_candidate     TEXT,      -- high_water_mark to adopt when this pass completes
    pass_from          TEXT,      -- the `from` filter of the current walk (bootstrap)
    pass_progress      TEXT,      -- newest created_at committed by this pass (bootstrap)
    pass_pages         INTEGER NOT NULL DEFAULT 0,
    pass_rows          INTEGER NOT NULL DEFAULT 0,
    last_completed_at  TEXT,
    updated_at         TEXT NOT NULL
);

CREATE TABLE sync_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at      TEXT NOT NULL,
    ended_at        TEXT,
    status          TEXT NOT NULL, -- running | succeeded | partial | failed | interrupted | abandoned
    rows_inserted   INTEGER NOT NULL DEFAULT 0,
    rows_updated    INTEGER NOT NULL DEFAULT 0,
    rows_unchanged  INTEGER NOT NULL DEFAULT 0,
    requests        INTEGER NOT NULL DEFAULT 0,
    retries         INTEGER NOT NULL DEFAULT 0,
    rate_limited    INTEGER NOT NULL DEFAULT 0,
    streams_json    TEXT,          -- per stream: inserted, updated, unchanged, pages, requests, …
    error           TEXT
);
