-- R03 living_subsidy_ineligible (review, 橙)
-- Policy basis: 困难残疾人生活补贴 is for certificate holders in 低保 households (and, where the
-- county's policy says so, 低保边缘 households).
-- Fires: living-subsidy payments for months in which the person held no certificate 正常 during the
--   month (as in R02), or was not a member of a qualifying household during the month. Membership is
--   read from the latest roster: enrolled by the month's end and not stopped before the month began.
--   Unknown is not absent: "no certificate" is not concluded when the person's row in the newest
--   certificate snapshot of a county was quarantined, "no household" not when the person's row in the
--   newest civil roster of a county was; such persons are counted as not assessable (not flagged).
-- One flag per continuous run (docs/rules.md "Runs"), as R02.
-- Period: the first month of the run. Evidence: every affected month, the total paid in them
--   (amount_to_recover), every payment, every certificate of the person looked at, and the roster rows.
WITH living AS (
    SELECT p.*, date_trunc('month', p.pay_month)::DATE AS month,
           coalesce(pol.living_subsidy_includes_dibao_edge, dflt.living_subsidy_includes_dibao_edge) AS include_edge
    FROM stg_subsidy_payments AS p
    LEFT JOIN policy AS pol ON pol.county_code = p.county_code
    CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS dflt
    WHERE p.subsidy_type = '困难残疾人生活补贴' AND p.pay_month <= $as_of::DATE AND p.id_number IS NOT NULL
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
judged AS (
    SELECT p.*,
           c.payment_id IS NULL AS no_cert, h.payment_id IS NULL AS no_household,
           p.id_number IN (SELECT id_number FROM unassessable WHERE feed = 'disability_cert') AS cert_unknown,
           p.id_number IN (SELECT id_number FROM unassessable WHERE feed = 'civil_roster') AS household_unknown
    FROM living AS p
    LEFT JOIN cert_ok AS c USING (payment_id)
    LEFT JOIN household_ok AS h USING (payment_id)
),
known AS (
    SELECT *, no_cert AND NOT cert_unknown AS no_valid_certificate,
           no_household AND NOT household_unknown AS no_qualifying_household,
           (no_cert AND cert_unknown) OR (no_household AND household_unknown) AS unknown
    FROM judged
),
months AS (
    SELECT id_number, month, bool_or(no_valid_certificate OR no_qualifying_household) AS hit
    FROM known GROUP BY id_number, month
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
    SELECT k.*, r.run_no FROM known AS k JOIN runs AS r USING (id_number, month)
),
roster_rows AS (
    -- the evidence: the roster rows of each payee who fires (not of every person on the roster)
    SELECT id_number,
           list(struct_pack(feed := 'civil_roster', file := source_file, "row" := source_row,
                            household_key := pkey('household:' || roster_county || ':' || household_id),
                            assistance_type := assistance_type, status := status,
                            enrolled_on := enrolled_on, ended_on := ended_on)
                ORDER BY source_file, source_row) AS roster
    FROM roster_latest
    WHERE id_number IN (SELECT id_number FROM ineligible)
    GROUP BY id_number
),
certs AS (
    -- the certificates looked at (every certificate of the payee on the latest register), never their number
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
           bool_or(no_valid_certificate) AS no_valid_certificate,
           bool_or(no_qualifying_household) AS no_qualifying_household,
           list(struct_pack(feed := 'subsidy_payments', file := source_file, "row" := source_row,
                            pay_month := strftime(month, '%Y-%m'), subsidy_type := '困难残疾人生活补贴', amount := amount,
                            no_valid_certificate := no_valid_certificate, no_qualifying_household := no_qualifying_household)
                ORDER BY month, source_file, source_row) AS payments
    FROM ineligible GROUP BY id_number, run_no
)
SELECT
    'R03' AS rule_id, 'person' AS subject_type, f.id_number AS subject_id, NULL AS subject_county,
    f.county_code, strftime(f.first_month, '%Y-%m') AS period, '橙' AS level,
    to_json(struct_pack(
        no_valid_certificate := f.no_valid_certificate,
        no_qualifying_household := f.no_qualifying_household,
        months := f.months,
        amount_to_recover := f.amount_to_recover,
        payments := f.payments,
        certificates := coalesce(c.certificates, []),
        roster := coalesce(rr.roster, [])
    )) AS evidence,
    list_concat(['benefit:困难残疾人生活补贴'],
                CASE WHEN f.no_valid_certificate THEN ['why:no_valid_certificate'] ELSE [] END,
                CASE WHEN f.no_qualifying_household THEN ['why:no_qualifying_household'] ELSE [] END) AS substance,
    list_transform(f.months, lambda m: 'R03|person||' || f.id_number || '|' || m) AS legacy_ids,
    NULL::BOOLEAN AS not_assessable
FROM flagged AS f
LEFT JOIN certs AS c USING (id_number)
LEFT JOIN roster_rows AS rr USING (id_number)
UNION ALL BY NAME
-- persons not assessable: a payment the rule cannot judge because a row it would read was quarantined
SELECT 'R03' AS rule_id, 'person' AS subject_type, id_number AS subject_id, NULL AS subject_county,
       min(county_code) AS county_code, '橙' AS level, true AS not_assessable
FROM known WHERE unknown AND id_number NOT IN (SELECT id_number FROM ineligible)
GROUP BY id_number
