-- Statements for `marketing_consents`; loaded by store::statements, one per "-- name:" section.

-- name: upsert
-- Returns 1 for an insert, 0 for an update, nothing for an unchanged row.
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
    missed_scans = 0,
    raw_json = excluded.raw_json,
    last_changed_at = excluded.last_changed_at
-- An identical live row is left as it is: no write, and no row returned (unchanged).
WHERE marketing_consents.raw_json IS NOT excluded.raw_json OR marketing_consents.removed_at IS NOT NULL
RETURNING first_synced_at = last_changed_at;

-- name: removal_candidates
-- After a complete scan: live rows it did not list, with the id to confirm each by.
SELECT consent_key, id FROM marketing_consents
WHERE removed_at IS NULL
  AND consent_key NOT IN (SELECT item_key FROM scan_seen WHERE stream = :stream);

-- name: confirm_removed
-- Candidates the API confirmed gone (404). :keys is a JSON array.
UPDATE marketing_consents SET removed_at = :now, last_changed_at = :now
WHERE removed_at IS NULL AND consent_key IN (SELECT value FROM json_each(:keys));

-- name: missed
-- Legacy candidates (no id to ask about): one more complete scan missed them.
UPDATE marketing_consents SET missed_scans = missed_scans + 1
WHERE removed_at IS NULL AND consent_key IN (SELECT value FROM json_each(:keys));

-- name: missed_twice
-- Two consecutive complete scans missed them: removed.
UPDATE marketing_consents SET removed_at = :now, last_changed_at = :now
WHERE removed_at IS NULL AND missed_scans >= 2 AND consent_key IN (SELECT value FROM json_each(:keys));

-- name: seen_again
-- A complete scan listed them: the count of misses starts over.
UPDATE marketing_consents SET missed_scans = 0
WHERE missed_scans > 0 AND consent_key IN (SELECT item_key FROM scan_seen WHERE stream = :stream);

-- name: count
-- Live rows only.
SELECT COUNT(*) FROM marketing_consents WHERE removed_at IS NULL;
