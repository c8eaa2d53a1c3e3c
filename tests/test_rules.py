"""Rules: every planted case on the generated samples, policy edge cases on hand-made deliveries, policy loading."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from lowincome.config import DEFAULT_POLICY, DEV_PSEUDONYM_KEY
from lowincome.feeds import DEPARTMENT_FEEDS, FEEDS
from lowincome.ingest import ingest_feed
from lowincome.keys import pseudonym
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
    return con.execute("SELECT level, status, evidence FROM mart.flags WHERE rule_id = $r AND subject_key = $k "
                       "ORDER BY period", {"r": rule, "k": key}).fetchall()


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
                continue
            if case.get("level") and found[0][0] != case["level"]:
                problems.append(f"{case['rule']} level {found[0][0]} != {case['level']}: {case['note']}")
            # one flag per continuing condition: as many flags as runs, the first covering its months and amount
            if case.get("flags") is not None and len(found) != case["flags"]:
                problems.append(f"{case['rule']} {len(found)} flags != {case['flags']}: {case['note']}")
            first = json.loads(found[0][2])
            if case.get("months") is not None and len(first.get("months", [])) != case["months"]:
                problems.append(f"{case['rule']} months {first.get('months')} != {case['months']}: {case['note']}")
            if case.get("amount_to_recover") is not None and first.get("amount_to_recover") != pytest.approx(case["amount_to_recover"]):
                problems.append(f"{case['rule']} amount {first.get('amount_to_recover')} != {case['amount_to_recover']}: {case['note']}")
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


# ---- every parameter per county (issue 8: a county's override is honoured, never silently ignored) ------

ROSTER_HEADER = ["行政区划代码", "家庭编号", "户主身份证号", "身份证号", "姓名", "与户主关系", "救助类型", "城乡类别", "保障状态",
                 "纳入日期", "停保日期", "家庭人口数", "家庭月人均收入", "月救助金额"]
HRSS_HEADER = ["身份证号", "姓名", "项目", "月份", "金额"]


def policy_with(tmp_path: Path, default: dict | None = None, county: dict | None = None, name: str = "p.yaml") -> Path:
    """The bundled policy, with values changed in the default block and/or in county C's block."""
    import yaml

    doc = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    doc["default"][0].update(default or {})
    doc["counties"][C][0].update(county or {})
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def flags_under(paths, policy: Path, as_of: date = AS_OF):
    ev = evaluate(paths, load_policy(policy), as_of, KEY)
    return ev.flags.join(ev.subjects.select("flag_id", "id_number", "household_id"), on="flag_id")


def roster_row(pid: str, household: str, size: int = 1, income: str = "5000", kind: str = "低保") -> list[str]:
    return [C + "001001", household, pid, pid, "甲", "本人", kind, "城市", "在保", "2020-01-01", "", str(size), income, "400"]


def claim(n: int, pid: str, day: str, amount: str) -> list[str]:
    return [f"S{n}", pid, "庚", C, day, "住院", amount, "0.00", "0.00", "0.00", amount, ""]


def test_w01_reads_the_county_window_and_thresholds(tmp_path):
    inbox = tmp_path / "inbox"
    on_roster = person_id(C, "19800606", 23)  # household income 60,000 a year: only the amounts matter
    old_claim = person_id(C, "19800607", 25)  # 12,000 settled 200 days ago
    write_csv(delivery_path(inbox, "civil_roster", C, date(2026, 10, 31), "csv"), ROSTER_HEADER,
              [roster_row(on_roster, "H1"), roster_row(old_claim, "H2")])
    write_csv(delivery_path(inbox, "medical_claims", C, date(2026, 10, 31), "csv"), CLAIM_HEADER, [
        claim(1, on_roster, "2026-09-01", "12000.00"),
        claim(2, old_claim, (AS_OF - timedelta(days=200)).isoformat(), "12000.00"),
    ])
    paths = stage(inbox, tmp_path / "wh")
    default = flags_under(paths, policy_with(tmp_path))
    w01 = dict(default.filter(default["rule_id"] == "W01").select("household_id", "level").iter_rows())
    assert w01 == {"H1": "黄", "H2": "黄"}
    custom = flags_under(paths, policy_with(tmp_path, county={"medical_lookback_days": 180, "medical_yellow_amount": 11000,
                                                              "medical_orange_amount": 12000}, name="c.yaml"))
    w01 = {h: (lvl, json.loads(e)) for h, lvl, e in
           custom.filter(custom["rule_id"] == "W01").select("household_id", "level", "evidence").iter_rows()}
    assert set(w01) == {"H1"} and w01["H1"][0] == "橙"  # the old claim is outside the county's 180 days
    assert w01["H1"][1]["window_days"] == 180 and w01["H1"][1]["thresholds"]["orange"]["amount"] == 12000


def test_w01_people_on_no_roster_follow_the_proactive_discovery_line(tmp_path):
    inbox = tmp_path / "inbox"
    big, middle, small = (person_id(C, "19700101", 41), person_id(C, "19700102", 43), person_id(C, "19700103", 45))
    write_csv(delivery_path(inbox, "medical_claims", C, date(2026, 10, 31), "csv"), CLAIM_HEADER, [
        claim(1, big, "2026-09-01", "36000.00"),     # >= 35,000: 橙
        claim(2, middle, "2026-09-01", "30000.00"),  # above the roster's orange amount, below the line: nothing
        claim(3, small, "2026-09-01", "12000.00"),   # above the roster's yellow amount: nothing
    ])
    paths = stage(inbox, tmp_path / "wh")
    found = flags_under(paths, policy_with(tmp_path))
    w01 = dict(found.filter(found["rule_id"] == "W01").select("id_number", "level").iter_rows())
    assert w01 == {big: "橙"}
    found = flags_under(paths, policy_with(tmp_path, county={"proactive_discovery_amount": 25000}, name="c.yaml"))
    w01 = dict(found.filter(found["rule_id"] == "W01").select("id_number", "level").iter_rows())
    assert w01 == {big: "橙", middle: "橙"}
    found = flags_under(paths, policy_with(tmp_path, county={"medical_red_amount": 36000}, name="r.yaml"))
    assert dict(found.filter(found["rule_id"] == "W01").select("id_number", "level").iter_rows()) == {big: "红"}


def test_w02_and_w04_read_the_county_window_and_ages(tmp_path):
    inbox = tmp_path / "inbox"
    holder = person_id(C, "19800808", 27)  # severe certificate issued 60 days ago, no care subsidy
    died = person_id(C, "19860909", 29)    # aged 40, died 60 days ago
    write_csv(delivery_path(inbox, "civil_roster", C, date(2026, 10, 31), "csv"), ROSTER_HEADER,
              [roster_row(holder, "H1"), roster_row(died, "H2", size=2)])
    sixty_days_ago = (AS_OF - timedelta(days=60)).isoformat()
    write_csv(delivery_path(inbox, "disability_cert", C, date(2026, 10, 31), "csv"), CERT_HEADER, [
        [holder + "41", holder, "戊", C + "001001", "肢体", "一级", sixty_days_ago, "正常", ""],
    ])
    write_csv(delivery_path(inbox, "death_records", C, date(2026, 10, 31), "csv"), DEATH_HEADER,
              [[died, "乙", sixty_days_ago, "公安户籍注销"]])
    paths = stage(inbox, tmp_path / "wh")

    def rules(found) -> set[str]:
        return set(found.filter(found["rule_id"].is_in(["W02", "W04"]))["rule_id"])

    assert rules(flags_under(paths, policy_with(tmp_path))) == {"W02", "W04"}
    assert rules(flags_under(paths, policy_with(tmp_path, county={"recent_window_days": 30}, name="w.yaml"))) == set()
    assert rules(flags_under(paths, policy_with(tmp_path, county={"death_shock_age_max": 35}, name="a.yaml"))) == {"W02"}
    # and the other way round: a county wider than a narrow default
    assert rules(flags_under(paths, policy_with(tmp_path, default={"recent_window_days": 30},
                                                county={"recent_window_days": 90}, name="d.yaml"))) == {"W02", "W04"}


def _r05_inbox(tmp_path: Path) -> dict[str, Path]:
    """A one-person urban 低保 household earning 2,000 a month from 2025-09 to 2026-10: its 3-month mean is
    above the 700 standard from 2025-10 on, a run of 13 months ending with the latest hrss month."""
    inbox = tmp_path / "inbox"
    earner = person_id(C, "19900101", 51)
    write_csv(delivery_path(inbox, "civil_roster", C, date(2026, 10, 31), "csv"), ROSTER_HEADER,
              [roster_row(earner, "H5", income="300")])
    months = [f"{y}-{m:02d}" for y, m in [(2025, 9), (2025, 10), (2025, 11), (2025, 12)] + [(2026, k) for k in range(1, 11)]]
    write_csv(delivery_path(inbox, "hrss_benefits", C, date(2026, 10, 31), "csv"), HRSS_HEADER,
              [[earner, "丁", "就业登记工资", m, "2000.00"] for m in months])
    return stage(inbox, tmp_path / "wh")


@pytest.mark.parametrize("grace, fires", [(6, True), (12, True), (13, False)])
def test_r05_fires_after_any_grace_period(tmp_path, grace, fires):
    found = flags_under(_r05_inbox(tmp_path), policy_with(tmp_path, default={"employment_grace_months": grace}))
    r05 = found.filter(found["rule_id"] == "R05")
    assert r05.height == (1 if fires else 0)
    if fires:
        evidence = json.loads(r05["evidence"][0])
        assert r05["period"][0] == "2025-10" and evidence["months_above_standard"] == 13
        assert evidence["grace_months"] == grace and len(evidence["monthly"]) == 13


def test_r05_reads_the_county_grace(tmp_path):
    paths = _r05_inbox(tmp_path)
    longer = flags_under(paths, policy_with(tmp_path, default={"employment_grace_months": 12},
                                            county={"employment_grace_months": 13}))
    assert longer.filter(longer["rule_id"] == "R05").height == 0
    shorter = flags_under(paths, policy_with(tmp_path, default={"employment_grace_months": 13},
                                             county={"employment_grace_months": 12}, name="s.yaml"))
    assert shorter.filter(shorter["rule_id"] == "R05").height == 1


# ---- the one-line Chinese summary of each flag (worklists, run report) ----------------------------------------


def test_every_flag_reads_as_one_chinese_sentence_without_ids_or_names(sample_flags):
    import re

    from lowincome.rules.catalog import BY_ID
    from lowincome.rules.summary import evidence_summary_zh

    con, manifest, warehouse = sample_flags
    r = duckdb.connect(str(warehouse / "restricted.duckdb"), read_only=True)
    names = {n for (n,) in r.execute("SELECT DISTINCT name FROM person_index WHERE length(name) >= 2").fetchall()}
    r.close()
    rows = con.execute("SELECT rule_id, period, evidence, subject_key FROM mart.flags").fetchall()
    assert {rule for rule, *_ in rows} == {rule.rule_id for rule in RULES}
    for rule, period, evidence, _ in rows:
        line = evidence_summary_zh(rule, evidence, period)
        assert line and not line.startswith(BY_ID[rule].name_zh), (rule, line)  # built from the evidence
        assert not re.search(r"\d{15}", line), rule  # no ID number
        assert not any(n in line for n in names), rule  # no name
    case = next(c for c in manifest["planted"] if c["rule"] == "R07" and c.get("flags") and c["subject_type"] == "household")
    evidence = con.execute("SELECT evidence FROM mart.flags WHERE rule_id = 'R07' AND subject_key = $k",
                           {"k": household_key(case["county"], case["household_id"])}).fetchone()[0]
    line = evidence_summary_zh("R07", evidence)
    assert "停保" in line and "仍发放低保金共 1,200 元" in line and "（2 名领取人）" in line, line
