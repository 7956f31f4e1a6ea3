-- Where do our marketing consents come from, and how many were withdrawn (no longer listed)?
SELECT source,
       SUM(removed_at IS NULL) AS active,
       SUM(removed_at IS NOT NULL) AS removed
FROM marketing_consents
GROUP BY source
ORDER BY active DESC, source;
