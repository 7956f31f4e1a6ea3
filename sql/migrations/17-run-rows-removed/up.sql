-- understory-sync schema, version 17: a run's row counts the rows it marked removed, beside
-- those it inserted, updated and left unchanged.
ALTER TABLE sync_runs ADD COLUMN rows_removed INTEGER;
