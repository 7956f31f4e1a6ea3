-- Statements for `pace_state`, the pace learned by the last run.

-- name: load
SELECT rate, ceiling, proven, concurrency FROM pace_state WHERE id = 1;

-- name: save
INSERT INTO pace_state (id, rate, ceiling, proven, concurrency, updated_at)
VALUES (1, :rate, :ceiling, :proven, :concurrency, :now)
ON CONFLICT (id) DO UPDATE SET
    rate = excluded.rate,
    ceiling = excluded.ceiling,
    proven = excluded.proven,
    concurrency = excluded.concurrency,
    updated_at = excluded.updated_at;
