-- R01 deceased_still_paid (review, 红)
-- Policy basis: assistance ends with the recipient's death (应退尽退); a payment for a month after
-- the month of death, or an 在保 status on a roster extracted after the death, must be verified.
-- Fires: a person with a death record (公安/殡葬/医学, earliest reported date) who has a payment for a
--   month after the month of death, or is 在保 on any civil-roster snapshot dated after the death.
-- Period: the month of death. Evidence: death reports (source, date, file, row), each payment after the
--   death (month, type, amount, file, row) and each roster snapshot still showing 在保 (date, file, row).
WITH deaths AS (
    SELECT * FROM deaths_by_person WHERE died_on <= $as_of::DATE
),
paid_after AS (
    SELECT p.id_number,
           min(p.county_code) AS county_code,  -- paid by two counties: the same one every night
           list(struct_pack(feed := 'subsidy_payments', file := p.source_file, "row" := p.source_row,
                            pay_month := strftime(p.pay_month, '%Y-%m'), subsidy_type := p.subsidy_type,
                            amount := p.amount)
                ORDER BY p.pay_month, p.source_file, p.source_row) AS payments
    FROM stg_subsidy_payments AS p
    JOIN deaths AS d USING (id_number)
    WHERE date_trunc('month', p.pay_month) > date_trunc('month', d.died_on)
    GROUP BY p.id_number
),
rostered_after AS (
    SELECT r.id_number,
           min(r.file_county) AS county_code,
           list(struct_pack(feed := 'civil_roster', file := r.source_file, "row" := r.source_row,
                            roster_date := r.delivered_on, status := r.status)
                ORDER BY r.delivered_on, r.source_file, r.source_row) AS rosters
    FROM stg_civil_roster AS r
    JOIN deaths AS d USING (id_number)
    WHERE r.status = '在保' AND r.delivered_on > d.died_on
    GROUP BY r.id_number
)
SELECT
    'R01' AS rule_id,
    'person' AS subject_type,
    d.id_number AS subject_id,
    NULL AS subject_county,
    coalesce(ra.county_code, pa.county_code) AS county_code,
    strftime(d.died_on, '%Y-%m') AS period,
    '红' AS level,
    to_json(struct_pack(
        died_on := d.died_on,
        death_reports := d.reports,
        payments_after_death := coalesce(pa.payments, []),
        rosters_after_death := coalesce(ra.rosters, [])
    )) AS evidence,
    -- the kinds of fact (rules.md Lifecycle): each benefit type paid after the death, and the roster
    list_concat(coalesce(list_transform(pa.payments, lambda p: 'benefit:' || p.subsidy_type), []),
                CASE WHEN ra.id_number IS NOT NULL THEN ['source:civil_roster'] ELSE [] END) AS substance
FROM deaths AS d
LEFT JOIN paid_after AS pa USING (id_number)
LEFT JOIN rostered_after AS ra USING (id_number)
WHERE pa.id_number IS NOT NULL OR ra.id_number IS NOT NULL
