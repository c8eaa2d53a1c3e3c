"""A dismissal stays while the same condition continues and reopens on a change in substance; a warehouse built by
the previous version (one flag per payment month) keeps its caseworkers' outcomes on the run flags that replace them.

rules.md, Lifecycle: "a dismissed flag stays quiet until its evidence changes in substance: a new kind of fact
(another source, another benefit type, a higher level), not merely more months of the same continuing condition."
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from lowincome.config import DEV_PSEUDONYM_KEY
from lowincome.keys import pseudonym
from pipelines.definitions import defs

from .handmade import delivery_path, person_id, write_csv

C = "371302"
D1, D2, D3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
ROSTER_HEADER = ["行政区划代码", "家庭编号", "户主身份证号", "身份证号", "姓名", "与户主关系", "救助类型", "城乡类别", "保障状态",
                 "纳入日期", "停保日期", "家庭人口数", "家庭月人均收入", "月救助金额"]
PAY_HEADER = ["发放流水号", "身份证号", "姓名", "行政区划代码", "补贴类型", "发放月份", "金额"]
DEATH_HEADER = ["身份证号", "姓名", "死亡日期", "信息来源"]
CLAIM_HEADER = ["结算ID", "身份证号", "姓名", "参保地行政区划", "结算日期", "就诊类型", "医疗总费用", "基本医保统筹支付",
                "大病保险支付", "医疗救助支付", "个人自付", "主要诊断编码"]
OUTCOME_HEADER = ["flag_id", "outcome", "note", "decided_on", "caseworker"]

SICK = person_id(C, "19700101", 31)  # on 低保, household income 60,000 a year: W01 by the amount out of pocket
DEAD = person_id(C, "19500202", 33)  # died in July, still paid: R01
CARE = person_id(C, "19800303", 35)  # care subsidy without any certificate, three months: R02
GONE = person_id(C, "19650404", 37)  # household stopped in June, 低保金 still paid: R07


def run(day: date) -> None:
    assert defs.resolve_job_def("nightly").execute_in_process(partition_key=day.isoformat()).success


def mart(warehouse: Path) -> pl.DataFrame:
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        return pl.from_arrow(con.sql("SELECT * FROM mart.flags").to_arrow_table())


def by_rule(warehouse: Path) -> dict[str, dict]:
    return {r["rule_id"]: r for r in mart(warehouse).filter(pl.col("last_seen_on") == pl.col("as_of")).iter_rows(named=True)}


def claim(n: int, pid: str, day: str, amount: str) -> list[str]:
    return [f"S{n}", pid, "庚", C, day, "住院", amount, "0.00", "0.00", "0.00", amount, ""]


def test_dismissal_stays_for_more_of_the_same_and_reopens_on_a_new_kind_of_fact(lowincome_env, tmp_path):
    inbox = tmp_path / "inbox"
    warehouse = lowincome_env(inbox)
    write_csv(delivery_path(inbox, "civil_roster", C, D1, "csv"), ROSTER_HEADER,
              [[C + "001001", "H1", SICK, SICK, "甲", "本人", "低保", "城市", "在保", "2020-01-01", "", "1", "5000", "400"]])
    write_csv(delivery_path(inbox, "death_records", C, D1, "csv"), DEATH_HEADER, [[DEAD, "乙", "2026-07-10", "公安户籍注销"]])
    write_csv(delivery_path(inbox, "subsidy_payments", C, D1, "csv"), PAY_HEADER, [["P1", DEAD, "乙", C, "低保金", "2026-08", "500.00"]])
    write_csv(delivery_path(inbox, "medical_claims", C, D1, "csv"), CLAIM_HEADER, [claim(1, SICK, "2026-09-01", "12000.00")])
    run(D1)
    day1 = by_rule(warehouse)
    assert day1["W01"]["level"] == "黄" and day1["R01"]["status"] == "open"

    # night 2: both dismissed; then more of the same: 2,000 more out of pocket (still 黄), one more month of 低保金
    write_csv(delivery_path(inbox, "verification_outcomes", C, D2, "csv"), OUTCOME_HEADER, [
        [day1["W01"]["flag_id"], "dismissed", "already on medical assistance", D2.isoformat(), "王五"],
        [day1["R01"]["flag_id"], "dismissed", "paid to the surviving spouse", D2.isoformat(), "王五"],
    ])
    write_csv(delivery_path(inbox, "medical_claims", C, D2, "csv"), CLAIM_HEADER, [claim(2, SICK, "2026-09-20", "2000.00")])
    write_csv(delivery_path(inbox, "subsidy_payments", C, D2, "csv"), PAY_HEADER, [["P2", DEAD, "乙", C, "低保金", "2026-09", "500.00"]])
    run(D2)
    day2 = by_rule(warehouse)
    for rule in ("W01", "R01"):
        assert day2[rule]["flag_id"] == day1[rule]["flag_id"]
        assert day2[rule]["evidence"] != day1[rule]["evidence"]  # the evidence did change ...
        assert day2[rule]["status"] == "dismissed" and not day2[rule]["reopened"], rule  # ... but not in substance
    assert json.loads(day2["W01"]["evidence"])["out_of_pocket"] == 14000

    # night 3: a higher level (22,000 out of pocket: 橙) and another benefit type paid after the death: both reopen
    write_csv(delivery_path(inbox, "medical_claims", C, D3, "csv"), CLAIM_HEADER, [claim(3, SICK, "2026-09-25", "8000.00")])
    write_csv(delivery_path(inbox, "subsidy_payments", C, D3, "csv"), PAY_HEADER,
              [["P3", DEAD, "乙", C, "困难残疾人生活补贴", "2026-09", "80.00"]])
    run(D3)
    day3 = by_rule(warehouse)
    assert day3["W01"]["level"] == "橙"
    for rule in ("W01", "R01"):
        assert day3[rule]["flag_id"] == day1[rule]["flag_id"]
        assert day3[rule]["status"] == "open" and day3[rule]["reopened"], rule
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        assert con.execute("SELECT sum(reopened_flags) FROM mart.county_summary").fetchone()[0] == 2


# ---- migration from the previous version (one flag per payment month) ---------------------------------------

# The last commit before one flag per continuing condition: its nightly run builds the old-shaped warehouse.
PREVIOUS_VERSION = "06d62fc"
REPO = Path(__file__).resolve().parents[1]


def _previous_checkout(tmp_path: Path) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the git history to run the previous version")
    probe = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{PREVIOUS_VERSION}^{{commit}}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"commit {PREVIOUS_VERSION} is not in this repository's history")
    out = tmp_path / "previous"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS_VERSION, "lowincome", "pipelines", "assets",
                              "checks", "sql", "pyproject.toml"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


def test_a_warehouse_of_the_previous_version_keeps_its_outcomes(lowincome_env, tmp_path):
    old_code = _previous_checkout(tmp_path)
    inbox = tmp_path / "inbox"
    warehouse = lowincome_env(inbox)
    write_csv(delivery_path(inbox, "civil_roster", C, D1, "csv"), ROSTER_HEADER, [
        [C + "001001", "H1", SICK, SICK, "甲", "本人", "低保", "城市", "在保", "2020-01-01", "", "1", "300", "400"],
        [C + "001002", "H7", GONE, GONE, "丁", "本人", "低保", "城市", "停保", "2020-01-01", "2026-06-30", "1", "300", "400"],
    ])
    write_csv(delivery_path(inbox, "subsidy_payments", C, D1, "csv"), PAY_HEADER, [
        ["P1", CARE, "丙", C, "重度残疾人护理补贴", "2026-07", "90.00"],
        ["P2", CARE, "丙", C, "重度残疾人护理补贴", "2026-08", "90.00"],
        ["P3", CARE, "丙", C, "重度残疾人护理补贴", "2026-09", "90.00"],
        ["P4", GONE, "丁", C, "低保金", "2026-08", "400.00"],
        ["P5", GONE, "丁", C, "低保金", "2026-09", "400.00"],
    ])
    # night 1 by the previous version, in its own process
    env = {**os.environ, "PYTHONPATH": str(old_code), "LOWINCOME_INBOX": str(inbox), "LOWINCOME_WAREHOUSE": str(warehouse)}
    done = subprocess.run([sys.executable, "-c",
                           "import sys; from pipelines.definitions import defs; "
                           "r = defs.resolve_job_def('nightly').execute_in_process(partition_key=sys.argv[1]); "
                           "sys.exit(0 if r.success else 1)", D1.isoformat()],
                          cwd=old_code, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    old = mart(warehouse)
    r02 = old.filter(pl.col("rule_id") == "R02").sort("period")
    assert r02["period"].to_list() == ["2026-07", "2026-08", "2026-09"]  # the old shape: one flag per month
    old_r07 = old.filter(pl.col("rule_id") == "R07")
    assert old_r07.height == 1 and old_r07["subject_type"][0] == "person"

    # the caseworkers answer on the old flags: a month-flag of R02 dismissed, the person's R07 confirmed
    august = r02.filter(pl.col("period") == "2026-08")["flag_id"][0]
    write_csv(delivery_path(inbox, "verification_outcomes", C, D2, "csv"), OUTCOME_HEADER, [
        [august, "dismissed", "certificate being reissued", D2.isoformat(), "王五"],
        [old_r07["flag_id"][0], "confirmed", "stop and recover", D2.isoformat(), "王五"],
    ])
    run(D2)  # night 2 by this version
    now = mart(warehouse)
    held = now.filter(pl.col("last_seen_on") == D2)
    r02_new = held.filter(pl.col("rule_id") == "R02")
    assert r02_new.height == 1 and r02_new["period"][0] == "2026-07"
    assert json.loads(r02_new["evidence"][0])["months"] == ["2026-07", "2026-08", "2026-09"]
    assert r02_new["status"][0] == "dismissed"  # the outcome of a month-flag applies to the run's flag
    r07_new = held.filter(pl.col("rule_id") == "R07")
    assert r07_new.height == 1 and r07_new["subject_key"][0] == pseudonym(DEV_PSEUDONYM_KEY, f"household:{C}:H7")
    assert r07_new["status"][0] == "confirmed"
    # the per-month flags of the previous version are no longer raised; none is open beside its run's flag
    assert set(now.filter(pl.col("rule_id") == "R02", pl.col("status") == "open")["flag_id"]) == set()
    assert now.filter(pl.col("flag_id") == august)["status"][0] == "resolved"
