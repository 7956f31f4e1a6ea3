-- Which campaigns (a metadata key with no column of its own) brought bookings? Shows how to
-- reach any field of the API's item through raw_json: `->>` takes it out as text or a number, in
-- SQLite and DuckDB alike (json_extract would give DuckDB's JSON, quotes and all).
SELECT raw_json ->> '$.metadata.campaign' AS campaign, COUNT(*) AS bookings
FROM bookings
WHERE raw_json ->> '$.metadata.campaign' IS NOT NULL
GROUP BY campaign
ORDER BY bookings DESC, campaign;
