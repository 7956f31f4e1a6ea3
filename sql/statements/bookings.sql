-- Statements for `bookings`; loaded by store::statements, one per "-- name:" section.

-- name: lookup
-- The stored raw_json and whether the row is live: whether a listed parent differs from what
-- is stored, to stage only new or changed ones for the fan-out.
SELECT raw_json, 1 FROM bookings WHERE id = :id;

-- name: upsert
-- Returns 1 for an insert, 0 for an update, nothing for an unchanged row.
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
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at,
    company_id = excluded.company_id,
    experience_id = excluded.experience_id,
    event_id = excluded.event_id,
    locale = excluded.locale,
    source = excluded.source,
    internal_note = excluded.internal_note,
    customer_type = excluded.customer_type,
    customer_name = excluded.customer_name,
    customer_company_name = excluded.customer_company_name,
    customer_vat_number = excluded.customer_vat_number,
    customer_email = excluded.customer_email,
    customer_phone = excluded.customer_phone,
    customer_address_line1 = excluded.customer_address_line1,
    customer_address_line2 = excluded.customer_address_line2,
    customer_city = excluded.customer_city,
    customer_zip_code = excluded.customer_zip_code,
    customer_region = excluded.customer_region,
    customer_country = excluded.customer_country,
    metadata_json = excluded.metadata_json,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at
-- An identical live row is left as it is: no write, and no row returned (unchanged).
WHERE bookings.raw_json IS NOT excluded.raw_json
RETURNING first_synced_at = last_changed_at;

-- name: stage_all
-- Every stored row, staged once for a newly enabled per-parent stream; a newer listing already
-- waiting is kept.
INSERT OR IGNORE INTO staging (stream, item_key, raw_json, staged_at)
SELECT :stream, id, raw_json, :now FROM bookings;

-- name: count
SELECT COUNT(*) FROM bookings;
