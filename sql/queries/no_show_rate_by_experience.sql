-- Which experiences have the most no-shows? Tickets of completed events never checked in, per experience.
-- Needs: [streams] booking_tickets = true (off by default; and events, on by default); without them it returns no rows.
SELECT COALESCE(experience_name, experience_id) AS experience,
       COUNT(*) AS tickets,
       SUM(checked_in) AS checked_in,
       COUNT(*) - SUM(checked_in) AS no_shows,
       ROUND(100.0 * (COUNT(*) - SUM(checked_in)) / COUNT(*), 1) AS no_show_pct
FROM tickets_with_check_in
WHERE event_state = 'COMPLETED'
  AND COALESCE(ticket_status, '') <> 'CANCELLED'
  AND COALESCE(booking_status, '') <> 'CANCELLED'
GROUP BY experience_id, experience_name
ORDER BY no_show_pct DESC, experience;
