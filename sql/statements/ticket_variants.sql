-- Statements for `ticket_variants`; loaded by store::statements, one per "-- name:" section.

-- name: insert
-- A new row; one already stored is left to `update`.
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
ON CONFLICT (id) DO NOTHING;

-- name: update
-- A stored row whose content changed (or that was removed and is listed again); an identical
-- live row is not written at all.
UPDATE ticket_variants SET
    experience_id = :experience_id,
    name = :name,
    description = :description,
    price_minor = :price_minor,
    price_currency = :price_currency,
    price_exponent = :price_exponent,
    vat_amount_minor = :vat_amount_minor,
    vat_amount_currency = :vat_amount_currency,
    vat_amount_exponent = :vat_amount_exponent,
    add_on_variants_json = :add_on_variants_json,
    raw_json = :raw_json,
    last_changed_at = :now
WHERE id = :id
  AND (raw_json IS NOT :raw_json);

-- name: prune
-- Variants the experience no longer lists; :ids is a JSON array.
DELETE FROM ticket_variants
WHERE experience_id = :parent_id AND id NOT IN (SELECT value FROM json_each(:ids));

-- name: count
SELECT COUNT(*) FROM ticket_variants;
