-- R04 duplicate_care_benefit (review, 橙)
-- Policy basis: 重度残疾人护理补贴 and the work-injury insurance care allowance (工伤保险生活护理费)
-- pay for the same need; a person should not receive both for the same month.
-- Fires: both paid to the same person for the same month.
-- One flag per continuous run (docs/rules.md "Runs"): months in which both were paid; a month with the
--   care subsidy alone ends the run, as does a gap of more than $run_gap_months months without it.
-- Period: the first month of the run. Evidence: every affected month, the care subsidy paid in them
--   (amount_to_recover: the one of the two that civil affairs pays and may recover) and both payments
--   of every month (amount, file, row).
WITH care AS (
    SELECT id_number, county_code, date_trunc('month', pay_month)::DATE AS month, amount, source_file, source_row
    FROM stg_subsidy_payments
    WHERE subsidy_type = '重度残疾人护理补贴' AND pay_month <= $as_of::DATE AND id_number IS NOT NULL
),
injury AS (
    SELECT h.id_number, h.month, h.amount, h.source_file, h.source_row
    FROM stg_hrss_benefits AS h
    WHERE h.item = '工伤保险生活护理费' AND h.id_number IN (SELECT id_number FROM care)
),
months AS (
    SELECT c.id_number, c.month, bool_or(i.id_number IS NOT NULL) AS hit
    FROM care AS c
    LEFT JOIN (SELECT DISTINCT id_number, month FROM injury) AS i
      ON i.id_number = c.id_number AND i.month = c.month
    GROUP BY c.id_number, c.month
),
ordered AS (
    SELECT *, lag(month) OVER w AS prev_month, lag(hit) OVER w AS prev_hit
    FROM months WINDOW w AS (PARTITION BY id_number ORDER BY month)
),
runs AS (
    SELECT id_number, month,
           sum(CASE WHEN prev_month IS NULL OR NOT prev_hit
                         OR date_diff('month', prev_month, month) > $run_gap_months + 1 THEN 1 ELSE 0 END)
               OVER (PARTITION BY id_number ORDER BY month) AS run_no
    FROM ordered WHERE hit
),
care_runs AS (
    SELECT r.id_number, r.run_no, min(c.county_code) AS county_code, min(r.month) AS first_month,
           list(DISTINCT strftime(r.month, '%Y-%m') ORDER BY strftime(r.month, '%Y-%m')) AS months,
           sum(c.amount) AS amount_to_recover,
           list(struct_pack(feed := 'subsidy_payments', file := c.source_file, "row" := c.source_row,
                            pay_month := strftime(c.month, '%Y-%m'), amount := c.amount)
                ORDER BY c.month, c.source_file, c.source_row) AS care_subsidy
    FROM runs AS r JOIN care AS c USING (id_number, month)
    GROUP BY r.id_number, r.run_no
),
injury_runs AS (
    SELECT r.id_number, r.run_no, sum(i.amount) AS amount,
           list(struct_pack(feed := 'hrss_benefits', file := i.source_file, "row" := i.source_row,
                            month := strftime(i.month, '%Y-%m'), amount := i.amount)
                ORDER BY i.month, i.source_file, i.source_row) AS work_injury_care
    FROM runs AS r JOIN injury AS i USING (id_number, month)
    GROUP BY r.id_number, r.run_no
)
SELECT
    'R04' AS rule_id, 'person' AS subject_type, c.id_number AS subject_id, NULL AS subject_county,
    c.county_code, strftime(c.first_month, '%Y-%m') AS period, '橙' AS level,
    to_json(struct_pack(
        months := c.months,
        amount_to_recover := c.amount_to_recover,
        work_injury_care_amount := i.amount,
        care_subsidy := c.care_subsidy,
        work_injury_care := i.work_injury_care
    )) AS evidence,
    ['benefit:重度残疾人护理补贴', 'benefit:工伤保险生活护理费'] AS substance,
    list_transform(c.months, lambda m: 'R04|person||' || c.id_number || '|' || m) AS legacy_ids
FROM care_runs AS c
JOIN injury_runs AS i USING (id_number, run_no)
