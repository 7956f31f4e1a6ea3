-- Statements for `orders`; loaded by store::statements, one per "-- name:" section.

-- name: lookup
-- The stored raw_json and whether the row is live: whether a listed parent differs from what
-- is stored, to stage only new or changed ones for the fan-out.
SELECT raw_json, 1 FROM orders WHERE id = :id;

-- name: insert
-- A new row; one already stored is left to `update`.
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
ON CONFLICT (id) DO NOTHING;

-- name: update
-- A stored row whose content changed (or that was removed and is listed again); an identical
-- live row is not written at all.
UPDATE orders SET
    number = :number,
    status = :status,
    payment_status = :payment_status,
    created_at = :created_at,
    updated_at = :updated_at,
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
    origin_type = :origin_type,
    origin_id = :origin_id,
    discount_minor = :discount_minor,
    discount_currency = :discount_currency,
    discount_exponent = :discount_exponent,
    vat_amount_minor = :vat_amount_minor,
    vat_amount_currency = :vat_amount_currency,
    vat_amount_exponent = :vat_amount_exponent,
    amount_minor = :amount_minor,
    amount_currency = :amount_currency,
    amount_exponent = :amount_exponent,
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
SELECT :stream, id, raw_json, :now FROM orders
WHERE id NOT IN (SELECT item_key FROM quarantine WHERE stream = :stream AND parent_id IS NULL);

-- name: count
SELECT COUNT(*) FROM orders;
