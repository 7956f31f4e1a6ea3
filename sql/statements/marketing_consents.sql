-- Statements for `marketing_consents`; loaded by store::statements, one per "-- name:" section.

-- name: lookup
-- The stored raw_json and whether the row is live, to tell inserts, updates and
-- unchanged rows apart before writing anything.
SELECT raw_json, removed_at IS NULL FROM marketing_consents WHERE consent_key = :consent_key;

-- name: upsert
INSERT INTO marketing_consents (
    consent_key,
    id,
    company_id,
    full_name,
    email,
    source,
    references_json,
    removed_at,
    raw_json,
    first_synced_at,
    last_changed_at
) VALUES (
    :consent_key,
    :id,
    :company_id,
    :full_name,
    :email,
    :source,
    :references_json,
    NULL,
    :raw_json,
    :now,
    :now
)
ON CONFLICT (consent_key) DO UPDATE SET
    id = excluded.id,
    company_id = excluded.company_id,
    full_name = excluded.full_name,
    email = excluded.email,
    source = excluded.source,
    references_json = excluded.references_json,
    removed_at = excluded.removed_at,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at;

-- name: mark_removed
-- After a complete scan: rows it did not list. :seen is a JSON array of keys.
UPDATE marketing_consents SET removed_at = :now, last_changed_at = :now
WHERE removed_at IS NULL AND consent_key NOT IN (SELECT value FROM json_each(:seen));
