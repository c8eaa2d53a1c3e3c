"""Township worklists (核查清单): one `.xlsx` per county and township per night, for caseworkers to fill in.

A county bureau sends each township (乡镇/街道) the list of flags its
caseworkers must verify (下发核查) and gets it back with the results (反馈).
This module writes those lists after each successful publication; the returned
file, delivered as `<inbox>/verification_outcomes/verification_outcomes_<county6>_<YYYYMMDD>.xlsx`,
is read by the ordinary ingest as outcomes with no editing: the list's answer
columns are the `verification_outcomes` feed's own Chinese headers and values
(lowincome/feeds.py), and its other columns are extra columns of that feed.

What is on a list: every flag of the published day whose status is `open` (no
outcome yet, or dismissed earlier and reopened by a change in substance);
overdue ones first within a level. Confirmed, dismissed and resolved flags are
not (docs/decisions.md, "Township worklists").

Where a flag goes: the township is the first 9 digits of the 12-digit 村/社区
code (行政区划代码) of the subject's household in the newest civil roster, else
in the newest rural-monitoring snapshot, of the flag's county. A subject with no
such code (a 6-digit code only, or on neither list, as W01 for people on no
roster) goes to the county's "township unknown" list, which the county bureau
works itself or forwards.

The lists are identified data (names, ID numbers): they live under
`<warehouse>/worklists/`, owner-only like restricted.duckdb (or owner + the
LOWINCOME_RESTRICTED_GROUP), never in the analysts' database. Names come from
restricted.duckdb's `person_index`, the subjects from the caseworkers' list
(`mart/caseworker_flags.parquet`) of the committed day.

Selecting and joining is one DuckDB query. xlsxwriter (already a dependency)
writes the workbook: formats, frozen header, filter, data-validation drop-downs,
the instructions sheet. The data rows are built column-wise with Polars and put
in its sheet (`worklist_sheet`): written cell by cell, a city's 29k flags took
7.5 s of every night (docs/decisions.md, decision 194).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import zipfile
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from . import worklist_sheet
from .config import configure_duckdb, load_settings
from .errors import LowincomeError
from .feeds import OUTCOME_COLUMNS, VERIFICATION_OUTCOMES
from .privacy import PRIVATE_DIR_MODE
from .rules.catalog import BY_ID, LEVEL_RANK
from .rules.summary import evidence_summary_zh
from .staging import sql_text
from .temporaries import temporary_path
from .workstore import WorkStore

WORKLISTS_DIR = "worklists"
INDEX_FILE = "index.json"
UNKNOWN_TOWNSHIP = "unknown"  # file-name part and index key of a county's "township unknown" list
FILE_PREFIX = "核查清单"
SHEET_NAME = "核查清单"
GROUP_DIR_MODE = 0o750

_OUT = VERIFICATION_OUTCOMES
FLAG_ID_HEADER = _OUT.column("flag_id").header  # 线索编号
ANSWER_HEADERS = tuple(_OUT.column(c).header for c in OUTCOME_COLUMNS)  # 核查结果, 核查说明, 核查日期, 核查人
CONFIRM, DISMISS = (s for s, _ in _OUT.column("outcome").synonyms)  # 确认, 排除

# (header, frame column, width, kind): the list a caseworker reads, then the four columns they fill in.
COLUMNS: tuple[tuple[str, str | None, int, str], ...] = (
    (FLAG_ID_HEADER, "flag_id", 22, "text"),
    ("规则", "rule", 30, "text"),
    ("等级", "level", 6, "text"),
    ("对象", "subject", 10, "text"),
    ("姓名", "name", 10, "text"),
    ("身份证号", "id_number", 21, "text"),
    ("家庭编号", "household_id", 16, "text"),
    ("村/社区代码", "village_code", 15, "text"),
    ("情况摘要", "summary", 60, "text"),
    ("核查要点", "check", 40, "text"),
    ("下发日期", "first_seen_on", 12, "date"),
    ("应反馈日期", "due_on", 12, "date"),
    (ANSWER_HEADERS[0], None, 10, "answer"),
    (ANSWER_HEADERS[1], None, 30, "answer"),
    (ANSWER_HEADERS[2], None, 12, "answer_date"),
    (ANSWER_HEADERS[3], None, 10, "answer"),
)

CELLS = [(i, col, kind) for i, (_, col, _, kind) in enumerate(COLUMNS) if col is not None]  # the written columns
LEVEL_COL = next(i for i, c in enumerate(COLUMNS) if c[1] == "level")
RED = "红"  # the level whose cells are written in red

INSTRUCTIONS = (
    "核查清单填写说明 How to fill in and return this worklist",
    "",
    f"1. 每行是一条需要核查的线索。请在“{ANSWER_HEADERS[0]}”列选择“{CONFIRM}”或“{DISMISS}”，"
    f"在“{ANSWER_HEADERS[2]}”列填写核查日期（如 2026-11-05，不晚于当天），“{ANSWER_HEADERS[1]}”写明核查情况，"
    f"“{ANSWER_HEADERS[3]}”填写核查人姓名。",
    "2. 未核查的行请保持这四列全部空白：这些行不计为核查结果，下次清单中仍会出现。",
    f"3. 请勿修改“{FLAG_ID_HEADER}”列和表头，勿删除第一个工作表；其他列仅供参考，修改不影响结果。",
    "4. 填好后交数据组，按 verification_outcomes_<县级代码6位>_<YYYYMMDD>.xlsx 命名放入收件箱 "
    "verification_outcomes 文件夹，次日运行时读入。",
    "5. 本表含姓名和身份证号，属于受限数据：仅限核查人员使用，不得外传。",
    "",
    f"Each row is one flag to verify. Choose {CONFIRM} (confirmed) or {DISMISS} (dismissed) in {ANSWER_HEADERS[0]}, "
    f"give the date in {ANSWER_HEADERS[2]}, a note in {ANSWER_HEADERS[1]} and your name in {ANSWER_HEADERS[3]}. "
    "Leave all four blank for a flag not verified yet. Do not change the flag id column or the header row.",
)


log = logging.getLogger(__name__)


class WorklistError(LowincomeError):
    pass


@dataclass(frozen=True)
class WorklistFile:
    county: str
    township: str  # 9-digit township code, or UNKNOWN_TOWNSHIP
    path: Path
    flags: int
    red: int
    overdue: int
    sha256: str = ""  # of the rows as written (`content_hash`)


# ---- which flags, about whom, where --------------------------------------------------------------

_ROWS_SQL = """
WITH f AS (
    SELECT flag_id, rule_id, level, county_code AS flag_county, period, first_seen_on, evidence,
           coalesce(overdue, false) AS overdue, outcome
    FROM read_parquet($flags) WHERE status = 'open'
),
s AS (
    SELECT flag_id, subject_type, county_code AS subject_county, id_number, household_id
    FROM read_parquet($subjects)
),
fs AS (
    SELECT f.*, coalesce(s.subject_type, 'person') AS subject_type, coalesce(s.subject_county, f.flag_county) AS county_code,
           s.id_number AS subject_id_number, s.household_id AS subject_household_id
    FROM f LEFT JOIN s USING (flag_id)
    WHERE coalesce(s.subject_county, f.flag_county) IS NOT NULL
),
homes AS (  -- every member row of the newest roster and rural-monitoring snapshots: household, village, head
    SELECT file_county AS county, household_id, id_number, head_id_number, division_code,
           1 AS source_rank, status = '在保' AS active, enrolled_on AS since
    FROM ({roster}) WHERE is_latest
    UNION ALL
    SELECT file_county, rural_household_id, id_number, CASE WHEN relation = '本人' THEN id_number END, division_code,
           2, coalesce(risk_eliminated, '否') = '否', identified_on
    FROM ({rural}) WHERE is_latest
),
person_home AS (  -- a person's household in the flag's county: roster first, 在保 first, newest enrolment
    SELECT county, id_number, household_id, division_code
    FROM homes
    WHERE id_number IN (SELECT subject_id_number FROM fs WHERE subject_id_number IS NOT NULL)
    QUALIFY row_number() OVER (PARTITION BY county, id_number
                               ORDER BY source_rank, active DESC NULLS LAST, since DESC NULLS LAST, household_id) = 1
),
household_home AS (  -- a household's village (its members' most common 12-digit code) and head, roster first
    SELECT county, household_id,
           mode(division_code) FILTER (WHERE length(division_code) = 12) AS division_code,
           max(head_id_number) AS head_id_number
    FROM homes
    WHERE household_id IN (SELECT subject_household_id FROM fs WHERE subject_household_id IS NOT NULL)
       OR household_id IN (SELECT household_id FROM person_home)
    GROUP BY county, household_id, source_rank
    QUALIFY row_number() OVER (PARTITION BY county, household_id ORDER BY source_rank) = 1
),
rows AS (
    SELECT fs.*,
           CASE WHEN fs.subject_type = 'household' THEN hh.head_id_number ELSE fs.subject_id_number END AS id_number,
           CASE WHEN fs.subject_type = 'household' THEN fs.subject_household_id ELSE ph.household_id END AS household_id,
           CASE WHEN fs.subject_type = 'household' THEN hh.division_code
                ELSE coalesce(CASE WHEN length(ph.division_code) = 12 THEN ph.division_code END, phh.division_code)
           END AS division_code
    FROM fs
    LEFT JOIN household_home AS hh ON fs.subject_type = 'household' AND hh.county = fs.county_code
                                   AND hh.household_id = fs.subject_household_id
    LEFT JOIN person_home AS ph ON fs.subject_type <> 'household' AND ph.county = fs.county_code
                                AND ph.id_number = fs.subject_id_number
    LEFT JOIN household_home AS phh ON phh.county = ph.county AND phh.household_id = ph.household_id
)
SELECT r.flag_id, r.rule_id, r.level, r.subject_type, r.county_code, r.period, r.first_seen_on, r.evidence,
       r.overdue, r.outcome, r.id_number, p.name, r.household_id,
       CASE WHEN length(r.division_code) = 12 AND left(r.division_code, 6) = r.county_code THEN r.division_code END
           AS village_code
FROM rows AS r
LEFT JOIN {person_index} AS p ON p.id_number = r.id_number
"""


def _restricted_path(warehouse: Path) -> Path:
    from .publish import RESTRICTED_DB

    return Path(warehouse) / RESTRICTED_DB


def worklist_frame(store: WorkStore, as_of: date, policy, county: str | None = None) -> pl.DataFrame:
    """One row per open flag of committed day `as_of` (of `county`, or all), identified, with its township.

    Columns: those of `COLUMNS` (rule, summary, check, due date, ...) plus county_code, township,
    level_rank and overdue. Identified: never hand this frame to anything the analysts read.
    """
    try:
        mart = store.day_dir(as_of) / "mart"
    except FileNotFoundError:
        raise WorklistError(f"no completed run for as-of {as_of}: nothing to list") from None
    flags, subjects = mart / "flags.parquet", mart / "caseworker_flags.parquet"
    if not flags.exists() or not subjects.exists():
        raise WorklistError(f"the run of {as_of} has no flag list ({mart}): nothing to list")
    restricted = _restricted_path(store.warehouse)
    roster = store.staging(as_of, "civil_roster").relation_sql(store.root)
    rural = store.staging(as_of, "rural_monitoring").relation_sql(store.root)
    con = configure_duckdb(duckdb.connect(), replace(load_settings(), warehouse=store.warehouse))  # the run's budget
    try:
        if restricted.exists():
            con.execute(f"ATTACH {sql_text(str(restricted))} AS r (READ_ONLY)")
            person_index = "r.person_index"
        else:  # no publication yet (a tool called before the first run): the list still names ID numbers
            person_index = "(SELECT NULL::VARCHAR AS id_number, NULL::VARCHAR AS name WHERE false)"
        sql = _ROWS_SQL.format(roster=roster, rural=rural, person_index=person_index)
        if county is not None:
            sql = f"SELECT * FROM ({sql}) WHERE county_code = $county"
        params = {"flags": str(flags), "subjects": str(subjects)} | ({"county": county} if county else {})
        frame = pl.from_arrow(con.sql(sql, params=params).to_arrow_table())
    finally:
        con.close()
    return _presentable(frame, as_of, policy)


def _presentable(frame: pl.DataFrame, as_of: date, policy) -> pl.DataFrame:
    """Add the caseworkers' words (rule name, 核查要点, one-line summary) and the due date; order the list."""
    if frame.is_empty():
        return frame.with_columns(*(pl.lit(None, dtype=pl.String).alias(c) for c in
                                    ("rule", "check", "summary", "subject", "township")),
                                  pl.lit(None, dtype=pl.Date).alias("due_on"),
                                  pl.lit(None, dtype=pl.Int8).alias("level_rank"))
    names = {r: f"{r} {BY_ID[r].name_zh}" for r in BY_ID}
    checks = {r: BY_ID[r].check_zh for r in BY_ID}
    days = {c: int(policy.in_force(c, as_of)["outcome_overdue_days"]) for c in frame["county_code"].unique().to_list()}
    # one Python call per flag: the summary reads the evidence JSON (a county's list is thousands, not millions)
    summaries = [
        ("【曾排除，情况有新变化，请重新核查】" if outcome == "dismissed" else "") + evidence_summary_zh(rule, evidence, period)
        for rule, evidence, period, outcome in frame.select("rule_id", "evidence", "period", "outcome").iter_rows()
    ]
    return (
        frame.with_columns(
            rule=pl.col("rule_id").replace_strict(names, default=pl.col("rule_id"), return_dtype=pl.String),
            check=pl.col("rule_id").replace_strict(checks, default=None, return_dtype=pl.String),
            summary=pl.Series(summaries, dtype=pl.String),
            subject=pl.when(pl.col("subject_type") == "household").then(pl.lit("家庭(户主)")).otherwise(pl.lit("个人")),
            due_on=pl.col("first_seen_on")
            + pl.duration(days=pl.col("county_code").replace_strict(days, return_dtype=pl.Int64)),
            township=pl.col("village_code").str.slice(0, 9),
            level_rank=pl.col("level").replace_strict(LEVEL_RANK, default=0, return_dtype=pl.Int8),
        )
        .sort(["county_code", "township", "level_rank", "overdue", "due_on", "rule_id", "village_code", "flag_id"],
              descending=[False, False, True, True, False, False, False, False], nulls_last=True)
    )


# ---- writing ---------------------------------------------------------------------------------------


def _group() -> str | None:
    return getattr(load_settings(), "restricted_group", None) or None


def _private_dir(path: Path, group: str | None) -> Path:
    """Create `path` (and parents under the worklists folder) owner-only, or owner + the restricted group."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    mode = GROUP_DIR_MODE if group else PRIVATE_DIR_MODE
    if group:
        shutil.chown(path, group=group)
    os.chmod(path, mode)
    return path


def worklists_root(warehouse: Path) -> Path:
    return Path(warehouse) / WORKLISTS_DIR


def day_folder(warehouse: Path, county: str, as_of: date) -> Path:
    return worklists_root(warehouse) / county / as_of.isoformat()


def file_name(county: str, township: str | None, as_of: date) -> str:
    place = township if township else f"{county}_{UNKNOWN_TOWNSHIP}"
    return f"{FILE_PREFIX}_{place}_{as_of:%Y%m%d}.xlsx"


def write_xlsx(rows: pl.DataFrame, path: Path, title: str, *, cellwise: bool = False) -> None:
    """Write one worklist (rows in list order) to `path`: header, rows, drop-downs, frozen header, instructions.

    The sheets hold no day but their rows' (the file name carries the day): an unchanged list can be
    linked to the next day's name instead of written again (`write_worklists`, by the rows' content
    hash; the workbook's creation time, a file property, is the one thing two writings differ in).
    The data rows are built column-wise (`worklist_sheet`: a city night's 29k flags took 7.5 s cell
    by cell); `cellwise` writes them with xlsxwriter one cell at a time, the reference the fast rows
    are tested against, and the writer of rows `worklist_sheet` does not reproduce exactly.
    """
    if cellwise or rows.is_empty() or not worklist_sheet.reproducible(rows, CELLS):
        _write_workbook(path, title, rows.height, lambda ws, formats: _write_cells(ws, formats, rows))
        return
    any_red = bool((rows["level"] == RED).any())  # the red format exists in the workbook only where a row uses it
    _write_workbook(path, title, rows.height, lambda ws, formats: _write_probes(ws, formats, any_red))
    with zipfile.ZipFile(path) as written:
        sheet = written.read(worklist_sheet.SHEET_XML).decode("utf-8")
    red = (LEVEL_COL, RED, worklist_sheet.probe_styles(sheet, 3).get(worklist_sheet.column_letter(LEVEL_COL))) \
        if any_red else None
    data = worklist_sheet.rows_xml(rows, CELLS, worklist_sheet.probe_styles(sheet, 2), red)
    worklist_sheet.replace_probe_rows(path, (2, 3) if any_red else (2,), data, rows.height + 1)


def _write_workbook(path: Path, title: str, n: int, write_rows) -> None:
    """The workbook around `n` data rows; `write_rows(worksheet, formats)` writes the rows (or the probes)."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                         "strings_to_formulas": False, "strings_to_urls": False,
                                         "default_date_format": "yyyy-mm-dd"})
    try:
        wb.set_properties({"title": title, "subject": "核查清单 (restricted: names and ID numbers)",
                           "comments": "lowincome township worklist; its day is in the file name"})
        head = wb.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True, "valign": "vcenter"})
        answer_head = wb.add_format({"bold": True, "bg_color": "#FFF2CC", "border": 1, "text_wrap": True,
                                     "valign": "vcenter"})
        text = wb.add_format({"num_format": "@", "valign": "top"})
        wrap = wb.add_format({"num_format": "@", "text_wrap": True, "valign": "top"})
        day = wb.add_format({"num_format": "yyyy-mm-dd", "valign": "top"})
        answer = wb.add_format({"num_format": "@", "bg_color": "#FFFBEA", "valign": "top"})
        answer_day = wb.add_format({"num_format": "yyyy-mm-dd", "bg_color": "#FFFBEA", "valign": "top"})
        red = wb.add_format({"num_format": "@", "font_color": "#C0392B", "bold": True, "valign": "top"})
        ws = wb.add_worksheet(SHEET_NAME)  # the first sheet: the one the ingest reads back
        for i, (header, _, width, kind) in enumerate(COLUMNS):
            fmt = {"answer": answer, "answer_date": answer_day, "date": day}.get(kind, text)
            ws.set_column(i, i, width, wrap if header in ("情况摘要", "核查要点") else fmt)
        ws.set_row(0, 30)
        ws.freeze_panes(1, 1)
        last = max(n, 1)
        ws.autofilter(0, 0, last, len(COLUMNS) - 1)
        answer_col = next(i for i, c in enumerate(COLUMNS) if c[0] == ANSWER_HEADERS[0])
        date_col = next(i for i, c in enumerate(COLUMNS) if c[0] == ANSWER_HEADERS[2])
        ws.data_validation(1, answer_col, last, answer_col, {
            "validate": "list", "source": [CONFIRM, DISMISS], "ignore_blank": True,
            "input_title": ANSWER_HEADERS[0], "input_message": f"{CONFIRM} 或 {DISMISS}；未核查请留空",
            "error_title": ANSWER_HEADERS[0], "error_message": f"请选择 {CONFIRM} 或 {DISMISS}（未核查请留空）",
        })
        ws.data_validation(1, date_col, last, date_col, {
            "validate": "date", "criteria": "between", "minimum": date(2000, 1, 1), "maximum": "=TODAY()",
            "ignore_blank": True, "input_title": ANSWER_HEADERS[2], "input_message": "如 2026-11-05，不晚于当天",
            "error_title": ANSWER_HEADERS[2], "error_message": "请填写日期（如 2026-11-05），不晚于当天",
        })
        for i, (header, _, _, kind) in enumerate(COLUMNS):
            ws.write_string(0, i, header, answer_head if kind.startswith("answer") else head)
        write_rows(ws, {"day": day, "red": red})
        notes = wb.add_worksheet("填写说明")
        notes.set_column(0, 0, 110)
        for r, line in enumerate(INSTRUCTIONS):
            notes.write_string(r, 0, line)
    finally:
        wb.close()


def _write_cells(ws, formats: dict, rows: pl.DataFrame) -> None:
    """The data rows cell by cell (the reference writer; a township list of a few rows costs nothing)."""
    for r, values in enumerate(rows.select([c for _, c, _ in CELLS]).iter_rows(), start=1):
        for (i, _, kind), value in zip(CELLS, values):
            if value is None:
                continue
            if kind == "date":
                ws.write_datetime(r, i, value, formats["day"])
            elif i == LEVEL_COL and value == RED:
                ws.write_string(r, i, value, formats["red"])
            else:
                ws.write_string(r, i, str(value))


def _write_probes(ws, formats: dict, red: bool) -> None:
    """Sheet row 2 as the rows would have it, a plain cell in every column; row 3 a red level (`red`)."""
    for i, _, kind in CELLS:
        if kind == "date":
            ws.write_datetime(1, i, worklist_sheet.PROBE_DATE, formats["day"])
        else:
            ws.write_string(1, i, worklist_sheet.PROBE_TEXT)
    if red:
        ws.write_string(2, LEVEL_COL, RED, formats["red"])


def _publish_file(tmp: Path, target: Path, group: str | None) -> None:
    from .publish import restricted_mode

    if group:
        shutil.chown(tmp, group=group)
    os.chmod(tmp, restricted_mode(group))
    os.replace(tmp, target)


def write_worklists(warehouse: Path, as_of: date, *, policy=None, county: str | None = None,
                    township: str | None = None, group: str | None | bool = False,
                    reuse: bool = True) -> list[WorklistFile]:
    """Write the worklists of committed day `as_of` (every county, or one; every township, or one).

    Each county's folder for the day is rewritten whole (a township whose flags are all decided loses
    its file) unless `township` is given. An index (index.json) lists the files with their counts.
    `group` is the restricted group (default: the settings'); `policy` defaults to the settings' policy.
    With `reuse`, a township list whose content equals the county's list of the same or the previous day
    is hard-linked under the new name instead of written again (a quiet night costs no writing);
    `lowincome worklist --resend` writes every file anew.
    """
    from .rules.policy import load_policy

    settings = load_settings() if policy is None or group is False else None
    policy = policy or load_policy(settings.policy)
    group = (getattr(settings, "restricted_group", None) or None) if group is False else group
    store = WorkStore(warehouse)
    frame = worklist_frame(store, as_of, policy, county)
    counties = [county] if county else sorted(set(frame["county_code"].to_list()))
    root = _private_dir(worklists_root(warehouse), group)
    written: list[WorklistFile] = []
    for c in counties:
        rows = frame.filter(pl.col("county_code") == c)
        folder = _private_dir(_private_dir(root / c, group) / as_of.isoformat(), group)
        townships = sorted(set(rows["township"].to_list()), key=lambda t: (t is None, t or ""))
        if township is not None:
            want = None if township == UNKNOWN_TOWNSHIP else township
            townships = [t for t in townships if t == want]
        files = []
        earlier = _earlier_lists(warehouse, c, as_of) if reuse else {}
        for t in townships:
            part = rows.filter(pl.col("township").is_null() if t is None else (pl.col("township") == t))
            name = file_name(c, t, as_of)
            digest = content_hash(part)
            same = earlier.get((t or UNKNOWN_TOWNSHIP, digest))
            tmp = temporary_path(folder / name)
            try:
                if same is None or not _link(same, tmp):  # an unchanged list is linked, not written again
                    write_xlsx(part, tmp, f"核查清单 {t or c + ' 乡镇未知'}")
                _publish_file(tmp, folder / name, group)
            finally:
                tmp.unlink(missing_ok=True)
            files.append(WorklistFile(c, t or UNKNOWN_TOWNSHIP, folder / name, part.height,
                                      int((part["level"] == RED).sum()), int(part["overdue"].sum()), digest))
        if township is None:
            keep = {f.path.name for f in files}
            for old in folder.glob(f"{FILE_PREFIX}_*.xlsx"):
                if old.name not in keep:
                    old.unlink(missing_ok=True)
            _write_index(folder, c, as_of, files, group)
        else:
            gone = [] if files else [township]
            if gone:  # the township has no open flag left: its list of the day goes
                (folder / file_name(c, None if township == UNKNOWN_TOWNSHIP else township, as_of)).unlink(missing_ok=True)
            _update_index(folder, c, as_of, files, group, gone)
        written += files
    return written


def _index_entry(f: WorklistFile) -> dict:
    return {"township": f.township, "file": f.path.name, "flags": f.flags, "red": f.red, "overdue": f.overdue,
            "sha256": f.sha256}


def content_hash(rows: pl.DataFrame) -> str:
    """sha256 of what a list shows (its written columns, in order): equal hashes, equal workbooks."""
    shown = rows.select([c for _, c, _, _ in COLUMNS if c is not None])
    return hashlib.sha256(shown.write_csv().encode("utf-8")).hexdigest()


def _earlier_lists(warehouse: Path, county: str, as_of: date) -> dict[tuple[str, str], Path]:
    """(township, content hash) → file, of the county's lists of `as_of` (a re-run) and of the newest earlier day."""
    days = [d for d in worklist_days(warehouse, county) if d <= as_of]
    found: dict[tuple[str, str], Path] = {}
    for day in ([days[-1]] if days and days[-1] < as_of else []) + ([as_of] if as_of in days else []):
        index = read_index(warehouse, county, day) or {}
        for e in index.get("townships", []):
            path = day_folder(warehouse, county, day) / e.get("file", "")
            if e.get("sha256") and path.is_file():
                found[(e["township"], e["sha256"])] = path
    return found


def _link(source: Path, tmp: Path) -> bool:
    """Hard-link `source` as `tmp`; False where the file system cannot (then the list is written)."""
    try:
        os.link(source, tmp)
        return True
    except OSError:
        return False


def _write_index(folder: Path, county: str, as_of: date, files: list[WorklistFile], group: str | None,
                 entries: list[dict] | None = None) -> None:
    entries = entries if entries is not None else [_index_entry(f) for f in files]
    data = {"county": county, "as_of": as_of.isoformat(), "written_at": datetime.now().isoformat(timespec="seconds"),
            "flags": sum(e["flags"] for e in entries), "townships": entries}
    tmp = temporary_path(folder / INDEX_FILE)
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    _publish_file(tmp, folder / INDEX_FILE, group)


def _update_index(folder: Path, county: str, as_of: date, files: list[WorklistFile], group: str | None,
                  gone: list[str]) -> None:
    try:
        entries = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))["townships"]
    except (OSError, ValueError, KeyError):
        entries = []
    new = {e["township"]: e for e in entries if e["township"] not in gone} | {f.township: _index_entry(f) for f in files}
    _write_index(folder, county, as_of, files, group, sorted(new.values(), key=lambda e: e["township"]))


def read_index(warehouse: Path, county: str, as_of: date) -> dict | None:
    try:
        return json.loads((day_folder(warehouse, county, as_of) / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def worklist_days(warehouse: Path, county: str) -> list[date]:
    """Days for which the county has worklists (an index written), oldest first."""
    days = []
    for d in (worklists_root(warehouse) / county).glob("*"):
        try:
            day = date.fromisoformat(d.name)
        except ValueError:
            continue
        if (d / INDEX_FILE).exists():
            days.append(day)
    return sorted(days)


def prune_worklists(warehouse: Path, newest: date, keep_days: int) -> list[Path]:
    """Remove the day folders of worklists more than `keep_days` before `newest` (LOWINCOME_RETENTION_DAYS)."""
    removed = []
    for folder in worklists_root(warehouse).glob("*/*"):
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if (newest - day).days > keep_days and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def after_publication(settings, as_of: date) -> str:
    """The nightly hook: write every county's worklists of the published day and prune old ones; one line."""
    from .rules.policy import load_policy

    started = time.perf_counter()
    files = write_worklists(settings.warehouse, as_of, policy=load_policy(settings.policy),
                            group=getattr(settings, "restricted_group", None) or None)
    prune_worklists(settings.warehouse, as_of, settings.retention_days)
    flags = sum(f.flags for f in files)
    line = (f"核查清单 worklists of {as_of}: {len(files)} file(s), {flags} open flag(s), in "
            f"{worklists_root(settings.warehouse)} ({time.perf_counter() - started:.1f}s)")
    log.info(line)  # counts and paths only: the lists' contents are restricted
    return line

