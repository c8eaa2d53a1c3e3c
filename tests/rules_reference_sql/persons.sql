-- persons: everyone the departments mention, with birth date, sex and age derived
-- from the (normalised, 18-character) ID number as of the run's as-of date.
-- One person key across all feeds: the normalised ID number (pseudonymised on publish).
WITH mentioned AS (
    SELECT id_number FROM stg_civil_roster
    UNION SELECT id_number FROM stg_subsidy_payments
    UNION SELECT id_number FROM stg_rural_monitoring
    UNION SELECT id_number FROM stg_medical_claims
    UNION SELECT id_number FROM stg_disability_cert
    UNION SELECT id_number FROM stg_death_records
    UNION SELECT id_number FROM stg_hrss_benefits
),
derived AS (
    SELECT
        id_number,
        strptime(substr(id_number, 7, 8), '%Y%m%d')::DATE AS birth_date,
        CASE WHEN substr(id_number, 17, 1)::INTEGER % 2 = 1 THEN '男' ELSE '女' END AS sex
    FROM mentioned
    WHERE id_number IS NOT NULL
)
SELECT
    id_number,
    birth_date,
    sex,
    date_sub('year', birth_date, $as_of::DATE) AS age
FROM derived
