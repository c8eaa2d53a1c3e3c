-- R06 duplicate_enrollment (review, 橙)
-- Policy basis: a person is assisted through one household in one place; being 在保 twice means a
-- benefit may be paid twice.
-- Fires: the same person is 在保 in two or more households, or in two counties, on the latest roster
--   snapshots of the counties.
-- One flag per continuing overlap: the period stays while both enrolments last; an overlap that ends and
--   later starts again (another later enrolment) is a new flag.
-- Period: the month the later enrolment began (when the overlap started).
-- Evidence: the months of the overlap and each enrolment (county, pseudonymous household key, assistance
--   type, enrolled_on, file, row).
WITH active AS (
    SELECT * FROM roster_latest WHERE active
),
doubled AS (
    SELECT id_number
    FROM active
    GROUP BY id_number
    HAVING count(DISTINCT (roster_county, household_id)) > 1
)
SELECT
    'R06' AS rule_id, 'person' AS subject_type, a.id_number AS subject_id, NULL AS subject_county,
    min(a.roster_county) AS county_code, strftime(max(a.enrolled_on), '%Y-%m') AS period, '橙' AS level,
    to_json(struct_pack(
        -- the months the overlap has lasted, up to the as-of month (one flag while it lasts)
        months := list_transform(generate_series(date_trunc('month', max(a.enrolled_on)), date_trunc('month', $as_of::DATE), INTERVAL 1 MONTH),
                                 lambda m: strftime(m, '%Y-%m')),
        enrolments := list(struct_pack(county := a.roster_county, household_key := pkey('household:' || a.roster_county || ':' || a.household_id),
                                       assistance_type := a.assistance_type, enrolled_on := a.enrolled_on,
                                       feed := 'civil_roster', file := a.source_file, "row" := a.source_row)
                           ORDER BY a.roster_county, a.enrolled_on, a.source_row)
    )) AS evidence,
    list(DISTINCT 'assistance:' || a.assistance_type) AS substance
FROM active AS a
JOIN doubled USING (id_number)
GROUP BY a.id_number
