-- Statements for summaries printed by `demo` and `status`.

-- name: counts
-- Rows per data table; consents, events and experiences count live rows only.
SELECT 'bookings', COUNT(*) FROM bookings
UNION ALL SELECT 'orders', COUNT(*) FROM orders
UNION ALL SELECT 'order_line_items', COUNT(*) FROM order_line_items
UNION ALL SELECT 'order_transactions', COUNT(*) FROM order_transactions
UNION ALL SELECT 'order_refunds', COUNT(*) FROM order_refunds
UNION ALL SELECT 'marketing_consents', COUNT(*) FROM marketing_consents WHERE removed_at IS NULL
UNION ALL SELECT 'events', COUNT(*) FROM events WHERE removed_at IS NULL
UNION ALL SELECT 'experiences', COUNT(*) FROM experiences WHERE removed_at IS NULL;
