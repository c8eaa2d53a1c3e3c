-- R02 care_subsidy_ineligible (review, 橙)
-- Policy basis: 重度残疾人护理补贴 is for holders of a valid certificate of level 一/二级, or 三/四级
-- for 智力/精神 disabilities.
-- Fires: care-subsidy payments for months in which the person held no certificate that was 正常
--   during that month, or whose certificate's level/category is not eligible.
--   A certificate counts for a month when issued by the month's end and either still 正常, or 注销
--   on or after the month's first day (revoked mid-month: still valid that month). 迁出 certificates
--   do not count (the holder is now served by another county). See sql/models/certificates_latest.sql.
--   Not raised for "no certificate" when the person's row in the newest certificate snapshot of a
--   county was quarantined (unknown is not absent: `unassessable`, built by the engine).
-- One flag per continuous run (docs/rules.md "Runs"): the months in which the condition holds, a run
--   broken by a month paid while eligible or by more than $run_gap_months months without a payment.
-- Period: the first month of the run. Evidence: every affected month, the total paid in them
--   (amount_to_recover), every payment (month, amount, file, row) and every certificate of the person
--   (category, level, status, issue and revocation dates, file, row), never the certificate number.
WITH care AS (
    SELECT payment_id, id_number, county_code, pay_month, amount, source_file, source_row
    FROM stg_subsidy_payments
    WHERE subsidy_type = '重度残疾人护理补贴' AND pay_month <= $as_of::DATE AND id_number IS NOT NULL
),
certified AS (
    -- per payment: the certificates valid in the payment month, and whether one makes the payee eligible
    SELECT p.payment_id, bool_or(c.severe) AS eligible, count(*) AS valid_certificates
    FROM care AS p
    JOIN certificates_latest AS c USING (id_number)
    WHERE p.pay_month BETWEEN c.first_valid_month AND coalesce(c.last_valid_month, p.pay_month)
    GROUP BY p.payment_id
),
judged AS (
    SELECT p.*, date_trunc('month', p.pay_month)::DATE AS month,
           coalesce(m.eligible, false) AS eligible, coalesce(m.valid_certificates, 0) AS valid_certificates
    FROM care AS p
    LEFT JOIN certified AS m USING (payment_id)
    -- unknown is not absent: no valid certificate, but the person's certificate row was quarantined
    WHERE NOT (coalesce(m.valid_certificates, 0) = 0
               AND p.id_number IN (SELECT id_number FROM unassessable WHERE feed = 'disability_cert'))
),
months AS (
    SELECT id_number, month, bool_and(NOT eligible) AS hit FROM judged GROUP BY id_number, month
),
ordered AS (
    SELECT *, lag(month) OVER w AS prev_month, lag(hit) OVER w AS prev_hit
    FROM months WINDOW w AS (PARTITION BY id_number ORDER BY month)
),
runs AS (
    SELECT id_number, month,
           sum(CASE WHEN prev_month IS NULL OR NOT prev_hit
                         OR date_diff('month', prev_month, month) > $run_gap_months + 1 THEN 1 ELSE 0 END)
               OVER (PARTITION BY id_number ORDER BY month) AS run_no
    FROM ordered WHERE hit
),
ineligible AS (
    SELECT j.*, r.run_no,
           CASE WHEN j.valid_certificates = 0 THEN 'no certificate 正常 in the payment month'
                ELSE 'certificate level/category not eligible for the care subsidy' END AS why
    FROM judged AS j JOIN runs AS r USING (id_number, month)
),
all_certs AS (
    -- the evidence: every certificate of each payee who fires (not of every holder)
    SELECT id_number,
           list(struct_pack(feed := 'disability_cert', file := source_file, "row" := source_row,
                            category := disability_category, level := disability_level,
                            status := certificate_status, issued_on := issued_on, revoked_on := revoked_on)
                ORDER BY issued_on, source_file, source_row) AS certificates
    FROM certificates_latest
    WHERE id_number IN (SELECT id_number FROM ineligible)
    GROUP BY id_number
),
flagged AS (
    SELECT id_number, run_no, min(county_code) AS county_code, min(month) AS first_month,
           list(DISTINCT strftime(month, '%Y-%m') ORDER BY strftime(month, '%Y-%m')) AS months,
           sum(amount) AS amount_to_recover,
           list(DISTINCT why ORDER BY why) AS reasons,
           list(struct_pack(feed := 'subsidy_payments', file := source_file, "row" := source_row,
                            pay_month := strftime(month, '%Y-%m'), subsidy_type := '重度残疾人护理补贴',
                            amount := amount, why := why)
                ORDER BY month, source_file, source_row) AS payments
    FROM ineligible GROUP BY id_number, run_no
)
SELECT
    'R02' AS rule_id, 'person' AS subject_type, f.id_number AS subject_id, NULL AS subject_county,
    f.county_code, strftime(f.first_month, '%Y-%m') AS period, '橙' AS level,
    to_json(struct_pack(
        why := f.reasons[1],
        reasons := f.reasons,
        months := f.months,
        amount_to_recover := f.amount_to_recover,
        payments := f.payments,
        certificates := coalesce(a.certificates, [])
    )) AS evidence,
    list_concat(['benefit:重度残疾人护理补贴'], list_transform(f.reasons, lambda w: 'why:' || w)) AS substance,
    list_transform(f.months, lambda m: 'R02|person||' || f.id_number || '|' || m) AS legacy_ids,
    NULL::BOOLEAN AS not_assessable
FROM flagged AS f
LEFT JOIN all_certs AS a USING (id_number)
UNION ALL BY NAME
-- persons not assessable: paid in a month without a valid certificate, while their certificate row was quarantined
SELECT 'R02' AS rule_id, 'person' AS subject_type, p.id_number AS subject_id, NULL AS subject_county,
       min(p.county_code) AS county_code, '橙' AS level, true AS not_assessable
FROM care AS p LEFT JOIN certified AS m USING (payment_id)
WHERE coalesce(m.valid_certificates, 0) = 0
  AND p.id_number IN (SELECT id_number FROM unassessable WHERE feed = 'disability_cert')
  AND p.id_number NOT IN (SELECT id_number FROM ineligible)
GROUP BY p.id_number
