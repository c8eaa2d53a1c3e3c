-- W03 monitoring_uncovered (early warning, 红)
-- Policy basis: a monitored household (防止返贫监测户) whose income is below the rural 低保 standard
-- is eligible for 低保; if no member receives it, the safety net has a gap (应保尽保).
-- Fires: a 监测户 on the latest rural-monitoring snapshot whose risk is not eliminated, whose annual
--   per-capita net income is below the rural 低保 standard in force, and none of whose members is 在保
--   on the latest civil roster. Unknown is not absent: a household one of whose members has a quarantined
--   row in the newest civil roster of a county is not assessable (counted, not flagged).
-- Period: the month the household was identified for monitoring.
-- Evidence: income, standard, members count, risk type, file and rows.
WITH monitored AS (
    SELECT * FROM rural_latest WHERE monitored
),
covered AS (
    SELECT DISTINCT m.rural_county, m.rural_household_id
    FROM monitored AS m JOIN roster_latest AS r USING (id_number)
    WHERE r.active
),
unknown AS (
    -- unknown is not absent: a member's row in the newest civil roster of a county was quarantined
    SELECT DISTINCT m.rural_county, m.rural_household_id
    FROM monitored AS m
    WHERE m.id_number IN (SELECT id_number FROM unassessable WHERE feed = 'civil_roster')
),
households AS (
    SELECT rural_county, rural_household_id,
           min(annual_net_income_per_capita) AS income, min(identified_on) AS identified_on,
           min(risk_type) AS risk_type, min(monitoring_category) AS category, count(*) AS members,
           list(struct_pack(feed := 'rural_monitoring', file := source_file, "row" := source_row) ORDER BY source_row) AS rows
    FROM monitored GROUP BY rural_county, rural_household_id
)
SELECT
    'W03' AS rule_id, 'household' AS subject_type, h.rural_household_id AS subject_id, h.rural_county AS subject_county,
    h.rural_county AS county_code, coalesce(strftime(h.identified_on, '%Y-%m'), 'unknown') AS period, '红' AS level,
    to_json(struct_pack(
        annual_income_per_capita := h.income,
        rural_dibao_standard_yearly := coalesce(p.rural_dibao_standard_yearly, d.rural_dibao_standard_yearly),
        members := h.members, risk_type := h.risk_type, monitoring_category := h.category,
        identified_on := h.identified_on, members_on_civil_roster := 0, rows := h.rows
    )) AS evidence
FROM households AS h
LEFT JOIN policy AS p ON p.county_code = h.rural_county
CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS d
WHERE h.income < coalesce(p.rural_dibao_standard_yearly, d.rural_dibao_standard_yearly)
  AND (h.rural_county, h.rural_household_id) NOT IN (SELECT (rural_county, rural_household_id) FROM covered)
  AND (h.rural_county, h.rural_household_id) NOT IN (SELECT (rural_county, rural_household_id) FROM unknown)
UNION ALL BY NAME
-- households not assessable: they would fire, but a member's civil-roster row was quarantined
SELECT 'W03' AS rule_id, 'household' AS subject_type, h.rural_household_id AS subject_id, h.rural_county AS subject_county,
       h.rural_county AS county_code, '红' AS level, true AS not_assessable
FROM households AS h
LEFT JOIN policy AS p ON p.county_code = h.rural_county
CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS d
WHERE h.income < coalesce(p.rural_dibao_standard_yearly, d.rural_dibao_standard_yearly)
  AND (h.rural_county, h.rural_household_id) NOT IN (SELECT (rural_county, rural_household_id) FROM covered)
  AND (h.rural_county, h.rural_household_id) IN (SELECT (rural_county, rural_household_id) FROM unknown)
