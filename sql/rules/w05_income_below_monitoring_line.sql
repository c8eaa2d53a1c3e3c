-- W05 income_below_monitoring_line (early warning, 黄)
-- Policy basis: a household lifted out of poverty (脱贫户) whose income falls below the province's
-- monitoring line should itself be brought under monitoring (防止返贫).
-- Fires: a 脱贫户 (not already a 监测户) on the latest rural-monitoring snapshot whose annual per-capita
--   net income is below monitoring_income_line_yearly.
-- Period: the as-of year (the income figure is annual). Evidence: income, line, file and rows.
WITH households AS (
    SELECT rural_county, rural_household_id,
           min(annual_net_income_per_capita) AS income, count(*) AS members,
           list(struct_pack(feed := 'rural_monitoring', file := source_file, "row" := source_row) ORDER BY source_row) AS rows
    FROM rural_latest
    WHERE household_kind = '脱贫户'
    GROUP BY rural_county, rural_household_id
)
SELECT
    'W05' AS rule_id, 'household' AS subject_type, h.rural_household_id AS subject_id, h.rural_county AS subject_county,
    h.rural_county AS county_code, strftime($as_of::DATE, '%Y') AS period, '黄' AS level,
    to_json(struct_pack(
        annual_income_per_capita := h.income,
        monitoring_income_line_yearly := coalesce(p.monitoring_income_line_yearly, d.monitoring_income_line_yearly),
        members := h.members, rows := h.rows
    )) AS evidence
FROM households AS h
LEFT JOIN policy AS p ON p.county_code = h.rural_county
CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS d
WHERE h.income < coalesce(p.monitoring_income_line_yearly, d.monitoring_income_line_yearly)
