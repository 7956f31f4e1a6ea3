-- Statements for `deferred_indexes`: a first full load's secondary indexes, set aside.

-- name: of_table
-- The secondary indexes of :table that can wait: not the primary key's, not UNIQUE ones (an
-- upsert's ON CONFLICT may rely on those), not SQLite's own.
SELECT name, sql FROM sqlite_master
WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL
  AND upper(sql) NOT LIKE 'CREATE UNIQUE%'
ORDER BY name;

-- name: remember
INSERT OR REPLACE INTO deferred_indexes (name, tbl, sql, deferred_at)
VALUES (:name, :table, :sql, :now);

-- name: drop
-- {index} is a name read from sqlite_master, quoted here.
DROP INDEX IF EXISTS "{index}";

-- name: pending
SELECT name, sql FROM deferred_indexes WHERE tbl = :table ORDER BY name;

-- name: forget
DELETE FROM deferred_indexes WHERE tbl = :table;

-- name: tables
SELECT tbl, count(*) FROM deferred_indexes GROUP BY tbl ORDER BY tbl;
