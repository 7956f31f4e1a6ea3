-- understory-sync schema, version 12: views over tickets, check-ins and ticket variants.

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
    t.check_in_time IS NOT NULL AS checked_in,
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
    l.unit_price_minor * 1.0 / (CASE l.unit_price_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS unit_price,
    (l.quantity * l.unit_price_minor - l.quantity * COALESCE(l.discount_minor, 0)) * 1.0
        / (CASE l.unit_price_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS line_total
FROM order_line_items l
LEFT JOIN ticket_variant_names v ON v.variant_id = l.product_id
LEFT JOIN experiences x ON x.id = l.experience_id;
