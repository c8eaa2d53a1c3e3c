-- roster_latest: the newest accepted civil-roster snapshot of each county, delivered
-- on or before the as-of date (a blocked snapshot is not "latest": the previous one stays in use).
SELECT
    r.*,
    r.file_county AS roster_county,
    r.status = '在保' AS active
FROM stg_civil_roster AS r
WHERE r.is_latest
