-- Which customers booked most often, and when did they last book?
SELECT customer_email, MAX(customer_name) AS name, COUNT(*) AS bookings, MAX(created_at) AS last_booking
FROM bookings
WHERE customer_email IS NOT NULL AND status <> 'CANCELLED'
GROUP BY customer_email
ORDER BY bookings DESC, last_booking DESC, customer_email
LIMIT 20;
