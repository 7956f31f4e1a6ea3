-- Statements for `order_line_items`; loaded by store::statements, one per "-- name:" section.

-- name: insert
-- A new row; one already stored is left to `update`.
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
ON CONFLICT (order_id, position) DO NOTHING;

-- name: update
-- A stored row whose content changed (or that was removed and is listed again); an identical
-- live row is not written at all.
UPDATE order_line_items SET
    quantity = :quantity,
    unit_price_minor = :unit_price_minor,
    unit_price_currency = :unit_price_currency,
    unit_price_exponent = :unit_price_exponent,
    unit_vat_amount_minor = :unit_vat_amount_minor,
    unit_vat_amount_currency = :unit_vat_amount_currency,
    unit_vat_amount_exponent = :unit_vat_amount_exponent,
    product_type = :product_type,
    product_id = :product_id,
    details_type = :details_type,
    experience_id = :experience_id,
    ticket_id = :ticket_id,
    gift_card_id = :gift_card_id,
    discount_minor = :discount_minor,
    discount_currency = :discount_currency,
    discount_exponent = :discount_exponent,
    discount_code = :discount_code,
    raw_json = :raw_json,
    last_changed_at = :now
WHERE order_id = :order_id AND position = :position
  AND (raw_json IS NOT :raw_json);

-- name: prune
-- Positions beyond the order's current item count.
DELETE FROM order_line_items WHERE order_id = :parent_id AND position >= :count;

-- name: count
SELECT COUNT(*) FROM order_line_items;
