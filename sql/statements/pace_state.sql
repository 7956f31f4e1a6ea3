-- Statements for `pace_state`, the pace learned by the last run.

-- name: load
SELECT rate, ceiling, concurrency FROM pace_state WHERE id = 1;

-- name: save
INSERT INTO pace_state (id, rate, ceiling, concurrency, updated_at)
VALUES (1, :rate, :ceiling, :concurrency, :now)
ON CONFLICT (id) DO UPDATE SET
    rate = excluded.rate,
    ceiling = excluded.ceiling,
    concurrency = excluded.concurrency,
    updated_at = excluded.updated_at;
