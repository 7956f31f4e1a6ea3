-- Statements for `order_refunds`; loaded by store::statements, one per "-- name:" section.

-- name: upsert
-- Returns 1 for an insert, 0 for an update, nothing for an unchanged row.
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
ON CONFLICT (id) DO UPDATE SET
    order_id = excluded.order_id,
    status = excluded.status,
    amount_minor = excluded.amount_minor,
    amount_currency = excluded.amount_currency,
    amount_exponent = excluded.amount_exponent,
    transaction_id = excluded.transaction_id,
    created_at = excluded.created_at,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at
-- An identical live row is left as it is: no write, and no row returned (unchanged).
WHERE order_refunds.raw_json IS NOT excluded.raw_json
RETURNING first_synced_at = last_changed_at;

-- name: prune
-- Items the order no longer lists; :ids is a JSON array.
DELETE FROM order_refunds WHERE order_id = :parent_id AND id NOT IN (SELECT value FROM json_each(:ids));

-- name: count
SELECT COUNT(*) FROM order_refunds;
