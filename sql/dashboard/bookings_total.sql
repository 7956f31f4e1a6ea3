-- Bookings made in the chosen range, cancelled ones included.
SELECT COUNT(*) AS bookings
FROM bookings_enriched
WHERE 1 = 1
  [[ AND created_at >= :date_from ]]
  [[ AND created_at < date(:date_to, '+1 day') ]]
  [[ AND experience_name = :experience ]]
