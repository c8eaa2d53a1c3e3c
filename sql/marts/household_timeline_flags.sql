-- household_timeline_flags (the flags' nightly part): the events of the publication's flags, by household.
-- A part of its own because flags change on nights that deliver nothing (a flag resolved, an outcome
-- recorded) while the snapshot events (household_timeline.sql) do not: such a night writes this small file
-- and keeps the large one (both are named by their content, lowincome/marts.py).
-- Imports:
--   flags: the publication's mart.flags (keys only); run_days: the evaluated days (audit.flag_trend.as_of);
--   person_household: person_key -> household_key (person_household.sql).
-- Events (event, 事件 event_zh, rank within a day):
--   flag_raised 线索产生 (80), flag_confirmed 核查确认 / flag_dismissed 核查排除 (85), flag_resolved 线索解除
--     (90): first_seen_on, outcome_decided_on, and the first evaluated day after last_seen_on.
-- A person's flag belongs to the person's household (person_household), else to the person alone; a
-- household's flag to that household.
WITH household_sources AS (
    SELECT DISTINCT household_key, household_source FROM person_household
),
flag_rows AS (
    SELECT f.flag_id, f.rule_id || ' ' || f.level AS category, e.event_date, e.event_rank, e.event, e.event_zh,
           CASE WHEN f.subject_type = 'household' THEN f.subject_key END AS household_subject,
           CASE WHEN f.subject_type = 'person' THEN f.subject_key END AS person_key,
           CASE WHEN e.event IN ('flag_confirmed', 'flag_dismissed') THEN 'verification_outcomes' ELSE 'flags' END AS feed
    FROM flags AS f,
         LATERAL (VALUES
             (f.first_seen_on, 80, 'flag_raised', '线索产生'),
             (CASE WHEN f.outcome = 'confirmed' THEN f.outcome_decided_on END, 85, 'flag_confirmed', '核查确认'),
             (CASE WHEN f.outcome = 'dismissed' THEN f.outcome_decided_on END, 85, 'flag_dismissed', '核查排除'),
             (CASE WHEN f.status = 'resolved'
                   THEN coalesce((SELECT min(d.as_of) FROM run_days AS d WHERE d.as_of > f.last_seen_on),
                                 f.last_seen_on + 1) END, 90, 'flag_resolved', '线索解除')
         ) AS e(event_date, event_rank, event, event_zh)
    WHERE e.event_date IS NOT NULL
),
flag_events AS (
    SELECT coalesce(f.household_subject, m.household_key, f.person_key) AS household_key,
           coalesce(m.household_source, s.household_source, CASE WHEN f.household_subject IS NULL THEN 'person' END)
               AS household_source,
           f.person_key, f.event_date, f.event_rank, '民政核查' AS department, f.feed, f.event, f.event_zh, f.category,
           NULL::DOUBLE AS amount, f.flag_id, NULL::VARCHAR AS source_file, NULL::BIGINT AS source_row,
           NULL::BIGINT AS source_rows
    FROM flag_rows AS f
    LEFT JOIN person_household AS m ON m.person_key = f.person_key
    LEFT JOIN household_sources AS s ON s.household_key = f.household_subject
)
SELECT * FROM flag_events
ORDER BY household_key, event_date, event_rank, person_key, source_file, source_row, flag_id
