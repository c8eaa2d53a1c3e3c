-- W02 new_severe_disability (early warning, 橙)
-- Policy basis: a newly certified severe disability in a low-income or monitored household usually
-- qualifies for 重度残疾人护理补贴; the warning makes sure the application happens (应保尽保).
-- Fires: a 正常 certificate of level 一/二级 (or 三/四级 智力/精神) issued within the recent window
--   (as-of minus recent_window_days, exclusive, to as-of), whose holder is 在保 on the latest civil roster
--   (any assistance type) or a member of a monitored rural household (监测户, risk not eliminated), and
--   no 重度残疾人护理补贴 has been paid for the month of issue or later.
--   The recent window is the county's (the household's county, else the certificate's) where the policy
--   file sets one, else the default block's.
-- Period: the month of issue. Evidence: the certificate (category, level, issue date, file, row), the household
--   and the roster or rural-monitoring rows that make it low-income or monitored (feed, file, row).
WITH low_income AS (
    SELECT id_number, min(roster_county) AS county_code, 'civil roster: ' || min(assistance_type) AS household,
           list(struct_pack(feed := 'civil_roster', file := source_file, "row" := source_row,
                            household_key := pkey('household:' || roster_county || ':' || household_id))
                ORDER BY source_file, source_row) AS rows
    FROM roster_latest WHERE active GROUP BY id_number
    UNION ALL
    SELECT id_number, min(rural_county), 'rural monitoring: 监测户',
           list(struct_pack(feed := 'rural_monitoring', file := source_file, "row" := source_row,
                            household_key := pkey('household:' || rural_county || ':' || rural_household_id))
                ORDER BY source_file, source_row)
    FROM rural_latest WHERE monitored GROUP BY id_number
),
recent AS (
    -- one row per (certificate, household kind), each judged with its county's window
    SELECT c.*, l.county_code AS household_county, l.household, l.rows AS household_rows
    FROM certificates_latest AS c
    JOIN low_income AS l USING (id_number)
    LEFT JOIN policy AS p ON p.county_code = coalesce(l.county_code, c.county_code)
    CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS d
    WHERE c.certificate_status = '正常' AND c.severe
      AND c.issued_on <= $as_of::DATE
      AND c.issued_on > $as_of::DATE - to_days(coalesce(p.recent_window_days, d.recent_window_days)::INTEGER)
),
paid AS (
    SELECT DISTINCT r.certificate_id
    FROM recent AS r JOIN stg_subsidy_payments AS p USING (id_number)
    WHERE p.subsidy_type = '重度残疾人护理补贴' AND p.pay_month >= date_trunc('month', r.issued_on)
)
SELECT
    'W02' AS rule_id, 'person' AS subject_type, r.id_number AS subject_id, NULL AS subject_county,
    coalesce(min(r.household_county), min(r.county_code)) AS county_code,
    strftime(r.issued_on, '%Y-%m') AS period, '橙' AS level,
    to_json(struct_pack(
        -- two certificates issued the same day: the first by file and row, the same one every night
        certificate := arg_min(struct_pack(feed := 'disability_cert', file := r.source_file, "row" := r.source_row,
                                           category := r.disability_category, level := r.disability_level,
                                           issued_on := r.issued_on),
                               struct_pack(f := r.source_file, n := r.source_row)),
        households := list(DISTINCT r.household ORDER BY r.household),
        household_rows := list_sort(flatten(list(r.household_rows))),
        care_subsidy_paid_since_issue := false
    )) AS evidence
FROM recent AS r
WHERE r.certificate_id NOT IN (SELECT certificate_id FROM paid)
GROUP BY r.id_number, r.issued_on
