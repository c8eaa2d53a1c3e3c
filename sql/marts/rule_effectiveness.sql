-- rule_effectiveness: per rule x county x month raised (the month of first_seen_on), how the
-- caseworkers' verification of the flags came out, as of the publication's day.
-- Input: `flags`, the publication's mart.flags (every flag ever raised up to the as-of day, with its
-- status on that day and the latest outcome decided on or before it: a decision dated after the day
-- does not count), and `rule_names` (the rule catalogue: English and Chinese names).
-- Every flag raised falls in exactly one of four buckets, so raised = confirmed + dismissed + open +
-- resolved_undecided:
--   confirmed: a caseworker confirmed it (whether it still holds or has since ended);
--   dismissed: dismissed and not open again (a dismissal reopened by a change in substance is open);
--   open: still held and awaiting a decision (status open);
--   resolved_undecided: the condition ended before anybody decided.
-- confirmed_rate = confirmed / (confirmed + dismissed), NULL before the first decision; the share of a
-- rule's verified cases that were real: the number provinces tune thresholds by.
-- median_days_to_decision: median of (outcome_decided_on - first_seen_on) over confirmed and
-- dismissed flags, in days.
WITH imports AS (
    -- mart.flags already ignores outcomes decided after its day; the guard keeps it so for any flags input
    SELECT rule_id, county_code, first_seen_on,
           CASE WHEN status IN ('confirmed', 'dismissed') AND NOT outcome_decided_on <= $as_of THEN 'open' ELSE status END
               AS status,
           CASE WHEN outcome_decided_on <= $as_of THEN outcome END AS outcome,
           CASE WHEN outcome_decided_on <= $as_of THEN outcome_decided_on END AS outcome_decided_on,
           coalesce(overdue, false) AS overdue
    FROM flags
),
logic AS (
    SELECT
        rule_id,
        county_code,
        date_trunc('month', first_seen_on)::DATE AS month_raised,
        count(*) AS raised,
        count(*) FILTER (WHERE outcome = 'confirmed') AS confirmed,
        count(*) FILTER (WHERE outcome = 'dismissed' AND status <> 'open') AS dismissed,
        count(*) FILTER (WHERE status = 'open') AS open,
        count(*) FILTER (WHERE overdue) AS overdue,
        count(*) FILTER (WHERE status = 'resolved' AND outcome IS NULL) AS resolved_undecided,
        median(date_diff('day', first_seen_on, outcome_decided_on))
            FILTER (WHERE outcome = 'confirmed' OR (outcome = 'dismissed' AND status <> 'open')) AS median_days_to_decision
    FROM imports
    GROUP BY ALL
)
SELECT
    l.rule_id,
    n.rule_name,
    n.rule_name_zh,
    l.county_code,
    l.month_raised,
    l.raised,
    l.confirmed,
    l.dismissed,
    l.open,
    l.overdue,
    l.resolved_undecided,
    round(l.confirmed / nullif(l.confirmed + l.dismissed, 0), 4) AS confirmed_rate,
    l.median_days_to_decision::DOUBLE AS median_days_to_decision,
    $as_of::DATE AS as_of
FROM logic AS l
LEFT JOIN rule_names AS n USING (rule_id)
ORDER BY l.rule_id, l.county_code, l.month_raised
