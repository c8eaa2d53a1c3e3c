-- certificates_latest: the newest accepted disability-certificate snapshot of each county,
-- with whether the certificate makes its holder eligible for the care subsidy
-- (一/二级, or 三/四级 for 智力(5)/精神(6) disabilities), and the months it was valid in:
-- from the month of issue; a 注销 certificate until the month it was revoked (revoked mid-month
-- still covers that month; without a revocation date it covers none); 迁出 certificates none
-- (the holder is now served by another county). A payment month M is covered when
-- M BETWEEN first_valid_month AND coalesce(last_valid_month, M).
SELECT
    c.*,
    c.disability_level_code IN (1, 2)
        OR (c.disability_level_code IN (3, 4) AND c.disability_category_code IN (5, 6)) AS severe,
    CASE
        WHEN c.certificate_status = '正常'
          OR (c.certificate_status = '注销' AND c.revoked_on IS NOT NULL) THEN date_trunc('month', c.issued_on)::DATE
    END AS first_valid_month,
    CASE WHEN c.certificate_status = '注销' THEN date_trunc('month', c.revoked_on)::DATE END AS last_valid_month
FROM stg_disability_cert AS c
WHERE c.is_latest
