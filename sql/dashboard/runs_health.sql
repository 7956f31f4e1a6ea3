-- Each run's duration and the 429 answers it met, the last 200 runs.
SELECT started_at, 'duration (s)' AS measure,
       ROUND((julianday(ended_at) - julianday(started_at)) * 86400, 1) AS value
FROM sync_runs
WHERE ended_at IS NOT NULL
  [[ AND started_at >= :date_from ]]
  [[ AND started_at < date(:date_to, '+1 day') ]]
UNION ALL
SELECT started_at, '429 answers', rate_limited
FROM sync_runs
WHERE ended_at IS NOT NULL
  [[ AND started_at >= :date_from ]]
  [[ AND started_at < date(:date_to, '+1 day') ]]
ORDER BY started_at DESC
LIMIT 400
