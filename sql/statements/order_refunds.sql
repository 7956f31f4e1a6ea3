-- Statements for `order_refunds`; loaded by store::statements, one per "-- name:" section.

-- name: insert
-- A new row; one already stored is left to `update`.
INSERT INTO order_refunds (
    id,
    order_id,
    status,
    amount_minor,
    amount_currency,
    amount_exponent,
    transaction_id,
    created_at,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :id,
    :order_id,
    :status,
    :amount_minor,
    :amount_currency,
    :amount_exponent,
    :transaction_id,
    :created_at,
    :raw_json,
    :now,
    :now
)
ON CONFLICT (id) DO NOTHING;

-- name: update
-- A stored row whose content changed (or that was removed and is listed again); an identical
-- live row is not written at all.
UPDATE order_refunds SET
    order_id = :order_id,
    status = :status,
    amount_minor = :amount_minor,
    amount_currency = :amount_currency,
    amount_exponent = :amount_exponent,
    transaction_id = :transaction_id,
    created_at = :created_at,
    raw_json = :raw_json,
    last_changed_at = :now
WHERE id = :id
  AND (raw_json IS NOT :raw_json);

-- name: prune
-- Items the order no longer lists; :ids is a JSON array.
DELETE FROM order_refunds WHERE order_id = :parent_id AND id NOT IN (SELECT value FROM json_each(:ids));

-- name: count
SELECT COUNT(*) FROM order_refunds;
