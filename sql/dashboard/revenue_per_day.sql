-- Net revenue (paid orders less completed refunds) per UTC day, by currency, all experiences.
-- Newest first, so Datasette's row limit leaves out the oldest days.
SELECT day, currency, ROUND(SUM(net), 2) AS net
FROM daily_revenue
WHERE 1 = 1
  [[ AND day >= :date_from ]]
  [[ AND day <= :date_to ]]
GROUP BY day, currency
ORDER BY day DESC, currency
