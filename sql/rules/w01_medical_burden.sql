-- W01 medical_burden (early warning, level by burden)
-- Policy basis: catastrophic medical spending is the first cause of falling (back) into poverty;
-- 医疗救助 and 低保 should reach households whose out-of-pocket costs are large (应保尽保).
-- Fires: out-of-pocket cost (个人自付) of claims settled in the look-back window (as-of minus
--   medical_lookback_days, exclusive, to as-of, inclusive), summed per household (civil roster household,
--   else rural monitoring household, else the person alone), reaches:
--   红: >= medical_red_share of the household's annual income, or >= medical_red_amount;
--   橙: >= medical_orange_share, or >= medical_orange_amount; 黄: >= medical_yellow_share, or >= medical_yellow_amount.
--   Annual income = the roster's monthly per-capita income x household size x 12 (civil) or the annual
--   per-capita net income x members (rural).
--   A person on no roster (proactive discovery: income unknown, so only large sums are worth a visit):
--   红: >= medical_red_amount; 橙: >= proactive_discovery_amount; nothing below.
--   Not raised for 特困 households (their medical costs are covered by 特困供养).
--   Every parameter (window and thresholds) is the county's own where the policy file sets one (the
--   household's county, else the claim's insured county), else the default block's.
-- Period: the as-of year (one burden review per household per year; its level follows the costs).
-- Evidence: total out of pocket, income, share, thresholds, the roster or rural-monitoring rows that make
--   the household low-income or monitored (feed, file, row), and the largest claims (up to 20) with file and row.
WITH windows AS (
    -- the look-back windows in force in any county (usually one)
    SELECT DISTINCT coalesce(p.medical_lookback_days, d.medical_lookback_days) AS window_days
    FROM policy AS p
    CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS d
),
person_totals AS (
    -- one pass over the claims, totalled per person, insured county and window before any join:
    -- the history's claims are many, the persons few
    SELECT c.id_number, c.county_code, w.window_days, sum(c.out_of_pocket) AS out_of_pocket, count(*) AS claims
    FROM stg_medical_claims AS c
    CROSS JOIN windows AS w
    WHERE c.id_number IS NOT NULL
      AND c.settled_on <= $as_of::DATE
      AND c.settled_on > $medical_window_start::DATE  -- the longest window: older parts are skipped unread
      AND c.settled_on > $as_of::DATE - to_days(w.window_days::INTEGER)
    GROUP BY c.id_number, c.county_code, w.window_days
),
window_claims AS (
    -- each person's totals in the window of their county (the household's, else the claim's insured county)
    SELECT t.*, h.household_annual_income,
           CASE WHEN h.id_number IS NULL THEN 'person' ELSE 'household' END AS subject_type,
           CASE WHEN h.id_number IS NULL THEN t.id_number ELSE h.household_id END AS subject_id,
           CASE WHEN h.id_number IS NULL THEN NULL ELSE h.county_code END AS subject_county,
           coalesce(h.county_code, t.county_code) AS subject_county_code
    FROM person_totals AS t
    LEFT JOIN household_of_person AS h USING (id_number)
    LEFT JOIN policy AS p ON p.county_code = coalesce(h.county_code, t.county_code)
    CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS d
    WHERE t.window_days = coalesce(p.medical_lookback_days, d.medical_lookback_days)
      AND coalesce(h.assistance_type, '') <> '特困'
),
burden AS (
    -- totals per subject; the evidence is gathered only for subjects that fire
    SELECT subject_type, subject_id, subject_county,
           min(subject_county_code) AS county_code,
           min(household_annual_income) AS annual_income,
           sum(out_of_pocket) AS out_of_pocket,
           sum(claims)::BIGINT AS claims
    FROM window_claims
    GROUP BY subject_type, subject_id, subject_county
),
judged AS (
    SELECT b.*,
           CASE WHEN b.annual_income > 0 THEN b.out_of_pocket / b.annual_income END AS share,
           coalesce(p.medical_red_share, d.medical_red_share) AS red_share, coalesce(p.medical_red_amount, d.medical_red_amount) AS red_amount,
           coalesce(p.medical_orange_share, d.medical_orange_share) AS orange_share, coalesce(p.medical_orange_amount, d.medical_orange_amount) AS orange_amount,
           coalesce(p.medical_yellow_share, d.medical_yellow_share) AS yellow_share, coalesce(p.medical_yellow_amount, d.medical_yellow_amount) AS yellow_amount,
           coalesce(p.proactive_discovery_amount, d.proactive_discovery_amount) AS proactive_amount,
           coalesce(p.medical_lookback_days, d.medical_lookback_days) AS window_days
    FROM burden AS b
    LEFT JOIN policy AS p ON p.county_code = b.county_code
    CROSS JOIN (SELECT * FROM policy WHERE county_code = '*') AS d
),
levelled AS (
    SELECT *,
        CASE
            WHEN subject_type = 'person' THEN
                CASE WHEN out_of_pocket >= red_amount THEN '红' WHEN out_of_pocket >= proactive_amount THEN '橙' END
            WHEN share >= red_share OR out_of_pocket >= red_amount THEN '红'
            WHEN share >= orange_share OR out_of_pocket >= orange_amount THEN '橙'
            WHEN share >= yellow_share OR out_of_pocket >= yellow_amount THEN '黄'
        END AS level
    FROM judged
),
firing AS (
    SELECT * FROM levelled WHERE level IS NOT NULL
),
firing_persons AS (
    SELECT w.id_number, w.county_code, w.window_days, w.subject_type, w.subject_id, w.subject_county
    FROM window_claims AS w
    SEMI JOIN firing AS f
      ON f.subject_type = w.subject_type AND f.subject_id = w.subject_id
     AND f.subject_county IS NOT DISTINCT FROM w.subject_county
),
top_claims AS (
    -- the claims behind the firing subjects' totals, read again for them alone
    SELECT m.subject_type, m.subject_id, m.subject_county,
           c.source_file, c.source_row, c.settled_on, c.visit_type, c.out_of_pocket
    FROM stg_medical_claims AS c
    JOIN firing_persons AS m
      ON m.id_number = c.id_number AND m.county_code IS NOT DISTINCT FROM c.county_code
    WHERE c.settled_on <= $as_of::DATE
      AND c.settled_on > $medical_window_start::DATE
      AND c.settled_on > $as_of::DATE - to_days(m.window_days::INTEGER)
    QUALIFY row_number() OVER (PARTITION BY m.subject_type, m.subject_id, m.subject_county
                               ORDER BY c.out_of_pocket DESC, c.source_file, c.source_row) <= 20
),
household_rows AS (
    -- the roster or rural-monitoring rows that made each firing household low-income or monitored
    SELECT subject_id, subject_county, flatten(list(rows)) AS rows
    FROM (
        SELECT r.household_id AS subject_id, r.roster_county AS subject_county,
               list(struct_pack(feed := 'civil_roster', file := r.source_file, "row" := r.source_row,
                                assistance_type := r.assistance_type, status := r.status)
                    ORDER BY r.source_file, r.source_row) AS rows
        FROM roster_latest AS r
        SEMI JOIN firing AS f ON f.subject_type = 'household' AND f.subject_id = r.household_id
                              AND f.subject_county = r.roster_county
        GROUP BY ALL
        UNION ALL
        SELECT r.rural_household_id, r.rural_county,
               list(struct_pack(feed := 'rural_monitoring', file := r.source_file, "row" := r.source_row,
                                assistance_type := r.household_kind, status := CASE WHEN r.monitored THEN '监测中' END)
                    ORDER BY r.source_file, r.source_row)
        FROM rural_latest AS r
        SEMI JOIN firing AS f ON f.subject_type = 'household' AND f.subject_id = r.rural_household_id
                              AND f.subject_county = r.rural_county
        GROUP BY ALL
    )
    GROUP BY ALL
),
largest AS (
    SELECT subject_type, subject_id, subject_county,
           list(struct_pack(feed := 'medical_claims', file := source_file, "row" := source_row, settled_on := settled_on,
                            visit_type := visit_type, out_of_pocket := out_of_pocket)
                ORDER BY out_of_pocket DESC, source_file, source_row) AS largest_claims
    FROM top_claims
    GROUP BY subject_type, subject_id, subject_county
)
SELECT
    'W01' AS rule_id, f.subject_type, f.subject_id, f.subject_county, f.county_code,
    strftime($as_of::DATE, '%Y') AS period, f.level,
    to_json(struct_pack(
        out_of_pocket := f.out_of_pocket,
        household_annual_income := f.annual_income,
        share_of_income := round(f.share, 4),
        claims_in_window := f.claims,
        window_days := f.window_days,
        thresholds := CASE WHEN f.subject_type = 'person'
            THEN to_json(struct_pack(red := struct_pack(amount := f.red_amount),
                                     orange := struct_pack(proactive_discovery_amount := f.proactive_amount)))
            ELSE to_json(struct_pack(red := struct_pack(share := f.red_share, amount := f.red_amount),
                                     orange := struct_pack(share := f.orange_share, amount := f.orange_amount),
                                     yellow := struct_pack(share := f.yellow_share, amount := f.yellow_amount))) END,
        household_rows := coalesce(h.rows, []),
        largest_claims := l.largest_claims
    )) AS evidence,
    ['subject:' || f.subject_type] AS substance
FROM firing AS f
JOIN largest AS l
  ON l.subject_type = f.subject_type AND l.subject_id = f.subject_id
 AND l.subject_county IS NOT DISTINCT FROM f.subject_county
LEFT JOIN household_rows AS h
  ON f.subject_type = 'household' AND h.subject_id = f.subject_id AND h.subject_county = f.subject_county
