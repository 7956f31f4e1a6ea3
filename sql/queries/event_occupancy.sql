-- How full is each event: seats reserved against capacity, and bookings we hold for it?
-- From the events stream (and experiences for the name), both on by default: with events off it returns no rows.
SELECT e.id AS event_id, x.name AS experience, e.first_session_start AS starts_local, e.timezone,
       e.capacity_reserved AS reserved, e.capacity_total AS capacity,
       ROUND(100.0 * e.capacity_reserved / NULLIF(e.capacity_total, 0), 1) AS percent_full,
       (SELECT COUNT(*) FROM bookings b WHERE b.event_id = e.id AND b.status <> 'CANCELLED') AS bookings
FROM events e
LEFT JOIN experiences x ON x.id = e.experience_id
WHERE e.removed_at IS NULL
ORDER BY e.first_session_start DESC, e.id
LIMIT 20;
