-- R04 duplicate_care_benefit (review, 橙)
-- Policy basis: 重度残疾人护理补贴 and the work-injury insurance care allowance (工伤保险生活护理费)
-- pay for the same need; a person should not receive both for the same month.
-- Fires: both paid to the same person for the same month.
-- Period: the month. Evidence: both payments (amount, file, row).
SELECT
    'R04' AS rule_id, 'person' AS subject_type, p.id_number AS subject_id, NULL AS subject_county,
    any_value(p.county_code) AS county_code, strftime(p.pay_month, '%Y-%m') AS period, '橙' AS level,
    to_json(struct_pack(
        care_subsidy := list_sort(list(DISTINCT struct_pack(feed := 'subsidy_payments', file := p.source_file, "row" := p.source_row,
                                                  amount := p.amount))),
        work_injury_care := list_sort(list(DISTINCT struct_pack(feed := 'hrss_benefits', file := h.source_file, "row" := h.source_row,
                                                      amount := h.amount)))
    )) AS evidence
FROM stg_subsidy_payments AS p
JOIN stg_hrss_benefits AS h
  ON h.id_number = p.id_number AND h.month = p.pay_month AND h.item = '工伤保险生活护理费'
WHERE p.subsidy_type = '重度残疾人护理补贴' AND p.pay_month <= $as_of::DATE
GROUP BY p.id_number, p.pay_month
