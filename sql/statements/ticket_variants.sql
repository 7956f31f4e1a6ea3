-- Statements for `ticket_variants`; loaded by store::statements, one per "-- name:" section.

-- name: upsert
-- Returns 1 for an insert, 0 for an update, nothing for an unchanged row.
INSERT INTO ticket_variants (
    id,
    experience_id,
    name,
    description,
    price_minor,
    price_currency,
    price_exponent,
    vat_amount_minor,
    vat_amount_currency,
    vat_amount_exponent,
    add_on_variants_json,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :id,
    :experience_id,
    :name,
    :description,
    :price_minor,
    :price_currency,
    :price_exponent,
    :vat_amount_minor,
    :vat_amount_currency,
    :vat_amount_exponent,
    :add_on_variants_json,
    :raw_json,
    :now,
    :now
)
ON CONFLICT (id) DO UPDATE SET
    experience_id = excluded.experience_id,
    name = excluded.name,
    description = excluded.description,
    price_minor = excluded.price_minor,
    price_currency = excluded.price_currency,
    price_exponent = excluded.price_exponent,
    vat_amount_minor = excluded.vat_amount_minor,
    vat_amount_currency = excluded.vat_amount_currency,
    vat_amount_exponent = excluded.vat_amount_exponent,
    add_on_variants_json = excluded.add_on_variants_json,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at
-- An identical live row is left as it is: no write, and no row returned (unchanged).
WHERE ticket_variants.raw_json IS NOT excluded.raw_json
RETURNING first_synced_at = last_changed_at;

-- name: prune
-- Variants the experience no longer lists; :ids is a JSON array.
DELETE FROM ticket_variants
WHERE experience_id = :parent_id AND id NOT IN (SELECT value FROM json_each(:ids));

-- name: count
SELECT COUNT(*) FROM ticket_variants;
