-- Share of tickets of completed events never checked in, per experience (needs the
-- booking_tickets stream; events and experiences name them).
SELECT COALESCE(experience_name, experience_id) AS experience,
       ROUND(100.0 * (COUNT(*) - SUM(checked_in)) / COUNT(*), 1) AS no_show_pct,
       COUNT(*) AS tickets
FROM tickets_with_check_in
WHERE event_state = 'COMPLETED'
  AND COALESCE(ticket_status, '') <> 'CANCELLED'
  AND COALESCE(booking_status, '') <> 'CANCELLED'
  [[ AND event_start_local >= :date_from ]]
  [[ AND event_start_local < date(:date_to, '+1 day') ]]
  [[ AND experience_name = :experience ]]
GROUP BY experience_id, experience_name
ORDER BY no_show_pct DESC
