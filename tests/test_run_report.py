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


def test_report_can_be_cited_and_every_count_leads_to_its_flags(tmp_path):
    """Header: code version, policy file and its sha256, day, run; files with sha256 and validation status;
    counts link to per-rule pages that list the flags; delivered text is escaped everywhere (Jinja2 autoescape)."""
    import hashlib

    wh = tmp_path / "wh"
    wh.mkdir()
    policy = tmp_path / "policy.yaml"
    policy.write_text("served_counties: ['371302']\n", encoding="utf-8")
    con = duckdb.connect(str(wh / ANALYSTS_DB))
    con.execute("CREATE SCHEMA audit; CREATE SCHEMA mart")
    con.execute("""CREATE TABLE audit.runs AS SELECT 'r1-aaaaaaaa' AS run_id, DATE '2026-10-31' AS as_of,
                   '0.1.0+abc123' AS code_version, 'success' AS status""")
    con.execute("""CREATE TABLE audit.deliveries AS SELECT * FROM (VALUES
        ('r1-aaaaaaaa', 'civil_roster', 'a.csv', 'ab' || repeat('0', 62), 'accepted', 10, 10, 0, NULL),
        ('r1-aaaaaaaa', 'medical_claims', ?, 'cd' || repeat('1', 62), 'partly_quarantined', 5, 4, 1, ?)
        ) t(run_id, feed, file_name, sha256, status, rows_read, rows_accepted, rows_quarantined, message)""",
                [f"b{HOSTILE}.csv", HOSTILE])
    con.execute("""CREATE TABLE audit.validation_results AS SELECT * FROM (VALUES
        ('r1-aaaaaaaa', 'civil_roster', 'a.csv', true, 'blocking', 0),
        ('r1-aaaaaaaa', 'medical_claims', ?, false, 'warning', 1)
        ) t(run_id, feed, file_name, success, severity, unexpected_count)""", [f"b{HOSTILE}.csv"])
    flags = [(f"F{i:03d}", "R01", "死亡人员仍在领取待遇", "person", f"k{i:03d}", "371302", "2026-09", "红", "open",
              True, False, DAY, '{"died_on": "2026-08-01", "months": ["2026-09"], "note": "' + HOSTILE + '"}')
             for i in range(3)]
    flags.append(("F100", "W02", "新增重度残疾", "person", "k100", "371324", "2026-10", "黄", "open", False, False, DAY, None))
    con.execute("""CREATE TABLE mart.flags (flag_id VARCHAR, rule_id VARCHAR, rule_name VARCHAR, subject_type VARCHAR,
                   subject_key VARCHAR, county_code VARCHAR, period VARCHAR, level VARCHAR, status VARCHAR,
                   is_new BOOLEAN, resolved_today BOOLEAN, first_seen_on DATE, evidence VARCHAR)""")
    con.executemany("INSERT INTO mart.flags VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", flags)
    con.close()

    path = write_run_report(wh, DAY, "r1-aaaaaaaa", policy=policy)
    page = path.read_text(encoding="utf-8")
    assert "0.1.0+abc123" in page and "r1-aaaaaaaa" in page and str(DAY) in page
    assert str(policy) in page and hashlib.sha256(policy.read_bytes()).hexdigest() in page
    assert "ab" + "0" * 10 in page and "cd" + "1" * 10 in page  # each file's sha256 (shortened, full in title)
    assert "通过 passed" in page and "警告 warnings only" in page  # a warning is not shown as a failure
    assert HOSTILE not in page and "&lt;script&gt;" in page

    links = re.findall(r'href="(run_2026-10-31_r1-aaaaa/rule_[^"#]+)(?:#county-(\d+))?"', page)
    assert {l for l, _ in links} == {"run_2026-10-31_r1-aaaaa/rule_R01.html", "run_2026-10-31_r1-aaaaa/rule_W02.html"}
    assert ("run_2026-10-31_r1-aaaaa/rule_R01.html", "371302") in links
    rule = (wh / "reports" / "run_2026-10-31_r1-aaaaa" / "rule_R01.html").read_text(encoding="utf-8")
    assert 'id="county-371302"' in rule and all(f"F{i:03d}" in rule and f"k{i:03d}" in rule for i in range(3))
    assert "died_on: 2026-08-01" in rule and "[1 项 items]" in rule  # the one-line evidence summary
    assert HOSTILE not in rule and "&lt;script&gt;" in rule
    assert "F100" not in rule and "F100" in (wh / "reports" / "run_2026-10-31_r1-aaaaa" / "rule_W02.html").read_text(
        encoding="utf-8")
