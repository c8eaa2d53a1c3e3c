-- person_household: the household each person's events belong to in mart.household_timeline,
-- pseudonymous. The same model the rules use (sql/models/household_of_person.sql): the civil-roster
-- household on the latest roster (an 在保 household before a 停保 one), else the rural-monitoring
-- household. A person on neither roster has no row here and is a household of their own: their
-- events carry household_key = person_key and household_source 'person' (docs/rules.md, "Household
-- of a person"; W01 and mart.household_risk read a missing row the same way).
-- A household's key is computed once, not once per member (the HMAC is the cost).
WITH imports AS (
    SELECT id_number, household_source, county_code, household_id
    FROM household_of_person
    WHERE id_number IS NOT NULL AND household_id IS NOT NULL
),
logic AS (
    SELECT county_code, household_id, pkey('household:' || county_code || ':' || household_id) AS household_key
    FROM (SELECT DISTINCT county_code, household_id FROM imports)
)
SELECT pkey(i.id_number) AS person_key, k.household_key, i.household_source
FROM imports AS i
JOIN logic AS k ON k.county_code IS NOT DISTINCT FROM i.county_code AND k.household_id = i.household_id
ORDER BY person_key
