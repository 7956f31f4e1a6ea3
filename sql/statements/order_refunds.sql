-- Statements for `order_refunds`; loaded by store::statements, one per "-- name:" section.

-- name: lookup
-- The stored raw_json and whether the row is live, to tell inserts, updates and
-- unchanged rows apart before writing anything.
SELECT raw_json, 1 FROM order_refunds WHERE id = :id;

-- name: upsert
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
    last_changed_at = excluded.last_changed_at;

-- name: prune
-- Items the order no longer lists; :ids is a JSON array.
DELETE FROM order_refunds WHERE order_id = :parent_id AND id NOT IN (SELECT value FROM json_each(:ids));

-- name: count
SELECT COUNT(*) FROM order_refunds;
