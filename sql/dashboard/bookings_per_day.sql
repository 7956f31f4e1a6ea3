-- Bookings made per day, by status. Newest first: past Datasette's row limit (1,000), the
-- oldest days are the ones left out, and the chart says it was cut.
SELECT substr(created_at, 1, 10) AS day, status, COUNT(*) AS bookings
FROM bookings_enriched
WHERE 1 = 1
  [[ AND created_at >= :date_from ]]
  [[ AND created_at < date(:date_to, '+1 day') ]]
  [[ AND experience_name = :experience ]]
GROUP BY day, status
ORDER BY day DESC, status
