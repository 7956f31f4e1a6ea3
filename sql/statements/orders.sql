-- Statements for `orders`; loaded by store::statements, one per "-- name:" section.

-- name: lookup
-- The stored raw_json and whether the row is live: whether a listed parent differs from what
-- is stored, to stage only new or changed ones for the fan-out.
SELECT raw_json, 1 FROM orders WHERE id = :id;

-- name: upsert
-- Returns 1 for an insert, 0 for an update, nothing for an unchanged row.
INSERT INTO orders (
    id,
    number,
    status,
    payment_status,
    created_at,
    updated_at,
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
    origin_type,
    origin_id,
    discount_minor,
    discount_currency,
    discount_exponent,
    vat_amount_minor,
    vat_amount_currency,
    vat_amount_exponent,
    amount_minor,
    amount_currency,
    amount_exponent,
    metadata_json,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :id,
    :number,
    :status,
    :payment_status,
    :created_at,
    :updated_at,
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
    :origin_type,
    :origin_id,
    :discount_minor,
    :discount_currency,
    :discount_exponent,
    :vat_amount_minor,
    :vat_amount_currency,
    :vat_amount_exponent,
    :amount_minor,
    :amount_currency,
    :amount_exponent,
    :metadata_json,
    :raw_json,
    :now,
    :now
)
ON CONFLICT (id) DO UPDATE SET
    number = excluded.number,
    status = excluded.status,
    payment_status = excluded.payment_status,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at,
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
    origin_type = excluded.origin_type,
    origin_id = excluded.origin_id,
    discount_minor = excluded.discount_minor,
    discount_currency = excluded.discount_currency,
    discount_exponent = excluded.discount_exponent,
    vat_amount_minor = excluded.vat_amount_minor,
    vat_amount_currency = excluded.vat_amount_currency,
    vat_amount_exponent = excluded.vat_amount_exponent,
    amount_minor = excluded.amount_minor,
    amount_currency = excluded.amount_currency,
    amount_exponent = excluded.amount_exponent,
    metadata_json = excluded.metadata_json,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at
-- An identical live row is left as it is: no write, and no row returned (unchanged).
WHERE orders.raw_json IS NOT excluded.raw_json
RETURNING first_synced_at = last_changed_at;

-- name: stage_all
-- Every stored row, staged once for a newly enabled per-parent stream; a newer listing already
-- waiting is kept.
INSERT OR IGNORE INTO staging (stream, item_key, raw_json, staged_at)
SELECT :stream, id, raw_json, :now FROM orders;

-- name: count
SELECT COUNT(*) FROM orders;
