-- R07 paid_after_exit (review, 橙)
-- Policy basis: 低保金 and 特困供养金 stop with the household's 停保; a payment for a later month must
-- be verified (and, if confirmed, recovered).
-- Fires: a 低保金 or 特困供养金 payment for a month after the month of the 停保日期 of the payee's
--   household on the latest roster, when the payee is not 在保 in any household on the latest rosters.
-- Subject (rules.md "Subjects"): the household for 低保金 (granted, stopped and recovered per household:
--   payments to any of its members count together), the person for 特困供养金; each payee is named in
--   the evidence by pseudonymous key.
-- One flag per continuous run (docs/rules.md "Runs"): months paid after the exit, a run broken by more
--   than $run_gap_months months without a payment.
-- Period: the first month of the run. Evidence: the 停保日期, the roster rows (file, row), every affected
--   month, the total paid in them (amount_to_recover), the payees and every payment (month, type,
--   amount, payee, file, row).
WITH stopped AS (
    SELECT id_number, roster_county, household_id, ended_on, source_file, source_row
    FROM roster_latest
    WHERE status = '停保' AND ended_on IS NOT NULL
      AND id_number NOT IN (SELECT id_number FROM roster_latest WHERE active)
),
latest_stop AS (
    SELECT * FROM stopped
    QUALIFY row_number() OVER (PARTITION BY id_number ORDER BY ended_on DESC, source_file, source_row) = 1
),
paid AS (
    SELECT s.id_number, s.roster_county, s.household_id, s.ended_on,
           s.source_file AS roster_file, s.source_row AS roster_row,
           p.subsidy_type, date_trunc('month', p.pay_month)::DATE AS month, p.amount,
           p.source_file, p.source_row,
           CASE WHEN p.subsidy_type = '低保金' THEN 'household' ELSE 'person' END AS subject_type,
           CASE WHEN p.subsidy_type = '低保金' THEN s.household_id ELSE s.id_number END AS subject_id,
           CASE WHEN p.subsidy_type = '低保金' THEN s.roster_county END AS subject_county
    FROM latest_stop AS s
    JOIN stg_subsidy_payments AS p
      ON p.id_number = s.id_number
     AND p.subsidy_type IN ('低保金', '特困供养金')
     AND date_trunc('month', p.pay_month) > date_trunc('month', s.ended_on)
     AND p.pay_month <= $as_of::DATE
),
months AS (
    SELECT DISTINCT subject_type, subject_id, subject_county, subsidy_type, month FROM paid
),
ordered AS (
    SELECT *, lag(month) OVER (PARTITION BY subject_type, subject_id, subject_county, subsidy_type ORDER BY month) AS prev_month
    FROM months
),
runs AS (
    SELECT subject_type, subject_id, subject_county, subsidy_type, month,
           sum(CASE WHEN prev_month IS NULL OR date_diff('month', prev_month, month) > $run_gap_months + 1 THEN 1 ELSE 0 END)
               OVER (PARTITION BY subject_type, subject_id, subject_county, subsidy_type ORDER BY month) AS run_no
    FROM ordered
),
in_run AS (
    SELECT p.*, r.run_no
    FROM paid AS p
    JOIN runs AS r
      ON r.subject_type = p.subject_type AND r.subject_id = p.subject_id
     AND r.subject_county IS NOT DISTINCT FROM p.subject_county AND r.subsidy_type = p.subsidy_type AND r.month = p.month
),
flagged AS (
    SELECT subject_type, subject_id, subject_county, subsidy_type, run_no,
           min(roster_county) AS county_code, min(month) AS first_month, max(ended_on) AS ended_on,
           list(DISTINCT strftime(month, '%Y-%m') ORDER BY strftime(month, '%Y-%m')) AS months,
           sum(amount) AS amount_to_recover,
           list_sort(list(DISTINCT pkey(id_number))) AS payees,
           list_sort(list(DISTINCT 'R07|person||' || id_number || '|' || strftime(ended_on, '%Y-%m'))) AS legacy_ids,
           list(DISTINCT struct_pack(feed := 'civil_roster', file := roster_file, "row" := roster_row,
                                     household_key := pkey('household:' || roster_county || ':' || household_id),
                                     payee_key := pkey(id_number), ended_on := ended_on)) AS roster,
           list(struct_pack(feed := 'subsidy_payments', file := source_file, "row" := source_row,
                            pay_month := strftime(month, '%Y-%m'), subsidy_type := subsidy_type,
                            amount := amount, payee_key := pkey(id_number))
                ORDER BY month, source_file, source_row) AS payments
    FROM in_run
    GROUP BY subject_type, subject_id, subject_county, subsidy_type, run_no
)
SELECT
    'R07' AS rule_id, f.subject_type, f.subject_id, f.subject_county,
    f.county_code, strftime(f.first_month, '%Y-%m') AS period, '橙' AS level,
    to_json(struct_pack(
        ended_on := f.ended_on,
        subsidy_type := f.subsidy_type,
        months := f.months,
        amount_to_recover := f.amount_to_recover,
        payees := f.payees,
        roster := list_sort(f.roster),
        payments_after_exit := f.payments
    )) AS evidence,
    ['benefit:' || f.subsidy_type] AS substance,
    f.legacy_ids
FROM flagged AS f
