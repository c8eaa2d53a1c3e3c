-- household_timeline_payments: the payment events of ONE subsidy_payments part (one delivered file,
-- its rows already de-duplicated against earlier deliveries): one event per person, payment month and
-- subsidy type, the amounts summed. Computed once per part and kept (lowincome/marts.py): a night
-- computes the parts it delivered, not the history. A month paid in two files is two events, each
-- naming its file; source_row is the first row of the file that the event sums, source_rows how many.
-- Input: `part` (identified staging rows); output keyed by person_key only (households are joined
-- when the timeline is read, so a household change does not rewrite the parts).
WITH imports AS (
    SELECT id_number, pay_month, subsidy_type, amount, source_file, source_row
    FROM part
    WHERE id_number IS NOT NULL AND pay_month IS NOT NULL
),
logic AS (
    SELECT id_number, date_trunc('month', pay_month)::DATE AS event_date, subsidy_type AS category,
           sum(amount)::DOUBLE AS amount, min(source_file) AS source_file, min(source_row) AS source_row,
           count(*) AS source_rows
    FROM imports
    GROUP BY id_number, date_trunc('month', pay_month), subsidy_type
),
keys AS (
    SELECT v, pkey(v) AS k FROM (SELECT DISTINCT id_number AS v FROM logic)
)
SELECT k.k AS person_key, l.event_date, 40 AS event_rank, '民政' AS department, 'subsidy_payments' AS feed,
       'payment' AS event, '待遇发放' AS event_zh, l.category, l.amount, NULL::VARCHAR AS flag_id,
       l.source_file, l.source_row, l.source_rows
FROM logic AS l
JOIN keys AS k ON k.v = l.id_number
ORDER BY person_key, event_date, category
