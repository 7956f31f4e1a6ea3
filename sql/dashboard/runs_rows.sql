-- Rows each run stored (inserted and changed), by its outcome, the last 200 runs.
SELECT started_at, status, rows_inserted + rows_updated AS rows_stored
FROM sync_runs
WHERE ended_at IS NOT NULL
  [[ AND started_at >= :date_from ]]
  [[ AND started_at < date(:date_to, '+1 day') ]]
ORDER BY id DESC
LIMIT 200
