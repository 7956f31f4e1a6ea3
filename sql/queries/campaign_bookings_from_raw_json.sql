-- Which campaigns (a metadata key with no column of its own) brought bookings? Shows how to
-- reach any field of the API's item through raw_json with SQLite's JSON functions.
SELECT json_extract(raw_json, '$.metadata.campaign') AS campaign, COUNT(*) AS bookings
FROM bookings
WHERE json_extract(raw_json, '$.metadata.campaign') IS NOT NULL
GROUP BY campaign
ORDER BY bookings DESC;
