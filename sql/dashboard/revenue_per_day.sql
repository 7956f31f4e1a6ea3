-- Net revenue (paid orders less completed refunds) per UTC day, by currency, all experiences.
SELECT day, currency, ROUND(SUM(net), 2) AS net
FROM daily_revenue
WHERE 1 = 1
  [[ AND day >= :date_from ]]
  [[ AND day <= :date_to ]]
GROUP BY day, currency
ORDER BY day, currency
