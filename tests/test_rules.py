"""Rules: every planted case on the generated samples, policy edge cases on hand-made deliveries, policy loading."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from lowincome.config import DEFAULT_POLICY, DEV_PSEUDONYM_KEY
from lowincome.feeds import DEPARTMENT_FEEDS, FEEDS
from lowincome.ingest import ingest_feed
from lowincome.privacy import pseudonym
from lowincome.rules.catalog import RULES, SQL_DIR
from lowincome.rules.engine import evaluate
from lowincome.rules.policy import PolicyError, load_policy
from lowincome.workstore import WorkStore

from .handmade import delivery_path, person_id, write_csv

KEY = DEV_PSEUDONYM_KEY


def person_key(id_number: str) -> str:
    return pseudonym(KEY, id_number)


def household_key(county: str, household_id: str) -> str:
    return pseudonym(KEY, f"household:{county}:{household_id}")


@pytest.fixture(scope="module")
def sample_flags(published):
    warehouse, manifest = published
    con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    yield con, manifest, warehouse
    con.close()


def _flags_for(con, rule: str, key: str) -> list[tuple]:
    return con.execute("SELECT level, status, evidence FROM mart.flags WHERE rule_id = $r AND subject_key = $k",
                       {"r": rule, "k": key}).fetchall()


def test_every_planted_case_is_flagged_right(sample_flags):
    con, manifest, _ = sample_flags
    problems = []
    for case in manifest["planted"]:
        key = (person_key(case["id_number"]) if case["subject_type"] == "person"
               else household_key(case["county"], case["household_id"]))
        found = _flags_for(con, case["rule"], key)
        if case["case"] == "positive":
            if not found:
                problems.append(f"{case['rule']} not raised: {case['note']}")
            elif case.get("level") and found[0][0] != case["level"]:
                problems.append(f"{case['rule']} level {found[0][0]} != {case['level']}: {case['note']}")
        elif found:
            problems.append(f"{case['rule']} raised for a near miss: {case['note']}")
    assert not problems, problems


def test_flags_have_the_published_columns_and_evidence(sample_flags):
    con, _, _ = sample_flags
    cols = [c[0] for c in con.execute("DESCRIBE mart.flags").fetchall()]
    for c in ("flag_id", "rule_id", "rule_name", "kind", "level", "subject_type", "subject_key", "county_code", "period",
              "as_of", "first_seen_on", "last_seen_on", "status", "evidence"):
        assert c in cols, c
    rows = con.execute("SELECT rule_id, evidence FROM mart.flags").fetchall()
    assert {r for r, _ in rows} == {r.rule_id for r in RULES}
    for rule, evidence in rows:
        doc = json.loads(evidence)
        refs = json.dumps(doc, ensure_ascii=False)
        assert '"file"' in refs and '"row"' in refs, rule  # every flag points at its source rows
    assert con.execute("SELECT count(*) FROM mart.flags GROUP BY flag_id HAVING count(*) > 1").fetchall() == []
    assert con.execute("SELECT count(*) FROM mart.household_risk").fetchone()[0] > 0
    assert con.execute("SELECT sum(open_flags) FROM mart.county_summary").fetchone()[0] == con.execute(
        "SELECT count(*) FROM mart.flags WHERE status = 'open'").fetchone()[0]


def test_household_level_is_the_highest_open_level(sample_flags):
    con, manifest, _ = sample_flags
    case = next(c for c in manifest["planted"] if c["rule"] == "W01" and c["case"] == "positive" and c["subject_type"] == "household")
    level = con.execute("SELECT level FROM mart.household_risk WHERE household_key = $k",
                        {"k": household_key(case["county"], case["household_id"])}).fetchone()[0]
    assert level == "橙"


def test_caseworkers_list_is_restricted(sample_flags):
    con, manifest, warehouse = sample_flags
    r = duckdb.connect(str(warehouse / "restricted.duckdb"), read_only=True)
    case = next(c for c in manifest["planted"] if c["rule"] == "R01" and c["case"] == "positive")
    assert r.execute("SELECT count(*) FROM caseworker_flags WHERE rule_id = 'R01' AND id_number = $i",
                     {"i": case["id_number"]}).fetchone()[0] == 1
    r.close()


def test_every_sql_file_has_a_header_and_binds_as_of():
    for rule in RULES:
        text = rule.sql_path.read_text(encoding="utf-8")
        assert text.startswith(f"-- {rule.rule_id} {rule.name}"), rule.sql_path
        assert "Fires:" in text and "Evidence" in text
        assert "{" not in text.split("\n", 1)[0]
    assert len(list((SQL_DIR / "rules").glob("*.sql"))) == len(RULES)


# ---- edge cases on hand-made deliveries -------------------------------------------------------

AS_OF = date(2026, 10, 31)
C = "371302"
PAY_HEADER = ["发放流水号", "身份证号", "姓名", "行政区划代码", "补贴类型", "发放月份", "金额"]
DEATH_HEADER = ["身份证号", "姓名", "死亡日期", "信息来源"]
CERT_HEADER = ["残疾人证号", "身份证号", "姓名", "行政区划代码", "残疾类别", "残疾等级", "发证日期", "证件状态", "注销日期"]
CLAIM_HEADER = ["结算ID", "身份证号", "姓名", "参保地行政区划", "结算日期", "就诊类型", "医疗总费用", "基本医保统筹支付",
                "大病保险支付", "医疗救助支付", "个人自付", "主要诊断编码"]


def stage(inbox: Path, work: Path, as_of: date = AS_OF) -> dict[str, Path]:
    store = WorkStore(work, run_id="test")  # a run's own folder (lowincome/workstore.py)
    paths = {}
    for feed, spec in DEPARTMENT_FEEDS.items():
        result = ingest_feed(spec, inbox, as_of, store.root, blocking_share=1.0)
        paths[feed] = store.write(as_of, "staging", feed, result.staging)
    return paths


def flags_of(paths, as_of: date = AS_OF):
    ev = evaluate(paths, load_policy(DEFAULT_POLICY), as_of, KEY)
    return ev.flags.join(ev.subjects.select("flag_id", "id_number"), on="flag_id")


def test_policy_edge_cases(tmp_path):
    inbox = tmp_path / "inbox"
    last_day = person_id(C, "19600101", 11)       # died on the last day of August, paid for August only
    next_month = person_id(C, "19600102", 13)     # died on the last day of August, paid for September
    legacy = person_id(C, "19550303", 15)         # 15-digit ID in the death feed, 18 in payments
    two_sources = person_id(C, "19500404", 17)    # death reported twice, three days apart
    revoked_mid = person_id(C, "19700505", 19)    # certificate revoked 15 Aug: care subsidy for Aug is fine
    revoked_after = person_id(C, "19700506", 21)  # ... for September is not
    twice = person_id(C, "19800606", 23)          # one claim delivered twice
    write_csv(delivery_path(inbox, "death_records", C, date(2026, 9, 30), "csv"), DEATH_HEADER, [
        [last_day, "甲", "2026-08-31", "公安户籍注销"],
        [next_month, "乙", "2026/8/31", "殡葬火化"],
        [legacy[:6] + legacy[8:17], "丙", "2026-07-10", "公安户籍注销"],
        [two_sources, "丁", "2026-07-30", "公安户籍注销"],
        [two_sources, "丁", "2026-08-02", "殡葬火化"],
    ], encoding="gb18030")
    write_csv(delivery_path(inbox, "subsidy_payments", C, date(2026, 9, 20), "csv"), PAY_HEADER, [
        ["P1", last_day, "甲", C, "低保金", "2026-08", "500.00"],
        ["P2", next_month, "乙", C, "低保金", "2026-09", "500.00"],
        ["P3", legacy, "丙", C, "特困供养金", "2026-08", "910.00"],
        ["P4", two_sources, "丁", C, "低保金", "2026-08", "500.00"],
        ["P5", revoked_mid, "戊", C, "重度残疾人护理补贴", "2026-08", "90.00"],
        ["P6", revoked_after, "己", C, "重度残疾人护理补贴", "2026-09", "90.00"],
    ])
    write_csv(delivery_path(inbox, "disability_cert", C, date(2026, 9, 30), "csv"), CERT_HEADER, [
        [revoked_mid + "41", revoked_mid, "戊", C, "肢体", "一级", "2015-01-01", "注销", "2026-08-15"],
        [revoked_after + "41", revoked_after, "己", C, "肢体", "一级", "2015-01-01", "注销", "2026-08-15"],
    ])
    claim = ["S1", twice, "庚", C, "2026-09-01", "住院", "9000.00", "3000.00", "0.00", "0.00", "6000.00", "C34.9"]
    write_csv(delivery_path(inbox, "medical_claims", C, date(2026, 9, 30), "csv"), CLAIM_HEADER, [claim])
    write_csv(delivery_path(inbox, "medical_claims", C, date(2026, 10, 5), "csv"), CLAIM_HEADER, [claim])
    flags = flags_of(stage(inbox, tmp_path / "wh"))
    r01 = {i: (p, e) for r, i, p, e in flags.select("rule_id", "id_number", "period", "evidence").iter_rows() if r == "R01"}
    assert last_day not in r01
    assert next_month in r01 and r01[next_month][0] == "2026-08"
    assert legacy in r01
    assert two_sources in r01 and r01[two_sources][0] == "2026-07"
    assert len(json.loads(r01[two_sources][1])["death_reports"]) == 2
    r02 = set(flags.filter(flags["rule_id"] == "R02")["id_number"])
    assert revoked_after in r02 and revoked_mid not in r02
    # 6,000 counted once stays under the 10,000 yellow line; counted twice it would not
    assert twice not in set(flags.filter(flags["rule_id"] == "W01")["id_number"])


# ---- policy file ---------------------------------------------------------------------------------


def test_policy_defaults_and_county_periods(tmp_path):
    policy = load_policy(DEFAULT_POLICY)
    assert policy.in_force("371302", AS_OF)["urban_dibao_standard_monthly"] == 700
    custom = tmp_path / "p.yaml"
    custom.write_text(DEFAULT_POLICY.read_text(encoding="utf-8") + (
        '  "371399":\n    - effective_from: 2026-07-01\n      urban_dibao_standard_monthly: 760\n'
    ), encoding="utf-8")
    p = load_policy(custom)
    assert p.in_force("371399", date(2026, 6, 30))["urban_dibao_standard_monthly"] == 700
    assert p.in_force("371399", date(2026, 7, 1))["urban_dibao_standard_monthly"] == 760


@pytest.mark.parametrize("text, message", [
    ("default: []\n", "'default' must be a list of periods"),
    ("default:\n  - effective_from: 2024-01-01\n    urban_dibao_standard_monthly: abc\n", "urban_dibao_standard_monthly must be a finite number"),
    ("default:\n  - urban_dibao_standard_monthly: 700\n", "effective_from is missing"),
    ("default:\n  - effective_from: 2024-01-01\n", "lacks"),
    ("default: [\n", "not valid YAML"),
])
def test_bad_policy_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as exc:
        load_policy(path)
    assert message in str(exc.value) and str(path) in str(exc.value)


def test_outcomes_feed_is_registered():
    assert "verification_outcomes" in FEEDS and "verification_outcomes" not in DEPARTMENT_FEEDS
