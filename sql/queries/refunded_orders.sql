-- Which orders were refunded, by how much, and was the whole amount returned?
SELECT o.number, o.customer_name, o.currency, o.amount,
       o.refunded,
       o.payment_status,
       (SELECT MAX(r.created_at) FROM order_refunds r WHERE r.order_id = o.order_id) AS last_refund_at
FROM orders_with_totals o
WHERE o.refunded_minor > 0
ORDER BY last_refund_at DESC, o.order_id;
