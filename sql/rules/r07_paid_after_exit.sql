-- R07 paid_after_exit (review, 橙)
-- Policy basis: 低保金 and 特困供养金 stop with the household's 停保; a payment for a later month must
-- be verified (and, if confirmed, recovered).
-- Fires: a 低保金 or 特困供养金 payment for a month after the month of the 停保日期 of the payee's
--   household on the latest roster, when the payee is not 在保 in any household on the latest rosters.
-- Period: the month of 停保. Evidence: the roster row (停保日期, file, row) and each payment after it.
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
paid_after AS (
    SELECT s.id_number,
           list(struct_pack(feed := 'subsidy_payments', file := p.source_file, "row" := p.source_row,
                            pay_month := strftime(p.pay_month, '%Y-%m'), subsidy_type := p.subsidy_type,
                            amount := p.amount)
                ORDER BY p.pay_month, p.source_file, p.source_row) AS payments
    FROM latest_stop AS s
    JOIN stg_subsidy_payments AS p
      ON p.id_number = s.id_number
     AND p.subsidy_type IN ('低保金', '特困供养金')
     AND date_trunc('month', p.pay_month) > date_trunc('month', s.ended_on)
     AND p.pay_month <= $as_of::DATE
    GROUP BY s.id_number
)
SELECT
    'R07' AS rule_id, 'person' AS subject_type, s.id_number AS subject_id, NULL AS subject_county,
    s.roster_county AS county_code, strftime(s.ended_on, '%Y-%m') AS period, '橙' AS level,
    to_json(struct_pack(
        ended_on := s.ended_on,
        roster := struct_pack(feed := 'civil_roster', file := s.source_file, "row" := s.source_row),
        payments_after_exit := pa.payments
    )) AS evidence
FROM latest_stop AS s
JOIN paid_after AS pa USING (id_number)
