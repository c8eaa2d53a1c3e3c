-- W01 medical_burden (early warning, level by burden)
-- Policy basis: catastrophic medical spending is the first cause of falling (back) into poverty;
-- 医疗救助 and 低保 should reach households whose out-of-pocket costs are large (应保尽保).
-- Fires: out-of-pocket cost (个人自付) of claims settled in the look-back window (as-of minus
--   medical_lookback_days, exclusive, to as-of, inclusive), summed per household (civil roster household,
--   else rural monitoring household, else the person alone), reaches:
--   红: >= medical_red_share of the household's annual income, or >= medical_red_amount;
--   橙: >= medical_orange_share, or >= medical_orange_amount; 黄: >= medical_yellow_share, or >= medical_yellow_amount.
--   Annual income = the roster's monthly per-capita income x household size x 12 (civil) or the annual
--   per-capita net income x members (rural); people on no roster are judged on the amounts only.
--   Not raised for 特困 households (their medical costs are covered by 特困供养).
-- Period: the as-of year (one burden review per household per year; its level follows the costs).
-- Evidence: total out of pocket, income, share, thresholds and the largest claims (up to 20) with file and row.
WITH window_claims AS (
    SELECT c.*, h.household_annual_income,
           CASE WHEN h.household_source = 'person' THEN 'person' ELSE 'household' END AS subject_type,
           CASE WHEN h.household_source = 'person' THEN c.id_number ELSE h.household_id END AS subject_id,
           CASE WHEN h.household_source = 'person' THEN NULL ELSE h.county_code END AS subject_county,
           coalesce(h.county_code, c.county_code) AS subject_county_code
    FROM stg_medical_claims AS c
    JOIN household_of_person AS h USING (id_number)
    CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS d
    WHERE c.settled_on <= $as_of::DATE
      AND c.settled_on > $as_of::DATE - to_days(d.medical_lookback_days::INTEGER)
      AND coalesce(h.assistance_type, '') <> '特困'
),
burden AS (
    SELECT
        subject_type, subject_id, subject_county,
        min(subject_county_code) AS county_code,
        any_value(household_annual_income) AS annual_income,
        sum(out_of_pocket) AS out_of_pocket,
        count(*) AS claims,
        list(struct_pack(feed := 'medical_claims', file := source_file, "row" := source_row, settled_on := settled_on,
                         visit_type := visit_type, out_of_pocket := out_of_pocket)
             ORDER BY out_of_pocket DESC, source_file, source_row)[1:20] AS largest_claims
    FROM window_claims
    GROUP BY subject_type, subject_id, subject_county
),
judged AS (
    SELECT b.*,
           CASE WHEN b.annual_income > 0 THEN b.out_of_pocket / b.annual_income END AS share,
           coalesce(p.medical_red_share, d.medical_red_share) AS red_share, coalesce(p.medical_red_amount, d.medical_red_amount) AS red_amount,
           coalesce(p.medical_orange_share, d.medical_orange_share) AS orange_share, coalesce(p.medical_orange_amount, d.medical_orange_amount) AS orange_amount,
           coalesce(p.medical_yellow_share, d.medical_yellow_share) AS yellow_share, coalesce(p.medical_yellow_amount, d.medical_yellow_amount) AS yellow_amount
    FROM burden AS b
    LEFT JOIN policy AS p ON p.county_code = b.county_code
    CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS d
),
levelled AS (
    SELECT *,
        CASE
            WHEN share >= red_share OR out_of_pocket >= red_amount THEN '红'
            WHEN share >= orange_share OR out_of_pocket >= orange_amount THEN '橙'
            WHEN share >= yellow_share OR out_of_pocket >= yellow_amount THEN '黄'
        END AS level
    FROM judged
)
SELECT
    'W01' AS rule_id, subject_type, subject_id, subject_county, county_code,
    strftime($as_of::DATE, '%Y') AS period, level,
    to_json(struct_pack(
        out_of_pocket := out_of_pocket,
        household_annual_income := annual_income,
        share_of_income := round(share, 4),
        claims_in_window := claims,
        window_days := (SELECT medical_lookback_days FROM policy WHERE county_code = '*'),
        thresholds := struct_pack(red := struct_pack(share := red_share, amount := red_amount),
                                  orange := struct_pack(share := orange_share, amount := orange_amount),
                                  yellow := struct_pack(share := yellow_share, amount := yellow_amount)),
        largest_claims := largest_claims
    )) AS evidence
FROM levelled
WHERE level IS NOT NULL
