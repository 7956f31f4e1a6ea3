-- Statements on SQLite's own catalogue.

-- name: tables
-- What a file holds, to tell our database from another application's before touching it.
SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name;

-- name: checkpoint
-- End of a run: the WAL's pages into the database, without waiting for or blocking readers.
PRAGMA wal_checkpoint(PASSIVE);

-- name: truncate_wal
-- Then, if no reader holds an older snapshot, the WAL file back to zero bytes (busy otherwise:
-- the first column is 1, and the file stays until a later run's checkpoint).
PRAGMA wal_checkpoint(TRUNCATE);
