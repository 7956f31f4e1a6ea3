-- Which experiences bring in the most ticket revenue?
SELECT COALESCE(experience_name, experience_id) AS experience, currency, orders, tickets,
       ROUND(revenue, 2) AS revenue
FROM revenue_by_experience
ORDER BY revenue DESC, experience, currency
LIMIT 10;
