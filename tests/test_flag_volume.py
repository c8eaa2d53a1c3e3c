"""Flag volume per 1,000 roster persons, per rule and county, in the run report and the rules asset's metadata.

The database is made by hand with counts chosen so that the expected rates and verdicts are known
without the code: county 371302 has 1,000 persons 在保 on its latest roster (plus persons 停保 and
persons of an older snapshot, who do not count), county 371324 has no roster at all.
"""

from __future__ import annotations

import re
from datetime import date

import duckdb
import polars as pl

from lowincome.flag_volume import FLOOD_PER_1000, volume_of_frames
from lowincome.publish import ANALYSTS_DB
from lowincome.run_report import write_run_report

DAY = date(2026, 10, 31)


def _warehouse(tmp_path):
    wh = tmp_path / "wh"
    wh.mkdir()
    con = duckdb.connect(str(wh / ANALYSTS_DB))
    con.execute("CREATE SCHEMA audit; CREATE SCHEMA mart; CREATE SCHEMA staging")
    con.execute("""CREATE TABLE audit.deliveries (run_id VARCHAR, feed VARCHAR, file_name VARCHAR, status VARCHAR,
                   rows_read BIGINT, rows_accepted BIGINT, rows_quarantined BIGINT, message VARCHAR)""")
    con.execute("""CREATE TABLE staging.civil_roster AS
        SELECT '371302' AS file_county, 'p' || i AS person_key, '在保' AS status, true AS is_latest FROM range(1000) t(i)
        UNION ALL SELECT '371302', 'p' || i, '在保', true FROM range(200) t(i)          -- a person in two households
        UNION ALL SELECT '371302', 's' || i, '停保', true FROM range(300) t(i)          -- no longer covered
        UNION ALL SELECT '371302', 'o' || i, '在保', false FROM range(500) t(i)        -- an older snapshot""")
    con.execute("""CREATE TABLE mart.flags AS
        SELECT 'W01' AS rule_id, '橙' AS level, 'open' AS status, '371302' AS county_code, i < 20 AS is_new,
               false AS resolved_today, false AS data_stale, DATE '2026-10-31' AS as_of FROM range(60) t(i)
        UNION ALL SELECT 'R01', '红', 'open', '371302', false, false, false, DATE '2026-10-31' FROM range(10) t(i)
        UNION ALL SELECT 'R01', '红', 'resolved', '371302', false, true, false, DATE '2026-10-31' FROM range(90) t(i)
        UNION ALL SELECT 'W05', '黄', 'open', '371324', true, false, false, DATE '2026-10-31' FROM range(50) t(i)
        UNION ALL SELECT 'W02', '黄', 'open', '371324', true, false, false, DATE '2026-10-31' FROM range(3) t(i)""")
    con.close()
    return wh


def _volume_rows(page: str) -> list[list[str]]:
    section = page[page.index('id="flag-volume"'):]
    section = section[: section.index("</table>")]
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", section, flags=re.S)[1:]:
        rows.append([re.sub(r"<[^>]+>", "", td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)])
    return rows


def test_report_shows_flags_per_1000_roster_persons_and_marks_a_flood(tmp_path):
    assert FLOOD_PER_1000 == 50  # the documented threshold (docs/decisions.md, part chinese)
    page = write_run_report(_warehouse(tmp_path), DAY, "r1").read_text(encoding="utf-8")
    rows = {(r[0], r[1].split()[0]): r for r in _volume_rows(page)}
    assert set(rows) == {("371302", "W01"), ("371302", "R01"), ("371324", "W05"), ("371324", "W02")}
    # county, rule, open, new, roster persons, open per 1,000, new per 1,000, verdict
    assert rows[("371302", "W01")][2:] == ["60", "20", "1,000", "60.0", "20.0", "异常 flood"]
    assert rows[("371302", "R01")][2:] == ["10", "0", "1,000", "10.0", "0.0", "正常 normal"]
    assert rows[("371324", "W05")][2:] == ["50", "50", "0", "—", "—", "异常 flood"]  # no roster: 50 open is a flood
    assert rows[("371324", "W02")][2:] == ["3", "3", "0", "—", "—", "无在册人员 no roster persons"]
    assert rows[("371302", "W01")][1].startswith("W01 医疗支出负担过重")
    # the floods first (a county without roster before the highest rate), then the rest by rate
    assert [(r[0], r[1].split()[0]) for r in _volume_rows(page)] == [
        ("371324", "W05"), ("371302", "W01"), ("371324", "W02"), ("371302", "R01")]


def test_the_rules_step_computes_the_same_rows_from_its_frames():
    flags = pl.DataFrame({"county_code": ["371302"] * 60 + ["371324"] * 2, "rule_id": ["W01"] * 60 + ["R01"] * 2,
                          "status": ["open"] * 62, "is_new": [True] * 62})
    sizes = pl.DataFrame({"county_code": ["371302", "371324"], "roster_persons": [1000, 400]})
    rows = volume_of_frames(flags, sizes)
    assert [(r["county_code"], r["rule_id"], r["open_per_1000"], r["flood"]) for r in rows] == [
        ("371302", "W01", 60.0, True), ("371324", "R01", 5.0, False)]


def test_flags_asset_metadata_has_the_flag_volume(published_run):
    _, _, result = published_run
    [materialization] = result.asset_materializations_for_node("mart__flags")
    metadata = materialization.metadata
    assert "每千人未结 open/1000" in metadata["flag_volume"].value
    assert metadata["flood_rows"].value == metadata["flag_volume"].value.count("异常 flood")
