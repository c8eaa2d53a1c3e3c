-- R02 care_subsidy_ineligible (review, 橙)
-- Policy basis: 重度残疾人护理补贴 is for holders of a valid certificate of level 一/二级, or 三/四级
-- for 智力/精神 disabilities.
-- Fires: a care-subsidy payment for a month in which the person held no certificate that was 正常
--   during that month, or whose certificate's level/category is not eligible.
--   A certificate counts for a month when issued by the month's end and either still 正常, or 注销
--   on or after the month's first day (revoked mid-month: still valid that month). 迁出 certificates
--   do not count (the holder is now served by another county). See sql/models/certificates_latest.sql.
-- Period: the payment month. Evidence: the payment and every certificate of the person (category,
--   level, status, issue and revocation dates, file, row), never the certificate number.
WITH care AS (
    SELECT * FROM stg_subsidy_payments
    WHERE subsidy_type = '重度残疾人护理补贴' AND pay_month <= $as_of::DATE
),
cert_in_month AS (
    SELECT p.payment_id, c.severe,
           struct_pack(feed := 'disability_cert', file := c.source_file, "row" := c.source_row,
                       category := c.disability_category, level := c.disability_level,
                       status := c.certificate_status, issued_on := c.issued_on, revoked_on := c.revoked_on) AS cert
    FROM care AS p
    JOIN certificates_latest AS c USING (id_number)
    WHERE p.pay_month BETWEEN c.first_valid_month AND coalesce(c.last_valid_month, p.pay_month)
),
judged AS (
    SELECT p.*,
           coalesce(bool_or(m.severe), false) AS eligible,
           count(m.cert) AS valid_certificates
    FROM care AS p
    LEFT JOIN cert_in_month AS m USING (payment_id)
    GROUP BY ALL
),
all_certs AS (
    SELECT id_number,
           list(struct_pack(feed := 'disability_cert', file := source_file, "row" := source_row,
                            category := disability_category, level := disability_level,
                            status := certificate_status, issued_on := issued_on, revoked_on := revoked_on)
                ORDER BY issued_on, source_file, source_row) AS certificates
    FROM certificates_latest GROUP BY id_number
)
SELECT
    'R02' AS rule_id, 'person' AS subject_type, j.id_number AS subject_id, NULL AS subject_county,
    j.county_code, strftime(j.pay_month, '%Y-%m') AS period, '橙' AS level,
    to_json(struct_pack(
        why := CASE WHEN j.valid_certificates = 0 THEN 'no certificate 正常 in the payment month'
                    ELSE 'certificate level/category not eligible for the care subsidy' END,
        payment := struct_pack(feed := 'subsidy_payments', file := j.source_file, "row" := j.source_row,
                               pay_month := strftime(j.pay_month, '%Y-%m'), amount := j.amount),
        certificates := coalesce(a.certificates, [])
    )) AS evidence
FROM judged AS j
LEFT JOIN all_certs AS a USING (id_number)
WHERE NOT j.eligible
