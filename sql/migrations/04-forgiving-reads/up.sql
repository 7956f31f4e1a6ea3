-- understory-sync schema, version 4: forgiving reads.
--
-- The API's docs mark nothing nullable and settle few nested shapes, so a column is NOT NULL only
-- where a row cannot exist without it: its key, the timestamps an incremental stream walks by,
-- and what this job itself writes. Everything else is NULL when the API leaves it out or sends
-- a shape the job does not recognise; `raw_json` always holds the item as sent.
--
-- SQLite cannot drop a NOT NULL constraint, so each data table is rebuilt with the procedure of
-- https://www.sqlite.org/lang_altertable.html#otheralter (the store runs migrations with foreign
-- keys off, so dropping `orders` cascades nowhere). Views and indexes are dropped with their
-- tables and created again as version 2 defined them.

DROP VIEW bookings_enriched;
DROP VIEW orders_with_totals;
DROP VIEW line_items_with_order;
DROP VIEW daily_revenue;
DROP VIEW revenue_by_experience;
DROP VIEW marketing_consents_active;

CREATE TABLE bookings_new (
    id                     TEXT PRIMARY KEY,
    status                 TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    company_id             TEXT,
    experience_id          TEXT,
    event_id               TEXT,
    locale                 TEXT,
    source                 TEXT,
    internal_note          TEXT,
    customer_type          TEXT,
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
INSERT INTO bookings_new SELECT * FROM bookings;
DROP TABLE bookings;
ALTER TABLE bookings_new RENAME TO bookings;

CREATE TABLE orders_new (
    id                     TEXT PRIMARY KEY,
    number                 TEXT,
    status                 TEXT,
    payment_status         TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    customer_type          TEXT,
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
    origin_type            TEXT,
    origin_id              TEXT,
    discount_minor         INTEGER,
    discount_currency      TEXT,
    discount_exponent      INTEGER,
    vat_amount_minor       INTEGER,
    vat_amount_currency    TEXT,
    vat_amount_exponent    INTEGER,
    amount_minor           INTEGER,
    amount_currency        TEXT,
    amount_exponent        INTEGER,
    metadata_json          TEXT,
    raw_json               TEXT NOT NULL,
    first_synced_at        TEXT NOT NULL,
    last_changed_at        TEXT NOT NULL
);
INSERT INTO orders_new SELECT * FROM orders;
DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;

CREATE TABLE order_line_items_new (
    order_id                 TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    position                 INTEGER NOT NULL,
    quantity                 INTEGER,
    unit_price_minor         INTEGER,
    unit_price_currency      TEXT,
    unit_price_exponent      INTEGER,
    unit_vat_amount_minor    INTEGER,
    unit_vat_amount_currency TEXT,
    unit_vat_amount_exponent INTEGER,
    product_type             TEXT,
    product_id               TEXT,
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
INSERT INTO order_line_items_new SELECT * FROM order_line_items;
DROP TABLE order_line_items;
ALTER TABLE order_line_items_new RENAME TO order_line_items;

CREATE TABLE order_transactions_new (
    id               TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    status           TEXT,
    provider         TEXT,
    amount_minor     INTEGER,
    amount_currency  TEXT,
    amount_exponent  INTEGER,
    created_at       TEXT,
    details_type     TEXT,
    gift_card_id     TEXT,
    raw_json         TEXT NOT NULL,
    first_synced_at  TEXT NOT NULL,
    last_changed_at  TEXT NOT NULL
);
INSERT INTO order_transactions_new SELECT * FROM order_transactions;
DROP TABLE order_transactions;
ALTER TABLE order_transactions_new RENAME TO order_transactions;

CREATE TABLE order_refunds_new (
    id               TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    status           TEXT,
    amount_minor     INTEGER,
    amount_currency  TEXT,
    amount_exponent  INTEGER,
    transaction_id   TEXT,
    created_at       TEXT,
    raw_json         TEXT NOT NULL,
    first_synced_at  TEXT NOT NULL,
    last_changed_at  TEXT NOT NULL
);
INSERT INTO order_refunds_new SELECT * FROM order_refunds;
DROP TABLE order_refunds;
ALTER TABLE order_refunds_new RENAME TO order_refunds;

CREATE TABLE marketing_consents_new (
    consent_key      TEXT PRIMARY KEY,
    id               TEXT UNIQUE,
    company_id       TEXT,
    full_name        TEXT,
    email            TEXT,
    source           TEXT,
    references_json  TEXT,
    removed_at       TEXT,
    raw_json         TEXT NOT NULL,
    first_synced_at  TEXT NOT NULL,
    last_changed_at  TEXT NOT NULL
);
INSERT INTO marketing_consents_new SELECT * FROM marketing_consents;
DROP TABLE marketing_consents;
ALTER TABLE marketing_consents_new RENAME TO marketing_consents;

CREATE TABLE events_new (
    id                   TEXT PRIMARY KEY,
    state                TEXT,
    visibility           TEXT,
    experience_id        TEXT,
    capacity_total       INTEGER,
    capacity_reserved    INTEGER,
    session_count        INTEGER,
    first_session_start  TEXT,
    first_session_end    TEXT,
    timezone             TEXT,
    location_id          TEXT,
    sessions_json        TEXT,
    created_at           TEXT,
    updated_at           TEXT,
    metadata_json        TEXT,
    removed_at           TEXT,
    raw_json             TEXT NOT NULL,
    first_synced_at      TEXT NOT NULL,
    last_changed_at      TEXT NOT NULL
);
INSERT INTO events_new SELECT * FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;

CREATE TABLE experiences_new (
    id               TEXT PRIMARY KEY,
    type             TEXT,
    state            TEXT,
    name             TEXT,
    description      TEXT,
    created_at       TEXT,
    updated_at       TEXT,
    tag_ids_json     TEXT,
    media_json       TEXT,
    metadata_json    TEXT,
    removed_at       TEXT,
    raw_json         TEXT NOT NULL,
    first_synced_at  TEXT NOT NULL,
    last_changed_at  TEXT NOT NULL
);
INSERT INTO experiences_new SELECT * FROM experiences;
DROP TABLE experiences;
ALTER TABLE experiences_new RENAME TO experiences;

-- Version 2's indexes and views, as they were.
CREATE INDEX bookings_created_at ON bookings (created_at);
CREATE INDEX bookings_updated_at ON bookings (updated_at);
CREATE INDEX bookings_status ON bookings (status);
CREATE INDEX bookings_event_id ON bookings (event_id);
CREATE INDEX bookings_experience_id ON bookings (experience_id);
CREATE INDEX orders_created_at ON orders (created_at);
CREATE INDEX orders_updated_at ON orders (updated_at);
CREATE INDEX orders_status ON orders (status, payment_status);
CREATE INDEX orders_origin ON orders (origin_type, origin_id);
CREATE INDEX order_line_items_experience_id ON order_line_items (experience_id);
CREATE INDEX order_transactions_order_id ON order_transactions (order_id);
CREATE INDEX order_refunds_order_id ON order_refunds (order_id);
CREATE INDEX order_refunds_created_at ON order_refunds (created_at);
CREATE INDEX marketing_consents_email ON marketing_consents (email);
CREATE INDEX events_experience_id ON events (experience_id);
CREATE INDEX events_first_session_start ON events (first_session_start);

-- Bookings with their customer, the experience's name and the event's start joined in.
-- Experience and event columns are NULL unless those optional streams are enabled.
CREATE VIEW bookings_enriched AS
SELECT
    b.id                  AS booking_id,
    b.status,
    b.created_at,
    b.updated_at,
    b.locale,
    b.source,
    b.customer_type,
    b.customer_name,
    b.customer_company_name,
    b.customer_email,
    b.customer_phone,
    b.customer_city,
    b.customer_country,
    b.experience_id,
    x.name                AS experience_name,
    b.event_id,
    e.first_session_start AS event_start_local,
    e.timezone            AS event_timezone,
    e.state               AS event_state,
    o.id                  AS order_id,
    o.number              AS order_number
FROM bookings b
LEFT JOIN experiences x ON x.id = b.experience_id
LEFT JOIN events e ON e.id = b.event_id
LEFT JOIN orders o ON o.origin_type = 'BOOKING' AND o.origin_id = b.id;

-- Orders with their totals as decimal amounts beside the minor units.
CREATE VIEW orders_with_totals AS
SELECT
    o.id AS order_id,
    o.number,
    o.status,
    o.payment_status,
    o.created_at,
    o.updated_at,
    o.customer_type,
    o.customer_name,
    o.customer_company_name,
    o.customer_email,
    o.origin_type,
    o.origin_id,
    o.amount_currency AS currency,
    o.amount_minor,
    o.amount_minor * 1.0 / (CASE o.amount_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS amount,
    o.vat_amount_minor,
    o.vat_amount_minor * 1.0 / (CASE o.vat_amount_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS vat_amount,
    o.discount_minor,
    o.discount_minor * 1.0 / (CASE o.discount_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS discount,
    (SELECT COALESCE(SUM(r.amount_minor), 0) FROM order_refunds r
      WHERE r.order_id = o.id AND r.status = 'COMPLETED') AS refunded_minor,
    (SELECT COALESCE(SUM(r.amount_minor), 0) FROM order_refunds r
      WHERE r.order_id = o.id AND r.status = 'COMPLETED') * 1.0
        / (CASE o.amount_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS refunded
FROM orders o;

-- Line items with their order's number, status, date and customer.
CREATE VIEW line_items_with_order AS
SELECT
    l.order_id,
    l.position,
    o.number AS order_number,
    o.status AS order_status,
    o.payment_status,
    o.created_at AS order_created_at,
    o.customer_name,
    o.customer_email,
    l.product_type,
    l.product_id,
    l.experience_id,
    l.quantity,
    l.unit_price_currency AS currency,
    l.unit_price_minor,
    l.unit_price_minor * 1.0 / (CASE l.unit_price_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS unit_price,
    l.quantity * l.unit_price_minor - l.quantity * COALESCE(l.discount_minor, 0) AS line_total_minor,
    (l.quantity * l.unit_price_minor - l.quantity * COALESCE(l.discount_minor, 0)) * 1.0
        / (CASE l.unit_price_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS line_total
FROM order_line_items l
JOIN orders o ON o.id = l.order_id;

-- Revenue and refunds per UTC day and currency. Revenue counts orders that were paid (paid,
-- partially refunded or refunded) on the day they were created; refunds count completed
-- refunds on the day they were made; net = revenue - refunds. Amounts are decimal.
CREATE VIEW daily_revenue AS
WITH paid AS (
    SELECT substr(created_at, 1, 10) AS day, amount_currency AS currency,
           COUNT(*) AS orders, SUM(amount_minor) AS revenue_minor, MAX(amount_exponent) AS exponent
    FROM orders
    WHERE payment_status IN ('PAID', 'PARTIALLY_REFUNDED', 'REFUNDED')
    GROUP BY 1, 2
),
refunded AS (
    SELECT substr(created_at, 1, 10) AS day, amount_currency AS currency,
           COUNT(*) AS refunds, SUM(amount_minor) AS refunds_minor, MAX(amount_exponent) AS exponent
    FROM order_refunds
    WHERE status = 'COMPLETED'
    GROUP BY 1, 2
),
days AS (
    SELECT day, currency FROM paid UNION SELECT day, currency FROM refunded
)
SELECT
    d.day,
    d.currency,
    COALESCE(p.orders, 0) AS paid_orders,
    COALESCE(p.revenue_minor, 0) * 1.0 / (CASE COALESCE(p.exponent, r.exponent) WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS revenue,
    COALESCE(r.refunds, 0) AS refunds,
    COALESCE(r.refunds_minor, 0) * 1.0 / (CASE COALESCE(r.exponent, p.exponent) WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS refunded,
    (COALESCE(p.revenue_minor, 0) - COALESCE(r.refunds_minor, 0)) * 1.0
        / (CASE COALESCE(p.exponent, r.exponent) WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS net
FROM days d
LEFT JOIN paid p ON p.day = d.day AND p.currency = d.currency
LEFT JOIN refunded r ON r.day = d.day AND r.currency = d.currency;

-- Ticket revenue per experience and currency, from the line items of paid orders.
CREATE VIEW revenue_by_experience AS
SELECT
    l.experience_id,
    x.name AS experience_name,
    l.unit_price_currency AS currency,
    COUNT(DISTINCT l.order_id) AS orders,
    SUM(l.quantity) AS tickets,
    SUM(l.quantity * (l.unit_price_minor - COALESCE(l.discount_minor, 0))) * 1.0
        / (CASE MAX(l.unit_price_exponent) WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS revenue
FROM order_line_items l
JOIN orders o ON o.id = l.order_id
LEFT JOIN experiences x ON x.id = l.experience_id
WHERE l.product_type IN ('TICKET', 'TICKET_ADDON')
  AND o.payment_status IN ('PAID', 'PARTIALLY_REFUNDED', 'REFUNDED')
GROUP BY l.experience_id, x.name, l.unit_price_currency;

-- Marketing consents the API still lists (removed ones left out).
CREATE VIEW marketing_consents_active AS
SELECT consent_key, id, company_id, full_name, email, source, references_json, first_synced_at
FROM marketing_consents
WHERE removed_at IS NULL;

-- Items the job could not read (an id or a required timestamp missing, a body that is not an
-- object). The rest of their page is stored; each is tried again every run and leaves this table
-- once it reads.
CREATE TABLE quarantine (
    stream         TEXT NOT NULL,  -- the stream (or sub-resource table) the item belongs to
    item_key       TEXT NOT NULL,  -- its id, or a fingerprint of its JSON when it has none
    item_id        TEXT,           -- its id, when it has one
    parent_id      TEXT,           -- the order of a sub-resource item
    error          TEXT NOT NULL,  -- why it could not be read
    raw_json       TEXT NOT NULL,  -- the item as the API sent it
    first_seen_at  TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    PRIMARY KEY (stream, item_key)
);

ALTER TABLE sync_runs ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
