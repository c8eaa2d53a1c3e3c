-- household_timeline_claims: the large medical claims of ONE medical_claims part (one delivered file):
-- one event per settlement whose out-of-pocket cost (个人自付, what W01 adds up) reaches the policy's
-- medical_yellow_amount of the claim's insured county (the default block's where the county has none),
-- in force on the publication's day. Computed once per part and policy value (lowincome/marts.py).
-- Input: `part` (identified staging rows), `yellow` (county_code, medical_yellow_amount; '*' = default).
WITH imports AS (
    SELECT id_number, county_code, settled_on, visit_type, out_of_pocket, source_file, source_row
    FROM part
    WHERE id_number IS NOT NULL AND settled_on IS NOT NULL
),
logic AS (
    SELECT c.*
    FROM imports AS c
    LEFT JOIN yellow AS y ON y.county_code = c.county_code
    CROSS JOIN (SELECT medical_yellow_amount FROM yellow WHERE county_code = '*') AS d
    WHERE c.out_of_pocket >= coalesce(y.medical_yellow_amount, d.medical_yellow_amount)
),
keys AS (
    SELECT v, pkey(v) AS k FROM (SELECT DISTINCT id_number AS v FROM logic)
)
SELECT k.k AS person_key, l.settled_on AS event_date, 50 AS event_rank, '医保' AS department,
       'medical_claims' AS feed, 'large_claim' AS event, '大额医疗费用' AS event_zh, l.visit_type AS category,
       l.out_of_pocket::DOUBLE AS amount, NULL::VARCHAR AS flag_id, l.source_file, l.source_row, 1::BIGINT AS source_rows
FROM logic AS l
JOIN keys AS k ON k.v = l.id_number
ORDER BY person_key, event_date, source_row
