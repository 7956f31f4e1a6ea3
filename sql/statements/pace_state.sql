-- Statements for `pace_state`, the pace learned by the last run.

-- name: load
SELECT rate, ceiling, proven, concurrency, probe_wait_secs, clean_secs, updated_at FROM pace_state WHERE id = 1;

-- name: save
INSERT INTO pace_state (id, rate, ceiling, proven, concurrency, probe_wait_secs, clean_secs, updated_at)
VALUES (1, :rate, :ceiling, :proven, :concurrency, :probe_wait, :clean_for, :now)
ON CONFLICT (id) DO UPDATE SET
    rate = excluded.rate,
    ceiling = excluded.ceiling,
    proven = excluded.proven,
    concurrency = excluded.concurrency,
    probe_wait_secs = excluded.probe_wait_secs,
    clean_secs = excluded.clean_secs,
    updated_at = excluded.updated_at;

-- name: status
SELECT rate, ceiling, proven, updated_at FROM pace_state WHERE id = 1;
