-- Statements for the published snapshot (not a table).

-- name: vacuum_into
-- One read transaction copies the whole database, compacted, into a new file that is in
-- rollback-journal mode: a consistent single file analysts can copy or open anywhere.
VACUUM INTO ?1;
