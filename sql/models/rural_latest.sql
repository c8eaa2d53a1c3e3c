-- rural_latest: the newest accepted rural-monitoring snapshot of each county.
-- A household is "monitored" while it is a 监测户 whose risk is not eliminated.
SELECT
    r.*,
    r.file_county AS rural_county,
    r.household_kind = '监测户' AND coalesce(r.risk_eliminated, '否') <> '是' AS monitored
FROM stg_rural_monitoring AS r
WHERE r.is_latest
