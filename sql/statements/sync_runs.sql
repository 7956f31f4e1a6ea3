-- Statements for `sync_runs`, one row per run.

-- name: abandon
-- Runs still marked running were killed; only called while holding the database lock.
UPDATE sync_runs SET status = 'abandoned', ended_at = COALESCE(ended_at, :now)
WHERE status = 'running';

-- name: start
INSERT INTO sync_runs (started_at, status) VALUES (:now, 'running');

-- name: finish
UPDATE sync_runs SET
    ended_at = :now,
    status = :status,
    rows_inserted = :rows_inserted,
    rows_updated = :rows_updated,
    rows_unchanged = :rows_unchanged,
    requests = :requests,
    retries = :retries,
    rate_limited = :rate_limited,
    pace_rps = :pace_rps,
    peak_pace_rps = :peak_pace_rps,
    paused_ms = :paused_ms,
    quarantined = :quarantined,
    streams_json = :streams_json,
    error = :error
WHERE id = :id;

-- name: last_success
SELECT MAX(ended_at) FROM sync_runs WHERE status = 'succeeded';

-- name: recent
SELECT id, started_at, ended_at, status, rows_inserted, rows_updated, rows_unchanged,
       requests, retries, rate_limited, error, pace_rps, paused_ms
FROM sync_runs ORDER BY id DESC LIMIT :limit;
