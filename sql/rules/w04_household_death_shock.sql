-- W04 household_death_shock (early warning, 黄)
-- Policy basis: the death of a working-age member takes away a household's earner; low-income and
-- monitored households should be visited after such a shock.
-- Fires: a person aged death_shock_age_min..death_shock_age_max at death (age from the ID number's birth
--   date), died within the recent window (earliest reported date), who at the time of death was a member
--   of a civil-roster household (enrolled on or before the death, not stopped before it) or of a monitored
--   rural household. The recent window and the ages are the household's county's where the policy file
--   sets them, else the default block's.
-- Period: the month of death. Subject: the household. Evidence: age, death date and reports, household kind and
--   the roster or rural-monitoring row that made the member's household low-income or monitored (feed, file, row).
WITH bounds AS (
    -- the widest window and ages of any county: a cheap first cut before each county's own values
    SELECT max(recent_window_days) AS window_days, min(death_shock_age_min) AS age_min, max(death_shock_age_max) AS age_max
    FROM policy
),
born AS (
    -- the birth date is in the (normalised, 18-character) ID number
    SELECT d.*, strptime(substr(d.id_number, 7, 8), '%Y%m%d')::DATE AS birth_date
    FROM deaths_by_person AS d
),
recent_deaths AS (
    SELECT d.* EXCLUDE (birth_date), date_sub('year', d.birth_date, d.died_on) AS age_at_death
    FROM born AS d
    CROSS JOIN bounds AS b
    WHERE d.died_on <= $as_of::DATE
      AND d.died_on > $as_of::DATE - to_days(b.window_days::INTEGER)
      AND date_sub('year', d.birth_date, d.died_on) BETWEEN b.age_min AND b.age_max
),
member_households AS (
    SELECT DISTINCT d.id_number, 'civil' AS source, r.roster_county AS county_code, r.household_id, r.relation,
           'civil roster: ' || r.assistance_type AS kind, 'civil_roster' AS row_feed, r.source_file, r.source_row
    FROM recent_deaths AS d JOIN roster_latest AS r USING (id_number)
    WHERE r.enrolled_on <= d.died_on AND (r.ended_on IS NULL OR r.ended_on >= d.died_on)
    UNION
    SELECT d.id_number, 'rural', r.rural_county, r.rural_household_id, r.relation, 'rural monitoring: 监测户',
           'rural_monitoring', r.source_file, r.source_row
    FROM recent_deaths AS d JOIN rural_latest AS r USING (id_number)
    WHERE r.monitored
),
households AS (
    SELECT h.*
    FROM member_households AS h
    JOIN recent_deaths AS d USING (id_number)
    LEFT JOIN policy AS p ON p.county_code = h.county_code
    CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS pol
    WHERE d.died_on > $as_of::DATE - to_days(coalesce(p.recent_window_days, pol.recent_window_days)::INTEGER)
      AND d.age_at_death BETWEEN coalesce(p.death_shock_age_min, pol.death_shock_age_min)
                             AND coalesce(p.death_shock_age_max, pol.death_shock_age_max)
)
SELECT
    'W04' AS rule_id, 'household' AS subject_type, h.household_id AS subject_id, h.county_code AS subject_county,
    h.county_code, strftime(d.died_on, '%Y-%m') AS period, '黄' AS level,
    to_json(struct_pack(
        member_age_at_death := d.age_at_death, member_relation := h.relation, died_on := d.died_on,
        household := h.kind,
        household_row := struct_pack(feed := h.row_feed, file := h.source_file, "row" := h.source_row),
        death_reports := d.reports
    )) AS evidence
FROM recent_deaths AS d
JOIN households AS h USING (id_number)
