-- Statements for `deferred_indexes`: a first full load's secondary indexes, set aside.

-- name: of_table
-- The secondary indexes of :table that can wait: not the primary key's, not UNIQUE ones (an
-- upsert's ON CONFLICT may rely on those), not SQLite's own.
SELECT name, sql FROM sqlite_master
WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL
  AND upper(sql) NOT LIKE 'CREATE UNIQUE%'
ORDER BY name;

-- name: key_of_table
-- The index that keeps :table's rows unique, if it is one a first load may set aside: a UNIQUE
-- index named `<table>_key` (a PRIMARY KEY's index cannot be dropped). Set aside only while no
-- other table's foreign key needs it, and rebuilt before the secondary ones.
SELECT name, sql FROM sqlite_master
WHERE type = 'index' AND tbl_name = :table AND name = :table || '_key' AND sql IS NOT NULL;

-- name: remember
INSERT OR REPLACE INTO deferred_indexes (name, tbl, sql, deferred_at)
VALUES (:name, :table, :sql, :now);

-- name: drop
-- {index} is a name read from sqlite_master, quoted here.
DROP INDEX IF EXISTS "{index}";

-- name: pending
-- The key first: the secondary indexes are built over rows already made unique.
SELECT name, sql FROM deferred_indexes WHERE tbl = :table
ORDER BY name <> :table || '_key', name;

-- name: key_pending
SELECT count(*) FROM deferred_indexes WHERE tbl = :table AND name = :table || '_key';

-- The statements below fold the rows of an id a keyless first load stored more than once (a
-- cursor restart re-reads the overlap) into its last listing, keeping when it was first stored,
-- so that its key index can be built. {table} is a table name from the code, quoted here; they
-- run only when building the key found a duplicate, with a scratch index for the lookups.

-- name: dedupe_index
CREATE INDEX "{table}_dedupe" ON "{table}" (id);

-- name: dedupe_first_synced
UPDATE "{table}" AS t
SET first_synced_at = (SELECT min(d.first_synced_at) FROM "{table}" AS d WHERE d.id = t.id)
WHERE t.id IN (SELECT id FROM "{table}" GROUP BY id HAVING count(*) > 1);

-- name: dedupe
DELETE FROM "{table}"
WHERE id IN (SELECT id FROM "{table}" GROUP BY id HAVING count(*) > 1)
  AND rowid < (SELECT max(d.rowid) FROM "{table}" AS d WHERE d.id = "{table}".id);

-- name: dedupe_index_drop
DROP INDEX "{table}_dedupe";

-- name: forget
DELETE FROM deferred_indexes WHERE tbl = :table;

-- name: tables
SELECT tbl, count(*) FROM deferred_indexes GROUP BY tbl ORDER BY tbl;
