-- household_of_person: the household of each person on a latest roster, for rules that add up a household.
-- Civil roster household where the person is on the latest roster (an 在保 household before a
-- 停保 one), else the rural monitoring household. A person on neither roster has no row here and is
-- a household of their own (W01 reads a missing row as "the person alone"): listing everyone the
-- departments mention would mean a pass over every claim, payment and 人社 row of the history.
WITH civil AS (
    SELECT id_number, 'civil' AS household_source, roster_county AS county_code, household_id,
           assistance_type, urban_rural, household_size, monthly_income_per_capita, active,
           row_number() OVER (PARTITION BY id_number ORDER BY active DESC, delivered_on DESC, roster_county, household_id) AS pick
    FROM roster_latest
    WHERE id_number IS NOT NULL
),
rural AS (
    SELECT id_number, 'rural' AS household_source, rural_county AS county_code, rural_household_id AS household_id,
           household_kind, monitored, annual_net_income_per_capita,
           count(*) OVER (PARTITION BY rural_county, rural_household_id) AS members,
           row_number() OVER (PARTITION BY id_number ORDER BY monitored DESC, rural_county, rural_household_id) AS pick
    FROM rural_latest
),
on_a_roster AS (
    SELECT id_number FROM civil
    UNION
    SELECT id_number FROM rural WHERE id_number IS NOT NULL
)
SELECT
    p.id_number,
    coalesce(c.household_source, r.household_source) AS household_source,
    coalesce(c.county_code, r.county_code) AS county_code,
    coalesce(c.household_id, r.household_id) AS household_id,
    c.assistance_type,
    c.active AS civil_active,
    coalesce(r.monitored, false) AS rural_monitored,
    -- annual household income, in yuan, where a roster states it
    CASE
        WHEN c.id_number IS NOT NULL THEN c.monthly_income_per_capita * c.household_size * 12
        WHEN r.id_number IS NOT NULL THEN r.annual_net_income_per_capita * r.members
    END AS household_annual_income
FROM on_a_roster AS p
LEFT JOIN civil AS c ON c.id_number = p.id_number AND c.pick = 1
LEFT JOIN rural AS r ON r.id_number = p.id_number AND r.pick = 1
