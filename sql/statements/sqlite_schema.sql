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

-- name: relations
-- Every table and view with whether it is a view: what the data dictionary must describe.
SELECT name, type = 'view' FROM sqlite_schema
WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'
ORDER BY name;

-- name: columns
-- The columns of table or view ?1, in their order.
SELECT name FROM pragma_table_info(?1) ORDER BY cid;
