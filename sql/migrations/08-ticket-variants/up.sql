-- understory-sync schema, version 8: ticket variants, the names and prices behind line items.
--
-- Fetched per experience (`GET /v1/experiences/{id}/ticket-variants`) when the experience is
-- new or changed. A line item's `product_id` is a variant's `id` (or an add-on's, inside
-- `add_on_variants_json`); `ticket_variant_names` lists both.
CREATE TABLE ticket_variants (
    id                    TEXT PRIMARY KEY,
    experience_id         TEXT NOT NULL REFERENCES experiences(id) ON DELETE CASCADE,
    name                  TEXT,
    description           TEXT,
    price_minor           INTEGER,
    price_currency        TEXT,
    price_exponent        INTEGER,
    vat_amount_minor      INTEGER,
    vat_amount_currency   TEXT,
    vat_amount_exponent   INTEGER,
    add_on_variants_json  TEXT,
    raw_json              TEXT NOT NULL,
    first_synced_at       TEXT NOT NULL,
    last_changed_at       TEXT NOT NULL
);
CREATE INDEX ticket_variants_experience_id ON ticket_variants (experience_id);

-- Every sellable variant, main and add-on, by id: what a line item's `product_id` names.
CREATE VIEW ticket_variant_names AS
SELECT v.id AS variant_id, v.experience_id, 'VARIANT' AS kind, v.name,
       v.price_minor * 1.0 / (CASE v.price_exponent WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END) AS price,
       v.price_currency AS currency
FROM ticket_variants v
UNION
SELECT json_extract(a.value, '$.id'), v.experience_id, 'ADD_ON', json_extract(a.value, '$.name'),
       json_extract(a.value, '$.price.value') * 1.0
         / (CASE json_extract(a.value, '$.price.exponent') WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 ELSE 10000 END),
       json_extract(a.value, '$.price.currency')
FROM ticket_variants v, json_each(v.add_on_variants_json) a
WHERE json_extract(a.value, '$.id') IS NOT NULL;
