-- The ten experiences with the most ticket revenue, all time, per currency.
SELECT COALESCE(experience_name, experience_id) AS experience, currency,
       ROUND(revenue, 2) AS revenue
FROM revenue_by_experience
ORDER BY revenue DESC
LIMIT 10
