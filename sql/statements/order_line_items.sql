-- Statements for `order_line_items`; loaded by store::statements, one per "-- name:" section.

-- name: upsert
-- Returns 1 for an insert, 0 for an update, nothing for an unchanged row.
INSERT INTO order_line_items (
    order_id,
    position,
    quantity,
    unit_price_minor,
    unit_price_currency,
    unit_price_exponent,
    unit_vat_amount_minor,
    unit_vat_amount_currency,
    unit_vat_amount_exponent,
    product_type,
    product_id,
    details_type,
    experience_id,
    ticket_id,
    gift_card_id,
    discount_minor,
    discount_currency,
    discount_exponent,
    discount_code,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :order_id,
    :position,
    :quantity,
    :unit_price_minor,
    :unit_price_currency,
    :unit_price_exponent,
    :unit_vat_amount_minor,
    :unit_vat_amount_currency,
    :unit_vat_amount_exponent,
    :product_type,
    :product_id,
    :details_type,
    :experience_id,
    :ticket_id,
    :gift_card_id,
    :discount_minor,
    :discount_currency,
    :discount_exponent,
    :discount_code,
    :raw_json,
    :now,
    :now
)
ON CONFLICT (order_id, position) DO UPDATE SET
    quantity = excluded.quantity,
    unit_price_minor = excluded.unit_price_minor,
    unit_price_currency = excluded.unit_price_currency,
    unit_price_exponent = excluded.unit_price_exponent,
    unit_vat_amount_minor = excluded.unit_vat_amount_minor,
    unit_vat_amount_currency = excluded.unit_vat_amount_currency,
    unit_vat_amount_exponent = excluded.unit_vat_amount_exponent,
    product_type = excluded.product_type,
    product_id = excluded.product_id,
    details_type = excluded.details_type,
    experience_id = excluded.experience_id,
    ticket_id = excluded.ticket_id,
    gift_card_id = excluded.gift_card_id,
    discount_minor = excluded.discount_minor,
    discount_currency = excluded.discount_currency,
    discount_exponent = excluded.discount_exponent,
    discount_code = excluded.discount_code,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at
-- An identical live row is left as it is: no write, and no row returned (unchanged).
WHERE order_line_items.raw_json IS NOT excluded.raw_json
RETURNING first_synced_at = last_changed_at;

-- name: prune
-- Positions beyond the order's current item count.
DELETE FROM order_line_items WHERE order_id = :parent_id AND position >= :count;

-- name: count
SELECT COUNT(*) FROM order_line_items;
