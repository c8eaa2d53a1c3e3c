-- R03 living_subsidy_ineligible (review, 橙)
-- Policy basis: 困难残疾人生活补贴 is for certificate holders in 低保 households (and, where the
-- county's policy says so, 低保边缘 households).
-- Fires: a living-subsidy payment for a month in which the person held no certificate 正常 during the
--   month (as in R02), or was not a member of a qualifying household during the month. Membership is
--   read from the latest roster: enrolled by the month's end and not stopped before the month began.
-- Period: the payment month. Evidence: the payment, the certificates and the roster rows considered.
WITH living AS (
    SELECT p.*, coalesce(pol.living_subsidy_includes_dibao_edge, dflt.living_subsidy_includes_dibao_edge) AS include_edge
    FROM stg_subsidy_payments AS p
    LEFT JOIN policy AS pol ON pol.county_code = p.county_code
    CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS dflt
    WHERE p.subsidy_type = '困难残疾人生活补贴' AND p.pay_month <= $as_of::DATE
),
cert_ok AS (
    SELECT DISTINCT p.payment_id
    FROM living AS p JOIN certificates_latest AS c USING (id_number)
    WHERE p.pay_month BETWEEN c.first_valid_month AND coalesce(c.last_valid_month, p.pay_month)
),
household_ok AS (
    SELECT DISTINCT p.payment_id
    FROM living AS p JOIN roster_latest AS r USING (id_number)
    WHERE (r.assistance_type = '低保' OR (p.include_edge AND r.assistance_type = '低保边缘'))
      AND r.enrolled_on <= last_day(p.pay_month)
      AND (r.ended_on IS NULL OR r.ended_on >= date_trunc('month', p.pay_month))
      AND (r.status = '在保' OR r.ended_on IS NOT NULL)
),
roster_rows AS (
    SELECT id_number,
           list(struct_pack(feed := 'civil_roster', file := source_file, "row" := source_row,
                            assistance_type := assistance_type, status := status,
                            enrolled_on := enrolled_on, ended_on := ended_on)
                ORDER BY source_file, source_row) AS roster
    FROM roster_latest GROUP BY id_number
)
SELECT
    'R03' AS rule_id, 'person' AS subject_type, p.id_number AS subject_id, NULL AS subject_county,
    p.county_code, strftime(p.pay_month, '%Y-%m') AS period, '橙' AS level,
    to_json(struct_pack(
        no_valid_certificate := c.payment_id IS NULL,
        no_qualifying_household := h.payment_id IS NULL,
        payment := struct_pack(feed := 'subsidy_payments', file := p.source_file, "row" := p.source_row,
                               pay_month := strftime(p.pay_month, '%Y-%m'), amount := p.amount),
        roster := coalesce(rr.roster, [])
    )) AS evidence
FROM living AS p
LEFT JOIN cert_ok AS c USING (payment_id)
LEFT JOIN household_ok AS h USING (payment_id)
LEFT JOIN roster_rows AS rr USING (id_number)
WHERE c.payment_id IS NULL OR h.payment_id IS NULL
