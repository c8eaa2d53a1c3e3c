"""Township worklists (核查清单): written each night, filled in with openpyxl as a township would, returned
through the inbox with no editing, read as outcomes the next night; and the `lowincome worklist` command.

The round trip runs two real nights over a small generated inbox (scale 0.1). What the lists hold is
checked against mart.flags and restricted.duckdb (independently of the code that wrote them); what
comes back is checked in mart.flags, audit.deliveries and quarantine.rejected_rows.
"""

from __future__ import annotations

import re
import stat
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from lowincome.cli import main
from lowincome.feeds import FEEDS
from lowincome.ingest import ingest_feed
from lowincome.rules.catalog import BY_ID
from lowincome.worklists import ANSWER_HEADERS, COLUMNS, FLAG_ID_HEADER, write_xlsx

D = date(2026, 10, 31)
D1 = D + timedelta(days=1)
COUNTY = "371302"
CASEWORKERS = ("欧阳晓风", "司马青云")
NOTE = "入户核实，家属说明情况属实"
ID_LIKE = re.compile(r"(?<![0-9a-f.])\d{17}[\dXx](?![0-9a-f])")


def _night(day: date) -> None:
    from pipelines.definitions import defs

    assert defs.resolve_job_def("nightly").execute_in_process(partition_key=day.isoformat()).success


def _sheet_rows(path: Path) -> list[dict]:
    """The first sheet as header → value dicts, read with openpyxl (not the reader the pipeline uses)."""
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = list(wb.worksheets[0].iter_rows(values_only=True))
    wb.close()
    return [dict(zip(rows[0], r)) for r in rows[1:]]


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    """Night D, the county's biggest township list filled in and returned, night D+1; what each step saw."""
    from lowincome.generate import generate

    out = tmp_path_factory.mktemp("wl_gen")
    generate(out, seed=5, scale=0.1, end_date=D)
    inbox, warehouse = out / "inbox", tmp_path_factory.mktemp("wl_wh")
    mp = pytest.MonkeyPatch()
    mp.setenv("LOWINCOME_INBOX", str(inbox))
    mp.setenv("LOWINCOME_WAREHOUSE", str(warehouse))
    for var in ("LOWINCOME_ENV", "LOWINCOME_PSEUDONYM_KEY", "DAGSTER_HOME", "LOWINCOME_RESTRICTED_GROUP"):
        mp.delenv(var, raising=False)
    try:
        _night(D)
        lists = sorted((warehouse / "worklists").rglob("*.xlsx"))
        before = {p: _sheet_rows(p) for p in lists}
        with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
            flags_d = pl.from_arrow(con.sql("SELECT flag_id, status, county_code FROM mart.flags").to_arrow_table())
        with duckdb.connect(str(warehouse / "restricted.duckdb"), read_only=True) as con:
            subjects = pl.from_arrow(con.sql("SELECT flag_id, subject_type, id_number, name FROM caseworker_flags")
                                     .to_arrow_table())

        county_lists = [p for p in lists if p.parent.parent.name == COUNTY]
        target = max(county_lists, key=lambda p: len(before[p]))
        wb = openpyxl.load_workbook(target)
        ws = wb.worksheets[0]
        col = {c.value: c.column for c in ws[1]}
        n = ws.max_row - 1
        assert n >= 4, "the biggest township list should have a few flags to fill"
        filled = {}
        # 确认 with a real date cell, 排除 with a date typed as text, a bad value, a note without a result
        for row, (result, decided, note, who) in enumerate([
            ("确认", datetime(2026, 11, 1), NOTE, CASEWORKERS[0]),
            ("排除", "2026/11/1", NOTE, CASEWORKERS[1]),
            ("是", datetime(2026, 11, 1), None, CASEWORKERS[0]),
            (None, None, "还没核查完", None),
        ], start=2):
            for header, value in zip(ANSWER_HEADERS, (result, note, decided, who)):
                if value is not None:
                    ws.cell(row=row, column=col[header], value=value)
            filled[ws.cell(row=row, column=col[FLAG_ID_HEADER]).value] = result
        returned = inbox / "verification_outcomes" / f"verification_outcomes_{COUNTY}_{D1:%Y%m%d}.xlsx"
        returned.parent.mkdir(parents=True, exist_ok=True)
        wb.save(returned)

        _night(D1)
        with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
            flags_d1 = pl.from_arrow(con.sql("SELECT flag_id, status, outcome FROM mart.flags").to_arrow_table())
            delivery = con.execute(
                "SELECT rows_read, rows_accepted, rows_quarantined, status, message FROM audit.latest_deliveries "
                "WHERE file_name = $f", {"f": returned.name}).fetchall()
            rejected = con.execute("SELECT row_number, reasons FROM quarantine.rejected_rows WHERE file_name = $f "
                                   "ORDER BY row_number", {"f": returned.name}).fetchall()
            text = []
            for schema, table, column in con.execute(
                    "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                    "WHERE data_type = 'VARCHAR'").fetchall():
                text += [v for (v,) in con.execute(f'SELECT DISTINCT "{column}" FROM {schema}."{table}"').fetchall()
                         if v is not None]
        yield {"warehouse": warehouse, "inbox": inbox, "lists": lists, "before": before, "flags_d": flags_d,
               "subjects": subjects, "target": target, "rows": n, "filled": filled, "flags_d1": flags_d1,
               "delivery": delivery, "rejected": rejected, "analyst_text": text}
    finally:
        mp.undo()


def test_lists_hold_every_open_flag_once_in_its_county(round_trip):
    rt = round_trip
    listed = [(p.parent.parent.name, r[FLAG_ID_HEADER]) for p, rows in rt["before"].items() for r in rows]
    open_flags = rt["flags_d"].filter(pl.col("status") == "open")
    assert open_flags.height > 0 and len(listed) == open_flags.height
    assert set(listed) == set(zip(open_flags["county_code"], open_flags["flag_id"]))
    headers = [c[0] for c in COLUMNS]
    for path, rows in rt["before"].items():
        assert list(rows[0]) == headers
        assert all(r[h] is None for r in rows for h in ANSWER_HEADERS)  # sent with empty answer columns


def test_list_rows_name_the_subject_and_say_what_to_check(round_trip):
    rt = round_trip
    subjects = {r["flag_id"]: r for r in rt["subjects"].iter_rows(named=True)}
    rule_of = {f"{r} {BY_ID[r].name_zh}": r for r in BY_ID}
    persons = 0
    for path, rows in rt["before"].items():
        parts = path.name.split("_")  # 核查清单_<township9>_<day>.xlsx or 核查清单_<county6>_unknown_<day>.xlsx
        township = None if parts[2] == "unknown" else parts[1]
        for r in rows:
            s = subjects[r[FLAG_ID_HEADER]]
            rule = rule_of[r["规则"]]
            assert r["核查要点"] == BY_ID[rule].check_zh and r["情况摘要"]
            assert r["等级"] in ("红", "橙", "黄")
            assert r["应反馈日期"] - r["下发日期"] == timedelta(days=15)  # the policy's outcome_overdue_days
            if s["subject_type"] == "person":
                persons += 1
                assert r["身份证号"] == s["id_number"] and r["姓名"] == s["name"]
            if township:  # a township list: every village code lies in the township
                assert r["村/社区代码"].startswith(township)
            else:
                assert r["村/社区代码"] is None
    assert persons > 0


def test_lists_are_owner_only_with_drop_downs(round_trip):
    rt = round_trip
    root = rt["warehouse"] / "worklists"
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
    ws = openpyxl.load_workbook(rt["target"]).worksheets[0]
    kinds = {dv.type: dv for dv in ws.data_validations.dataValidation}
    assert kinds["list"].formula1 == '"确认,排除"' and kinds["date"].type == "date"
    assert str(kinds["list"].sqref) == f"M2:M{rt['rows'] + 1}" and str(kinds["date"].sqref) == f"O2:O{rt['rows'] + 1}"


def test_returned_list_becomes_outcomes_and_untouched_flags_stay_open(round_trip):
    rt = round_trip
    status = dict(zip(rt["flags_d1"]["flag_id"], rt["flags_d1"]["status"]))
    filled = rt["filled"]
    by_result = {v: k for k, v in filled.items()}
    assert status[by_result["确认"]] == "confirmed"
    assert status[by_result["排除"]] == "dismissed"
    assert status[by_result["是"]] == "open" and status[by_result[None]] == "open"
    untouched = [r[FLAG_ID_HEADER] for r in rt["before"][rt["target"]] if r[FLAG_ID_HEADER] not in filled]
    assert untouched and all(status[f] == "open" for f in untouched)
    # every row of the returned sheet is accounted for: 4 read (2 outcomes, 2 quarantined), the rest untouched
    (read, accepted, quarantined, file_status, message), = rt["delivery"]
    assert (read, accepted, quarantined, file_status) == (4, 2, 2, "partly_quarantined")
    assert f"{rt['rows'] - 4} untouched" in message and f"{rt['rows']} rows" in message
    reasons = dict(rt["rejected"])
    assert set(reasons) == {3, 4}  # data rows (sheet rows 4, 5): the bad value, the note without a result
    assert "核查结果" in reasons[3] and "'是'" in reasons[3]
    assert "核查结果" in reasons[4] and "blank" in reasons[4]


def test_an_unchanged_list_is_linked_not_written_again(round_trip):
    rt = round_trip
    day1 = rt["warehouse"] / "worklists" / COUNTY / D1.isoformat()
    unchanged = [p for p in rt["before"] if p.parent.parent.name == COUNTY and p != rt["target"]]
    assert unchanged
    for old in unchanged:
        new = day1 / old.name.replace(f"{D:%Y%m%d}", f"{D1:%Y%m%d}")
        assert new.stat().st_ino == old.stat().st_ino, new.name  # same rows: the same file under the new day's name
    changed = day1 / rt["target"].name.replace(f"{D:%Y%m%d}", f"{D1:%Y%m%d}")
    assert changed.stat().st_ino != rt["target"].stat().st_ino


def test_no_name_or_id_number_reaches_the_analysts(round_trip):
    rt = round_trip
    names = {r["姓名"] for rows in rt["before"].values() for r in rows if r["姓名"]} | set(CASEWORKERS)
    ids = {r["身份证号"] for rows in rt["before"].values() for r in rows if r["身份证号"]}
    assert names and ids
    for value in rt["analyst_text"]:
        assert not ID_LIKE.search(value), "an ID-like value in lowincome.duckdb"
        assert value not in names, "a name in lowincome.duckdb"
        assert not any(c in value for c in CASEWORKERS) and NOTE not in value


def test_cli_lists_and_resends(round_trip, monkeypatch, capsys):
    rt = round_trip
    monkeypatch.setenv("LOWINCOME_WAREHOUSE", str(rt["warehouse"]))
    monkeypatch.setenv("LOWINCOME_INBOX", str(rt["inbox"]))
    assert main(["worklist", "--county", COUNTY, "--as-of", D.isoformat()]) == 0
    out = capsys.readouterr().out
    county_rows = {p: rows for p, rows in rt["before"].items() if p.parent.parent.name == COUNTY}
    assert f"{sum(len(r) for r in county_rows.values())} open flag(s)" in out
    for p, rows in county_rows.items():
        assert re.search(rf"\s{len(rows)} flag\(s\).*{re.escape(str(p))}", out)

    # D+1: the confirmed and dismissed flags have left the list; re-sending one township rewrites its file only
    township = rt["target"].name.split("_")[1]
    new = rt["warehouse"] / "worklists" / COUNTY / D1.isoformat() / rt["target"].name.replace(f"{D:%Y%m%d}", f"{D1:%Y%m%d}")
    new.unlink()
    assert main(["worklist", "--county", COUNTY, "--township", township, "--resend"]) == 0
    out = capsys.readouterr().out
    rows = _sheet_rows(new)
    assert f"{len(rows)} open flag(s)" in out and str(new) in out
    assert len(rows) == rt["rows"] - 2 and not {k for k, v in rt["filled"].items() if v in ("确认", "排除")} & {
        r[FLAG_ID_HEADER] for r in rows}

    for argv, words in ((["--county", "371399"], "not a GB/T 2260 county"),
                        (["--county", "110101"], "not one this warehouse serves"),
                        (["--county", COUNTY, "--as-of", "2026-01-01"], "no worklists of county 371302 for 2026-01-01"),
                        (["--county", COUNTY, "--as-of", "2026-01-01", "--resend"], "no completed run for as-of 2026-01-01"),
                        (["--county", COUNTY, "--township", "371324001"], "9-digit township code of county 371302")):
        assert main(["worklist", *argv]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err


# ---- reading a returned list alone (no pipeline): accounting for untouched rows ------------------------


def _blank_list(path: Path, flag_ids: list[str]) -> Path:
    frame = pl.DataFrame({"flag_id": flag_ids, "rule": "R01 死亡人员仍在领取待遇", "level": "红", "subject": "个人",
                          "name": "张三", "id_number": "371302197001010031", "household_id": "H1",
                          "village_code": "371302001001", "summary": "…", "check": "…",
                          "first_seen_on": D, "due_on": D + timedelta(days=15)})
    write_xlsx(frame, path, "test")
    return path


def test_untouched_rows_are_counted_not_quarantined(tmp_path):
    inbox = tmp_path / "inbox"
    folder = inbox / "verification_outcomes"
    folder.mkdir(parents=True)
    path = _blank_list(folder / f"verification_outcomes_{COUNTY}_{D1:%Y%m%d}.xlsx", [f"F{i}" for i in range(6)])
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    ws["M2"], ws["O2"], ws["P2"] = "确认", datetime(2026, 11, 1), "欧阳晓风"
    ws["M3"], ws["O3"] = " 排除 ", "2026年11月1日"
    ws["M4"], ws["O4"] = "张三", "2026-11-01"  # a resident's name pasted into 核查结果
    wb.save(path)
    result = ingest_feed(FEEDS["verification_outcomes"], inbox, D1, tmp_path / "work", today=D1)
    d = result.deliveries.row(0, named=True)
    assert (d["rows_read"], d["rows_accepted"], d["rows_quarantined"], d["status"]) == (3, 2, 1, "partly_quarantined")
    assert "6 rows" in d["message"] and "3 untouched" in d["message"]
    bad = result.quarantine.row(0, named=True)
    assert "核查结果" in bad["reasons"] and "张三" not in bad["reasons"] and "张三" not in bad["record_masked"]
    assert "张三" in bad["record"]  # the restricted copy keeps the row as delivered
    staged = result.staging.sort("source_row")
    assert staged["outcome"].to_list() == ["confirmed", "dismissed"]
    assert staged["source_row"].to_list() == [1, 2]  # data rows of the sheet, as for any delivery
    assert staged["decided_on"].to_list() == [D1, D1]


def test_a_list_returned_untouched_is_no_outcome_and_no_error(tmp_path):
    inbox = tmp_path / "inbox"
    folder = inbox / "verification_outcomes"
    folder.mkdir(parents=True)
    _blank_list(folder / f"verification_outcomes_{COUNTY}_{D1:%Y%m%d}.xlsx", ["F1", "F2", "F3"])
    result = ingest_feed(FEEDS["verification_outcomes"], inbox, D1, tmp_path / "work", today=D1)
    d = result.deliveries.row(0, named=True)
    assert (d["rows_read"], d["rows_accepted"], d["rows_quarantined"], d["status"]) == (0, 0, 0, "accepted")
    assert "3 untouched" in d["message"]
    assert result.staging.height == 0 and result.quarantine.height == 0
