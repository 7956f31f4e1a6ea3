-- What did we earn each month, per currency, after refunds?
SELECT substr(day, 1, 7) AS month, currency,
       SUM(paid_orders) AS paid_orders, ROUND(SUM(revenue), 2) AS revenue,
       ROUND(SUM(refunded), 2) AS refunded, ROUND(SUM(net), 2) AS net
FROM daily_revenue
GROUP BY 1, 2
ORDER BY 1 DESC, 2;
