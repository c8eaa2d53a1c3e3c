-- certificates_latest: the newest accepted disability-certificate snapshot of each county,
-- with whether the certificate makes its holder eligible for the care subsidy
-- (一/二级, or 三/四级 for 智力(5)/精神(6) disabilities).
SELECT
    c.*,
    c.disability_level_code IN (1, 2)
        OR (c.disability_level_code IN (3, 4) AND c.disability_category_code IN (5, 6)) AS severe
FROM stg_disability_cert AS c
WHERE c.is_latest
