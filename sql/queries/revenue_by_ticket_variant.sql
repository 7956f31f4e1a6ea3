-- What does each ticket variant and add-on bring in? Revenue of paid orders per variant name.
-- Needs: [streams] ticket_variants = true (off by default; and experiences, on by default); without them it returns no rows.
SELECT COALESCE(n.experience_name, n.experience_id) AS experience,
       n.ticket_variant_name AS variant,
       n.variant_kind AS kind,
       n.currency,
       SUM(n.quantity) AS sold,
       ROUND(SUM(n.line_total), 2) AS revenue
FROM line_items_named n
JOIN orders o ON o.id = n.order_id
WHERE n.ticket_variant_name IS NOT NULL
  AND o.payment_status IN ('PAID', 'PARTIALLY_REFUNDED', 'REFUNDED')
GROUP BY n.experience_id, n.experience_name, n.ticket_variant_name, n.variant_kind, n.currency
ORDER BY revenue DESC, experience, variant, kind, n.currency;
