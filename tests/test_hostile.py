"""Hostile deliveries: no ID number or name reaches analysts, reports, logs or the console; no delivered
markup executes in any page under reports/.

Two runs:
- the generated samples plus hostile deliveries (a row shifted by a missing field, names and ID numbers
  in every shape inside enum, date and diagnosis cells, a verification outcome whose note holds a name
  and an ID, a CSV with an unterminated quote, script payloads in cells and in a file name), run
  through the `lowincome` command in a subprocess so that its stdout and stderr are captured as a user
  sees them; then every text column of lowincome.duckdb, every file under reports/ and the warehouse's
  log files, the console and the Dagster event log are scanned for every ID shape and every delivered
  name (read from the delivered files by this test, not by the pipeline);
- the hand-made inbox plus the same payloads, whose every HTML page under reports/ is rendered in
  headless Chromium: the payloads did not execute and inserted no element.
"""

from __future__ import annotations

import csv
import html.parser
import io
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from lowincome.feeds import FEEDS

from .conftest import SAMPLE_END
from .handmade import delivery_path, person_id, write_csv

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE_DAY = date(2026, 10, 30)
VALID_DAY = date(2026, 10, 29)
COUNTY = "371324"

# Names of 2-4 characters, each delivered in a 姓名 (or caseworker) column somewhere below.
HOSTILE_NAMES = ("欧阳娜娜", "司马光明", "诸葛亮", "上官婉儿", "东方不败", "慕容复", "令狐冲", "尉迟恭")
# The name in the row a CSV parser quotes in its error message (unterminated quote): checked on its own,
# see test_parser_messages_quote_no_row.
PARSER_QUOTED = {"慕容复"}
P = [person_id(COUNTY, f"19{50 + i}0{1 + i % 9}1{i % 9}", 600 + i) for i in range(10)]
FULLWIDTH = P[3].translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
LEGACY15 = P[4][:6] + P[4][8:17]  # 15-digit legacy form: 2-digit year, no check character
EXCEL = f"{int(P[5][:17] + '0') / 1e17:.14f}E+17"  # how Excel shows an ID stored as a number
# Payloads that leave a trace only when executed: the marker is assembled at run time, so the text of
# the payload never contains `data-pwned` or `PWNED` itself.
SCRIPT = "<script>document.title='PW'+'NED';document.documentElement.setAttribute('data-pw'+'ned','script')</script>"
IMG = "<img src=x onerror=document.documentElement.setAttribute('data-pw'+'ned','img')>"
SVG = "<svg onload=document.documentElement.setAttribute('data-pw'+'ned','svg')>"
BAD_FILE_NAME = "death_records_<img src=x onerror=document.title='PW'+'NED'>.csv"

ROSTER_HEADER = ["行政区划代码", "家庭编号", "户主身份证号", "身份证号", "姓名", "与户主关系", "救助类型", "城乡类别",
                 "保障状态", "纳入日期", "停保日期", "家庭人口数", "家庭月人均收入", "月救助金额"]


def add_hostile_deliveries(inbox: Path) -> None:
    """Write the hostile files into `inbox` (dated HOSTILE_DAY, county 371324)."""
    write_csv(delivery_path(inbox, "civil_roster", COUNTY, HOSTILE_DAY, "csv"), ROSTER_HEADER, [
        [f"{COUNTY}100200", "HX01", P[0], P[0], "欧阳娜娜", "本人", "低保", "农村", "在保", "2023-05-01", "", "1", "300", "760"],
        # 家庭编号 missing: the head's ID lands in 家庭编号, the name in 身份证号, the relation in 姓名...
        [f"{COUNTY}100200", P[1], P[1], "司马光明", "本人", "低保", "农村", "在保", "2023-05-01", "", "1", "300", "760"],
        # a name in an enum, ID numbers of every shape in enum and date cells
        [f"{COUNTY}100200", "HX03", P[2], P[2], "诸葛亮", "诸葛亮", FULLWIDTH, LEGACY15, "在保", P[2], EXCEL, "1", "300", "760"],
        # markup in enum cells
        [f"{COUNTY}100200", "HX04", P[6], P[6], "上官婉儿", IMG, "低保", SVG, SCRIPT, "2023-05-01", "", "1", "300", "760"],
    ])
    # valid rows (published) and bad rows (quarantined) in separate files, so neither is held back for the other
    medical = ["结算ID", "身份证号", "姓名", "参保地行政区划", "结算日期", "就诊类型", "医疗总费用", "基本医保统筹支付",
               "大病保险支付", "医疗救助支付", "个人自付", "主要诊断编码"]
    write_csv(delivery_path(inbox, "medical_claims", COUNTY, VALID_DAY, "csv"), medical, [
        ["HX-S1", P[2], "诸葛亮", COUNTY, "2026-10-01", "住院", "100.00", "50.00", "0.00", "0.00", "50.00", f"患者诸葛亮 身份证{P[2]}"],
        ["HX-S2", P[2], "诸葛亮", COUNTY, "2026-10-02", "住院", "100.00", "50.00", "0.00", "0.00", "50.00", "C34.9"],
    ])
    write_csv(delivery_path(inbox, "medical_claims", COUNTY, HOSTILE_DAY, "csv"), medical, [
        ["HX-S3", P[2], "诸葛亮", COUNTY, "2026-10-03", "诸葛亮", "100.00", "50.00", "0.00", "0.00", "50.00", SCRIPT],
    ])
    outcomes = ["flag_id", "outcome", "note", "decided_on", "caseworker"]
    write_csv(delivery_path(inbox, "verification_outcomes", COUNTY, VALID_DAY, "csv"), outcomes, [
        ["HX-FLAG-1", "confirmed", f"入户核查: 上官婉儿本人在家, 身份证{P[6]}", "2026-10-20", "东方不败"],
    ])
    write_csv(delivery_path(inbox, "verification_outcomes", COUNTY, HOSTILE_DAY, "csv"), outcomes, [
        ["HX-FLAG-2", "东方不败", f"note {P[7]} {SCRIPT}", P[7], "东方不败"],
    ])
    write_csv(delivery_path(inbox, "hrss_benefits", COUNTY, HOSTILE_DAY, "csv"),
              ["身份证号", "姓名", "项目", "月份", "金额"], [
        [P[8], "尉迟恭", SCRIPT, "2026-09", "100.00"],
        [P[8], "尉迟恭", "失业保险金", "尉迟恭", "100.00"],
    ])
    # an unterminated quote: a parser message that quotes the row would quote a name and an ID
    path = delivery_path(inbox, "death_records", COUNTY, HOSTILE_DAY, "csv")
    path.write_text(f'身份证号,姓名,死亡日期,信息来源\n{P[9]},"慕容复,2026-08-01,殡葬火化\n{P[9]},令狐冲,2026-08-02,殡葬火化\n',
                    encoding="utf-8")
    # delivered content in a file name
    (inbox / "death_records" / BAD_FILE_NAME).write_text(f"身份证号,姓名,死亡日期,信息来源\n{P[9]},令狐冲,2026-08-02,殡葬火化\n",
                                                          encoding="utf-8")


# ---- what was delivered, read independently of the pipeline ------------------------------------

def _read_any(path: Path) -> list[dict]:
    """Rows of a delivered file as dicts of text, read with the plainest tools (broken files: no rows)."""
    try:
        if path.suffix == ".csv":
            data = path.read_bytes()
            for enc in ("utf-8-sig", "gb18030"):
                try:
                    return list(csv.DictReader(io.StringIO(data.decode(enc))))
                except UnicodeDecodeError:
                    continue
            return []
        if path.suffix == ".parquet":
            return pl.read_parquet(path).cast(pl.String).to_dicts()
        if path.suffix == ".xlsx":
            return pl.read_excel(path, infer_schema_length=0).to_dicts()
    except Exception:
        return []
    return []


def delivered_names(inbox: Path) -> set[str]:
    names = set(HOSTILE_NAMES)
    for path in inbox.rglob("*"):
        if path.is_file():
            for row in _read_any(path):
                for header in ("姓名", "caseworker"):
                    value = (row.get(header) or "").strip()
                    if len(value) >= 2:
                        names.add(value)
    return names


# Words of the delivery format (headers, allowed values; registry data): a name may be a part of one
# (孙子 in 孙子女), and such an occurrence is the word, not the person.
VOCABULARY = sorted({w for spec in FEEDS.values() for c in spec.columns for w in (c.header, *c.values, *(l for l, _ in c.codes))},
                    key=len, reverse=True)
ID_SHAPES = re.compile(
    r"(?<![0-9A-Fa-f])[0-9０-９]{15,17}[0-9０-９XxＸｘ](?![0-9A-Fa-f])"  # 18-character, 15-digit, full-width
    r"|(?<![0-9])[0-9]\.[0-9]{6,}[eE]\+?1[4-8]"  # an Excel float that still holds the person's digits
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def leaks(text: str, names: set[str]) -> list[str]:
    """What in `text` is an ID number or a delivered name (the first characters only, for the message)."""
    found = [f"ID {m.group(0)[:6]}…" for m in ID_SHAPES.finditer(text)]
    if CJK.search(text):
        for word in VOCABULARY:
            if word in text:
                text = text.replace(word, " ")
        for n in range(2, 5):
            for i in range(len(text) - n + 1):
                if text[i:i + n] in names:
                    found.append(f"name {text[i]}{'*' * (n - 1)}")
    return found


# ---- the run over the generated samples plus hostile deliveries ---------------------------------

@pytest.fixture(scope="module")
def hostile_run(generated, tmp_path_factory):
    out, _ = generated
    root = tmp_path_factory.mktemp("hostile")
    inbox = root / "inbox"
    shutil.copytree(out / "inbox", inbox)
    add_hostile_deliveries(inbox)
    warehouse, home = root / "warehouse", root / "dagster_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOWINCOME_", "DAGSTER_"))}
    env.update(LOWINCOME_INBOX=str(inbox), LOWINCOME_WAREHOUSE=str(warehouse), DAGSTER_HOME=str(home))
    proc = subprocess.run([sys.executable, "-m", "lowincome.cli", "run", "--as-of", SAMPLE_END.isoformat()],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"warehouse": warehouse, "home": home, "stdout": proc.stdout, "stderr": proc.stderr,
            "names": delivered_names(inbox)}


def _assert_no_leaks(places: dict[str, str], names: set[str]) -> None:
    found = {where: hits for where, text in places.items() if (hits := leaks(text, names))}
    assert not found, "personal data found: " + "; ".join(f"{w}: {sorted(set(h))[:5]}" for w, h in sorted(found.items())[:20])


def _analysts_texts(warehouse: Path, exclude: tuple[tuple[str, str, str], ...] = ()) -> dict[str, str]:
    con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    texts = {}
    try:
        columns = con.execute(
            """SELECT table_schema, table_name, column_name FROM information_schema.columns
               WHERE data_type NOT IN ('DATE', 'TIMESTAMP', 'BOOLEAN', 'BIGINT', 'INTEGER', 'DOUBLE', 'HUGEINT')
                 AND data_type NOT LIKE 'DECIMAL%'"""
        ).fetchall()
        assert len(columns) > 20
        for schema, table, column in columns:
            if (schema, table, column) in exclude:
                continue
            values = con.execute(f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM {schema}.{table}').fetchall()
            texts[f"{schema}.{table}.{column}"] = "\n".join(v for (v,) in values if v is not None)
    finally:
        con.close()
    return texts


def test_the_hostile_rows_reached_the_quarantine(hostile_run):
    """The scan below means something only if the hostile rows were read and quarantined."""
    con = duckdb.connect(str(hostile_run["warehouse"] / "lowincome.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT feed, record, reasons FROM quarantine.rejected_rows WHERE file_name LIKE '%20261030%'").fetchall()
        shifted = con.execute("SELECT record FROM quarantine.rejected_rows WHERE file_name = $f AND row_number = 2",
                              {"f": f"civil_roster_{COUNTY}_{HOSTILE_DAY:%Y%m%d}.csv"}).fetchone()
        notes = con.execute("SELECT count(*) FROM staging.verification_outcomes WHERE flag_id = 'HX-FLAG-1'").fetchone()[0]
        columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_name = 'verification_outcomes'").fetchall()}
        diagnoses = dict(con.execute("SELECT settlement_id, diagnosis_code FROM staging.medical_claims "
                                     "WHERE settlement_id IN ('HX-S1', 'HX-S2')").fetchall())
    finally:
        con.close()
    feeds = {r[0] for r in rows}
    assert {"civil_roster", "medical_claims", "verification_outcomes", "hrss_benefits"} <= feeds
    assert any("已隐去" in r[1] for r in rows if r[0] == "verification_outcomes")
    assert shifted and f'"家庭编号":"{P[1][:6]}**********' in shifted[0], shifted  # the shifted head's ID, masked
    assert notes == 1 and "note" not in columns and "caseworker" not in columns
    assert diagnoses == {"HX-S1": None, "HX-S2": "C34.9"}
    # the scanner finds what is there: the restricted database does hold the delivered rows unmasked
    rcon = duckdb.connect(str(hostile_run["warehouse"] / "restricted.duckdb"), read_only=True)
    try:
        raw = "\n".join(r[0] for r in rcon.execute("SELECT record FROM rejected_records WHERE file_name LIKE '%20261030%'").fetchall())
    finally:
        rcon.close()
    found = leaks(raw, hostile_run["names"])
    assert {"name 司***", "name 诸**", "name 尉**", "name 东***"} <= set(found), found
    assert sum(f.startswith("ID ") for f in found) >= 5


def test_no_personal_data_in_the_analysts_database(hostile_run):
    _assert_no_leaks(_analysts_texts(hostile_run["warehouse"]), hostile_run["names"] - PARSER_QUOTED)


def _parquet_text(path: Path) -> str:
    """What a Parquet file lets its reader see: every value, and the footer (schema, metadata, statistics).

    Not its raw bytes: a value inside a compressed page is invisible there, while a small page stored
    uncompressed holds bit-packed dictionary indices, which for rows in key order are consecutive byte
    values and can spell a run of digits (0x30-0x39) that looks like an ID number (decision 177).
    """
    import json

    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    meta = parquet.metadata
    texts = [str(parquet.schema_arrow),
             json.dumps({k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
                         for k, v in (meta.metadata or {}).items()}, ensure_ascii=False)]
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            stats = meta.row_group(g).column(c).statistics
            if stats is not None and stats.has_min_max:
                texts += [str(stats.min), str(stats.max)]
    texts.append(json.dumps(pl.read_parquet(path).to_dicts(), default=str, ensure_ascii=False))
    return "\n".join(texts)


def _warehouse_files(warehouse: Path) -> dict[str, str]:
    """Every file a person may read: reports/ and logs; not the restricted databases or work/."""
    texts = {}
    for path in sorted(warehouse.rglob("*")):
        rel = path.relative_to(warehouse)
        if not path.is_file() or rel.parts[0] in ("work", ".building") or path.name.startswith(("restricted.duckdb", "lowincome.duckdb")):
            continue
        if "vendor" in rel.parts:  # third-party libraries copied from checks/datadocs_static
            continue
        if path.suffix == ".parquet":
            texts[str(rel)] = _parquet_text(path)
            continue
        texts[str(rel)] = path.read_bytes().decode("utf-8", errors="ignore")
    return texts


def test_no_personal_data_in_reports(hostile_run):
    files = _warehouse_files(hostile_run["warehouse"])
    reports = {k: v for k, v in files.items() if k.startswith("reports")}
    assert any(k.startswith("reports/validation") for k in reports) and any(k.startswith("reports/run_") for k in reports)
    _assert_no_leaks(reports, hostile_run["names"] - PARSER_QUOTED)


def test_no_personal_data_in_log_files(hostile_run):
    files = {k: v for k, v in _warehouse_files(hostile_run["warehouse"]).items() if not k.startswith("reports")}
    _assert_no_leaks(files, hostile_run["names"] - PARSER_QUOTED)


def test_no_personal_data_on_the_console(hostile_run):
    assert "as of" in hostile_run["stdout"]
    _assert_no_leaks({"stdout": hostile_run["stdout"], "stderr": hostile_run["stderr"]}, hostile_run["names"] - PARSER_QUOTED)


def _unescape(text: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def _event_log_texts(home: Path) -> dict[str, str]:
    from dagster import DagsterInstance

    places: dict[str, str] = {}
    instance = DagsterInstance.from_config(str(home))
    try:
        runs = instance.get_runs()
        assert runs
        for run in runs:
            for n, record in enumerate(instance.all_logs(run.run_id)):
                text = record.message or ""
                if record.dagster_event is not None and record.dagster_event.event_specific_data is not None:
                    text += "\n" + repr(record.dagster_event.event_specific_data)
                places[f"run {run.run_id[:8]} event {n}"] = text
    finally:
        instance.dispose()
    for path in home.rglob("*"):  # the instance's storage (JSON escapes non-ASCII), compute logs
        if path.is_file():
            places[f"DAGSTER_HOME/{path.relative_to(home)}"] = _unescape(path.read_bytes().decode("utf-8", errors="ignore"))
    return places


def test_no_personal_data_in_the_dagster_event_log(hostile_run):
    _assert_no_leaks(_event_log_texts(hostile_run["home"]), hostile_run["names"] - PARSER_QUOTED)


def test_parser_messages_quote_no_row(hostile_run):
    places = {**_analysts_texts(hostile_run["warehouse"]), **_warehouse_files(hostile_run["warehouse"]),
              "stdout": hostile_run["stdout"], "stderr": hostile_run["stderr"], **_event_log_texts(hostile_run["home"])}
    _assert_no_leaks(places, PARSER_QUOTED)


# ---- stored XSS: every page under reports/ rendered in Chromium --------------------------------

class _Injected(html.parser.HTMLParser):
    """Elements that only a payload could have put into the page."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        handlers = " ".join(v or "" for k, v in attrs if k.startswith("on"))
        if (tag == "img" and dict(attrs).get("src") == "x") or "data-pw" in handlers or "document.title" in handlers \
                or any(k == "data-pwned" for k, _ in attrs):
            self.found.append(f"<{tag} {handlers[:60]}>")
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and "data-pw" in data:
            self.found.append("<script> with the payload")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_delivered_markup_never_executes_in_reports(tmp_path, lowincome_env, monkeypatch):
    from pipelines.definitions import defs

    from .test_pipeline_handmade import DAY, _inbox
    from .test_ui import _dump_dom

    inbox = _inbox(tmp_path)
    add_hostile_deliveries(inbox)
    warehouse = lowincome_env(inbox)
    assert defs.resolve_job_def("nightly").execute_in_process(partition_key=DAY.isoformat()).success

    pages = [p for p in sorted((warehouse / "reports").rglob("*.html")) if "vendor" not in p.parts]
    assert len(pages) >= 8
    reached = set()
    for n, page in enumerate(pages):
        dom = _dump_dom(page.as_uri(), tmp_path / f"profile{n}")
        assert "<html" in dom.lower(), f"{page.name}: Chromium rendered nothing"
        assert "data-pwned" not in dom and "PWNED" not in dom, f"a payload executed in {page.relative_to(warehouse)}"
        parser = _Injected()
        parser.feed(dom)
        assert not parser.found, f"{page.relative_to(warehouse)}: injected {parser.found[:3]}"
        if "data-pw" in dom or "onerror=document" in dom:
            reached.add("validation" if "validation" in page.parts else "run report")
    # the payloads did reach both kinds of page (as inert text), so the test can fail
    assert reached == {"validation", "run report"}, reached
