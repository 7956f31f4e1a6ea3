-- understory-sync schema, version 22: the analyst views again, with the same columns and values,
-- in SQL that DuckDB binds too and with a type on every computed column.
--
-- Why: analysts also open this file with DuckDB (docs/analysts.md), which binds each view's
-- SQL again in its own dialect, and gives a view's columns the types it binds them with.
-- The add-ons' fields come out of JSON, and the one spelling both SQLite and DuckDB read as plain
-- SQL values, `->>`, is one no SQLite before 3.38 (2022) can parse: it would leave the whole file
-- unreadable to the sqlite3 of Ubuntu 22.04 or RHEL 9. So they have a view of their own,
-- `ticket_variant_add_ons`, which DuckDB runs in SQLite (its columns text to DuckDB), and
-- `ticket_variant_names` CASTs what it takes from it.
--
-- Each computed column (`x * 1.0 / 100`, `COUNT(*)`, `substr(…)`, a literal) is a CAST: SQLite
-- reports a CAST's type as the view column's type (`PRAGMA table_info`, from SQLite 3.41 on),
-- where a tool that asks SQLite for column types saw none; and DuckDB takes the CAST's type when
-- it binds the view, so a Parquet export holds BIGINT and DOUBLE rather than HUGEINT or
-- BOOLEAN. DOUBLE for decimals (DuckDB's REAL is a 32-bit float), BIGINT for counts and minor
-- units (DuckDB's INTEGER is 32 bits), TEXT for text; `checked_in` is a BIGINT 0 or 1, as
-- docs/schema.md says, not DuckDB's BOOLEAN.
--
-- bookings_enriched and marketing_consents_active only pass their tables' typed columns through
-- and stay as they are. Decimal amounts are minor / 10^exponent, spelled as a CASE because
-- SQLite's pow() is optional.

DROP VIEW orders_with_totals;
DROP VIEW line_items_with_order;
DROP VIEW daily_revenue;
DROP VIEW revenue_by_experience;
DROP VIEW line_items_named;
DROP VIEW tickets_with_check_in;
DROP VIEW ticket_variant_names;

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
    CAST(o.amount_minor * 1.0 / (CASE o.amount_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS amount,
    o.vat_amount_minor,
    CAST(o.vat_amount_minor * 1.0 / (CASE o.vat_amount_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS vat_amount,
    o.discount_minor,
    CAST(o.discount_minor * 1.0 / (CASE o.discount_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS discount,
    CAST((SELECT COALESCE(SUM(r.amount_minor), 0) FROM order_refunds r
      WHERE r.order_id = o.id AND r.status = 'COMPLETED') AS BIGINT) AS refunded_minor,
    CAST((SELECT COALESCE(SUM(r.amount_minor), 0) FROM order_refunds r
      WHERE r.order_id = o.id AND r.status = 'COMPLETED') * 1.0
        / (CASE o.amount_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS refunded
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
    CAST(l.unit_price_minor * 1.0 / (CASE l.unit_price_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS unit_price,
    CAST(l.quantity * l.unit_price_minor - l.quantity * COALESCE(l.discount_minor, 0) AS BIGINT) AS line_total_minor,
    CAST((l.quantity * l.unit_price_minor - l.quantity * COALESCE(l.discount_minor, 0)) * 1.0
        / (CASE l.unit_price_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS line_total
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
    CAST(d.day AS TEXT) AS day,
    d.currency,
    CAST(COALESCE(p.orders, 0) AS BIGINT) AS paid_orders,
    CAST(COALESCE(p.revenue_minor, 0) * 1.0 / (CASE COALESCE(p.exponent, r.exponent) WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS revenue,
    CAST(COALESCE(r.refunds, 0) AS BIGINT) AS refunds,
    CAST(COALESCE(r.refunds_minor, 0) * 1.0 / (CASE COALESCE(r.exponent, p.exponent) WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS refunded,
    CAST((COALESCE(p.revenue_minor, 0) - COALESCE(r.refunds_minor, 0)) * 1.0
        / (CASE COALESCE(p.exponent, r.exponent) WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS net
FROM days d
LEFT JOIN paid p ON p.day = d.day AND p.currency = d.currency
LEFT JOIN refunded r ON r.day = d.day AND r.currency = d.currency;

-- Ticket revenue per experience and currency, from the line items of paid orders.
CREATE VIEW revenue_by_experience AS
SELECT
    l.experience_id,
    x.name AS experience_name,
    l.unit_price_currency AS currency,
    CAST(COUNT(DISTINCT l.order_id) AS BIGINT) AS orders,
    CAST(SUM(l.quantity) AS BIGINT) AS tickets,
    CAST(SUM(l.quantity * (l.unit_price_minor - COALESCE(l.discount_minor, 0))) * 1.0
        / (CASE MAX(l.unit_price_exponent) WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS revenue
FROM order_line_items l
JOIN orders o ON o.id = l.order_id
LEFT JOIN experiences x ON x.id = l.experience_id
WHERE l.product_type IN ('TICKET', 'TICKET_ADDON')
  AND o.payment_status IN ('PAID', 'PARTIALLY_REFUNDED', 'REFUNDED')
GROUP BY l.experience_id, x.name, l.unit_price_currency;

-- The add-ons of each ticket variant, out of its `add_on_variants_json`. DuckDB cannot bind
-- json_extract's JSON in arithmetic (the price), so it runs this view in SQLite and reads its
-- columns as text; the view below CASTs them, which both read alike.
CREATE VIEW ticket_variant_add_ons AS
SELECT CAST(json_extract(a.value, '$.id') AS TEXT) AS variant_id, v.experience_id,
       CAST(json_extract(a.value, '$.name') AS TEXT) AS name,
       CAST(json_extract(a.value, '$.price.value') * 1.0
         / (CASE json_extract(a.value, '$.price.exponent') WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS price,
       CAST(json_extract(a.value, '$.price.currency') AS TEXT) AS currency
FROM ticket_variants v, json_each(v.add_on_variants_json) a
WHERE json_extract(a.value, '$.id') IS NOT NULL;

-- Every sellable variant, main and add-on, by id: what a line item's `product_id` names.
CREATE VIEW ticket_variant_names AS
SELECT v.id AS variant_id, v.experience_id, CAST('VARIANT' AS TEXT) AS kind, v.name,
       CAST(v.price_minor * 1.0 / (CASE v.price_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS price,
       v.price_currency AS currency
FROM ticket_variants v
UNION
SELECT CAST(variant_id AS TEXT), experience_id, CAST('ADD_ON' AS TEXT), CAST(name AS TEXT),
       CAST(price AS DOUBLE), CAST(currency AS TEXT)
FROM ticket_variant_add_ons;

-- One row per ticket: its booking, the event's start, the experience, the ticket variant's
-- name, and whether (and when, by whom, how) it was checked in. Event, experience and variant
-- columns are NULL unless the events, experiences and ticket_variants streams are on.
CREATE VIEW tickets_with_check_in AS
SELECT
    t.id                   AS ticket_id,
    t.booking_id,
    b.status               AS booking_status,
    b.created_at           AS booked_at,
    b.event_id,
    e.first_session_start  AS event_start_local,
    e.timezone             AS event_timezone,
    e.state                AS event_state,
    b.experience_id,
    x.name                 AS experience_name,
    t.ticket_variant_id,
    v.name                 AS ticket_variant_name,
    t.status               AS ticket_status,
    CAST(t.check_in_time IS NOT NULL AS BIGINT) AS checked_in,
    t.check_in_time,
    t.checked_in_by,
    t.check_in_method
FROM booking_tickets t
JOIN bookings b ON b.id = t.booking_id
LEFT JOIN events e ON e.id = b.event_id
LEFT JOIN experiences x ON x.id = b.experience_id
LEFT JOIN ticket_variant_names v ON v.variant_id = t.ticket_variant_id;

-- Line items with the name of the ticket variant or add-on they sold (NULL for gift cards, and
-- unless the ticket_variants stream is on), and their amounts as decimals.
CREATE VIEW line_items_named AS
SELECT
    l.order_id,
    l.position,
    l.product_type,
    l.product_id,
    v.kind AS variant_kind,
    v.name AS ticket_variant_name,
    l.experience_id,
    x.name AS experience_name,
    l.quantity,
    l.unit_price_currency AS currency,
    CAST(l.unit_price_minor * 1.0 / (CASE l.unit_price_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS unit_price,
    CAST((l.quantity * l.unit_price_minor - l.quantity * COALESCE(l.discount_minor, 0)) * 1.0
        / (CASE l.unit_price_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS DOUBLE) AS line_total
FROM order_line_items l
LEFT JOIN ticket_variant_names v ON v.variant_id = l.product_id
LEFT JOIN experiences x ON x.id = l.experience_id;
