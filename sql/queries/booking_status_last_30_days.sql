-- How did bookings made in the 30 days before the newest one end up (active, cancelled, …)?
SELECT status, COUNT(*) AS bookings,
       ROUND(100.0 * COUNT(*) / SUM(COUNT(*)) OVER (), 1) AS percent
FROM bookings
WHERE created_at >= (SELECT strftime('%Y-%m-%dT%H:%M:%fZ', MAX(created_at), '-30 days') FROM bookings)
GROUP BY status
ORDER BY bookings DESC;
