-- Secondary indexes set aside while a stream's first full load fills its empty table: rows
-- arrive in updated_at order, so an index on a random key (the id's, created_at's, event_id's)
-- takes one random B-tree write per row, which at a million rows costs more than the rows
-- themselves. The definitions wait here and are rebuilt, sorted, in one statement each when the
-- load completes (store::Store::restore_indexes). Nothing here affects what a row holds.
CREATE TABLE deferred_indexes (
    name        TEXT PRIMARY KEY,
    tbl         TEXT NOT NULL,
    sql         TEXT NOT NULL,
    deferred_at TEXT NOT NULL
);
