-- R05 income_above_standard (review, 黄)
-- Policy basis: a 低保 household whose members' earned income lifts it above the 低保 standard leaves
-- 低保 after an employment grace period (就业渐退).
-- Fires: an 在保 低保 household (latest roster) whose per-capita monthly income from hrss_benefits
--   (城镇职工养老金 + 就业登记工资, summed over members, mean of the last 3 months, months without a
--   record counting as 0, divided by the roster's household size) exceeds the 低保 standard (urban:
--   monthly standard; rural: yearly standard / 12) in every month of a run of consecutive months that
--   ends with the latest month reported by hrss and is longer than the grace period.
--   The series covers every month from the first hrss month on (months before it count as 0), so a
--   run of any length is seen whole, whatever grace period is in force (policy maximum: 36 months).
--   Standards and grace are the county's where the policy file sets them, else the default block's.
-- Period: the first month of that run (stable while the run lasts). Evidence: every month of the run with
--   its per-capita income and standard, household size, and every hrss row of the run (file, row; with
--   the two months before its first month, which the first 3-month mean reads).
WITH households AS (
    SELECT DISTINCT roster_county AS county_code, household_id, household_size, urban_rural
    FROM roster_latest WHERE active AND assistance_type = '低保'
),
members AS (
    SELECT DISTINCT roster_county AS county_code, household_id, id_number
    FROM roster_latest WHERE active AND assistance_type = '低保'
),
bounds AS (
    -- one pass for the first and the latest month reported by hrss
    SELECT min(month) AS first_reported, max(month) AS last_reported
    FROM stg_hrss_benefits WHERE month <= date_trunc('month', $as_of::DATE)
),
last_month AS (
    SELECT last_reported AS m FROM bounds
),
first_month AS (
    -- two months before the first reported month, so that the first 3-month mean has its zeros;
    -- at most ten years back (a mistyped year must not make the series explode)
    SELECT greatest(first_reported - INTERVAL 2 MONTH, last_reported - INTERVAL 122 MONTH) AS m
    FROM bounds
),
months AS (
    SELECT unnest(generate_series((SELECT m FROM first_month), (SELECT m FROM last_month), INTERVAL 1 MONTH))::DATE AS month
),
member_rows AS (
    -- the earned-income rows of the members, read once for the series and for the evidence
    SELECT mb.county_code, mb.household_id, h.month, h.item, h.amount, h.source_file, h.source_row
    FROM members AS mb
    JOIN stg_hrss_benefits AS h USING (id_number)
    WHERE h.item IN ('城镇职工养老金', '就业登记工资') AND h.month <= (SELECT m FROM last_month)
),
income AS (
    SELECT county_code, household_id, month, sum(amount) AS amount
    FROM member_rows
    GROUP BY ALL
),
monthly AS (
    SELECT hh.county_code, hh.household_id, hh.household_size, hh.urban_rural, m.month,
           coalesce(i.amount, 0) AS amount
    FROM households AS hh CROSS JOIN months AS m
    LEFT JOIN income AS i ON i.county_code = hh.county_code AND i.household_id = hh.household_id AND i.month = m.month
    WHERE hh.household_id IN (SELECT household_id FROM income)
),
rolling AS (
    SELECT *,
           avg(amount) OVER (PARTITION BY county_code, household_id ORDER BY month ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)
               / household_size AS per_capita
    FROM monthly
),
judged AS (
    SELECT r.*, CASE WHEN r.urban_rural = '城市' THEN coalesce(p.urban_dibao_standard_monthly, d.urban_dibao_standard_monthly)
                     ELSE coalesce(p.rural_dibao_standard_yearly, d.rural_dibao_standard_yearly) / 12 END AS standard,
           coalesce(p.employment_grace_months, d.employment_grace_months) AS grace
    FROM rolling AS r
    LEFT JOIN policy AS p ON p.county_code = r.county_code
    CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS d
    WHERE r.month >= (SELECT m FROM first_month) + INTERVAL 2 MONTH
),
runs AS (
    -- months since the last month at or below the standard, counted back from the latest month
    SELECT county_code, household_id, household_size, any_value(grace) AS grace,
           max(month) FILTER (WHERE per_capita <= standard) AS last_below,
           min(month) AS first_month,
           list(struct_pack(month := strftime(month, '%Y-%m'), per_capita_income := round(per_capita, 2), standard := round(standard, 2))
                ORDER BY month) AS series
    FROM judged GROUP BY county_code, household_id, household_size
),
firing AS (
    SELECT *,
           coalesce(last_below + INTERVAL 1 MONTH, first_month)::DATE AS run_start,
           date_diff('month', coalesce(last_below + INTERVAL 1 MONTH, first_month)::DATE, (SELECT m FROM last_month)) + 1 AS run_months
    FROM runs
),
run_rows AS (
    -- every 人社 row of the run (and of the two months before its first, which its first 3-month mean reads)
    SELECT m.county_code, m.household_id,
           list(DISTINCT m.item ORDER BY m.item) AS items,
           list(struct_pack(feed := 'hrss_benefits', file := m.source_file, "row" := m.source_row,
                            month := strftime(m.month, '%Y-%m'), item := m.item, amount := m.amount)
                ORDER BY m.month, m.source_file, m.source_row) AS rows
    FROM member_rows AS m
    JOIN firing AS f USING (county_code, household_id)
    WHERE f.run_months > f.grace AND m.month >= f.run_start - INTERVAL 2 MONTH
    GROUP BY ALL
)
SELECT
    'R05' AS rule_id, 'household' AS subject_type, f.household_id AS subject_id, f.county_code AS subject_county,
    f.county_code, strftime(f.run_start, '%Y-%m') AS period, '黄' AS level,
    to_json(struct_pack(
        months_above_standard := f.run_months,
        grace_months := f.grace,
        household_size := f.household_size,
        months := list_transform(list_filter(f.series, lambda s: s.month >= strftime(f.run_start, '%Y-%m')), lambda s: s.month),
        monthly := list_filter(f.series, lambda s: s.month >= strftime(f.run_start, '%Y-%m')),
        income_rows := coalesce(rr.rows, [])
    )) AS evidence,
    list_transform(coalesce(rr.items, []), lambda i: 'source:hrss_benefits:' || i) AS substance
FROM firing AS f
LEFT JOIN run_rows AS rr USING (county_code, household_id)
WHERE f.run_months > f.grace
