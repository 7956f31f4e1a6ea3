-- Statements for `sync_runs`, one row per run.

-- name: abandon
-- Runs still marked running were killed; only called while holding the database lock.
UPDATE sync_runs SET status = 'abandoned', ended_at = COALESCE(ended_at, :now)
WHERE status = 'running';

-- name: start
-- `webhook_missed` counts from 0 when the run watches for a webhook's misses (`:watching`), and
-- stays NULL otherwise.
INSERT INTO sync_runs (started_at, status, rows_removed, webhook_missed)
VALUES (:now, 'running', 0, CASE WHEN :watching THEN 0 END);

-- name: committed
-- A group of commits landed: added to the running run's counts in the same transaction.
UPDATE sync_runs SET
    rows_inserted = COALESCE(rows_inserted, 0) + :inserted,
    rows_updated = COALESCE(rows_updated, 0) + :updated,
    rows_unchanged = COALESCE(rows_unchanged, 0) + :unchanged,
    rows_removed = COALESCE(rows_removed, 0) + :removed,
    webhook_missed = webhook_missed + :webhook_missed
WHERE id = :id AND status = 'running';

-- name: requests
-- The running run's requests so far; written every few seconds while it runs.
UPDATE sync_runs SET requests = :requests, retries = :retries, rate_limited = :rate_limited
WHERE id = :id AND status = 'running';

-- name: finish
UPDATE sync_runs SET
    ended_at = :now,
    status = :status,
    rows_inserted = :rows_inserted,
    rows_updated = :rows_updated,
    rows_unchanged = :rows_unchanged,
    rows_removed = :rows_removed,
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

-- name: fail
-- The run in progress hit a bug (a panic): closed as failed by the panicking process itself.
UPDATE sync_runs SET ended_at = :now, status = 'failed', error = :error
WHERE id = :id AND status = 'running';

-- name: last_success
SELECT MAX(ended_at) FROM sync_runs WHERE status = 'succeeded';

-- name: recent
SELECT id, started_at, ended_at, status, rows_inserted, rows_updated, rows_unchanged,
       rows_removed, requests, retries, rate_limited, error, pace_rps, paused_ms
FROM sync_runs ORDER BY id DESC LIMIT :limit;

-- name: recent_before_17
-- `recent` for a file `status` finds at an older schema (it never migrates): no `rows_removed`.
SELECT id, started_at, ended_at, status, rows_inserted, rows_updated, rows_unchanged,
       NULL, requests, retries, rate_limited, error, pace_rps, paused_ms
FROM sync_runs ORDER BY id DESC LIMIT :limit;

-- name: has_rows_removed
SELECT count(*) FROM pragma_table_info('sync_runs') WHERE name = 'rows_removed';
