-- understory-sync schema, version 14: a bookings key that a first load can set aside.
--
-- `bookings.id` was the table's PRIMARY KEY, whose index SQLite keeps inside the table's
-- definition, for good. Ids are random UUIDs, so every row of a first full load was a write to
-- a random leaf of that index; at a million rows it outgrows the page cache and costs several
-- times the rows themselves (BENCHMARKS.md, fourth session). The same uniqueness now lives in the
-- named index `bookings_key`, which a first full load into the empty table sets aside like the
-- secondary indexes and builds, sorted, when the load completes (store::Store::restore_indexes,
-- which first folds any id listed twice into its last listing). For analysts nothing changes:
-- `id` is NOT NULL and unique, and booking_tickets and information_request_answers still
-- reference it.
--
-- The table is rebuilt by SQLite's documented procedure (foreign keys are off while migrating,
-- so the drop cascades nowhere). legacy_alter_table keeps the rename from re-checking the views
-- that name `bookings` while it does not exist; they name it again once it is renamed.

PRAGMA legacy_alter_table = ON;

CREATE TABLE bookings_new (
    id                     TEXT NOT NULL,
    status                 TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    company_id             TEXT,
    experience_id          TEXT,
    event_id               TEXT,
    locale                 TEXT,
    source                 TEXT,
    internal_note          TEXT,
    customer_type          TEXT,
    customer_name          TEXT,
    customer_company_name  TEXT,
    customer_vat_number    TEXT,
    customer_email         TEXT,
    customer_phone         TEXT,
    customer_address_line1 TEXT,
    customer_address_line2 TEXT,
    customer_city          TEXT,
    customer_zip_code      TEXT,
    customer_region        TEXT,
    customer_country       TEXT,
    metadata_json          TEXT,
    raw_json               TEXT NOT NULL,
    first_synced_at        TEXT NOT NULL,
    last_changed_at        TEXT NOT NULL
);
INSERT INTO bookings_new SELECT * FROM bookings;
DROP TABLE bookings;
ALTER TABLE bookings_new RENAME TO bookings;

PRAGMA legacy_alter_table = OFF;

-- Every index, as version 2 defined them: a first load interrupted before this migration had
-- set some aside, and it now completes with them in place.
DELETE FROM deferred_indexes WHERE tbl = 'bookings';
CREATE UNIQUE INDEX bookings_key ON bookings (id);
CREATE INDEX bookings_created_at ON bookings (created_at);
CREATE INDEX bookings_updated_at ON bookings (updated_at);
CREATE INDEX bookings_status ON bookings (status);
CREATE INDEX bookings_event_id ON bookings (event_id);
CREATE INDEX bookings_experience_id ON bookings (experience_id);
