"""The data dictionary of the analysts' database: one source for the DuckDB comments and docs/data-dictionary.md.

Analysts open `lowincome.duckdb` with their own tools (DBeaver, DuckDB's CLI, Python) and see
`COMMENT ON` text where those tools show descriptions; auditors read the same words in
`docs/data-dictionary.md`. Both are produced from the entries below, so they cannot drift: a test
publishes the samples and compares every table and column comment with this module, and compares the
Markdown file with `render_markdown()`. A published column without an entry fails that test (and the
publication writes an explicit "not described" comment rather than none, so a gap is visible in the
database too).

Texts are Chinese first, English beside it (the readers are civil-affairs staff). A staging column
that comes from a delivered column is described by the department's own header (feeds.md) and the
canonical name; the English meaning is kept once per canonical name, because the same name means the
same thing in every feed.
"""

from __future__ import annotations

import functools

from .feeds import FEEDS

UNDESCRIBED = "未说明 not described"

# ---------------------------------------------------------------------------------------------- tables
TABLES: dict[str, str] = {
    "mart.flags": "预警与核查线索 Flags: one row per flag of the as-of day (review 核查 or warning 预警), with its "
                  "lifecycle status and the evidence that raised it",
    "mart.household_risk": "家庭风险 Household risk: one row per household with open flags, its highest level and rules",
    "mart.county_summary": "区县汇总 County summary: one row per county x rule x level, flag counts and roster sizes",
    "mart.rules": "规则目录 Rule catalogue: every rule the run evaluated, with its SQL file",
    "audit.runs": "运行记录 Runs: one row per nightly run (success or failure), kept for good",
    "audit.deliveries": "交付文件 Deliveries: one row per input file per run, used or not and why, with row counts",
    "audit.validation_results": "校验结果 Validation results: one row per expectation x file x run (a view over the "
                                "three tables below; each file's results are stored once)",
    "audit.validation_file_results": "文件校验结果 Validation results of each delivered file, stored once per file",
    "audit.validation_sets": "校验结果集 Sets of file results: which stored results a set contains",
    "audit.validation_runs": "运行所用结果集 Which set of validation results each run used",
    "audit.flag_trend": "预警趋势 Flag trend: per as-of day, flags held, new and resolved",
    "audit.feed_freshness": "数据时效 Feed freshness: per feed and county, the newest delivery and whether it is stale",
    "audit.publication": "发布记录 Publication: the as-of day, time and run of the publication this database holds",
    "audit.latest_run": "最新运行 The run whose publication this database holds (one row)",
    "audit.latest_deliveries": "最新交付记录 audit.deliveries of the latest run only: sum these, not audit.deliveries",
    "audit.latest_validation": "最新校验结果 audit.validation_results of the latest run only",
    "quarantine.rejected_rows": "隔离行 Rejected rows: every quarantined input row with its reasons; ID numbers and "
                                "names masked, free text withheld",
}
for _spec in FEEDS.values():
    TABLES[f"staging.{_spec.name}"] = (
        f"{_spec.title} Validated rows of the {_spec.name} feed ({'full snapshots' if _spec.kind == 'snapshot' else 'increments'}), "
        f"pseudonymous keys instead of ID numbers, no names or free text"
    )

# ------------------------------------------------------------------------------------- staging columns
# Columns every staging view carries (docs/staging-contract.md).
STAGING_COMMON: dict[str, str] = {
    "source_file": "来源文件 delivered file name, e.g. medical_claims_371302_20260131.csv",
    "source_row": "来源行号 1-based data row within the delivered file (header excluded)",
    "file_sha256": "文件指纹 sha256 of the delivered file",
    "delivered_on": "提取日期 extraction date from the file name",
    "file_county": "报送区县 6-digit county code of the sending county (from the file name)",
    "is_latest": "最新快照 true when the row belongs to the newest snapshot of its feed and county on or before the "
                 "as-of day; always true for increments",
}
# Derived columns that replace or accompany delivered ones.
STAGING_DERIVED: dict[str, str] = {
    "person_key": "人员假名键 pseudonymous key of the person (keyed hash of the normalised ID number; stable across runs)",
    "head_person_key": "户主假名键 pseudonymous key of the household head",
    "household_key": "家庭假名键 pseudonymous key of the civil-affairs household (county + 家庭编号)",
    "rural_household_key": "监测户假名键 pseudonymous key of the rural-monitoring household (county + 户编号)",
    "certificate_key": "残疾人证假名键 pseudonymous key of the disability certificate",
    "county_code": "区县代码 6-digit county code (first 6 digits of the division code)",
    "disability_category_code": "残疾类别代码 disability category as a number 1-7 (视力 1 ... 多重 7)",
    "disability_level_code": "残疾等级代码 disability level as a number 1-4 (一级 1 ... 四级 4)",
}
# The English meaning of each delivered column, once per canonical name (the header comes from feeds.py).
DELIVERED_MEANING: dict[str, str] = {
    "division_code": "statistical division code as delivered (12 digits, or the 6-digit county code)",
    "relation": "relation to the household head",
    "assistance_type": "assistance type (低保, 特困, 低保边缘, 刚性支出困难)",
    "urban_rural": "urban or rural",
    "status": "enrolment status (在保 enrolled, 停保 stopped)",
    "enrolled_on": "date enrolled",
    "ended_on": "date the assistance stopped (empty while enrolled)",
    "household_size": "number of household members",
    "monthly_income_per_capita": "household monthly income per capita, yuan",
    "monthly_benefit": "monthly assistance amount, yuan",
    "payment_id": "payment serial number",
    "subsidy_type": "kind of payment",
    "pay_month": "month paid for (first day of the month)",
    "amount": "amount, yuan",
    "household_kind": "household kind",
    "monitoring_category": "monitoring category",
    "risk_type": "main risk type",
    "identified_on": "date identified for monitoring",
    "risk_eliminated": "whether the risk is eliminated",
    "eliminated_on": "date the risk was eliminated",
    "annual_net_income_per_capita": "household annual net income per capita, yuan",
    "settlement_id": "settlement id of the health-insurance claim",
    "settled_on": "settlement date",
    "visit_type": "visit type (outpatient, inpatient, ...)",
    "total_cost": "total medical cost, yuan",
    "basic_insurance_paid": "paid by basic medical insurance, yuan",
    "critical_illness_paid": "paid by critical-illness insurance, yuan",
    "medical_assistance_paid": "paid by medical assistance, yuan",
    "out_of_pocket": "paid by the patient (out of pocket), yuan",
    "diagnosis_code": "main diagnosis code (published only when it is a code)",
    "disability_category": "disability category",
    "disability_level": "disability level",
    "issued_on": "date the certificate was issued",
    "certificate_status": "certificate status",
    "revoked_on": "date the certificate was revoked",
    "died_on": "date of death",
    "source": "source of the death record (公安 or 殡葬)",
    "item": "item (pension, wage, work-injury care allowance, ...)",
    "month": "month (first day of the month)",
    "flag_id": "the flag the outcome decides",
    "outcome": "outcome (confirmed 确认 or dismissed 排除)",
    "decided_on": "date decided",
}

# ------------------------------------------------------------------------------- marts and audit columns
AS_OF = "数据日期 the as-of day of the run: every delivery dated on or before it was used"
COLUMNS: dict[str, dict[str, str]] = {
    "mart.flags": {
        "flag_id": "线索编号 stable id of the flag (rule, subject and period): caseworkers return outcomes by it",
        "rule_id": "规则编号 rule id (R01-R07 review, W01-W05 warning)",
        "rule_name": "规则名称 rule name",
        "kind": "类型 review (核查: benefit may be paid wrongly) or warning (预警: person may need help)",
        "level": "等级 level: 红 red, 橙 orange, 黄 yellow",
        "subject_type": "对象类型 person or household",
        "subject_key": "对象假名键 pseudonymous key of the person or household",
        "county_code": "区县代码 county the flag belongs to",
        "period": "期间 the period the condition refers to (a month, a window or a date)",
        "as_of": AS_OF,
        "first_seen_on": "首次发现 first as-of day the flag was raised",
        "last_seen_on": "最近发现 last as-of day the rule still fired",
        "status": "状态 open, resolved (the condition ended), confirmed or dismissed (a caseworker decided)",
        "is_new": "今日新增 raised for the first time on this as-of day",
        "resolved_today": "今日解除 resolved on this as-of day",
        "reopened": "重新打开 open again after a dismissal because the evidence changed in substance (higher level, new kind of fact)",
        "outcome": "核查结果 the caseworker's outcome, if any",
        "outcome_decided_on": "核查日期 date of the caseworker's decision",
        "overdue": "逾期 open and undecided for longer than the policy's verification period",
        "days_seen": "持续天数 days from first_seen_on to the as-of day",
        "last_held_on": "最近确认 last as-of day the flag was held (open on fresh data)",
        "data_stale": "数据过期 a feed the rule reads is stale: the flag is carried, not re-evaluated",
        "stale_feeds": "过期数据源 the stale feeds, comma-separated",
        "evidence": "证据 JSON with the rows and amounts that raised the flag (pseudonymous)",
    },
    "mart.household_risk": {
        "household_key": "家庭假名键 pseudonymous household key",
        "county_code": "区县代码 county",
        "level": "最高等级 highest level of the household's open flags",
        "open_flags": "未结线索数 open flags on the household and its members",
        "rule_ids": "规则 the rules of those flags, comma-separated",
        "review_flags": "核查类 open review flags",
        "warning_flags": "预警类 open warning flags",
    },
    "mart.county_summary": {
        "county_code": "区县代码 county",
        "rule_id": "规则编号 rule id",
        "rule_name": "规则名称 rule name",
        "kind": "类型 review or warning",
        "level": "等级 level",
        "open_flags": "未结 open flags",
        "new_flags": "新增 flags raised on this as-of day",
        "resolved_flags": "解除 flags resolved on this as-of day",
        "confirmed_flags": "确认 flags confirmed by caseworkers",
        "dismissed_flags": "排除 flags dismissed by caseworkers",
        "overdue_flags": "逾期 open flags past the verification period",
        "reopened_flags": "重开 flags reopened after a dismissal",
        "stale_flags": "过期 open flags carried on stale data",
        "not_assessable": "无法判断 subjects not assessed: a row the rule needs was quarantined in the newest snapshot (unknown is not absent)",
        "roster_households": "在册家庭 households on the county's roster",
        "roster_persons": "在册人数 persons on the county's roster",
        "monitored_households": "监测户 households under rural monitoring",
        "as_of": AS_OF,
    },
    "mart.rules": {
        "rule_id": "规则编号 rule id",
        "rule_name": "规则名称 rule name",
        "kind": "类型 review or warning",
        "summary": "说明 what the rule checks",
        "sql_file": "SQL文件 the file under sql/rules/ that implements it",
    },
    "audit.runs": {
        "run_id": "运行编号 Dagster run id",
        "as_of": AS_OF,
        "started_at": "开始时间 start time",
        "finished_at": "结束时间 end time",
        "status": "状态 success or failure",
        "code_version": "代码版本 version and fingerprint of the code that ran",
        "message": "信息 what failed, in one line (empty on success)",
    },
    "audit.deliveries": {
        "run_id": "运行编号 run id",
        "as_of": AS_OF,
        "feed": "数据源 feed name",
        "file_name": "文件名 delivered file name",
        "county": "区县 county code from the file name",
        "extracted_on": "提取日期 extraction date from the file name",
        "sha256": "文件指纹 sha256 of the file",
        "size_bytes": "大小 file size in bytes",
        "format": "格式 csv, xlsx or parquet",
        "status": "处理状态 used, held back, rejected, not yet due, ... (why the file was or was not used)",
        "message": "说明 the reason, in words",
        "rows_read": "读取行数 rows read",
        "rows_accepted": "接收行数 rows accepted",
        "rows_quarantined": "隔离行数 rows quarantined",
    },
    "audit.feed_freshness": {
        "as_of": AS_OF,
        "feed": "数据源 feed",
        "delivery": "交付方式 snapshot or increment",
        "county": "区县 county",
        "latest_delivery": "最近交付 newest delivery dated on or before the as-of day",
        "freshest_before": "时效基准 the date a delivery must be newer than to count as fresh",
        "stale_after_days": "过期天数 days after which the feed counts as stale (policy)",
        "stale": "是否过期 the feed is stale for this county",
        "reason": "原因 why, in words",
        "stale_since": "过期起始 the day it became stale",
    },
    "audit.flag_trend": {
        "as_of": AS_OF,
        "holding": "持有 open flags held on the day",
        "new_flags": "新增 flags raised on the day",
        "resolved_flags": "解除 flags resolved on the day",
    },
    "audit.publication": {
        "as_of": AS_OF,
        "published_at": "发布时间 when this database was published",
        "run_id": "运行编号 the run that published it",
    },
    "audit.validation_runs": {
        "run_id": "运行编号 run id",
        "as_of": AS_OF,
        "set_id": "结果集编号 the set of file results the run used",
    },
    "audit.validation_sets": {
        "set_id": "结果集编号 set id",
        "result_id": "结果编号 a stored file result in the set",
    },
    "quarantine.rejected_rows": {
        "feed": "数据源 feed",
        "file_name": "文件名 delivered file name",
        "row_number": "行号 1-based data row within the file",
        "file_sha256": "文件指纹 sha256 of the file",
        "delivered_on": "提取日期 extraction date from the file name",
        "reasons": "原因 why the row was rejected (every failed check)",
        "reason_count": "原因数 number of failed checks",
        "record": "原始记录 the delivered row as JSON, ID numbers and names masked, free text withheld",
        "as_of": AS_OF,
    },
}
_VALIDATION_RESULT = {
    "result_id": "结果编号 id of the stored result of one expectation on one file",
    "feed": "数据源 feed",
    "file_name": "文件名 delivered file name",
    "suite": "校验套件 Great Expectations suite",
    "expectation": "校验项 expectation",
    "column": "列 column checked (canonical name), if any",
    "success": "是否通过 the expectation held",
    "observed_value": "观测值 the observed value",
    "unexpected_count": "不符行数 rows that did not meet it",
    "unexpected_percent": "不符比例 their share, percent",
    "element_count": "检查行数 rows checked",
    "severity": "严重程度 error (row quarantined or file held back) or warning",
    "details": "详情 further details, JSON",
    "county": "区县 county code from the file name",
    "extracted_on": "提取日期 extraction date from the file name",
    "previous_rows": "上次行数 rows of the previous delivery of the same feed and county (volume check)",
    "sha256": "文件指纹 sha256 of the file",
}
COLUMNS["audit.validation_file_results"] = dict(_VALIDATION_RESULT)
COLUMNS["audit.validation_results"] = {"run_id": "运行编号 run id", "as_of": AS_OF, **{
    k: v for k, v in _VALIDATION_RESULT.items() if k != "result_id"}}
COLUMNS["audit.latest_run"] = COLUMNS["audit.runs"]
COLUMNS["audit.latest_deliveries"] = COLUMNS["audit.deliveries"]
COLUMNS["audit.latest_validation"] = COLUMNS["audit.validation_results"]

# ---- Chinese first (issue 11, part chinese): columns the publication adds beside the English ----------
# (lowincome/chinese.py adds them to the marts; lowincome/reasons.py builds the quarantine's Chinese reasons)
_RULE_NAME_ZH = "规则名称（中文） Chinese name of the rule, e.g. R01 死亡人员仍在领取待遇 (lowincome/rules/catalog.py)"
_LEVEL_RANK = "等级序号 level rank: 红 3, 橙 2, 黄 1 (ORDER BY level_rank DESC puts 红 first)"
COLUMNS["mart.flags"]["rule_name_zh"] = _RULE_NAME_ZH
COLUMNS["mart.flags"]["level_rank"] = _LEVEL_RANK
COLUMNS["mart.county_summary"]["rule_name_zh"] = _RULE_NAME_ZH
COLUMNS["mart.county_summary"]["level_rank"] = _LEVEL_RANK
COLUMNS["mart.household_risk"]["level_rank"] = "最高等级序号 rank of the highest level: 红 3, 橙 2, 黄 1"
COLUMNS["mart.household_risk"]["rule_names_zh"] = "规则名称（中文） the Chinese names of those rules, in the order of rule_ids"
COLUMNS["mart.rules"]["rule_name_zh"] = _RULE_NAME_ZH
COLUMNS["mart.rules"]["check_zh"] = "核查要点 what a caseworker checks when the rule raises a flag"
COLUMNS["quarantine.rejected_rows"]["reasons_zh"] = ("隔离原因（中文） the reasons in Chinese, for the sending department, "
                                                     "in the order of reasons (lowincome/reasons.py)")
COLUMNS["quarantine.rejected_rows"]["reason_codes"] = "原因代码 the reason codes, comma-separated (lowincome/reasons.py)"


# ---------------------------------------------- issue 11 marts: rule effectiveness, household timeline
# (lowincome/marts.py, sql/marts/). A block of its own, so that other parts' entries merge beside it.
TABLES.update({
    "mart.rule_effectiveness": "规则成效 Rule effectiveness: one row per rule x county x month raised, how the flags "
                               "raised came out (confirmed, dismissed, open, overdue), the confirmed rate and the "
                               "median days to a decision, as of the publication's day",
    "mart.household_timeline": "一户一条救助链 Household timeline: one row per dated event of a household across "
                               "departments (enrolment and stop, payments by month and type, large claims, "
                               "certificates, deaths, 人社 income changes, flags), ordered; pseudonymous keys only",
})
COLUMNS.update({
    "mart.rule_effectiveness": {
        "rule_id": "规则编号 rule id",
        "rule_name": "规则名称 rule name (English, snake_case)",
        "rule_name_zh": "规则中文名称 rule name in Chinese, e.g. 死亡人员仍在领取待遇",
        "county_code": "区县代码 county the flags belong to",
        "month_raised": "发现月份 month of first_seen_on (first day of the month)",
        "raised": "发现线索数 flags raised in that month (= confirmed + dismissed + open + resolved_undecided)",
        "confirmed": "确认数 flags a caseworker confirmed (decided on or before the as-of day)",
        "dismissed": "排除数 flags a caseworker dismissed and not reopened since",
        "open": "待核查数 flags still held and awaiting a decision (status open, reopened ones included)",
        "overdue": "逾期数 of the open flags, those undecided for longer than the policy's verification period",
        "resolved_undecided": "未核查即解除 flags whose condition ended before any decision",
        "confirmed_rate": "确认率 confirmed / (confirmed + dismissed); empty before the first decision",
        "median_days_to_decision": "核查用时中位数 median days from first_seen_on to the decision, over decided flags",
        "as_of": AS_OF,
    },
    "mart.household_timeline": {
        "household_key": "家庭假名键 pseudonymous household key: the civil-roster household, else the rural-monitoring "
                         "household of the person (sql/models/household_of_person.sql), else the person's own key",
        "household_source": "家庭来源 civil (民政名册), rural (乡村振兴监测), or person (on no roster: a household of "
                            "their own); empty for a household flag whose household is on no latest roster",
        "person_key": "人员假名键 pseudonymous key of the person the event is about; empty for a household's event",
        "date": "事件日期 date of the event (payments and 人社 months: the first day of the month); the column "
                "outputs.md names",
        "event_date": "事件日期 the same date as `date`, under the name this mart was first published with (kept so "
                      "that queries written then still run)",
        "event_rank": "同日顺序 order of events on the same day (enrolment 10 ... flag resolved 90)",
        "department": "部门 department the event comes from (民政, 乡村振兴, 医保, 残联, 公安/殡葬, 人社, 民政核查)",
        "feed": "数据源 feed the event was read from (or flags / verification_outcomes)",
        "event": "事件代码 event code: enrolled, stopped, monitoring_identified, risk_eliminated, payment, large_claim, "
                 "certificate_issued, certificate_revoked, death, income_started, income_changed, flag_raised, "
                 "flag_confirmed, flag_dismissed, flag_resolved",
        "event_zh": "事件 the event in Chinese (纳入救助, 停保, 待遇发放, 大额医疗费用, 死亡, 人社收入变动, 线索产生 ...)",
        "category": "类别 the event's type as delivered: assistance type, subsidy type, visit type, disability category "
                    "and level, death source, 人社 item, or rule id and level for a flag",
        "amount": "金额 yuan: the month's payments summed, the claim's out-of-pocket cost, the new 人社 monthly amount, "
                  "the household's monthly benefit at enrolment; empty otherwise",
        "flag_id": "线索编号 the flag, for flag events",
        "source_file": "来源文件 delivered file the event was read from (the first one where it sums several rows)",
        "source_row": "来源行号 row of that file (the first row the event sums)",
        "source_rows": "来源行数 how many delivered rows the event sums (payments of a month, household members)",
        "as_of": AS_OF,
    },
})


@functools.lru_cache(maxsize=1)
def _staging_columns() -> dict[str, dict[str, str]]:
    """Built once per process: `column_comment` asks for it once per published column."""
    out: dict[str, dict[str, str]] = {}
    for spec in FEEDS.values():
        columns = dict(STAGING_COMMON)
        for column in spec.columns:
            if column.name in DELIVERED_MEANING:
                header = column.header if column.header != column.name else ""
                columns[column.name] = f"{header} {DELIVERED_MEANING[column.name]}".strip()
        columns.update(STAGING_DERIVED)
        out[f"staging.{spec.name}"] = columns
    return out


def column_comment(table: str, column: str) -> str | None:
    """The comment of one published column, or None when the dictionary does not describe it."""
    if table.startswith("staging."):
        return _staging_columns().get(table, {}).get(column)
    return COLUMNS.get(table, {}).get(column)


def _literal(text: str) -> str:
    """A SQL string literal: COMMENT ON takes no bound parameters; the texts are this module's own constants."""
    return "'" + text.replace("'", "''") + "'"


def apply_comments(con) -> list[str]:
    """`COMMENT ON` every table, view and column of the analysts' database being built.

    Runs after the last CREATE of a publication (a view re-created loses its comments). Returns the
    "schema.table.column" names the dictionary does not describe; they get UNDESCRIBED, so the gap is
    visible to the analyst, and the test of the dictionary fails on them.
    """
    missing: list[str] = []
    relations = con.execute(
        "SELECT schema_name, table_name, 'TABLE' FROM duckdb_tables() WHERE database_name = current_database() "
        "UNION ALL SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal ORDER BY 1, 2"
    ).fetchall()
    for schema, name, kind in relations:
        table = f"{schema}.{name}"
        con.execute(f'COMMENT ON {kind} "{schema}"."{name}" IS {_literal(TABLES.get(table, UNDESCRIBED))}')
        if table not in TABLES:
            missing.append(table)
        columns = con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ? ORDER BY column_index", [schema, name]
        ).fetchall()
        for (column,) in columns:
            text = column_comment(table, column)
            if text is None:
                missing.append(f"{table}.{column}")
            quoted = column.replace('"', '""')
            con.execute(f'COMMENT ON COLUMN "{schema}"."{name}"."{quoted}" IS {_literal(text or UNDESCRIBED)}')
    return missing


def render_markdown(schema: dict[str, list[tuple[str, str]]]) -> str:
    """docs/data-dictionary.md from the published schema ({table: [(column, type), ...]}) and the entries above."""
    lines = [
        "# Data dictionary 数据字典: `lowincome.duckdb`",
        "",
        "Generated from `lowincome/dictionary.py`, the same source as the `COMMENT ON` text of every table and",
        "column in the analysts' database (`SELECT * FROM duckdb_columns()` shows it). Regenerate with",
        "`python -m lowincome.dictionary > docs/data-dictionary.md` after a publication changes; a test fails",
        "when the two differ. Keys are pseudonymous; no ID number, name or free text is published.",
        "",
    ]
    for table in sorted(schema):
        lines += [f"## `{table}`", "", TABLES.get(table, UNDESCRIBED), "", "| column | type | meaning |", "|---|---|---|"]
        for column, dtype in schema[table]:
            text = (column_comment(table, column) or UNDESCRIBED).replace("|", "\\|")
            lines.append(f"| `{column}` | {dtype} | {text} |")
        lines.append("")
    return "\n".join(lines)


def published_schema(con) -> dict[str, list[tuple[str, str]]]:
    """{schema.table: [(column, type), ...]} of a database's tables and views (system schemas excluded)."""
    rows = con.execute(
        "SELECT schema_name || '.' || table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name NOT IN ('information_schema', 'pg_catalog') "
        "ORDER BY 1, column_index"
    ).fetchall()
    schema: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        schema.setdefault(table, []).append((column, dtype))
    return schema


def described_schema(path) -> dict[str, tuple[str, list[tuple[str, str, str]]]]:
    """{table: (description, [(column, type, description), ...])} as published in the database at `path`.

    Read back from the database's own comments (not from this module), so what Dagster shows is what an
    analyst's tool shows.
    """
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        described = {f"{s}.{t}": (c or "", []) for s, t, c in con.execute(
            "SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT schema_name, view_name, comment FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal").fetchall()}
        for table, column, dtype, comment in con.execute(
            "SELECT schema_name || '.' || table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY schema_name, table_name, column_index"
        ).fetchall():
            if table in described:
                described[table][1].append((column, dtype, comment or ""))
    finally:
        con.close()
    return described


def _main() -> None:
    """Print docs/data-dictionary.md for a published database (default: the samples' warehouse)."""
    import sys

    import duckdb

    from .logfile import default_warehouse

    path = sys.argv[1] if len(sys.argv) > 1 else str(default_warehouse() / "lowincome.duckdb")
    con = duckdb.connect(path, read_only=True)
    try:
        sys.stdout.write(render_markdown(published_schema(con)))
    finally:
        con.close()


if __name__ == "__main__":
    _main()
