-- Statements for `bookings`; loaded by store::statements, one per "-- name:" section.

-- name: lookup
-- The stored raw_json and whether the row is live: whether a listed parent differs from what
-- is stored, to stage only new or changed ones for the fan-out.
SELECT raw_json, 1 FROM bookings WHERE id = :id;

-- name: insert
-- A new row; one already stored is left to `update`. No conflict target: while a first full load
-- has the `bookings_key` index set aside there is nothing to conflict with, every listing is
-- appended, and the index's rebuild folds an id listed twice into its last listing.
INSERT INTO bookings (
    id,
    status,
    created_at,
    updated_at,
    company_id,
    experience_id,
    event_id,
    locale,
    source,
    internal_note,
    customer_type,
    customer_name,
    customer_company_name,
    customer_vat_number,
    customer_email,
    customer_phone,
    customer_address_line1,
    customer_address_line2,
    customer_city,
    customer_zip_code,
    customer_region,
    customer_country,
    metadata_json,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :id,
    :status,
    :created_at,
    :updated_at,
    :company_id,
    :experience_id,
    :event_id,
    :locale,
    :source,
    :internal_note,
    :customer_type,
    :customer_name,
    :customer_company_name,
    :customer_vat_number,
    :customer_email,
    :customer_phone,
    :customer_address_line1,
    :customer_address_line2,
    :customer_city,
    :customer_zip_code,
    :customer_region,
    :customer_country,
    :metadata_json,
    :raw_json,
    :now,
    :now
)
ON CONFLICT DO NOTHING;

-- name: update
-- A stored row whose content changed (or that was removed and is listed again); an identical
-- live row is not written at all.
UPDATE bookings SET
    status = :status,
    created_at = :created_at,
    updated_at = :updated_at,
    company_id = :company_id,
    experience_id = :experience_id,
    event_id = :event_id,
    locale = :locale,
    source = :source,
    internal_note = :internal_note,
    customer_type = :customer_type,
    customer_name = :customer_name,
    customer_company_name = :customer_company_name,
    customer_vat_number = :customer_vat_number,
    customer_email = :customer_email,
    customer_phone = :customer_phone,
    customer_address_line1 = :customer_address_line1,
    customer_address_line2 = :customer_address_line2,
    customer_city = :customer_city,
    customer_zip_code = :customer_zip_code,
    customer_region = :customer_region,
    customer_country = :customer_country,
    metadata_json = :metadata_json,
    raw_json = :raw_json,
    last_changed_at = :now
WHERE id = :id
  AND (raw_json IS NOT :raw_json);

-- name: stage_all
-- Every stored row, staged once for a newly enabled per-parent stream; a newer listing already
-- waiting is kept, and a row whose newer listing is in quarantine waits for that one to read
-- (its older copy would overwrite nothing newer, but writing it would release the quarantine).
INSERT OR IGNORE INTO staging (stream, item_key, raw_json, staged_at)
SELECT :stream, id, raw_json, :now FROM bookings
WHERE id NOT IN (SELECT item_key FROM quarantine WHERE stream = :stream AND parent_id IS NULL);

-- name: count
SELECT COUNT(*) FROM bookings;

-- name: updated_at
-- The stored row's updated_at: a webhook's fetch older than it changes nothing.
SELECT updated_at FROM bookings WHERE id = :id;
