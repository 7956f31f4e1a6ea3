-- Marketing consents per source, all time: still listed, and withdrawn (no longer listed). The
-- API gives a consent no date, so the dashboard's date range does not apply.
SELECT source, 'active' AS state, SUM(removed_at IS NULL) AS consents
FROM marketing_consents
GROUP BY source
UNION ALL
SELECT source, 'withdrawn', SUM(removed_at IS NOT NULL)
FROM marketing_consents
GROUP BY source
ORDER BY source, state
