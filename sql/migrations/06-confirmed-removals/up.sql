-- understory-sync schema, version 6: removals are confirmed, not inferred from one traversal.
--
-- A traversal of a list is not a snapshot (`docs/understory-api.md` §1.1): rows removed ahead
-- of the cursor shift the rest, so a scan can miss rows the API still lists. A row a complete
-- scan did not list becomes a candidate; it gets `removed_at` only when `GET …/{id}` answers
-- 404, or — for legacy consents, which have no id — when two consecutive complete scans missed
-- it.

-- The keys the current scan of each stream has listed, kept here rather than in memory so a
-- million consents cost no RAM and a scan resumed after a crash still knows what it saw.
CREATE TABLE scan_seen (
    stream    TEXT NOT NULL,
    item_key  TEXT NOT NULL,
    PRIMARY KEY (stream, item_key)
) WITHOUT ROWID;

-- Consecutive complete scans that did not list this consent; back to 0 when one does.
ALTER TABLE marketing_consents ADD COLUMN missed_scans INTEGER NOT NULL DEFAULT 0;
