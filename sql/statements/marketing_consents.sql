-- Statements for `marketing_consents`; loaded by store::statements, one per "-- name:" section.

-- name: insert
-- A new row; one already stored is left to `update`.
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
ON CONFLICT (consent_key) DO NOTHING;

-- name: update
-- A stored row whose content changed (or that was removed and is listed again); an identical
-- live row is not written at all.
UPDATE marketing_consents SET
    id = :id,
    company_id = :company_id,
    full_name = :full_name,
    email = :email,
    source = :source,
    references_json = :references_json,
    removed_at = NULL,
    missed_scans = 0,
    raw_json = :raw_json,
    last_changed_at = :now
WHERE consent_key = :consent_key
  AND (raw_json IS NOT :raw_json OR removed_at IS NOT NULL);

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
