-- Marks the file as understory-sync's (the bytes "UnSy" in the header's application_id), so a
-- later version can tell its own database from another application's SQLite file before it
-- changes a byte of it (`store::ours`). Databases from before this migration are recognised by
-- their schema and stamped here.
PRAGMA application_id = 1433293689;
