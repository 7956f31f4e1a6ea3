-- When the last run that stored everything ended (UTC).
SELECT COALESCE(MAX(substr(ended_at, 1, 16)), 'never') AS ended
FROM sync_runs
WHERE status = 'succeeded'
