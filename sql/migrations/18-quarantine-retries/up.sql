-- understory-sync schema, version 18: when each quarantined item was last asked for by id, so
-- that a run's bounded share of retries goes to the items waiting longest.
ALTER TABLE quarantine ADD COLUMN retried_at TEXT;
