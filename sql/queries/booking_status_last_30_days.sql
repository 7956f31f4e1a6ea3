-- How did recent bookings end up (active, cancelled, …)? Those made on the last 30 UTC days that had bookings.
WITH recent_days AS (
    SELECT DISTINCT substr(created_at, 1, 10) AS day FROM bookings ORDER BY day DESC LIMIT 30
)
SELECT status, COUNT(*) AS bookings,
       ROUND(100.0 * COUNT(*) / SUM(COUNT(*)) OVER (), 1) AS percent
FROM bookings
WHERE created_at >= (SELECT MIN(day) FROM recent_days)
GROUP BY status
ORDER BY bookings DESC, status;
