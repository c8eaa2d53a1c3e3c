"""The run report's charts: drawn as inline SVG from the analysts' database, in proportion, escaped, no plotting library.

The database is made by hand here (the tables and columns `write_run_report` reads), so the expected
bars are known independently of the code that draws them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import date

import duckdb

from lowincome.publish import ANALYSTS_DB
from lowincome.run_report import write_run_report

DAY = date(2026, 10, 31)
HOSTILE = "<script>alert(1)</script>"
SVG_NS = "{http://www.w3.org/2000/svg}"


def _warehouse(tmp_path):
    wh = tmp_path / "wh"
    wh.mkdir()
    con = duckdb.connect(str(wh / ANALYSTS_DB))
    con.execute("CREATE SCHEMA audit; CREATE SCHEMA mart")
    con.execute("""CREATE TABLE audit.deliveries AS SELECT * FROM (VALUES
        ('r1', 'civil_roster', 'a.csv', 'accepted', 1000, 900, 100, NULL),
        ('r1', 'medical_claims', 'b.csv', 'accepted', 3000, 3000, 0, NULL),
        ('r1', ?, 'c.csv', 'rejected', 0, 0, 0, 'not a feed folder')
        ) t(run_id, feed, file_name, status, rows_read, rows_accepted, rows_quarantined, message)""", [HOSTILE])
    con.execute("""CREATE TABLE mart.flags AS SELECT * FROM (VALUES
        ('R01', '红', 'open', '371302', true, false, false, DATE '2026-10-31'),
        ('R01', '红', 'open', '371302', false, false, false, DATE '2026-10-31'),
        ('R01', '橙', 'open', '371302', false, false, false, DATE '2026-10-31'),
        ('W02', '黄', 'open', '371324', true, false, false, DATE '2026-10-31'),
        ('W02', '黄', 'resolved', '371324', false, true, false, DATE '2026-10-31')
        ) t(rule_id, level, status, county_code, is_new, resolved_today, data_stale, as_of)""")
    con.execute("""CREATE TABLE audit.flag_trend AS SELECT * FROM (VALUES
        (DATE '2026-10-30', 5, 2, 0), (DATE '2026-10-31', 4, 1, 3)) t(as_of, holding, new_flags, resolved_flags)""")
    con.close()
    return wh


def _charts(page: str) -> dict[str, ET.Element]:
    charts = {}
    for svg in re.findall(r"<svg .*?</svg>", page, flags=re.S):
        root = ET.fromstring(svg)  # well-formed XML, or this fails
        charts[root.get("aria-label")] = root
    return charts


def test_charts_are_inline_svg_in_proportion_and_escaped(tmp_path):
    wh = _warehouse(tmp_path)
    page = write_run_report(wh, DAY, "r1").read_text(encoding="utf-8")
    charts = _charts(page)
    assert set(charts) == {"Rows per feed", "Open flags by rule and level", "New vs resolved flags, last 30 runs"}
    assert HOSTILE not in page and "&lt;script&gt;" in page  # the stray folder's name is text, in table and chart

    rows = charts["Rows per feed"]
    labels = [t.text for t in rows.iter(f"{SVG_NS}text")]
    assert "civil_roster" in labels and "medical_claims" in labels and HOSTILE in labels  # parsed back: escaped
    bars = [float(r.get("width")) for r in rows.iter(f"{SVG_NS}rect") if r.get("fill") in ("#2e86c1", "#e74c3c")
            and r.get("height") != "10"]
    # per feed in name order (the inbox root's stray sorts first): accepted then quarantined
    accepted = {"civil_roster": 900, "medical_claims": 3000}
    widths = dict(zip(["stray", "civil_roster", "medical_claims"], zip(bars[0::2], bars[1::2])))
    assert widths["stray"] == (0.0, 0.0)
    assert abs(widths["civil_roster"][0] / widths["medical_claims"][0] - accepted["civil_roster"] / 3000) < 0.01
    assert abs(widths["civil_roster"][1] / widths["civil_roster"][0] - 100 / 900) < 0.01

    flags = charts["Open flags by rule and level"]
    stacks = [(r.get("fill"), float(r.get("height"))) for r in flags.iter(f"{SVG_NS}rect")
              if r.get("fill") in ("#c0392b", "#e67e22", "#f1c40f") and r.get("height") != "10"]
    # R01: 2 red + 1 orange open; W02: 1 yellow open (the resolved one is not drawn)
    assert [f for f, _ in stacks] == ["#c0392b", "#e67e22", "#f1c40f"]
    assert abs(stacks[0][1] / stacks[1][1] - 2.0) < 0.01 and abs(stacks[2][1] / stacks[1][1] - 1.0) < 0.01

    trend = charts["New vs resolved flags, last 30 runs"]
    assert len(list(trend.iter(f"{SVG_NS}polyline"))) == 2 and len(list(trend.iter(f"{SVG_NS}circle"))) == 4


def test_report_module_does_not_import_a_plotting_library():
    code = "import sys, lowincome.run_report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
