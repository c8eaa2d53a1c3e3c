-- household_timeline (the nightly part): the dated events of every household that are rebuilt each
-- night from the latest snapshots and the 人社 history; the flags' events are a part of their own
-- (household_timeline_flags.sql: they change on nights that deliver nothing, these do not), and the
-- payment and large-claim events are computed once per delivered file (household_timeline_payments.sql,
-- _claims.sql); all are joined to households when mart.household_timeline is read (lowincome/marts.py).
-- Imports (identified staging, in the builder's private connection; only keys leave it):
--   roster_latest, rural_latest, certificates_latest, deaths_by_person: the rules' models (sql/models/);
--   stg_hrss_benefits: every 人社 row up to the as-of day;
--   person_household: person_key -> household_key (person_household.sql).
-- Events (event, 事件 event_zh, rank within a day):
--   enrolled 纳入救助 (10), stopped 停保 (75): a civil-roster household's 纳入日期 / 停保日期 on the latest
--     roster, one event per household, date and assistance type; amount = the household's monthly benefit;
--   monitoring_identified 纳入监测 (15), risk_eliminated 风险消除 (70): a rural household's 识别监测时间 /
--     风险消除时间 on the latest rural snapshot;
--   certificate_issued 发证 (20), certificate_revoked 残疾人证注销 (65): the latest certificate snapshot;
--   income_started 人社收入开始 (30), income_changed 人社收入变动 (30): the first month of a person's 人社
--     item, and every month whose amount differs from the item's previous delivered month;
--   death 死亡 (60): the earliest reported date of death (deaths_by_person), the first report cited;
-- A person's event belongs to the person's household (person_household), else to the person alone
-- (household_key = person_key, household_source 'person'); a household's event to that household.
WITH household_keys AS (  -- one HMAC per household of the latest snapshots
    SELECT source, county_code, household_id, pkey('household:' || county_code || ':' || household_id) AS household_key
    FROM (SELECT DISTINCT 'civil' AS source, roster_county AS county_code, household_id FROM roster_latest
          WHERE household_id IS NOT NULL
          UNION
          SELECT DISTINCT 'rural', rural_county, rural_household_id FROM rural_latest WHERE rural_household_id IS NOT NULL)
),
roster_events AS (
    SELECT r.roster_county AS county_code, r.household_id, e.event_date, e.event, r.assistance_type,
           r.monthly_benefit, r.source_file, r.source_row
    FROM roster_latest AS r,
         LATERAL (VALUES (r.enrolled_on, 'enrolled'), (r.ended_on, 'stopped')) AS e(event_date, event)
    WHERE e.event_date IS NOT NULL AND r.household_id IS NOT NULL
),
rural_events AS (
    SELECT r.rural_county AS county_code, r.rural_household_id AS household_id, e.event_date, e.event,
           coalesce(r.monitoring_category, r.household_kind) AS category, r.source_file, r.source_row
    FROM rural_latest AS r,
         LATERAL (VALUES (r.identified_on, 'monitoring_identified'), (r.eliminated_on, 'risk_eliminated')) AS e(event_date, event)
    WHERE e.event_date IS NOT NULL AND r.rural_household_id IS NOT NULL
),
household_events AS (
    SELECT k.household_key, 'civil' AS household_source, NULL::VARCHAR AS person_key, e.event_date,
           CASE e.event WHEN 'enrolled' THEN 10 ELSE 75 END AS event_rank, '民政' AS department,
           'civil_roster' AS feed, e.event, CASE e.event WHEN 'enrolled' THEN '纳入救助' ELSE '停保' END AS event_zh,
           e.assistance_type AS category, max(e.monthly_benefit)::DOUBLE AS amount, NULL::VARCHAR AS flag_id,
           min(e.source_file) AS source_file, min(e.source_row) AS source_row, count(*) AS source_rows
    FROM roster_events AS e
    JOIN household_keys AS k ON k.source = 'civil' AND k.county_code = e.county_code AND k.household_id = e.household_id
    GROUP BY k.household_key, e.event_date, e.event, e.assistance_type
    UNION ALL
    SELECT k.household_key, 'rural', NULL, e.event_date,
           CASE e.event WHEN 'monitoring_identified' THEN 15 ELSE 70 END, '乡村振兴', 'rural_monitoring', e.event,
           CASE e.event WHEN 'monitoring_identified' THEN '纳入监测' ELSE '风险消除' END,
           e.category, NULL::DOUBLE, NULL, min(e.source_file), min(e.source_row), count(*)
    FROM rural_events AS e
    JOIN household_keys AS k ON k.source = 'rural' AND k.county_code = e.county_code AND k.household_id = e.household_id
    GROUP BY k.household_key, e.event_date, e.event, e.category
),
certificate_events AS (
    SELECT c.id_number, e.event_date, e.event_rank, '残联' AS department, 'disability_cert' AS feed, e.event, e.event_zh,
           c.disability_category || ' ' || c.disability_level AS category, NULL::DOUBLE AS amount,
           c.source_file, c.source_row, 1::BIGINT AS source_rows
    FROM certificates_latest AS c,
         LATERAL (VALUES (c.issued_on, 20, 'certificate_issued', '发证'),
                         (CASE WHEN c.certificate_status = '注销' THEN c.revoked_on END, 65, 'certificate_revoked',
                          '残疾人证注销')) AS e(event_date, event_rank, event, event_zh)
    WHERE c.id_number IS NOT NULL AND e.event_date IS NOT NULL
),
death_events AS (
    SELECT id_number, died_on AS event_date, 60 AS event_rank, '公安/殡葬' AS department, 'death_records' AS feed,
           'death' AS event, '死亡' AS event_zh, reports[1].source AS category, NULL::DOUBLE AS amount,
           reports[1].file AS source_file, reports[1]."row" AS source_row, len(reports)::BIGINT AS source_rows
    FROM deaths_by_person
),
hrss_changes AS (  -- the months that start an item or change its amount from the previous delivered month's
    -- straight from the rows: (person, item, month) is the feed's unique key (a later copy of one is
    -- quarantined as a duplicate), so each row is its month's amount and its own source; totalling
    -- the rows per month first, and reading them again for their sources, cost 60% more (2.7 against
    -- 1.7 s on the 3.4M rows of the 12-month city tier) for the same events
    SELECT * FROM (
        SELECT id_number, item, date_trunc('month', month)::DATE AS month, amount::DOUBLE AS amount,
               source_file, source_row,
               lag(amount::DOUBLE) OVER (PARTITION BY id_number, item ORDER BY month) AS previous_amount
        FROM stg_hrss_benefits
        WHERE id_number IS NOT NULL AND month IS NOT NULL
    )
    WHERE previous_amount IS NULL OR previous_amount <> amount
),
hrss_events AS (
    SELECT id_number, month AS event_date, 30 AS event_rank, '人社' AS department, 'hrss_benefits' AS feed,
           CASE WHEN previous_amount IS NULL THEN 'income_started' ELSE 'income_changed' END AS event,
           CASE WHEN previous_amount IS NULL THEN '人社收入开始' ELSE '人社收入变动' END AS event_zh,
           item AS category, amount, source_file, source_row, 1::BIGINT AS source_rows
    FROM hrss_changes
),
person_rows AS (
    SELECT * FROM certificate_events
    UNION ALL SELECT * FROM death_events
    UNION ALL SELECT * FROM hrss_events
),
person_keys AS (
    SELECT v, pkey(v) AS k FROM (SELECT DISTINCT id_number AS v FROM person_rows)
),
person_events AS (
    SELECT coalesce(m.household_key, k.k) AS household_key, coalesce(m.household_source, 'person') AS household_source,
           k.k AS person_key, p.event_date, p.event_rank, p.department, p.feed, p.event, p.event_zh, p.category, p.amount,
           NULL::VARCHAR AS flag_id, p.source_file, p.source_row, p.source_rows
    FROM person_rows AS p
    JOIN person_keys AS k ON k.v = p.id_number
    LEFT JOIN person_household AS m ON m.person_key = k.k
),
logic AS (
    SELECT * FROM household_events
    UNION ALL SELECT * FROM person_events
)
SELECT * FROM logic
ORDER BY household_key, event_date, event_rank, person_key, source_file, source_row, flag_id
