-- understory-sync schema, version 3: the adaptive pace is remembered across runs.

-- One row: the pace the last run ended with, so the next run starts there instead of finding
-- Understory's (undocumented) rate budget again.
CREATE TABLE pace_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    rate         REAL NOT NULL,    -- requests per second at the end of the last run
    ceiling      REAL,             -- learned ceiling: just under the rate of the last 429
    concurrency  INTEGER NOT NULL, -- requests in flight at once
    updated_at   TEXT NOT NULL
);

ALTER TABLE sync_runs ADD COLUMN pace_rps REAL;
ALTER TABLE sync_runs ADD COLUMN peak_pace_rps REAL;
ALTER TABLE sync_runs ADD COLUMN paused_ms INTEGER NOT NULL DEFAULT 0;
