-- What do guests answer at booking? Answers per question, most common first.
-- Needs: [streams] information_request_answers = true (off by default; information_requests = true, also off, adds the question's text); otherwise it returns no rows.
SELECT COALESCE(a.question, q.question) AS question,
       a.answer,
       COUNT(*) AS bookings
FROM information_request_answers a
LEFT JOIN information_requests q ON q.id = a.information_request_id
WHERE a.answer IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 3 DESC, 2;
